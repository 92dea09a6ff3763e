"""The few-shot report's markdown tables: scores against the paper's, comparisons, rates, time."""

from __future__ import annotations

import json
import math
import statistics
from collections import Counter, defaultdict
from pathlib import Path

from benchmarks.fewshot import (
    Run,
    run_seconds,
)
from benchmarks.fewshot_compare import CellComparison, interval_sign, t_interval
from benchmarks.fewshot_data import (
    ALPHA,
    GLUE,
    PAPER,
    PAPER_ROWS,
    Cell,
    cell_key,
    columns,
    majority,
    method_rank,
    scores,
)
from infoprompt.methods import METHODS
from infoprompt.report import TASK_NAMES


def pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.1f}"


def fmt_cell(values: list[float]) -> str:
    """'mean ± std (n)' in percent, std with ddof 1 (sample std over seeds); one seed: 'x (1)'."""
    if not values:
        return "–"
    if len(values) == 1:
        return f"{pct(values[0])} (1)"
    return f"{pct(statistics.fmean(values))} ± {pct(statistics.stdev(values))} ({len(values)})"


def _average(means: dict[Cell, float], cols: list[Cell]) -> str:
    """Mean of the cells present (of ``cols``), with 'k of K cells' when some are absent."""
    vals = [means[c] for c in cols if c in means]
    if not vals:
        return "–"
    text = pct(statistics.fmean(vals))
    return text if len(vals) == len(cols) else f"{text} ({len(vals)} of {len(cols)} cells)"


def md_table(header: list[str], rows: list[list[str]]) -> list[str]:
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
    return md_table(header, rows)


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


def fmt_p(p: float | None) -> str:
    return "n too small" if p is None else f"{p:.3g}"


def fmt_points(x: float) -> str:
    return "–" if math.isnan(x) else f"{100 * x:+.1f}"


def _glance_entry(x: CellComparison | None, p_holm: float | None) -> str:
    if x is None:
        return "–"
    mean = fmt_points(x.mean)
    if p_holm is not None and p_holm < ALPHA:
        return f"**{mean}** ({len(x.diffs)})"
    return f"{mean}{'†' if interval_sign(x.diffs) else ''} ({len(x.diffs)})"


def glance_table(comps: dict[str, list[CellComparison]], holm_c: dict) -> list[str]:
    """Baselines × cells: the mean Δ over seeds, bold where it survives Holm over the family."""
    cells = sorted({x.cell for cs in comps.values() for x in cs}, key=cell_key)
    rows = []
    for b, cs in comps.items():
        by_cell = {x.cell: x for x in cs}
        rows.append(
            [METHODS[b].row, *(_glance_entry(by_cell.get(c), holm_c.get((b, c))) for c in cells)]
        )
    return md_table(["baseline", *(f"{TASK_NAMES[t]} {s}" for t, s in cells)], rows)


def cell_table(comps: dict[str, list[CellComparison]], holm_c: dict) -> list[str]:
    rows = []
    for b, cs in comps.items():
        for x in cs:
            _, lo, hi = t_interval(x.diffs)
            rows.append(
                [
                    METHODS[b].row,
                    f"{TASK_NAMES[x.cell[0]]} {x.cell[1]}",
                    str(len(x.diffs)),
                    fmt_points(x.mean),
                    f"[{fmt_points(lo)}, {fmt_points(hi)}]",
                    fmt_p(_nan_none(x.p)),
                    fmt_p(holm_c.get((b, x.cell))),
                ]
            )
    header = ["baseline", "cell", "n", "mean Δ", "95 % t interval", "t p", "Holm p"]
    return md_table(header, rows)


def _nan_none(p: float) -> float | None:
    return None if math.isnan(p) else p


def across_table(acr: dict, holm_w: dict) -> list[str]:
    header = ["baseline", "family", "cells", "higher / lower", "mean Δ", "sign p", "Wilcoxon p"]
    rows = [
        [
            METHODS[b].row,
            f,
            str(a["cells"]),
            f"{a['wins']} / {a['losses']}",
            fmt_points(a["mean"]),
            fmt_p(a["sign"]),
            fmt_p(a["wilcoxon"]),
            fmt_p(holm_w[f].get(b)),
        ]
        for (b, f), a in acr.items()
    ]
    return md_table([*header, "Holm p"], rows)


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
        groups.items(), key=lambda kv: (cell_key((kv[0][0], 0)), method_rank(kv[0][1]))
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
        *md_table(header, rows),
    ]
    if gaps:
        lines += [
            "",
            f"Over the {len(gaps)} searches the chosen validation score is "
            f"{fmt_points(statistics.fmean(gaps))} points above test.selected on average "
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
            groups.items(), key=lambda kv: (cell_key(kv[0][:2]), method_rank(kv[0][2]))
        )
    ]
    total = sum(map(run_seconds, runs.values()))
    extra = search_extra_seconds(out, runs)
    return [
        f"Wall time of the finished runs: {total / 3600:.2f} h (train + evaluations + setup, as "
        f"each results.json records it); the learning-rate searches' grid points not chosen: "
        f"{extra / 3600:.2f} h more.",
        "",
        *md_table(["task", "shots", "method", "runs", "train + eval s", "setup s"], rows),
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
