"""The few-shot report (benchmarks/fewshot_report.py): tables in the paper's layout, the
reported-set-only rule, the statistics helpers, missing runs and marker writing.

Fake results.json files shaped like the trainer's stand in for real runs: gold labels, and
predictions right on the first ``correct`` examples, with ``test.final`` computed from them.
"""

from __future__ import annotations

import json
import math
import statistics
import sys
from pathlib import Path

import pytest
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks import fewshot_compare as compare  # noqa: E402
from benchmarks import fewshot_data as data  # noqa: E402
from benchmarks import fewshot_prose as prose  # noqa: E402
from benchmarks import fewshot_report as rep  # noqa: E402
from benchmarks.fewshot import Run, plan  # noqa: E402
from infoprompt import stats as ipstats  # noqa: E402
from infoprompt.methods import METHODS  # noqa: E402
from infoprompt.metrics import compute_all  # noqa: E402
from infoprompt.tasks import TASKS  # noqa: E402

N = 20
LABELS = {  # 12 of class 0 then 8 of class 1: majority accuracy 0.6; SemEval: "Other" (18) first
    "sst2": [0] * 12 + [1] * 8,
    "cola": [0] * 12 + [1] * 8,
    "semeval": [18] * 12 + [0] * 4 + [3] * 4,
}


def predictions(task, correct):
    """Right on the first ``correct`` examples, wrong (another class) on the rest."""
    n_classes = len(TASKS[task].labels)
    return [y if i < correct else (y + 1) % n_classes for i, y in enumerate(LABELS[task])]


def result(task, method, correct, selected=None, lr=1e-3, lr_search=None, critic=None):
    """A finished results.json like the trainer's, with distinctive best and test_curve values
    (0.999, 0.888) that must never reach a table."""
    spec = TASKS[task]
    labels = LABELS[task]
    final_pred = predictions(task, correct)
    sel_pred = predictions(task, correct if selected is None else selected)
    score = lambda pred: compute_all(spec.metrics, labels, pred, spec.labels)
    main = spec.main_metric
    out = {
        "config": {
            "method": method,
            "lr": lr,
            "epochs": 30,
            "model": "m",
            "batch_size": 8,
            "n_negatives": 32,
            "n_prompts": 4,
            "val_shots": 64,
        },
        "label": method,
        "task": task,
        "main_metric": main,
        "n_train": 64,
        "n_val": 64,
        "curve": [
            {
                "step": 1,
                "epoch": 1.0,
                "train": {"loss": 1.0},
                "val": {main: 0.999},
                "critic": critic or {},
                "test_curve": {main: 0.888},
            }
        ],
        "best": {"step": 1, "epoch": 1.0, "val": {main: 0.999}},
        "wall_time_s": 100.0,
        "setup_s": 10.0,
        "finished": True,
        "versions": {
            "python": "3.x",
            "torch": "t",
            "transformers": "tf",
            "peft": "p",
            "accelerate": "a",
            "machine": "x86_64",
            "gpu": None,
            "cpus": 2,
        },
        "test": {
            "final": score(final_pred),
            "selected": score(sel_pred),
            "selected_step": 1,
            "n": N,
            "labels": labels,
            "predictions": {"final": final_pred, "selected": sel_pred},
        },
    }
    if lr_search:
        out |= {"lr": lr, "lr_search": lr_search}
    return out


def put(out, task, shots, method, seed, r):
    d = Run(task, shots, method, seed).run_dir(out)
    d.mkdir(parents=True, exist_ok=True)
    (d / "results.json").write_text(json.dumps(r))
    return d


def row(text, name):
    """The cells of the first table row whose first cell is ``name``."""
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if cells[0] == name:
            return cells[1:]
    raise AssertionError(f"no row {name!r}")


# --------------------------------------------------------------------------- tables


def test_paper_rows_average_to_the_printed_average():
    printed = {
        "finetune": 0.6153,
        "adapter": 0.4750,
        "warp": 0.5077,
        "infoprompt": 0.5559,
        "gamma0": 0.5402,
        "beta0": 0.5092,
        "beta0gamma0": 0.4925,
    }
    for m, avg in printed.items():
        glue = [v for (t, _), v in data.PAPER[m].items() if t != "semeval"]
        assert len(glue) == 8 and statistics.fmean(glue) == pytest.approx(avg, abs=6e-5)
    assert data.PAPER["infoprompt"][("semeval", 256)] == 0.4034 and "idpg" not in data.PAPER


