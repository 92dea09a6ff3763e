"""The few-shot report: the paper's Tables 3 and 4 (arXiv 2306.04933) from the grid's runs, with
cell-level statistics, the paper's ordering against ours and the grid's bookkeeping, in markdown.

    python -m benchmarks.fewshot_report --out results/fewshot --write docs/results.md

Input: every finished ``OUT/<task>-<shots>/<method>/seed<k>/results.json`` (the layout of
``benchmarks/fewshot.py``; deeper files are learning-rate search sub-runs and feed only the time
bookkeeping). Unfinished runs are skipped; unreadable files are listed. The tables and statistics
use every finished run found; the grid options only say which runs are expected, so that the
missing ones can be listed: the runner's ``PARTS`` (``--parts``, default all three, each counted
apart; the pre-registered test's runs live apart, ``benchmarks.prereg_report``), or instead a grid of ``--shots --methods --seeds`` (the runner's defaults).

The protocol: every reported-set number comes from ``test.final`` (the model after the last
epoch, the paper's rule), ``test.selected`` (the best-on-validation checkpoint), ``test.labels``
and ``test.predictions``. ``best`` and ``test_curve`` are never read; ``curve`` feeds only the
critic diagnostic (last validation point).

``--write FILE`` replaces the text between ``<!-- fewshot:begin -->`` and ``<!-- fewshot:end -->``
if FILE holds both markers, else writes the whole file; atomically. ``-`` (default): stdout.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import statistics
import sys
import tempfile
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import stats

from benchmarks.fewshot import (
    DATA_DIRS,
    PARTS,
    SEEDS,
    Run,
    estimate,
    eta_hours,
    plan_flags,
    run_seconds,
)
from infoprompt.activity import SATURATED, saturated
from infoprompt.methods import METHODS
from infoprompt.metrics import compute
from infoprompt.report import TASK_NAMES
from infoprompt.stats import holm, mean_t, sign_test, wilcoxon_p
from infoprompt.tasks import TASKS

GRID_PARTS = ("a", "b", "c")  # the grid of Tables 3 and 4 (PARTS also holds "prereg")

MARK_BEGIN, MARK_END = "<!-- fewshot:begin -->", "<!-- fewshot:end -->"
GLUE = ("cola", "rte", "mrpc", "sst2")  # Table 3's column order
TASK_ORDER = (*GLUE, "semeval")
OURS = "infoprompt"
BASELINES = (
    "warp",
    "idpg",
    "beta0gamma0",
    "gamma0",
    "beta0",
    "infoprompt-pneg",
    "probe-pooled",
    "probe-mask",
    "adapter",
    "lora",
    "finetune",
)
ALPHA = 0.05
MIN_SEEDS_ACROSS = 3  # seeds a cell, or a method in the orderings, needs to count

# The paper's rows (names as printed) for our methods; Table 3 and Table 4 have no IDPG row.
PAPER_ROWS = {
    "finetune": "Finetuning",
    "adapter": "Adapter",
    "warp": "WARP",
    "infoprompt": "InfoPrompt",
    "gamma0": "γ = 0",
    "beta0": "β = 0",
    "beta0gamma0": "γ = 0, β = 0",
}
# arXiv 2306.04933 Table 3 (few-shot GLUE, n_p = 4, RoBERTa-large), columns CoLA 64, CoLA 256,
# RTE 64, RTE 256, MRPC 64, MRPC 256, SST-2 64, SST-2 256 (CoLA: MCC; the others: accuracy).
_TABLE3 = {
    "finetune": (0.1746, 0.4086, 0.4801, 0.6787, 0.7107, 0.7819, 0.8027, 0.8853),
    "adapter": (0.0627, 0.2486, 0.5487, 0.5668, 0.5931, 0.625, 0.4908, 0.664),
    "warp": (0.0749, 0.0785, 0.5596, 0.5812, 0.7083, 0.7083, 0.5872, 0.7638),
    "infoprompt": (0.1567, 0.1750, 0.6137, 0.6580, 0.7059, 0.7377, 0.6697, 0.7305),
    "gamma0": (0.1479, 0.1447, 0.5776, 0.6318, 0.6936, 0.7328, 0.664, 0.7294),
    "beta0": (0.1372, 0.1433, 0.5812, 0.5957, 0.6838, 0.7132, 0.5631, 0.656),
    "beta0gamma0": (0.0919, 0.1397, 0.5668, 0.5523, 0.6985, 0.7108, 0.5505, 0.6296),
}
# arXiv 2306.04933 Table 4, its SemEval 64 and SemEval 256 columns (metric not named in the paper).
_TABLE4_SEMEVAL = {
    "finetune": (0.2223, 0.4829),
    "adapter": (0.1211, 0.177),
    "warp": (0.1708, 0.3684),
    "infoprompt": (0.2113, 0.4034),
    "gamma0": (0.2153, 0.3739),
    "beta0": (0.2072, 0.3629),
    "beta0gamma0": (0.2278, 0.3276),
}
PAPER: dict[str, dict[tuple[str, int], float]] = {
    m: dict(zip([(t, n) for t in GLUE for n in (64, 256)], _TABLE3[m]))
    | dict(zip([("semeval", 64), ("semeval", 256)], _TABLE4_SEMEVAL[m]))
    for m in PAPER_ROWS
}

Cell = tuple[str, int]  # (task, shots)


# --------------------------------------------------------------------------- reading runs


def parse_run(path: Path) -> Run | None:
    """The Run of ``.../<task>-<shots>/<method>/seed<k>/results.json``; None if the folders do not
    name a known task, method and integer shots and seed."""
    cell, method, seed = path.parts[-4], path.parts[-3], path.parts[-2]
    task, _, shots = cell.rpartition("-")
    if task not in DATA_DIRS or method not in METHODS or not seed.startswith("seed"):
        return None
    try:
        return Run(task, int(shots), method, int(seed[4:]))
    except ValueError:
        return None


def check(r: object) -> str | None:
    """Why a finished results.json cannot be reported (None if it can): it must hold the main
    metric in ``test.final`` and ``test.selected`` and one prediction per gold label in each."""
    try:
        test, m = r["test"], r["main_metric"]
        n = len(test["labels"])
        float(test["final"][m]), float(test["selected"][m])
        if any(len(test["predictions"][w]) != n for w in ("final", "selected")):
            return "predictions and labels differ in length"
    except (KeyError, TypeError, ValueError) as e:
        return f"incomplete test scores ({type(e).__name__}: {e})"
    return None


def load(out: Path) -> tuple[dict[Run, dict], list[str]]:
    """(finished runs by Run, 'path: reason' for each unreadable file) at exactly the depth
    ``OUT/*/*/seed*/results.json``; unfinished runs are skipped without a note."""
    runs, unreadable = {}, []
    for path in sorted(Path(out).glob("*/*/seed*/results.json")):
        run = parse_run(path)
        if run is None:
            unreadable.append(f"{path}: not a grid run folder (task-shots/method/seed<k>)")
            continue
        try:
            r = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            unreadable.append(f"{path}: {type(e).__name__}")
            continue
        if not isinstance(r, dict) or not r.get("finished"):
            continue
        problem = check(r)
        if problem:
            unreadable.append(f"{path}: {problem}")
        else:
            runs[run] = r
    return runs, unreadable


def cell_key(cell: Cell) -> tuple[int, int]:
    return TASK_ORDER.index(cell[0]), cell[1]


def _rank(method: str) -> int:
    """A method's place in the registry (the tables' row order)."""
    return list(METHODS).index(method)


def scores(runs: dict[Run, dict], which: str) -> dict[tuple[str, int, str], dict[int, float]]:
    """{(task, shots, method): {seed: test[which][main metric]}}, ``which`` = final | selected."""
    out: dict[tuple[str, int, str], dict[int, float]] = defaultdict(dict)
    for run, r in runs.items():
        out[(run.task, run.shots, run.method)][run.seed] = r["test"][which][r["main_metric"]]
    return out


# --------------------------------------------------------------------------- tables


def pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.1f}"


def fmt_cell(values: list[float]) -> str:
    """'mean ± std (n)' in percent, std with ddof 1 (sample std over seeds); one seed: 'x (1)'."""
    if not values:
        return "–"
    if len(values) == 1:
        return f"{pct(values[0])} (1)"
    return f"{pct(statistics.fmean(values))} ± {pct(statistics.stdev(values))} ({len(values)})"


def majority_score(task: str, metric: str, labels: list[int]) -> float:
    """``metric`` of always predicting the most frequent gold class (smallest id on ties): its
    accuracy, MCC 0, or for SemEval's official macro-F1 0 when that class is "Other"."""
    c = int(np.bincount(labels).argmax())
    return compute(metric, labels, [c] * len(labels), TASKS[task].labels)


