"""The main job, ``python -m theory solve``, end to end on a small instance."""

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
    assert main(["solve", "--n", "4", "--d", "8", "--plot", ""]) == 2
    assert "need integers n ≥ d ≥ 1" in capsys.readouterr().err


def test_solve_refuses_uniform_sampling_with_eps_and_says_why(capsys):
    argv = ["solve", "--n", "512", "--d", "8", "--sketch", "uniform", "--eps", "0.5", "--plot", ""]
    assert main(argv) == 2
    assert "coherence" in capsys.readouterr().err