def test_tables_cells_n_paper_and_majority_rows(tmp_path):
    for seed, correct in ((13, 15), (21, 17)):  # 75 %, 85 %
        put(
            tmp_path,
            "sst2",
            64,
            "infoprompt",
            seed,
            result("sst2", "infoprompt", correct, selected=10),
        )
    put(tmp_path, "sst2", 64, "warp", 13, result("sst2", "warp", 14))
    put(tmp_path, "cola", 64, "infoprompt", 13, result("cola", "infoprompt", 20))
    put(tmp_path, "semeval", 64, "infoprompt", 13, result("semeval", "infoprompt", 20))
    text = rep.summarize(tmp_path, [], [])
    final, selected = text.split("`test.selected`)")[0], text.split("`test.selected`)")[1]
    ours = METHODS["infoprompt"].row
    # GLUE: CoLA 64, SST-2 64, average; InfoPrompt's SST-2 cell 80.0 ± 7.1 over 2 seeds
    assert row(final, ours)[:3] == ["100.0 (1)", "80.0 ± 7.1 (2)", "90.0"]
    assert row(final, METHODS["warp"].row)[:3] == ["–", "70.0 (1)", "70.0 (1 of 2 cells)"]
    assert row(final, "*paper (RoBERTa-large): InfoPrompt*")[:3] == ["15.7", "67.0", "41.3"]
    assert row(final, "*paper (RoBERTa-large): WARP*")[:3] == ["7.5", "58.7", "58.7 (1 of 2 cells)"]
    assert row(final, "majority class")[:3] == ["0.0", "60.0", "30.0"]  # MCC 0, accuracy 12/20
    assert row(selected, ours)[1] == "50.0 ± 0.0 (2)"
    semeval = text.split("SemEval-2010 Task 8")[1]
    assert row(semeval, ours)[0] == "100.0 (1)"
    assert row(semeval, "majority class")[0] == "0.0"  # "Other" scores 0 in the official F1
    assert row(semeval, "*paper (RoBERTa-large): InfoPrompt*")[0] == "21.1"
    assert "| IDPG" not in text and "*paper (RoBERTa-large): γ = 0*" not in text


def test_majority_score_per_metric():
    assert data.majority_score("sst2", "accuracy", [1, 1, 0]) == pytest.approx(2 / 3)
    assert data.majority_score("cola", "mcc", [0, 1, 1]) == 0.0
    assert data.majority_score("semeval", "semeval_macro_f1", [18, 18, 0]) == 0.0


def test_best_and_test_curve_never_reach_the_report(tmp_path):
    for seed in (13, 21):
        for m, c in (("infoprompt", 15), ("warp", 13)):
            put(tmp_path, "sst2", 64, m, seed, result("sst2", m, c + seed % 2))
    with_them = rep.summarize(tmp_path, [], [])
    assert "99.9" not in with_them and "88.8" not in with_them
    for path in tmp_path.glob("*/*/seed*/results.json"):
        r = json.loads(path.read_text())
        del r["best"], r["curve"][0]["test_curve"]
        path.write_text(json.dumps(r))
    assert rep.summarize(tmp_path, [], []) == with_them


def test_load_skips_unfinished_and_deeper_files_and_lists_unreadable(tmp_path):
    d = put(tmp_path, "sst2", 64, "infoprompt", 13, result("sst2", "infoprompt", 15))
    (d / "lr-0.01").mkdir()
    (d / "lr-0.01" / "results.json").write_text(json.dumps(result("sst2", "infoprompt", 1)))
    put(tmp_path, "sst2", 64, "warp", 13, result("sst2", "warp", 15) | {"finished": False})
    bad = put(tmp_path, "sst2", 64, "gamma0", 13, {})
    (bad / "results.json").write_text("{not json")
    put(tmp_path, "sst2", 64, "beta0", 13, {"finished": True, "main_metric": "accuracy"})
    runs, unreadable = data.load(tmp_path)
    assert list(runs) == [Run("sst2", 64, "infoprompt", 13)]
    assert len(unreadable) == 2
    assert "gamma0" in unreadable[1] and "JSONDecodeError" in unreadable[1]
    assert "beta0" in unreadable[0] and "incomplete test scores" in unreadable[0]
    assert "Unreadable results" in rep.summarize(tmp_path, [], [])