def majority(runs: dict[Run, dict], cell: Cell) -> float | None:
    """The majority-class floor of a cell: mean over its runs of ``majority_score`` on each run's
    ``test.labels`` (one value when every run scored the same reported set)."""
    vals = [
        majority_score(run.task, r["main_metric"], r["test"]["labels"])
        for run, r in runs.items()
        if (run.task, run.shots) == cell
    ]
    return statistics.fmean(vals) if vals else None


def columns(runs: dict[Run, dict], tasks: tuple[str, ...]) -> list[Cell]:
    return sorted({(r.task, r.shots) for r in runs if r.task in tasks}, key=cell_key)


def _average(means: dict[Cell, float], cols: list[Cell]) -> str:
    """Mean of the cells present (of ``cols``), with 'k of K cells' when some are absent."""
    vals = [means[c] for c in cols if c in means]
    if not vals:
        return "–"
    text = pct(statistics.fmean(vals))
    return text if len(vals) == len(cols) else f"{text} ({len(vals)} of {len(cols)} cells)"


def _md(header: list[str], rows: list[list[str]]) -> list[str]:
    return [
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
        *("| " + " | ".join(row) + " |" for row in rows),
    ]


def score_table(runs: dict[Run, dict], tasks: tuple[str, ...], which: str, average: bool):
    """Markdown lines of one table in the paper's layout: a row per method present (registry
    order), its cells ``fmt_cell`` of ``test[which]``; under it the paper's row if it has one;
    last the majority-class floor. ``average``: the mean of each row's cell means over the cells
    present in that row; the paper's row averages the same cells as ours above it."""
    cols = columns(runs, tasks)
    if not cols:
        return []
    s = scores(runs, which)
    header = ["method", *(f"{TASK_NAMES[t]} {n}" for t, n in cols)] + ["average"] * average
    rows = []
    for m in METHODS:
        cells = {c: list(s[(*c, m)].values()) for c in cols if (*c, m) in s}
        if not cells:
            continue
        means = {c: statistics.fmean(v) for c, v in cells.items()}
        rows.append([METHODS[m].row, *(fmt_cell(cells.get(c, [])) for c in cols)])
        rows[-1] += [_average(means, cols)] * average
        if m in PAPER:
            paper = {c: PAPER[m][c] for c in cols if c in PAPER[m]}
            rows.append(
                [f"*paper (RoBERTa-large): {PAPER_ROWS[m]}*", *(pct(paper.get(c)) for c in cols)]
            )
            rows[-1] += [_average({c: v for c, v in paper.items() if c in means}, cols)] * average
    floor = {c: v for c in cols if (v := majority(runs, c)) is not None}
    rows.append(
        ["majority class", *(pct(floor.get(c)) for c in cols)] + [_average(floor, cols)] * average
    )
    return _md(header, rows)


