"""The main job, ``python -m theory solve``, end to end on a small instance."""

import pytest

from theory.__main__ import main


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
        main(["solve", "--backend", "dask", "--regime", "peaked", "--plot", ""])
    assert "--regime must be one of" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["solve", "--device", "cuda", "--plot", ""])
    assert "--device applies to --backend torch only" in capsys.readouterr().err