# --------------------------------------------------------------------------- statistics


def test_holm_orders_back():
    assert ipstats.holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert ipstats.holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])
    assert ipstats.holm([]) == []


def test_sign_test():
    assert ipstats.sign_test(0, 0) == 1.0 and ipstats.sign_test(3, 3) == 1.0
    for w, lo in ((7, 2), (1, 9), (10, 10)):
        assert ipstats.sign_test(w, lo) == pytest.approx(stats.binomtest(w, w + lo).pvalue)


def test_wilcoxon_p_drops_zeros():
    d = [0.3, -0.1, 0.2, 0.5, 0.0, 0.4]
    assert ipstats.wilcoxon_p(d) == pytest.approx(stats.wilcoxon([x for x in d if x]).pvalue)
    assert ipstats.wilcoxon_p([0.0, 0.0]) is None
    assert ipstats.wilcoxon_p([0.2]) == pytest.approx(1.0)  # one non-zero: exact p = 1


def test_t_interval_by_hand():
    mean, lo, hi = compare.t_interval([1.0, 2.0, 3.0])
    half = 4.302652729911275 / math.sqrt(3)  # t_{0.975, 2} · s / √n, s = 1
    assert (mean, lo, hi) == pytest.approx((2.0, 2.0 - half, 2.0 + half))
    assert math.isnan(compare.t_interval([1.0])[1])


def test_statistics_section_pairs_cells_by_seed_and_corrects_the_family(tmp_path):
    # SST-2 64: InfoPrompt right on 18, 17, 17, WARP on 13, 12, 12 → Δ +25 points on each seed
    for seed, extra in ((13, 1), (21, 0), (42, 0)):
        put(tmp_path, "sst2", 64, "infoprompt", seed, result("sst2", "infoprompt", 17 + extra))
        put(tmp_path, "sst2", 64, "warp", seed, result("sst2", "warp", 12 + extra))
    put(tmp_path, "sst2", 64, "warp", 87, result("sst2", "warp", 20))  # unpaired: left out
    # SST-2 256 with one paired seed: in the cell table, not counted across cells
    put(tmp_path, "sst2", 256, "infoprompt", 13, result("sst2", "infoprompt", 10))
    put(tmp_path, "sst2", 256, "warp", 13, result("sst2", "warp", 20))
    text = rep.summarize(tmp_path, [], [])
    stats_text = text.split("| baseline | cell |")[1]  # the full rows, after the glance
    cells = row(stats_text, METHODS["warp"].row)
    assert cells[:4] == ["SST-2 64", "3", "+25.0", "[+25.0, +25.0]"]
    assert cells[4:6] == ["0", "0"]  # a constant non-zero difference: t p 0; alone in the family
    assert "| SST-2 256 | 1 | -50.0 | [–, –] | n too small | n too small |" in stats_text
    assert "all 1 (baseline, cell) comparisons" in text  # one seed: no p, not in the family
    assert "GLUE: mean cell difference +25.0 points over 1 cells (higher in 1, lower in 0)" in text
    assert "Wilcoxon Holm p = 1: does not survive" in text
    assert "McNemar" not in text
    assert (
        "survives Holm over the family in 1 of 2 cells (InfoPrompt higher in 1, lower in 0)" in text
    )


def test_glance_table_bolds_the_cells_that_survive_holm(tmp_path):
    # SST-2 64: Δ +25, +30, +25 points (interval above 0); CoLA 64: Δ of both signs (straddles 0);
    # SST-2 256: one seed (no interval, not bold)
    for seed, ours, warp in ((13, 17, 12), (21, 18, 12), (42, 17, 12)):
        put(tmp_path, "sst2", 64, "infoprompt", seed, result("sst2", "infoprompt", ours))
        put(tmp_path, "sst2", 64, "warp", seed, result("sst2", "warp", warp))
    for seed, ours, warp in ((13, 15, 12), (21, 12, 15), (42, 14, 13)):
        put(tmp_path, "cola", 64, "infoprompt", seed, result("cola", "infoprompt", ours))
        put(tmp_path, "cola", 64, "warp", seed, result("cola", "warp", warp))
    put(tmp_path, "sst2", 256, "infoprompt", 13, result("sst2", "infoprompt", 20))
    put(tmp_path, "sst2", 256, "warp", 13, result("sst2", "warp", 10))
    text = rep.summarize(tmp_path, [], [])
    glance = text.split("At a glance")[1].split("\n\n")[1]
    header, _, warp_row = glance.splitlines()
    assert header == "| baseline | CoLA 64 | SST-2 64 | SST-2 256 |"
    cola, sst2, sst2_256 = row(warp_row, METHODS["warp"].row)
    assert cola.endswith(" (3)") and "**" not in cola
    assert sst2 == "**+26.7** (3)"
    assert sst2_256 == "+50.0 (1)"
    # t p of SST-2 64 (Δ 25, 30, 25): 0.0039; Holm over the two cells with a p: 0.0078
    assert (
        "survives Holm over the family in 1 of 3 cells (InfoPrompt higher in 1, lower in 0)" in text
    )
    assert "raw 95 % interval excludes 0 in 1" in text