def tables_section(runs: dict[Run, dict]) -> list[str]:
    """The main (``test.final``) and second (``test.selected``) tables, GLUE and SemEval."""
    if not runs:
        return ["No finished runs yet.", ""]
    lines = []
    for which, what in (
        ("final", "the model after the last epoch (`test.final`, the paper's rule)"),
        ("selected", "the best-on-validation checkpoint (`test.selected`)"),
    ):
        lines += [f"### Reported set, {what}", ""]
        lines += [
            "Mean ± std (ddof 1) over seeds in %, seeds in parentheses; CoLA MCC, SemEval the "
            "official macro-F1, the others accuracy. *paper* rows: arXiv 2306.04933 Tables 3 and "
            "4 as printed (RoBERTa-large, 30 epochs, 5 seeds; rows labelled as printed, though "
            "the paper's text swaps β and γ; it does not name its SemEval metric). Average: over "
            "the cells present in the row.",
            "",
        ]
        for tasks, title, average in (
            (GLUE, "GLUE (Table 3)", True),
            (("semeval",), "SemEval-2010 Task 8 (Table 4's SemEval columns)", False),
        ):
            table = score_table(runs, tasks, which, average)
            lines += [f"#### {title}", "", *table, ""] if table else []
    return lines


# --------------------------------------------------------------------------- statistics


def t_interval(d: list[float], level: float = 0.95) -> tuple[float, float, float]:
    """(mean, lo, hi) of the Student t interval over seeds (``infoprompt.stats.mean_t``)."""
    t = mean_t(d, 1 - level)
    return t.mean, t.low, t.high


def interval_sign(d: list[float]) -> int:
    """+1 / -1 where the 95 % t interval of the paired differences ``d`` lies above / below 0,
    else 0 (also for fewer than two differences, whose interval is undefined)."""
    if len(d) < 2:
        return 0
    _, lo, hi = t_interval(d)
    return 1 if lo > 0 else -1 if hi < 0 else 0


@dataclass
class CellComparison:
    """InfoPrompt minus a baseline in one (task, shots) cell, over the shared seeds."""

    cell: Cell
    diffs: list[float]  # per seed, test.final main metric, fractions

    @property
    def mean(self) -> float:
        return statistics.fmean(self.diffs)

    @property
    def p(self) -> float:
        """Two-sided paired t p over the seeds (nan below two seeds)."""
        return mean_t(self.diffs).p


def compare(runs: dict[Run, dict], base: str) -> list[CellComparison]:
    """One ``CellComparison`` per cell where ``OURS`` and ``base`` share a seed: the paired
    ``test.final`` differences."""
    out = []
    for cell in sorted({(r.task, r.shots) for r in runs}, key=cell_key):
        pairs = [
            (runs[Run(*cell, OURS, s)], runs[Run(*cell, base, s)])
            for s in sorted({r.seed for r in runs if (r.task, r.shots) == cell})
            if Run(*cell, OURS, s) in runs and Run(*cell, base, s) in runs
        ]
        if pairs:
            m = pairs[0][0]["main_metric"]
            diffs = [a["test"]["final"][m] - b["test"]["final"][m] for a, b in pairs]
            out.append(CellComparison(cell, diffs))
    return out


def _p(p: float | None) -> str:
    return "n too small" if p is None else f"{p:.3g}"


def _points(x: float) -> str:
    return "–" if math.isnan(x) else f"{100 * x:+.1f}"


def across(comps: list[CellComparison]) -> dict:
    """Across cells: the cell mean differences' count, wins/losses, mean, two-sided sign test and
    Wilcoxon signed-rank p."""
    d = [c.mean for c in comps]
    wins, losses = sum(x > 0 for x in d), sum(x < 0 for x in d)
    return {
        "cells": len(d),
        "wins": wins,
        "losses": losses,
        "mean": statistics.fmean(d),
        "sign": sign_test(wins, losses),
        "wilcoxon": wilcoxon_p(d),
    }


def _holm_map(ps: dict[str, float | None]) -> dict[str, float]:
    """Holm over the defined p-values of a family of baselines, keyed back by baseline."""
    keys = [k for k, p in ps.items() if p is not None]
    return dict(zip(keys, holm([ps[k] for k in keys])))


def holm_family(comps: dict[str, list[CellComparison]]) -> dict[tuple[str, Cell], float]:
    """Holm over the family the verdict counts: every (baseline, cell) comparison with a defined
    seed-level p (at least two shared seeds), keyed by (baseline, cell)."""
    keys = [(b, x.cell) for b, cs in comps.items() for x in cs if not math.isnan(x.p)]
    ps = {(b, x.cell): x.p for b, cs in comps.items() for x in cs}
    return dict(zip(keys, holm([ps[k] for k in keys])))


