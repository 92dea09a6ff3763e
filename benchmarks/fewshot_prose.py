"""The few-shot report's sentences: verdicts, orderings, critics, what is still missing."""

from __future__ import annotations

import math
import statistics
from collections import Counter, defaultdict
from pathlib import Path

from benchmarks.fewshot import (
    Run,
    estimate,
    eta_hours,
)
from benchmarks.fewshot_compare import (
    SHORT,
    CellComparison,
    across,
    compare,
    holm_family,
    holm_map,
    interval_sign,
    orderings,
)
from benchmarks.fewshot_data import (
    ALPHA,
    BASELINES,
    GLUE,
    MIN_SEEDS_ACROSS,
    OURS,
    TASK_ORDER,
    method_rank,
)
from benchmarks.fewshot_tables import (
    across_table,
    cell_table,
    fmt_p,
    fmt_points,
    glance_table,
    md_table,
    pct,
)
from infoprompt.activity import SATURATED, saturated
from infoprompt.methods import METHODS
from infoprompt.report import TASK_NAMES
from infoprompt.stats import sign_test


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
        f: holm_map({b: a["wilcoxon"] for (b, g), a in acr.items() if g == f}) for f in families
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
        *glance_table(comps, holm_c),
        "",
        *cell_table(comps, holm_c),
        "",
        "Across cells (a second family, named apart: cell mean differences, GLUE cells pooled, "
        f"SemEval alone; only cells with at least {MIN_SEEDS_ACROSS} paired seeds): two-sided "
        "sign test and Wilcoxon signed-rank test, Holm over the baselines within each of the "
        "two families on the Wilcoxon p.",
        "",
        *across_table(acr, holm_w),
        "",
        *floor_lines(acr, holm_w),
        "",
        *(f"- {verdict(b, comps[b], acr, holm_w, holm_c)}" for b in comps),
        "",
    ]


def floor_lines(acr: dict, holm_w: dict) -> list[str]:
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
            f"{f}: mean cell difference {fmt_points(a['mean'])} points over {a['cells']} cells "
            f"(higher in {a['wins']}, lower in {a['losses']}); Wilcoxon Holm p = {fmt_p(p)}: {result}"
        )
    return f"**{METHODS[base].row}**: " + "; ".join(parts) + "."


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
        *md_table(header, rows),
        "",
        f"Over {len(cells)} cells: {tot['agree']} of {tot['pairs']} pairs ordered alike, "
        f"mean Kendall τ-b {statistics.fmean(taus) if taus else math.nan:+.2f}; of the "
        f"{tot['sep']} pairs our seeds separate, {tot['sep_agree']} in the paper's order.",
        "",
    ]


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
        *md_table(["method", *(TASK_NAMES[t] for t in tasks)], rows),
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
            f"{m} seed {', '.join(map(str, by_method[m]))}"
            for m in sorted(by_method, key=method_rank)
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