def test_a_raw_interval_that_does_not_survive_holm_is_marked_not_bold(tmp_path):
    # SST-2 64: Δ +20, +25, +15 points: t p 0.0202, interval above 0; two null cells beside it
    # make a family of three, so Holm gives 3 × 0.0202 = 0.061: a dagger, not bold
    for seed, ours, warp in ((13, 16, 12), (21, 17, 12), (42, 15, 12)):
        put(tmp_path, "sst2", 64, "infoprompt", seed, result("sst2", "infoprompt", ours))
        put(tmp_path, "sst2", 64, "warp", seed, result("sst2", "warp", warp))
    for task, shots in (("cola", 64), ("sst2", 256)):
        for seed, ours, warp in ((13, 15, 12), (21, 12, 15), (42, 14, 13)):
            put(tmp_path, task, shots, "infoprompt", seed, result(task, "infoprompt", ours))
            put(tmp_path, task, shots, "warp", seed, result(task, "warp", warp))
    text = rep.summarize(tmp_path, [], [])
    glance = text.split("At a glance")[1].split("\n\n")[1]
    header, _, warp_row = glance.splitlines()
    assert header == "| baseline | CoLA 64 | SST-2 64 | SST-2 256 |"
    assert row(warp_row, METHODS["warp"].row)[1] == "+20.0† (3)"
    assert "survives Holm over the family in 0 of 3 cells" in text


@pytest.mark.parametrize("n", [1, 2, 4, 8])
def test_the_across_cell_floor_is_the_tests_own_smallest_p(n):
    # n cells, all of one sign: scipy's exact Wilcoxon and the sign test give 2 / 2ⁿ (capped at 1)
    floor = min(1.0, 2 / 2**n)
    assert ipstats.wilcoxon_p([0.01 * (i + 1) for i in range(n)]) == pytest.approx(floor)
    assert ipstats.sign_test(n, 0) == pytest.approx(floor)
    acr = {("warp", "GLUE"): {"cells": n}, ("idpg", "GLUE"): {"cells": n - 1}}
    (line,) = prose.floor_lines(acr, {"GLUE": {"warp": 1.0, "idpg": 1.0}, "SemEval": {}})
    assert line.startswith(f"- GLUE, {n} cells: the smallest two-sided p is {floor:.3g}, ")
    assert f"{min(1, 2 * floor):.3g} after Holm over 2 baselines" in line
    assert line.endswith("can survive at 0.05.") == (2 * floor >= 0.05)


def test_ordering_against_the_paper(tmp_path):
    # SST-2 64, paper: Finetuning 80.3 > InfoPrompt 67.0 > WARP 58.7. Ours (of 20): InfoPrompt
    # 17, 18, 17; Finetuning 14, 16, 18; WARP 12, 13, 12 -> InfoPrompt > Finetuning > WARP: 2 of
    # 3 pairs alike, τ-b = (2 - 1) / 3; only InfoPrompt - WARP (+25 each) has a t interval
    # excluding 0.
    for seed, (ip, ft, wp) in ((13, (17, 14, 12)), (21, (18, 16, 13)), (42, (17, 18, 12))):
        for m, k in (("infoprompt", ip), ("finetune", ft), ("warp", wp)):
            put(tmp_path, "sst2", 64, m, seed, result("sst2", m, k))
    put(tmp_path, "sst2", 64, "idpg", 13, result("sst2", "idpg", 20))  # no paper row: left out
    for seed in (13, 21):  # a paper row with fewer than MIN_SEEDS_ACROSS seeds: left out
        put(tmp_path, "sst2", 64, "gamma0", seed, result("sst2", "gamma0", 20))
    section = "\n".join(prose.ordering_section(data.load(tmp_path)[0]))
    assert row(section, "SST-2 64") == [
        "Finetuning 80.3 > InfoPrompt 67.0 > WARP 58.7",
        "InfoPrompt 86.7 > Finetuning 80.0 > WARP 61.7",
        "2 of 3 / 1 of 3",
        "2 of 3",
        "+0.33",
        "1 of 1",
    ]
    assert "Over 1 cells: 2 of 3 pairs ordered alike, mean Kendall τ-b +0.33" in section
    assert "of the 1 pairs our seeds separate, 1 in the paper's order" in section