def stats_section(runs: dict[Run, dict]) -> list[str]:
    """Per-cell paired differences over seeds with Holm over every comparison, across-cell sign
    and Wilcoxon tests (GLUE pooled, SemEval alone), and one sentence per baseline."""
    bases = [b for b in BASELINES if any(r.method == b for r in runs)]
    comps = {b: c for b in bases if (c := compare(runs, b))}
    if not comps:
        return ["### Statistics", "", "No InfoPrompt run shares a seed with a baseline yet.", ""]
    families = {"GLUE": GLUE, "SemEval": ("semeval",)}
    acr = {
        (b, f): across(cs)
        for b, c in comps.items()
        for f, tasks in families.items()
        if (cs := [x for x in c if x.cell[0] in tasks and len(x.diffs) >= MIN_SEEDS_ACROSS])
    }
    holm_w = {
        f: _holm_map({b: a["wilcoxon"] for (b, g), a in acr.items() if g == f}) for f in families
    }
    holm_c = holm_family(comps)
    return [
        "### Statistics: InfoPrompt against each baseline",
        "",
        "Unit of replication: the seed. Differences are InfoPrompt minus the baseline in points of "
        "the main metric on `test.final`, paired by seed (same seed = same training and "
        "validation draws). 95 % interval: Student t over the cell's seeds; p: the two-sided "
        f"paired t test over seeds. **Family of the verdict**: all {len(holm_c)} (baseline, cell) "
        "comparisons below with at least two shared seeds, Holm-corrected together (Holm p). "
        "No per-example test is used: one pooled over seeds counts each test sentence once per "
        "seed and ignores training variance.",
        "",
        "At a glance: mean Δ per cell, seeds in parentheses; **bold** where the difference "
        "survives Holm over the whole family at 0.05, † where only the raw 95 % interval "
        "excludes 0 (expected by chance in about 5 % of the comparisons).",
        "",
        *_glance_table(comps, holm_c),
        "",
        *_cell_table(comps, holm_c),
        "",
        "Across cells (a second family, named apart: cell mean differences, GLUE cells pooled, "
        f"SemEval alone; only cells with at least {MIN_SEEDS_ACROSS} paired seeds): two-sided "
        "sign test and Wilcoxon signed-rank test, Holm over the baselines within each of the "
        "two families on the Wilcoxon p.",
        "",
        *_across_table(acr, holm_w),
        "",
        *_floor_lines(acr, holm_w),
        "",
        *(f"- {verdict(b, comps[b], acr, holm_w, holm_c)}" for b in comps),
        "",
    ]


def _glance_entry(x: CellComparison | None, p_holm: float | None) -> str:
    if x is None:
        return "–"
    mean = _points(x.mean)
    if p_holm is not None and p_holm < ALPHA:
        return f"**{mean}** ({len(x.diffs)})"
    return f"{mean}{'†' if interval_sign(x.diffs) else ''} ({len(x.diffs)})"


def _glance_table(comps: dict[str, list[CellComparison]], holm_c: dict) -> list[str]:
    """Baselines × cells: the mean Δ over seeds, bold where it survives Holm over the family."""
    cells = sorted({x.cell for cs in comps.values() for x in cs}, key=cell_key)
    rows = []
    for b, cs in comps.items():
        by_cell = {x.cell: x for x in cs}
        rows.append(
            [METHODS[b].row, *(_glance_entry(by_cell.get(c), holm_c.get((b, c))) for c in cells)]
        )
    return _md(["baseline", *(f"{TASK_NAMES[t]} {s}" for t, s in cells)], rows)


def _cell_table(comps: dict[str, list[CellComparison]], holm_c: dict) -> list[str]:
    rows = []
    for b, cs in comps.items():
        for x in cs:
            _, lo, hi = t_interval(x.diffs)
            rows.append(
                [
                    METHODS[b].row,
                    f"{TASK_NAMES[x.cell[0]]} {x.cell[1]}",
                    str(len(x.diffs)),
                    _points(x.mean),
                    f"[{_points(lo)}, {_points(hi)}]",
                    _p(_nan_none(x.p)),
                    _p(holm_c.get((b, x.cell))),
                ]
            )
    header = ["baseline", "cell", "n", "mean Δ", "95 % t interval", "t p", "Holm p"]
    return _md(header, rows)


def _nan_none(p: float) -> float | None:
    return None if math.isnan(p) else p


def _across_table(acr: dict, holm_w: dict) -> list[str]:
    header = ["baseline", "family", "cells", "higher / lower", "mean Δ", "sign p", "Wilcoxon p"]
    rows = [
        [
            METHODS[b].row,
            f,
            str(a["cells"]),
            f"{a['wins']} / {a['losses']}",
            _points(a["mean"]),
            _p(a["sign"]),
            _p(a["wilcoxon"]),
            _p(holm_w[f].get(b)),
        ]
        for (b, f), a in acr.items()
    ]
    return _md([*header, "Holm p"], rows)


def _floor_lines(acr: dict, holm_w: dict) -> list[str]:
    """Per family, the smallest p the across-cell tests can give: with n cells, all of one sign,
    the two-sided sign and exact Wilcoxon p are ``sign_test(n, 0)`` = 2 / 2ⁿ, and Holm over m
    baselines multiplies the smallest by m."""
    lines = []
    for f, h in holm_w.items():
        if not h:
            continue
        n = max(a["cells"] for (b, g), a in acr.items() if g == f)
        floor = sign_test(n, 0)
        lines.append(
            f"- {f}, {n} cells: the smallest two-sided p is {floor:.3g}, {min(1, len(h) * floor):.3g} "
            f"after Holm over {len(h)} baselines"
            + (
                f": no across-cell difference can survive at {ALPHA}."
                if len(h) * floor >= ALPHA
                else "."
            )
        )
    return lines


