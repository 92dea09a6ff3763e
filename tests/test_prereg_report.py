"""benchmarks.prereg_report: the pre-registered test's table, interim and complete, and its
decision rule (docs/preregistration.md)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks import prereg_report as pr  # noqa: E402
from benchmarks.fewshot import PREREG  # noqa: E402
from infoprompt.stats import PairedT  # noqa: E402

METRIC = {"sst2": "accuracy", "semeval": "semeval_macro_f1"}


def fake(task: str, method: str, score: float, live: float) -> dict:
    activity = {
        k: {"live_fraction": live, "peak_share": 0.3, "mean_share": 0.05,
            "last_live_epoch": 29.6, "final_value": 0.001}
        for k in ("rep", "head")
    }  # fmt: skip
    m = METRIC[task]
    out = {
        "finished": True,
        "main_metric": m,
        "test": {"final": {m: score}, "selected": {m: score}},
        "curve": [{"critic": {"rep": 0.001, "rep_shuffled": 0.002}}],
        "versions": {"commit": "abc"},
    }
    if method != "beta0gamma0":
        out["mi_activity"] = activity
    return out


def write_plan(out: Path, gap: dict[str, float], live: float = 0.9, keep=None) -> None:
    rng = np.random.default_rng(0)
    for run in PREREG.plan([]):
        if keep is not None and not keep(run):
            continue
        base = 0.6 + 0.02 * rng.standard_normal()
        noise = 0.002 * rng.standard_normal()
        score = base + (gap[run.task] + noise if run.method == "infoprompt" else 0.0)
        d = run.run_dir(out)
        d.mkdir(parents=True)
        (d / "results.json").write_text(json.dumps(fake(run.task, run.method, score, live)))


def test_interim_shows_no_test_and_no_verdict(tmp_path):
    write_plan(tmp_path, {"sst2": 0.02, "semeval": 0.0}, keep=lambda r: r.seed in (13, 21))
    text = pr.summarize(tmp_path)
    assert "**interim** — 12 of 120 planned runs finished" in text
    assert "Holm p" not in text and "| verdict |" not in text and "supports" not in text


def test_complete_plan_applies_the_decision_rule(tmp_path):
    write_plan(tmp_path, {"sst2": 0.02, "semeval": 0.0})
    text = pr.summarize(tmp_path)
    assert "complete, 120 of 120 planned runs" in text
    sst2 = next(line for line in text.splitlines() if line.startswith("| SST-2 64 | 20 |"))
    semeval = next(line for line in text.splitlines() if line.startswith("| SemEval 64 | 20 |"))
    assert sst2.endswith("| yes | supports the claim |")
    assert "no effect detected" in semeval
    assert "Runs' commits (`versions.commit`): abc." in text


def test_the_rule_needs_live_terms_and_names_the_paper_gap():
    up = PairedT(20, 2.0, 1.0, 3.0, 1e-4)
    null = PairedT(20, 0.2, -1.0, 1.4, 0.7)
    down = PairedT(20, -2.0, -3.0, -1.0, 1e-4)
    assert pr.verdict("sst2", up, 2e-4, True) == "supports the claim"
    assert pr.verdict("sst2", up, 2e-4, False) == "positive, but the MI terms are not live"
    assert pr.verdict("sst2", down, 2e-4, True) == "contradicts the claim"
    text = pr.verdict("sst2", null, 0.7, True)
    assert "no effect detected" in text and "excludes the paper's gap (+11.9)" in text
    assert "not live" in pr.verdict("semeval", null, 0.7, False)
    assert "paper's gap" not in pr.verdict("semeval", null, 0.7, True)


def test_live_follows_the_median_seed():
    runs = {
        PREREG.plan([])[0]: fake("sst2", "infoprompt", 0.7, 0.4),
    }
    assert pr.live(runs, "sst2") is False
    runs[PREREG.plan([])[3]] = fake("sst2", "infoprompt", 0.7, 0.8)  # seed 21, same arm
    runs[PREREG.plan([])[6]] = fake("sst2", "infoprompt", 0.7, 0.6)
    assert pr.live(runs, "sst2") is True  # median 0.6 ≥ 0.5
    assert pr.live({}, "sst2") is None