def test_ordering_of_methods_without_shared_seeds_separates_no_pair(tmp_path):
    for ip_seed, wp_seed in ((13, 87), (21, 100), (42, 7)):
        put(tmp_path, "sst2", 64, "infoprompt", ip_seed, result("sst2", "infoprompt", 18))
        put(tmp_path, "sst2", 64, "warp", wp_seed, result("sst2", "warp", 10))
    section = "\n".join(prose.ordering_section(data.load(tmp_path)[0]))
    assert row(section, "SST-2 64")[-1] == "0 of 0"


def test_ordering_needs_two_of_the_papers_methods(tmp_path):
    for seed in (13, 21, 42):
        put(tmp_path, "sst2", 64, "infoprompt", seed, result("sst2", "infoprompt", 15))
        put(tmp_path, "sst2", 64, "idpg", seed, result("sst2", "idpg", 15))
    assert prose.ordering_section(data.load(tmp_path)[0]) == []


def test_ordering_leaves_out_a_cell_where_every_method_is_at_chance(tmp_path):
    # majority class: 60 %; every method scores 55-60 % of 20: no interval above the floor
    for seed, (ip, wp) in ((13, (12, 11)), (21, (11, 12)), (42, (12, 12))):
        put(tmp_path, "sst2", 64, "infoprompt", seed, result("sst2", "infoprompt", ip))
        put(tmp_path, "sst2", 64, "warp", seed, result("sst2", "warp", wp))
    assert prose.ordering_section(data.load(tmp_path)[0]) == []


def test_critic_gap_table(tmp_path):
    critic = {"rep": 1.0, "rep_shuffled": 1.5, "head": 2.0, "head_shuffled": 2.0}
    put(tmp_path, "sst2", 64, "infoprompt", 13, result("sst2", "infoprompt", 15, critic=critic))
    section = prose.critic_section(data.load(tmp_path)[0])
    assert row("\n".join(section), METHODS["infoprompt"].row) == ["rep +0.500 (1), head +0.000 (1)"]
    full = {"rep": 0.001, "rep_shuffled": 0.004, "head": 0.5, "head_shuffled": 0.7}
    put(tmp_path, "sst2", 64, "infoprompt", 21, result("sst2", "infoprompt", 15, critic=full))
    section = prose.critic_section(data.load(tmp_path)[0])
    assert row("\n".join(section), METHODS["infoprompt"].row) == [
        "rep +0.500 (1), 1 saturated, head +0.100 (2)"
    ]


# --------------------------------------------------------------------------- bookkeeping, output


def test_missing_runs_grouped_by_cell(tmp_path):
    planned = plan(["sst2"], [64], ["infoprompt", "warp"], [13, 21])
    put(tmp_path, "sst2", 64, "infoprompt", 13, result("sst2", "infoprompt", 15))
    put(tmp_path, "cola", 64, "warp", 13, result("cola", "warp", 15))  # outside the plan
    lines = prose.missing_lines(planned, data.load(tmp_path)[0])
    assert (
        lines[0]
        == "Finished 1 of 4 planned runs (and 1 finished runs outside the plan, reported too)."
    )
    assert lines[-1] == "- SST-2 64: infoprompt seed 21; warp seed 13, 21"