def _survives(p: float | None, mean: float) -> str:
    if p is None:
        return "n too small"
    if p >= ALPHA:
        return "does not survive"
    return f"survives (InfoPrompt {'higher' if mean > 0 else 'lower'})"


def verdict(base: str, comps: list[CellComparison], acr: dict, holm_w: dict, holm_c: dict) -> str:
    """One sentence: the cells where the seed-level difference survives Holm over the whole
    family (with directions), the raw intervals that exclude 0, and per family the across-cell
    Wilcoxon after Holm."""
    sig = [x for x in comps if holm_c.get((base, x.cell), 1.0) < ALPHA]
    higher = sum(x.mean > 0 for x in sig)
    raw = sum(abs(interval_sign(x.diffs)) for x in comps)
    parts = [
        f"the difference survives Holm over the family in {len(sig)} of {len(comps)} cells "
        f"(InfoPrompt higher in {higher}, lower in {len(sig) - higher}); the raw 95 % interval "
        f"excludes 0 in {raw}"
    ]
    for f in ("GLUE", "SemEval"):
        if (base, f) not in acr:
            continue
        a, p = acr[(base, f)], holm_w[f].get(base)
        result = _survives(p, a["mean"])
        parts.append(
            f"{f}: mean cell difference {_points(a['mean'])} points over {a['cells']} cells "
            f"(higher in {a['wins']}, lower in {a['losses']}); Wilcoxon Holm p = {_p(p)}: {result}"
        )
    return f"**{METHODS[base].row}**: " + "; ".join(parts) + "."


# --------------------------------------------------------------------------- the paper's ordering

SHORT = PAPER_ROWS | {"beta0gamma0": "β = γ = 0"}  # names for the orderings (no inner commas)


@dataclass
class Ordering:
    """The paper's methods present in one cell: their order in the paper and in our
    ``test.final`` means, and which pairs our seeds separate."""

    cell: Cell
    paper: dict[str, float]  # method -> the paper's value
    ours: dict[str, float]  # method -> our mean over seeds
    separated: list[tuple[str, str]]  # (higher, lower): paired 95 % t interval excludes 0

    def pairs(self) -> list[tuple[str, str]]:
        return _pairs(list(self.ours))

    def agrees(self, a: str, b: str) -> bool:
        """The paper and we order a and b the same way (a paper tie agrees with nothing)."""
        return (self.paper[a] - self.paper[b]) * (self.ours[a] - self.ours[b]) > 0

    @property
    def tau(self) -> float:
        """Kendall's τ-b between the paper's values and our means (nan when either is constant)."""
        ms = list(self.ours)
        return float(stats.kendalltau([self.paper[m] for m in ms], [self.ours[m] for m in ms])[0])


def _pairs(ms: list[str]) -> list[tuple[str, str]]:
    return [(a, b) for i, a in enumerate(ms) for b in ms[i + 1 :]]


def _separated(s: dict[int, float], t: dict[int, float]) -> int:
    """``interval_sign`` of s − t over the shared seeds."""
    return interval_sign([s[k] - t[k] for k in s if k in t])


def learns(runs: dict[Run, dict], cell: Cell, method_scores: list[dict[int, float]]) -> bool:
    """Whether some method is above the cell's floor: the 95 % t interval over seeds of its
    ``test.final`` lies above the majority class's score. Where none is, every method is at
    chance and their order is noise."""
    floor = majority(runs, cell)
    if floor is None:
        return False
    return any(t_interval(list(v.values()))[1] > floor for v in method_scores if len(v) >= 2)


def orderings(runs: dict[Run, dict]) -> list[Ordering]:
    """One ``Ordering`` per cell holding at least two of the paper's methods, each with at least
    MIN_SEEDS_ACROSS seeds (a method still filling its cell is left out, not ranked on one seed),
    where some method is above the floor (``learns``)."""
    s = scores(runs, "final")
    out = []
    for cell in columns(runs, TASK_ORDER):
        ms = [
            m
            for m in METHODS
            if m in PAPER and cell in PAPER[m] and len(s.get((*cell, m), {})) >= MIN_SEEDS_ACROSS
        ]
        if len(ms) < 2 or not learns(runs, cell, [s[(*cell, m)] for m in ms]):
            continue
        signs = {(a, b): _separated(s[(*cell, a)], s[(*cell, b)]) for a, b in _pairs(ms)}
        out.append(
            Ordering(
                cell,
                {m: PAPER[m][cell] for m in ms},
                {m: statistics.fmean(s[(*cell, m)].values()) for m in ms},
                [(a, b) if sign > 0 else (b, a) for (a, b), sign in signs.items() if sign],
            )
        )
    return out


def _order(values: dict[str, float]) -> str:
    ranked = sorted(values, key=lambda m: -values[m])
    return " > ".join(f"{SHORT[m]} {pct(values[m])}" for m in ranked)


def _place(values: dict[str, float]) -> str:
    if OURS not in values:
        return "–"
    return f"{1 + sum(v > values[OURS] for v in values.values())} of {len(values)}"


