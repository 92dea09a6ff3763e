"""The few-shot grid runner (benchmarks/fewshot.py): planning, learning-rate sources, resume,
parallel runs, the time estimate.

A fake trainer (a one-line Python process writing results.json) stands in for the real one: no
model, no data, a few seconds.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks import fewshot  # noqa: E402
from benchmarks.fewshot import Run  # noqa: E402


def write(out, run, finished=True, seconds=10.0, lr=None):
    d = run.run_dir(out)
    d.mkdir(parents=True, exist_ok=True)
    result = {"finished": finished, "wall_time_s": seconds, "setup_s": 0.0, "lr": lr}
    (d / "results.json").write_text(json.dumps(result))


def test_plan_is_task_major_and_complete():
    runs = fewshot.plan(["sst2", "rte"], [64, 256], ["infoprompt", "warp"], [1, 2])
    assert len(runs) == 16 and len(set(runs)) == 16
    # every method of a task at every seed comes before the next task (complete cells first)
    first = runs[:4]
    assert {r.task for r in first} == {"sst2"} and {r.shots for r in first} == {64}
    assert [r.seed for r in first] == [1, 1, 2, 2] and runs[4].task == "rte"
    assert runs[8].shots == 256
    with pytest.raises(SystemExit):
        fewshot.plan(["sst2"], [64], ["nope"], [1])


def test_the_grid_parts_plan_the_issues_protocol(tmp_path, capsys):
    a, b, c = (fewshot.PARTS[k].plan(["sst2"]) for k in "abc")
    assert (len(a), len(b), len(c)) == (60, 20, 24)
    assert {r.method for r in a} == {r.method for r in b} | {r.method for r in c}
    assert not {r.method for r in b} & {r.method for r in c}
    assert {r.shots for r in b + c} == {256} and {r.seed for r in c} == {13, 21, 42}
    assert fewshot.main(["--out", str(tmp_path), "--part", "b", "--dry-run"]) == 0
    assert "100 of 100 runs to go" in capsys.readouterr().out  # five tasks
    with pytest.raises(SystemExit):  # a part and its own flags: refused before any work
        fewshot.main(["--out", str(tmp_path), "--part", "b", "--seeds", "13", "--dry-run"])
    assert "--part b sets --seeds" in capsys.readouterr().err


def test_estimates_say_one_job_and_divide_by_the_jobs():
    assert fewshot.eta_hours(7200, 1) == "about 2.0 h of one job"
    assert fewshot.eta_hours(7200, 4) == "about 2.0 h of one job, 0.5 h with 4 jobs"


def test_learning_rate_is_searched_once_per_task_and_method(tmp_path):
    runs = fewshot.plan(["sst2"], [64, 256], ["warp"], [13, 21])
    search = Run("sst2", 64, "warp", 13)
    assert all(fewshot.lr_source(r, runs) == search for r in runs)
    assert fewshot.lr_flags(search, runs, tmp_path) == ["--lr-grid", "0.0001", "0.001", "0.01"]
    later = Run("sst2", 256, "warp", 21)
    assert fewshot.lr_flags(later, runs, tmp_path) is None  # waits for the search
    write(tmp_path, search, lr=0.01)
    assert fewshot.lr_flags(later, runs, tmp_path) == ["--lr", "0.01"]
    only_256 = fewshot.plan(["sst2"], [256], ["warp"], [13, 21])  # part (b): searches on disk
    assert fewshot.lr_source(only_256[1], only_256) == search
    assert fewshot.lr_flags(only_256[0], only_256, tmp_path) == ["--lr", "0.01"]


def test_command_names_the_method_and_always_resumes(tmp_path):
    cmd = fewshot.command(Run("rte", 64, "gamma0", 3), tmp_path, Path("D"), ["--lr", "1"], ["-x"])
    text = " ".join(cmd)
    assert "--method gamma0" in text and "--data-dir D/RTE" in text and "--seeds 3" in text
    assert f"--out {tmp_path}/rte-64/gamma0" in text and "--resume" in text and "--lr 1" in text
    assert cmd[-1] == "-x" and "--sampling" not in text


def test_semeval_draws_are_stratified_not_balanced(tmp_path):
    # one training example of Entity-Destination(e2,e1): no balanced draw of 64 + 64 exists
    cmd = fewshot.command(Run("semeval", 64, "warp", 13), tmp_path, Path("D"), ["--lr", "1"], [])
    assert " ".join(cmd).endswith("--sampling proportional")


def test_execute_skips_finished_resumes_partial_and_runs_in_parallel(tmp_path):
    runs = fewshot.plan(["sst2", "cola"], [64], ["infoprompt", "warp"], [1, 2])
    done, partial = runs[0], runs[1]
    write(tmp_path, done)
    write(tmp_path, partial, finished=False)
    assert fewshot.status(done, tmp_path) == "done"
    assert fewshot.status(partial, tmp_path) == "partial"
    assert fewshot.status(runs[2], tmp_path) == "todo"

    script = (
        "import json,sys,time,pathlib;d=pathlib.Path(sys.argv[1]);d.mkdir(parents=True,"
        "exist_ok=True);time.sleep(0.3);(d/'results.json').write_text(json.dumps("
        "{'finished':True,'wall_time_s':5,'setup_s':1,'main_metric':'accuracy','config':{'lr':1},"
        "'test':{'final':{'accuracy':0.5},'selected':{'accuracy':0.6}}}))"
    )
    started = []

    def make(run):
        started.append(run)
        return [sys.executable, "-c", script, str(run.run_dir(tmp_path))]

    lines = []
    codes = fewshot.execute(runs, tmp_path, make, jobs=3, log=lines.append)
    assert done not in started and partial in started and len(started) == len(runs) - 1
    assert all(c == 0 for c in codes.values())
    assert any("resume" in ln and "sst2-64 warp seed1" in ln for ln in lines)
    assert any("test.final accuracy 50.0, test.selected 60.0" in ln for ln in lines)
    assert lines[-1].startswith("left: 0 runs, about 0.0 h")
    assert all(fewshot.status(r, tmp_path) == "done" for r in runs)
    started.clear()  # a second call starts nothing
    assert fewshot.execute(runs, tmp_path, make, jobs=2, log=lines.append) == {}
    assert started == []


def test_runs_wait_for_their_search_and_a_failed_search_stops_them(tmp_path):
    runs = fewshot.plan(["sst2"], [64], ["warp"], [1, 2])
    lines = []
    fail = [sys.executable, "-c", "raise SystemExit(3)"]
    make = lambda r: fail if r.seed == 1 else None  # noqa: E731 (seed 2 waits for seed 1)
    codes = fewshot.execute(runs, tmp_path, make, jobs=2, log=lines.append)
    assert codes == {runs[0]: 3}
    assert any("FAILED (3)" in ln for ln in lines)
    assert "1 runs wait for learning-rate searches that failed" in lines[-1]


def test_estimate_scales_by_shots_and_counts_a_search_as_its_runs(tmp_path):
    runs = fewshot.plan(["sst2"], [64, 256], ["warp"], [1, 2])
    assert fewshot.estimate(runs, tmp_path, runs) is None
    write(tmp_path, runs[0], seconds=10.0)
    write(tmp_path, runs[1], seconds=30.0)
    todo = runs[2:]  # two 256-shot runs: 20 s × 4 each
    assert fewshot.estimate(todo, tmp_path, runs) == pytest.approx(160.0)
    assert fewshot.estimate(runs[:1], tmp_path, runs) == pytest.approx(3 * 20.0)  # a search


def test_budget_stops_new_starts(tmp_path):
    runs = fewshot.plan(["sst2"], [64], ["infoprompt", "warp"], [1])
    codes = fewshot.execute(
        runs, tmp_path, lambda r: [sys.executable, "-c", ""], jobs=1, budget=-1, log=lambda s: None
    )
    assert codes == {}


def write_search(out, run, grid, val, chosen):
    d = run.run_dir(out)
    d.mkdir(parents=True, exist_ok=True)
    r = {
        "finished": True,
        "lr": chosen,
        "config": {"lr": None, "lr_grid": grid},
        "lr_search": {"grid": grid, "val": val, "chosen": chosen},
    }
    (d / "results.json").write_text(json.dumps(r))


def test_a_search_whose_choice_is_an_edge_is_widened_and_its_runs_redone(tmp_path):
    runs = fewshot.plan(["sst2"], [64], ["warp"], [13, 21])
    search, other = runs
    write_search(tmp_path, search, [1e-4, 1e-3, 1e-2], [0.6, 0.7, 0.8], 1e-2)
    assert fewshot.search_grid(search, tmp_path) == [1e-4, 1e-3, 1e-2, 0.1]
    assert fewshot.status(search, tmp_path, runs) == "partial"
    assert fewshot.lr_flags(search, runs, tmp_path) == [
        "--lr-grid",
        "0.0001",
        "0.001",
        "0.01",
        "0.1",
    ]
    write(tmp_path, other)
    json_other = json.loads((other.run_dir(tmp_path) / "results.json").read_text())
    json_other["config"] = {"lr": 1e-2}
    (other.run_dir(tmp_path) / "results.json").write_text(json.dumps(json_other))
    assert fewshot.lr_flags(other, runs, tmp_path) is None  # waits for the widened search
    # widened: 0.1 is worse, the choice stays 1e-2 and the other seed's run is current
    write_search(tmp_path, search, [1e-4, 1e-3, 1e-2, 0.1], [0.6, 0.7, 0.8, 0.5], 1e-2)
    assert fewshot.status(search, tmp_path, runs) == "done"
    assert fewshot.status(other, tmp_path, runs) == "done"
    # had 0.1 won, the run trained at 1e-2 would be stale
    write_search(tmp_path, search, [1e-4, 1e-3, 1e-2, 0.1], [0.6, 0.7, 0.8, 0.9], 0.1)
    assert fewshot.search_grid(search, tmp_path) == [1e-4, 1e-3, 1e-2, 0.1, 1.0]
    write_search(tmp_path, search, [1e-4, 1e-3, 1e-2, 0.1, 1.0], [0.6, 0.7, 0.8, 0.9, 0.95], 1.0)
    assert fewshot.status(search, tmp_path, runs) == "done"  # at most MAX_WIDEN rates added
    assert fewshot.status(other, tmp_path, runs) == "stale"
    # an interior choice keeps the grid, whatever the edges' order
    write_search(tmp_path, search, [1e-4, 1e-3, 1e-2, 0.1], [0.62, 0.61, 0.72, 0.64], 1e-2)
    assert fewshot.search_grid(search, tmp_path) == [1e-4, 1e-3, 1e-2, 0.1]
    # a tie at the edge keeps the grid (the trainer chose the smaller rate)
    write_search(tmp_path, search, [1e-4, 1e-3, 1e-2], [0.8, 0.8, 0.7], 1e-4)
    assert fewshot.search_grid(search, tmp_path) == [1e-4, 1e-3, 1e-2]


def test_execute_widens_a_search_and_retrains_a_stale_run(tmp_path):
    runs = fewshot.plan(["sst2"], [64], ["warp"], [13, 21])
    search, other = runs
    write_search(tmp_path, search, [1e-4, 1e-3, 1e-2], [0.6, 0.7, 0.8], 1e-2)
    other.run_dir(tmp_path).mkdir(parents=True)
    old = {"finished": True, "config": {"lr": 1e-2}}
    (other.run_dir(tmp_path) / "results.json").write_text(json.dumps(old))
    # the widened search: 0.1 wins, and 1.0 (the second widening) does not
    answers = {
        4: {"grid": [1e-4, 1e-3, 1e-2, 0.1], "val": [0.6, 0.7, 0.8, 0.9], "chosen": 0.1},
        5: {"grid": [1e-4, 1e-3, 1e-2, 0.1, 1.0], "val": [0.6, 0.7, 0.8, 0.9, 0.5], "chosen": 0.1},
    }
    script = (
        "import sys,pathlib;p=pathlib.Path(sys.argv[1]);p.mkdir(parents=True,exist_ok=True);"
        "(p/'results.json').write_text(sys.argv[2])"
    )

    def make(run):
        lr = fewshot.lr_flags(run, runs, tmp_path)
        if lr is None:
            return None
        if run == search:
            search_ = answers[len(lr) - 1]
            body = {"finished": True, "lr": search_["chosen"], "config": {"lr": None}}
            body["lr_search"] = search_
        else:
            body = {"finished": True, "config": {"lr": float(lr[1])}}
        return [sys.executable, "-c", script, str(run.run_dir(tmp_path)), json.dumps(body)]

    lines = []
    fewshot.execute(runs, tmp_path, make, jobs=1, log=lines.append)
    # started partial (to widen), widened once more after its first answer, then done
    assert sum("widening sst2-64 warp seed13" in ln for ln in lines) == 1
    assert fewshot.read_results(search, tmp_path)["lr_search"]["grid"][-1] == 1.0
    assert any("superseded: sst2-64 warp seed21" in ln for ln in lines)
    assert fewshot.status(search, tmp_path, runs) == "done"
    assert fewshot.status(other, tmp_path, runs) == "done"
    assert json.loads((other.run_dir(tmp_path) / "results.json").read_text())["config"]["lr"] == 0.1
