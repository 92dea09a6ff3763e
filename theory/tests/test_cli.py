"""The main job, ``python -m theory solve``, end to end on a small instance."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import theory
from theory.__main__ import main

ROOT = Path(theory.__file__).resolve().parents[1]  # where ``python -m theory`` finds the package


def test_solve_prints_a_summary_and_writes_the_plot(tmp_path, capsys):
    plot = tmp_path / "conv.png"
    assert main(["solve", "--n", "512", "--d", "8", "--plot", str(plot)]) == 0
    out = capsys.readouterr().out
    assert "| method | iterations |" in out
    for method in ("sketched-subspace-newton", "newton", "scipy-trust-krylov"):
        assert f"| {method} |" in out
    assert plot.stat().st_size > 10_000
    assert not list(tmp_path.glob("*.tmp.png"))


def test_solve_rejects_a_bad_size_before_any_work(capsys):
    assert main(["solve", "--n", "0", "--d", "8", "--plot", ""]) == 2
    assert "A needs n ≥ 1 rows and d ≥ 1 columns" in capsys.readouterr().err


def test_one_size_rule_for_the_api_and_the_cli(capsys):
    """n < d is allowed in both (a rank-deficient A; x stays in its row space)."""
    import numpy as np

    from theory import SoftmaxRegression, solve

    assert main(["solve", "--n", "32", "--d", "64", "--plot", ""]) == 0
    rng = np.random.default_rng(0)
    prob = SoftmaxRegression(rng.standard_normal((32, 64)) / 8, rng.dirichlet(np.ones(32)), 0.5)
    assert solve(prob).success
    with pytest.raises(ValueError, match="A is empty"):
        SoftmaxRegression(np.zeros((0, 3)), np.zeros(0), 1.0)


def test_solve_names_a_matrix_passed_instead_of_a_problem():
    import numpy as np

    from theory import solve

    with pytest.raises(TypeError, match="solve takes a problem, not ndarray"):
        solve(np.ones((8, 2)))


def test_a_method_that_does_not_converge_exits_1(tmp_path, capsys):
    args = ["solve", "--n", "512", "--d", "8", "--method", "gradient-descent", "--max-iter", "2"]
    assert main([*args, "--plot", ""]) == 1
    assert "gradient-descent did not converge" in capsys.readouterr().err


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--tol", "0"], "--tol: must be a finite number > 0, got 0"),
        (["--tol", "nan"], "--tol: must be a finite number > 0, got nan"),
        (["--tol", "inf"], "--tol: must be a finite number > 0, got inf"),
        (["--eps", "1.5", "--method", "sketched-newton"], "--eps: must lie in (0, 1), got 1.5"),
        (["--eps", "0.1", "--method", "newton"], "--eps applies to the sketched methods only"),
        (["--max-iter", "0"], "--max-iter: must be an integer >= 1, got 0"),
    ],
)
def test_bad_numbers_are_one_line_errors(flags, message, capsys):
    with pytest.raises(SystemExit) as e:
        main(["solve", "--n", "64", "--d", "4", "--plot", "", *flags])
    assert e.value.code == 2 and message in capsys.readouterr().err


def test_the_plot_path_is_checked_before_any_work(tmp_path, capsys):
    assert main(["solve", "--plot", str(tmp_path / "missing" / "p.png")]) == 2
    assert "does not exist; create it first" in capsys.readouterr().err
    assert main(["solve", "--plot", str(tmp_path)]) == 2
    assert "is a folder" in capsys.readouterr().err


def test_an_instance_larger_than_memory_is_refused_before_allocating(capsys):
    assert main(["solve", "--n", "100000000", "--d", "64", "--plot", ""]) == 2
    err = capsys.readouterr().err
    assert "GiB" in err and "choose a smaller --n or --d" in err


def test_threads_are_printed_and_help_shows_defaults(capsys):
    assert main(["solve", "--n", "256", "--d", "4", "--plot", "", "--threads", "1"]) == 0
    assert "threads: 1 (BLAS" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["solve", "--help"])
    text = capsys.readouterr().out
    assert "(default: 16384)" in text and "sparse" in text
    with pytest.raises(SystemExit):
        main(["--version"])
    assert capsys.readouterr().out.startswith("theory ")


def test_solve_refuses_uniform_sampling_with_eps_and_says_why(capsys):
    argv = ["solve", "--n", "512", "--d", "8", "--sketch", "uniform", "--eps", "0.5", "--plot", ""]
    assert main(argv) == 2
    assert "coherence" in capsys.readouterr().err


@pytest.mark.parametrize("backend", ["numpy", "torch", "dask"])
def test_solve_on_each_backend(backend, capsys):
    if backend != "numpy":
        pytest.importorskip("dask.distributed" if backend == "dask" else "torch")
    args = ["solve", "--backend", backend, "--workers", "2", "--method", "newton", "--n", "4096"]
    assert main([*args, "--d", "8", "--regime", "quadratic", "--plot", ""]) == 0
    out = capsys.readouterr().out
    assert "engine: " in out and "| newton |" in out


def test_backend_options_are_checked_before_any_work(capsys):
    with pytest.raises(SystemExit):
        main(["solve", "--backend", "dask", "--regime", "theorem", "--plot", ""])
    assert "--regime must be one of" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["solve", "--device", "cuda", "--plot", ""])
    assert "--device applies to --backend torch only" in capsys.readouterr().err


def refused_before_work(argv, capsys, message) -> str:
    """Exit status 2, one line on stderr naming ``message``, and nothing done (no instance drawn,
    no thread count set: stdout empty)."""
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert out == "" and message in err and len(err.strip().splitlines()) == 1, (out, err)
    return err


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--workers", "2", "--sketch", "srtt"], "sketch 'srtt' needs A in memory"),
        (["--workers", "2", "--sketch", "leverage-exact"], "an engine never gathers"),
        (["--sketch", "uniform", "--eps", "0.1"], "pass --sketch-size instead of eps"),
        (["--sketch-size", "4", "--d", "8"], "--sketch-size must be an integer ≥ d = 8"),
        (["--compare", "sketched-newton", "--sketch", "srtt", "--workers", "2"], "'srtt'"),
        (["--plot", "/proc/no-such-dir-here/x.png"], "--plot"),
    ],
)
def test_every_refusal_comes_before_any_work(flags, message, capsys):
    """The refusals that came after the reference solve (sketch on an engine, sketch size), and a
    plot path that only creating the file shows to be unwritable."""
    refused_before_work(
        ["solve", "--n", "1000000", "--d", "64", "--plot", "", *flags], capsys, message
    )


def test_a_plot_path_that_cannot_be_created_is_refused_and_nothing_is_left(tmp_path, capsys):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if os.access(locked, os.W_OK):  # root writes anywhere: /proc is the unwritable path then
            target = "/proc/conv.png"
        else:
            target = str(locked / "conv.png")
        refused_before_work(["solve", "--plot", target], capsys, "cannot be written")
    finally:
        locked.chmod(0o700)
    ok = tmp_path / "ok.png"
    assert main(["solve", "--n", "64", "--d", "4", "--compare", "none", "--plot", str(ok)]) == 0
    assert ok.stat().st_size > 0


def test_the_default_compares_small_instances_and_skips_large_ones():
    from theory.__main__ import COMPARE_AUTO_MAX_ND, comparisons, parse_args

    small = parse_args(["solve", "--n", "16384", "--d", "64"])
    large = parse_args(["solve", "--n", str(COMPARE_AUTO_MAX_ND), "--d", "2"])
    assert comparisons(small) == (True, ("newton", "scipy-trust-krylov"))
    assert comparisons(large) == (False, ())
    chosen = parse_args(
        ["solve", "--n", "10", "--compare", "scipy-l-bfgs-b,newton", "--method", "newton"]
    )
    assert comparisons(chosen) == (True, ("scipy-l-bfgs-b",))
    assert comparisons(parse_args(["solve", "--compare", "reference"])) == (True, ())


def test_compare_none_solves_only_the_method_and_names_the_backend(tmp_path, capsys):
    plot = tmp_path / "conv.png"
    argv = ["solve", "--n", "2048", "--d", "8", "--compare", "none", "--plot", str(plot)]
    assert main([*argv, "--workers", "2", "--method", "newton"]) == 0
    out = capsys.readouterr().out
    assert "| newton |" in out and "scipy-trust-krylov" not in out and "reference" not in out
    assert "sparse(n=2048, d=8, seed=0) on numpy, 2 threads" in out
    assert plot.stat().st_size > 10_000


def test_the_same_seed_is_the_same_problem_on_every_backend(capsys):
    """One generator (tile-seeded): the final loss agrees to 1e-12 and Newton takes the same
    iterations in memory, on a thread pool of 2 and on torch (the cluster: test_engine.py)."""
    pytest.importorskip("torch")
    argv = ["solve", "--regime", "sparse", "--n", "20000", "--d", "16", "--method", "newton"]
    losses, nits = {}, {}
    for name, extra in {
        "numpy": [],
        "pool": ["--workers", "2"],
        "torch": ["--backend", "torch", "--device", "cpu"],
    }.items():
        assert main([*argv, *extra, "--compare", "none", "--plot", ""]) == 0
        row = next(l for l in capsys.readouterr().out.splitlines() if l.startswith("| newton |"))
        cells = [c.strip() for c in row.split("|")]
        nits[name], losses[name] = int(cells[2]), float(cells[4])
    assert len(set(nits.values())) == 1, nits
    assert max(losses.values()) - min(losses.values()) <= 1e-12 * losses["numpy"], losses


def test_an_unreachable_scheduler_is_one_line_within_10_seconds(capsys):
    pytest.importorskip("dask.distributed")
    t0 = time.perf_counter()
    assert (
        main(["solve", "--backend", "dask", "--scheduler", "tcp://127.0.0.1:9", "--plot", ""]) == 2
    )
    assert time.perf_counter() - t0 < 10
    err = capsys.readouterr().err
    assert "no Dask scheduler answered at tcp://127.0.0.1:9" in err
    assert len(err.strip().splitlines()) == 1, err


def test_cuda_without_cuda_is_one_line(capsys):
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("this torch has CUDA: the refusal cannot happen here")
    with pytest.raises(SystemExit) as e:
        main(["solve", "--backend", "torch", "--device", "cuda", "--plot", ""])
    err = capsys.readouterr().err
    assert e.value.code == 2 and "sees no CUDA device; use --device cpu" in err
    assert len(err.strip().splitlines()) == 1, err


def test_ctrl_c_is_one_line():
    """SIGINT while the solve runs: exit status 130 and one line on stderr, no traceback."""
    cmd = [sys.executable, "-m", "theory", "solve", "--n", "300000", "--d", "64", "--method",
           "gradient-descent", "--max-iter", "100000", "--compare", "none", "--plot", ""]  # fmt: skip
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    try:
        for line in proc.stdout:
            if "gradient-descent it   2" in line:
                break
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert err.strip().splitlines() == ["interrupted (Ctrl-C): stopped; no plot written"], err
