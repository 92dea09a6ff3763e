"""The few-shot grid runner (benchmarks/fewshot.py): planning, resume, parallel runs, summary.

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


def fake_result(task, method, seed, scores, finished=True, metric="accuracy"):
    """A results.json like the trainer's: one curve point per epoch of 8 steps."""
    curve = [
        {"step": 8 * (i + 1), "dev": {metric: s, **({"f1": s} if task == "mrpc" else {})}}
        for i, s in enumerate(scores)
    ]
    best = max(curve, key=lambda p: p["dev"][metric])
    return {
        "config": {
            "model": "/x/all-MiniLM-L6-v2",
            "n_negatives": 32,
            "batch_size": 8,
            "lr": 1e-3,
            "epochs": len(scores),
            "eval_every": 0,
            "method": method,
        },
        "task": task,
        "main_metric": metric,
        "curve": curve,
        "best": best,
        "wall_time_s": 10.0,
        "setup_s": 2.0,
        "finished": finished,
        "versions": {
            "python": "3",
            "torch": "t",
            "transformers": "tr",
            "peft": "p",
            "accelerate": "a",
            "machine": "m",
            "gpu": None,
        },
    }


def write(out, run, result):
    d = run.run_dir(out)
    d.mkdir(parents=True, exist_ok=True)
    (d / "results.json").write_text(json.dumps(result))


def test_plan_is_seed_major_and_complete():
    runs = fewshot.plan(["sst2", "rte"], [64, 256], ["infoprompt", "warp"], [1, 2])
    assert len(runs) == 16 and len(set(runs)) == 16
    # every method of every task at seed 1 comes before any run at seed 2 (complete pairs first)
    first = runs[:4]
    assert {r.seed for r in first} == {1} and {r.shots for r in first} == {64}
    assert runs[4].seed == 2 and runs[8].shots == 256
    with pytest.raises(SystemExit):
        fewshot.plan(["sst2"], [64], ["nope"], [1])


def test_command_maps_ablations_and_always_resumes(tmp_path):
    cmd = fewshot.command(Run("rte", 64, "gamma0", 3), tmp_path, Path("D"), 10, ["--x", "1"])
    text = " ".join(cmd)
    assert "--method infoprompt --gamma 0" in text and "--beta" not in text
    assert "--data-dir D/RTE" in text and "--seeds 3" in text and "--epochs 10" in text
    assert f"--out {tmp_path}/rte-64/gamma0" in text and "--resume" in text
    assert cmd[-2:] == ["--x", "1"]
    assert "--method idpg" in " ".join(
        fewshot.command(Run("sst2", 64, "idpg", 1), tmp_path, "D", 1, [])
    )


def test_execute_skips_finished_resumes_partial_and_runs_in_parallel(tmp_path):
    runs = fewshot.plan(["sst2", "cola"], [64], ["infoprompt", "warp"], [1, 2])
    done, partial = runs[0], runs[1]
    write(tmp_path, done, fake_result("sst2", "infoprompt", 1, [0.7]))
    write(tmp_path, partial, fake_result("sst2", "warp", 1, [0.5], finished=False))
    assert fewshot.status(done, tmp_path) == "done"
    assert fewshot.status(partial, tmp_path) == "partial"
    assert fewshot.status(runs[2], tmp_path) == "todo"

    script = (
        "import json,sys,time,pathlib;d=pathlib.Path(sys.argv[1]);d.mkdir(parents=True,"
        "exist_ok=True);time.sleep(0.3);(d/'results.json').write_text(json.dumps("
        "{'finished':True,'main_metric':'accuracy','best':{'dev':{'accuracy':0.5}}}))"
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
    assert all(fewshot.status(r, tmp_path) == "done" for r in runs)
    # a second call starts nothing
    started.clear()
    assert fewshot.execute(runs, tmp_path, make, jobs=2, log=lines.append) == {}
    assert started == []


def test_budget_stops_new_starts(tmp_path):
    runs = fewshot.plan(["sst2"], [64], ["infoprompt", "warp"], [1])
    codes = fewshot.execute(
        runs, tmp_path, lambda r: [sys.executable, "-c", ""], jobs=1, budget=-1, log=lambda s: None
    )
    assert codes == {}


def test_summary_tables_pairs_and_convergence(tmp_path):
    # infoprompt beats warp on 2 of 3 seeds, reaches 95 % of its final score at step 8
    scores = {
        ("infoprompt", 1): [0.80, 0.82],
        ("infoprompt", 2): [0.70, 0.72],
        ("infoprompt", 3): [0.60, 0.60],
        ("warp", 1): [0.50, 0.70],
        ("warp", 2): [0.50, 0.60],
        ("warp", 3): [0.60, 0.65],
        ("idpg", 1): [0.80, 0.82],
    }
    for (m, s), sc in scores.items():
        write(tmp_path, Run("sst2", 64, m, s), fake_result("sst2", m, s, sc))
    write(
        tmp_path,
        Run("cola", 64, "warp", 1),
        fake_result("cola", "warp", 1, [0.1, -0.1], metric="mcc"),
    )
    runs = fewshot.load_runs(tmp_path)
    assert len(runs) == 8
    assert fewshot.steps_to_95(runs[Run("sst2", 64, "warp", 1)]) == 16
    assert fewshot.steps_to_95(runs[Run("sst2", 64, "infoprompt", 1)]) == 8
    assert fewshot.steps_to_95(runs[Run("cola", 64, "warp", 1)]) is None  # final MCC <= 0
    planned = fewshot.plan(["sst2"], [64], ["infoprompt", "warp", "idpg"], [1, 2, 3])
    text = fewshot.summarize(tmp_path, planned=planned)
    assert "2 of 9 planned runs have not finished" in text
    assert "- SST-2, 64 shots, idpg: seed 2, 3" in text
    assert "| WARP | 65.0 ± 5.0 (3) | 10.0 ± 0.0 (1) |" in text  # best of each run: .70 .60 .65
    assert "| WARP | SST-2 | 64 | 3 | 2 / 0 / 1 |" in text
    assert "| IDPG = InfoPrompt β = γ = 0 | SST-2 | 64 | 1 | 0 / 1 / 0 |" in text
    assert "| SST-2 | 64 | 8.0 | 16.0 |" in text and "| **all** | | | | | 3 / 0 / 0 | |" in text

    doc = tmp_path / "results.md"
    doc.write_text(f"intro\n{fewshot.MARK_BEGIN}\nold\n{fewshot.MARK_END}\noutro\n")
    fewshot.write_summary("NEW", str(doc))
    assert doc.read_text() == f"intro\n{fewshot.MARK_BEGIN}\nNEW\n{fewshot.MARK_END}\noutro\n"


def test_sign_test():
    assert fewshot.sign_test(0, 0) == 1.0
    assert fewshot.sign_test(5, 0) == pytest.approx(2 / 32)
    assert fewshot.sign_test(3, 3) == 1.0