def test_runs_counted_per_part_of_the_grid(tmp_path):
    put(tmp_path, "sst2", 64, "infoprompt", 13, result("sst2", "infoprompt", 15))
    put(tmp_path, "sst2", 256, "warp", 42, result("sst2", "warp", 15))
    doc = tmp_path / "doc.md"
    assert rep.main(["--out", str(tmp_path), "--write", str(doc), "--tasks", "sst2"]) == 0
    text = doc.read_text()
    assert "Finished 2 of 104 planned runs." in text  # 60 + 20 + 24
    assert "- part (a), 64 shots, 12 methods × 5 seeds: 1 of 60 finished" in text
    every = "seed 13, 21, 42, 87, 100"
    assert (
        "- part (b), 256 shots, 4 methods × 5 seeds: 1 of 20 finished; not finished (cost "
        "unknown):\n"
        f"  - SST-2 256: infoprompt {every}; beta0gamma0 {every}; warp seed 13, 21, 87, 100; "
        f"probe-pooled {every}\n"
    ) in text
    assert "- part (c), 256 shots, 8 methods × 3 seeds: 0 of 24 finished" in text
    with pytest.raises(SystemExit):
        rep.main(["--out", str(tmp_path), "--parts", "a,d"])
    # the runner's estimate: two 256-shot runs at 4 × the 64-shot run's 110 s
    part = plan(["sst2"], [256], ["infoprompt"], [13, 21])
    lines = prose.missing_lines(part, data.load(tmp_path)[0], {"x": part}, tmp_path)
    assert lines[2].endswith(
        f"0 of 2 finished; not finished (about {880 / 3600:.1f} h of one "
        "job, the runner's estimate):"
    )


def test_lr_time_and_commands(tmp_path):
    search = {"grid": [1e-4, 1e-3, 1e-2], "val": [0.5, 0.75, None], "chosen": 1e-3}
    d = put(tmp_path, "sst2", 64, "warp", 13, result("sst2", "warp", 14, lr_search=search))
    for lr in ("0.0001", "0.001", "0.01"):
        (d / f"lr-{lr}").mkdir()
        (d / f"lr-{lr}" / "results.json").write_text(json.dumps(result("sst2", "warp", 15)))
    put(tmp_path, "sst2", 64, "warp", 21, result("sst2", "warp", 15))
    (tmp_path / "commands.log").write_text(
        "2026-01-01 00:00:00\tbenchmarks/fewshot.py --jobs 1\n" * 2
    )
    text = rep.summarize(tmp_path, [], ["--out", "x y"])
    assert row(text, "SST-2")[1:] == [
        "0.001 (2)",
        "0.0001: 50.0, 0.001: 75.0, 0.01: –",
        "75.0 / 70.0",  # 14 of 20 right
    ]
    assert "Over the 1 searches the chosen validation score is +5.0 points above" in text
    assert "finished runs: 0.06 h" in text and "not chosen: 0.06 h more" in text  # 220 s, 220 s
    assert text.count("benchmarks/fewshot.py --jobs 1") == 1
    assert "python -m benchmarks.fewshot_report --out 'x y'" in text


def test_write_between_markers_whole_file_and_stdout(tmp_path, capsys):
    doc = tmp_path / "results.md"
    doc.write_text(f"# Results\nprose\n{data.MARK_BEGIN}\nold\n{data.MARK_END}\nverdict\n")
    rep.write_output("new\n", str(doc))
    assert (
        doc.read_text() == f"# Results\nprose\n{data.MARK_BEGIN}\nnew\n{data.MARK_END}\nverdict\n"
    )
    plain = tmp_path / "plain.md"
    plain.write_text("old text\n")
    rep.write_output("new\n", str(plain))
    assert plain.read_text() == "new\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plain.md", "results.md"]  # no temp left
    rep.write_output("to stdout\n", "-")
    assert capsys.readouterr().out == "to stdout\n"


def test_main_writes_the_report(tmp_path):
    out = tmp_path / "runs"
    put(out, "sst2", 64, "infoprompt", 13, result("sst2", "infoprompt", 15))
    doc = tmp_path / "doc.md"
    args = ["--out", str(out), "--write", str(doc), "--tasks", "sst2", "--methods", "infoprompt"]
    assert rep.main([*args, "--seeds", "13,21"]) == 0
    text = doc.read_text()
    assert "Finished 1 of 2 planned runs." in text and "75.0 (1)" in text


def test_empty_grid_reports_what_is_missing(tmp_path):
    text = rep.summarize(tmp_path, plan(["rte"], [64], ["warp"], [13]), [])
    assert "No finished runs yet." in text and "- RTE 64: warp seed 13" in text
