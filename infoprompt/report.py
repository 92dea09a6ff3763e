"""Result tables in the layout of the paper's tables 1–4: ``python -m infoprompt report runs/``.

Every finished ``results.json`` under the given folders is one run. Runs are grouped by the number
of training examples (shots); within a group, rows are methods (with n_p), columns are tasks (the
task's main metric, plus MRPC's F1), and a cell is mean ± standard deviation (ddof = 1) of the best
dev score over seeds, in percent, with the number of seeds when they differ across cells.
"""

from __future__ import annotations

import json
import statistics
from collections import defaultdict
from pathlib import Path

from infoprompt.config import PROMPT_METHODS
from infoprompt.data import TASKS

TASK_NAMES = {
    "sst2": "SST-2",
    "rte": "RTE",
    "mrpc": "MRPC",
    "cola": "CoLA",
    "semeval": "SemEval",
    "relation": "RE",
    "entity": "ET",
}
ROWS = ("finetune", "lora", "warp", "idpg", "infoprompt")  # the paper's order: baselines first
METRIC_NAMES = {
    "accuracy": "acc",
    "f1": "F1",
    "mcc": "MCC",
    "macro_f1": "F1",
    "semeval_macro_f1": "F1",
}


def find_results(folders: list[str | Path]) -> list[dict]:
    """The finished runs under ``folders`` (unfinished ones are skipped)."""
    runs = []
    for folder in folders:
        for path in sorted(Path(folder).rglob("results.json")):
            results = json.loads(path.read_text())
            if results.get("finished"):
                runs.append(results)
    return runs


def columns(tasks: set[str]) -> list[tuple[str, str]]:
    """(task, metric) columns in the order of TASKS: the main metric, and F1 for MRPC."""
    cols = []
    for name, spec in TASKS.items():
        if name in tasks:
            cols.append((name, spec.main_metric))
            cols += [(name, m) for m in spec.metrics if m == "f1" and m != spec.main_metric]
    return cols


def _row_key(run: dict) -> tuple:
    """Sort key ending in the row's name: baselines first (ROWS), full InfoPrompt after its
    ablations, then by name (which carries n_p for prompt methods)."""
    c = run["config"]
    n_p = f" (n_p={c['n_prompts']})" if c["method"] in PROMPT_METHODS else ""
    return ROWS.index(c["method"]), run["label"] == c["method"], run["label"] + n_p


def cell(values: list[float], show_n: bool) -> str:
    mean = 100 * statistics.fmean(values)
    std = 100 * statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{mean:.1f} ± {std:.1f}" + (f" ({len(values)})" if show_n else "")


def tables(runs: list[dict]) -> str:
    """Markdown tables, one per number of shots."""
    groups: dict[int, list[dict]] = defaultdict(list)
    for run in runs:
        groups[run["config"]["shots"]].append(run)
    out = []
    for shots in sorted(groups):
        out.append(_table(shots, groups[shots]))
    return "\n\n".join(out) if out else "no finished runs found"


def _table(shots: int, runs: list[dict]) -> str:
    scores: dict[tuple, dict[tuple, list[float]]] = defaultdict(lambda: defaultdict(list))
    for run in runs:
        dev = run["best"]["dev"]
        for metric, value in dev.items():
            scores[_row_key(run)][(run["task"], metric)].append(value)
    cols = columns({r["task"] for r in runs})
    counts = {len(v) for row in scores.values() for v in row.values()}
    show_n = len(counts) > 1
    title = f"### {shots} training examples" if shots else "### full training set"
    head = ["method"] + [f"{TASK_NAMES[t]} ({METRIC_NAMES[m]})" for t, m in cols]
    lines = [title, "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for key in sorted(scores):
        row = [key[-1]] + [cell(scores[key][c], show_n) if scores[key][c] else "–" for c in cols]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)