def ordering_section(runs: dict[Run, dict]) -> list[str]:
    """Per cell the paper's order of its methods against ours (``test.final`` means), InfoPrompt's
    place in each, the pairs ordered alike, Kendall's τ-b, and how the pairs our seeds separate
    are ordered in the paper; last, the same counts over all cells."""
    cells = orderings(runs)
    if not cells:
        return []
    rows, tot = [], Counter()
    for o in cells:
        pairs = o.pairs()
        agree = sum(o.agrees(a, b) for a, b in pairs)
        sep_agree = sum(o.paper[a] > o.paper[b] for a, b in o.separated)
        tot.update(pairs=len(pairs), agree=agree, sep=len(o.separated), sep_agree=sep_agree)
        rows.append(
            [
                f"{TASK_NAMES[o.cell[0]]} {o.cell[1]}",
                _order(o.paper),
                _order(o.ours),
                f"{_place(o.paper)} / {_place(o.ours)}",
                f"{agree} of {len(pairs)}",
                "–" if math.isnan(o.tau) else f"{o.tau:+.2f}",
                f"{sep_agree} of {len(o.separated)}",
            ]
        )
    taus = [o.tau for o in cells if not math.isnan(o.tau)]
    header = [
        "cell",
        "paper (RoBERTa-large)",
        "ours (test.final means)",
        "InfoPrompt's place",
        "pairs ordered alike",
        "Kendall τ-b",
        "separated pairs in the paper's order",
    ]
    return [
        "### The paper's ordering against ours",
        "",
        "The methods that have a row in the paper's Tables 3 and 4 and at least "
        f"{MIN_SEEDS_ACROSS} seeds in the cell, in the cells where some method is above the "
        "floor (its 95 % t interval over seeds above the majority class's score; elsewhere "
        "every method is at chance and an order is noise), ranked in each cell by the "
        "paper's number and by our mean `test.final` (the main table). Separated pairs: those "
        "whose paired difference over the cell's shared seeds has a 95 % t interval excluding 0 "
        "(descriptive: no correction over pairs); the last column counts how many of them the "
        "paper orders the same way.",
        "",
        *_md(header, rows),
        "",
        f"Over {len(cells)} cells: {tot['agree']} of {tot['pairs']} pairs ordered alike, "
        f"mean Kendall τ-b {statistics.fmean(taus) if taus else math.nan:+.2f}; of the "
        f"{tot['sep']} pairs our seeds separate, {tot['sep_agree']} in the paper's order.",
        "",
    ]


# --------------------------------------------------------------------------- diagnostics, bookkeeping


def critic_section(runs: dict[Run, dict]) -> list[str]:
    """Per method and task, the mean over runs of the last validation point's
    ``critic.<k>_shuffled - critic.<k>`` for k = rep, head (descriptive; from ``curve``)."""
    gaps: dict[tuple[str, str], dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    full: dict[tuple[str, str], Counter] = defaultdict(Counter)  # saturated runs per term
    for run, r in runs.items():
        critic = r.get("curve")[-1].get("critic", {}) if r.get("curve") else {}
        for k in ("rep", "head"):
            if k in critic and f"{k}_shuffled" in critic:
                true, shuffled = critic[k], critic[f"{k}_shuffled"]
                if saturated(true, shuffled):
                    full[(run.method, run.task)][k] += 1
                    gaps[(run.method, run.task)].setdefault(k, [])
                else:
                    gaps[(run.method, run.task)][k].append(shuffled - true)
    if not gaps:
        return []
    tasks = [t for t in TASK_ORDER if any(t == task for _, task in gaps)]
    rows = []
    for m in [m for m in METHODS if any(m == g for g, _ in gaps)]:
        cells = []
        for t in tasks:
            g = gaps.get((m, t), {})
            cells.append(", ".join(_gap(k, v, full[(m, t)][k]) for k, v in g.items()) or "–")
        rows.append([METHODS[m].row, *cells])
    return [
        "### Does the critic read P's content?",
        "",
        "Mean over runs (all shots) of NCE with each example's P replaced by another's minus NCE "
        "with the true P, at the last validation: positive = the critic scores the true P better; "
        "about 0 = it ignores which P it sees. Runs in parentheses. A run whose true and shuffled "
        f"NCE are both below {SATURATED} nats is *saturated* (the contrast is won with any P: "
        "'ignores P' and 'negatives too easy' cannot be told apart) and counted apart, not "
        "averaged.",
        "",
        *_md(["method", *(TASK_NAMES[t] for t in tasks)], rows),
        "",
    ]


def _gap(term: str, gaps: list[float], n_saturated: int) -> str:
    """One term's critic gap: its mean over the runs that are not saturated, and the count of
    saturated runs."""
    text = f"{term} {statistics.fmean(gaps):+.3f} ({len(gaps)})" if gaps else f"{term} –"
    return text + (f", {n_saturated} saturated" if n_saturated else "")


def _not_finished(planned: list[Run], runs: dict[Run, dict], indent: str = "") -> list[str]:
    """One line per (task, shots) cell of ``planned`` with runs not finished: each method's
    missing seeds."""
    missing: dict[tuple[str, int], dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    for r in planned:
        if r not in runs:
            missing[(r.task, r.shots)][r.method].append(r.seed)
    lines = []
    for (t, n), by_method in missing.items():
        per_method = [
            f"{m} seed {', '.join(map(str, by_method[m]))}" for m in sorted(by_method, key=_rank)
        ]
        lines.append(f"{indent}- {TASK_NAMES[t]} {n}: {'; '.join(per_method)}")
    return lines


def _cost(todo: list[Run], out: Path | None, part: list[Run]) -> str:
    seconds = None if out is None else estimate(todo, out, part)
    return "cost unknown" if seconds is None else f"{eta_hours(seconds, 1)}, the runner's estimate"


def missing_lines(
    planned: list[Run],
    runs: dict[Run, dict],
    parts: dict[str, list[Run]] | None = None,
    out: Path | None = None,
) -> list[str]:
    """'finished / planned', then the runs not finished (``_not_finished``), under each part of
    the grid when ``parts`` is given, with the runner's estimate of their cost (from the
    finished runs under ``out``)."""
    expected = set(planned)
    extra = sum(r not in expected for r in runs)
    note = f" (and {extra} finished runs outside the plan, reported too)" if extra else ""
    lines = [f"Finished {sum(r in runs for r in planned)} of {len(planned)} planned runs{note}."]
    if not parts:
        todo = _not_finished(planned, runs)
        return [*lines, *(["", "Not finished:", "", *todo] if todo else [])]
    lines.append("")
    for name, rs in parts.items():
        shots = ", ".join(sorted({str(r.shots) for r in rs}, key=int))
        methods, seeds = len({r.method for r in rs}), len({r.seed for r in rs})
        left = [r for r in rs if r not in runs]
        lines.append(
            f"- part ({name}), {shots} shots, {methods} methods × {seeds} seeds: "
            f"{len(rs) - len(left)} of {len(rs)} finished"
            + (f"; not finished ({_cost(left, out, rs)}):" if left else "")
        )
        lines += _not_finished(rs, runs, indent="  ")
    return lines


def _lr(r: dict) -> float:
    return r.get("lr") or r["config"].get("lr")


def _optimism(r: dict) -> tuple[float, float] | None:
    """The search run's validation score at its chosen rate (the best over epochs and rates) and
    the reported ``test.selected`` of the same checkpoint, or None without a search."""
    search = r.get("lr_search")
    if not search or search.get("chosen") not in search["grid"]:
        return None
    val = search["val"][search["grid"].index(search["chosen"])]
    return None if val is None else (val, r["test"]["selected"][r["main_metric"]])


def lr_section(runs: dict[Run, dict]) -> list[str]:
    """Per (task, method): the rates the runs used, the validation search that chose them, and
    how far the chosen validation score is above the reported score of the same checkpoint."""
    groups: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for run, r in runs.items():
        groups[(run.task, run.method)].append(r)
    rows, gaps = [], []
    for (t, m), rs in sorted(
        groups.items(), key=lambda kv: (cell_key((kv[0][0], 0)), _rank(kv[0][1]))
    ):
        used = ", ".join(f"{lr:g} ({k})" for lr, k in sorted(Counter(_lr(r) for r in rs).items()))
        searched = next((r for r in rs if r.get("lr_search")), None)
        search = searched["lr_search"] if searched else None
        val = (
            "–"
            if search is None
            else ", ".join(f"{lr:g}: {pct(v)}" for lr, v in zip(search["grid"], search["val"]))
        )
        o = searched and _optimism(searched)
        if o:
            gaps.append(o[0] - o[1])
        rows.append(
            [
                TASK_NAMES[t],
                METHODS[m].row,
                used,
                val,
                "–" if not o else f"{pct(o[0])} / {pct(o[1])}",
            ]
        )
    header = [
        "task",
        "method",
        "lr used (runs)",
        "search: lr: validation score",
        "chosen: validation / test.selected",
    ]
    lines = [
        "Learning rates: chosen once per task and method by the validation search (main metric "
        "on the validation split, in %); runs per rate in parentheses. The last column is the "
        "searched run (seed 13) at its chosen rate: its validation score, the best over epochs "
        "and rates, and the reported `test.selected` of the same checkpoint.",
        "",
        *_md(header, rows),
    ]
    if gaps:
        lines += [
            "",
            f"Over the {len(gaps)} searches the chosen validation score is "
            f"{_points(statistics.fmean(gaps))} points above test.selected on average "
            f"(above in {sum(g > 0 for g in gaps)}): the best over epochs and rates of a score "
            "on a small validation split is optimistic, and validation is drawn balanced "
            "(stratified for SemEval) while the reported set keeps its own class mix.",
        ]
    return lines


def search_extra_seconds(out: Path, runs: dict[Run, dict]) -> float:
    """Seconds of the learning-rate grid points not chosen: the finished ``lr-*/results.json``
    under each search run, less the chosen one (whose time the run's own results.json holds)."""
    total = 0.0
    for run, r in runs.items():
        if not r.get("lr_search"):
            continue
        searched = 0.0
        for path in run.run_dir(out).glob("lr-*/results.json"):
            try:
                sub = json.loads(path.read_text())
            except (OSError, UnicodeDecodeError, json.JSONDecodeError):
                continue
            searched += run_seconds(sub) if sub.get("finished") else 0.0
        total += max(searched - run_seconds(r), 0.0)
    return total


def time_section(out: Path, runs: dict[Run, dict]) -> list[str]:
    """Mean train + eval and setup seconds per (task, shots, method), and the totals."""
    groups: dict[tuple[str, int, str], list[dict]] = defaultdict(list)
    for run, r in runs.items():
        groups[(run.task, run.shots, run.method)].append(r)
    rows = [
        [
            TASK_NAMES[t],
            str(n),
            METHODS[m].row,
            str(len(rs)),
            f"{statistics.fmean(r.get('wall_time_s', 0.0) for r in rs):.0f}",
            f"{statistics.fmean(r.get('setup_s', 0.0) for r in rs):.0f}",
        ]
        for (t, n, m), rs in sorted(
            groups.items(), key=lambda kv: (cell_key(kv[0][:2]), _rank(kv[0][2]))
        )
    ]
    total = sum(map(run_seconds, runs.values()))
    extra = search_extra_seconds(out, runs)
    return [
        f"Wall time of the finished runs: {total / 3600:.2f} h (train + evaluations + setup, as "
        f"each results.json records it); the learning-rate searches' grid points not chosen: "
        f"{extra / 3600:.2f} h more.",
        "",
        *_md(["task", "shots", "method", "runs", "train + eval s", "setup s"], rows),
    ]


def _shown(field: str, value) -> str:
    """A config value as the summary prints it: a model folder by its last two parts (no
    machine path), None for a field the method does not read."""
    if field == "model" and isinstance(value, str) and value.count("/") >= 2:
        return "/".join(Path(value).parts[-2:])
    return str(value)


def setting_lines(runs: dict[Run, dict]) -> list[str]:
    """The configuration values of the runs (each distinct value) and their versions lines."""
    fields = ("model", "epochs", "n_prompts", "batch_size", "n_negatives", "val_shots")
    values = {f: sorted({_shown(f, r["config"].get(f)) for r in runs.values()}) for f in fields}
    values = {f: [x for x in v if x != "None"] or ["None"] for f, v in values.items()}
    keys = ("python", "torch", "transformers", "peft", "accelerate", "machine", "gpu", "cpus")
    versions = Counter(tuple(r.get("versions", {}).get(k) for k in keys) for r in runs.values())
    return [
        "Setting: " + "; ".join(f"{f} {', '.join(v)}" for f, v in values.items()) + ".",
        "",
        *(
            "Versions: " + ", ".join(f"{k} {x}" for k, x in zip(keys, v)) + f" ({n} runs)."
            for v, n in versions.most_common()
        ),
    ]


def commands_lines(out: Path, argv: list[str]) -> list[str]:
    """The runner's commands (``OUT/commands.log``, each once, in order) and this report's."""
    try:
        logged = [
            line.split("\t", 1)[-1]
            for line in (Path(out) / "commands.log").read_text().splitlines()
        ]
    except OSError:
        logged = []
    report = shlex.join(["python", "-m", "benchmarks.fewshot_report", *argv])
    return ["Commands:", "", "```", *dict.fromkeys(logged), report, "```"]


def summarize(
    out: Path, planned: list[Run], argv: list[str], parts: dict[str, list[Run]] | None = None
) -> str:
    """The whole markdown report (module docstring); ``parts``: the planned runs by part of
    the grid, counted apart."""
    runs, unreadable = load(out)
    lines = [*tables_section(runs), *stats_section(runs), *ordering_section(runs)]
    lines += critic_section(runs)
    lines += ["### Runs", "", *missing_lines(planned, runs, parts, out), ""]
    if unreadable:
        lines += ["Unreadable results (skipped):", "", *(f"- {u}" for u in unreadable), ""]
    if runs:
        lines += [*lr_section(runs), "", *time_section(out, runs), "", *setting_lines(runs), ""]
    lines += commands_lines(out, argv)
    return "\n".join(lines) + "\n"


def write_output(text: str, dest: str | None, marks=(MARK_BEGIN, MARK_END)) -> None:
    """``text`` to stdout (``dest`` None or '-'), else into ``dest`` between the two ``marks``
    when it holds both (begin first), else as the whole file; temp file + os.replace."""
    if dest in (None, "-"):
        sys.stdout.write(text)
        return
    path = Path(dest)
    old = path.read_text() if path.exists() else ""
    begin, end = marks
    i, j = old.find(begin), old.find(end)
    if 0 <= i < j:
        body = text.rstrip("\n")
        text = f"{old[: i + len(begin)]}\n{body}\n{old[j:]}"
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(tmp, path.stat().st_mode if path.exists() else 0o644)
    os.replace(tmp, path)


def _list(text: str, cast=str) -> list:
    return [cast(x) for x in text.split(",") if x.strip()]


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default="results/fewshot", help="the runner's --out")
    p.add_argument("--write", default="-", help="markdown file (between the markers) or - ")
    p.add_argument("--tasks", default="sst2,rte,mrpc,cola,semeval")
    p.add_argument("--parts", default=",".join(GRID_PARTS), help="the runner's parts planned")
    p.add_argument("--shots", help="instead of --parts: a grid of these shots, methods, seeds")
    p.add_argument("--methods", help="default: all")
    p.add_argument("--seeds", help=f"default {','.join(map(str, SEEDS))}")
    a = p.parse_args(argv)
    parts = None
    if a.shots or a.methods or a.seeds:
        planned = plan_flags(a.tasks, a.shots, a.methods, a.seeds)
    else:
        unknown = [k for k in _list(a.parts) if k not in PARTS]
        if unknown:
            p.error(f"unknown part(s) {', '.join(unknown)} (valid: {', '.join(PARTS)})")
        parts = {k: PARTS[k].plan(_list(a.tasks)) for k in _list(a.parts)}
        planned = [r for rs in parts.values() for r in rs]
    write_output(summarize(Path(a.out), planned, argv, parts), a.write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
