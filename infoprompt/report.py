"""Result tables in the layout of the paper's tables 1–4: ``python -m infoprompt report runs/``.

Every finished ``results.json`` under the given folders that holds reported-set scores (``test``)
is one run; the search runs of ``--lr-grid`` (no ``test``) and unfinished runs are skipped, a file
that cannot be read is skipped with a warning naming it. Runs are grouped by the number of
training examples (shots); within a group, a row is one setting: every configuration field except
the seed, the output folder, the task and its data folder (so runs with other epochs, learning
rates, models, protocols ... never share a row; the fields that differ between rows are printed
in the row's name). Columns are tasks (the main metric, plus MRPC's F1). A cell is mean ±
standard deviation (ddof = 1) over seeds, in percent, with n (seeds); a seed is counted once per
cell (a second run of the same seed is left out and listed). Two tables per group: ``test.final``
(the model after the last epoch, the paper's rule) and ``test.selected`` (best on validation).
"""

from __future__ import annotations

import json
import statistics
import sys
from collections import defaultdict
from pathlib import Path

from infoprompt.config import ConfigError
from infoprompt.data import TASKS
from infoprompt.methods import METHODS

TASK_NAMES = {
    "sst2": "SST-2",
    "rte": "RTE",
    "mrpc": "MRPC",
    "cola": "CoLA",
    "semeval": "SemEval",
    "relation": "RE",
    "entity": "ET",
    "tsv": "TSV",
}
METRIC_NAMES = {
    "accuracy": "acc",
    "f1": "F1",
    "mcc": "MCC",
    "macro_f1": "F1",
    "semeval_macro_f1": "F1",
}
NOT_A_SETTING = ("seed", "out", "task", "data_dir")
SHOWN_BY_LABEL = ("method", "beta", "gamma")


def find_results(folders: list[str | Path], warn=None) -> list[dict]:
    """The finished runs with reported-set scores under ``folders`` (see the module docstring)."""
    warn = warn or (lambda m: print(f"warning: {m}", file=sys.stderr))
    runs = []
    for folder in folders:
        if not Path(folder).is_dir():
            raise ConfigError(f"report: {folder} is not a folder; pass folders that hold runs")
        for path in sorted(Path(folder).rglob("results.json")):
            try:
                results = json.loads(path.read_text())
                ok = results.get("finished") and "test" in results
            except (OSError, ValueError, AttributeError) as e:
                warn(f"skipped {path}: not a readable results file ({e})")
                continue
            if ok:
                runs.append(results | {"path": str(path)})
    return runs


def setting(run: dict) -> tuple:
    """What a row stands for: every configuration field but those of NOT_A_SETTING."""
    c = run["config"]
    return tuple(sorted((k, json.dumps(v)) for k, v in c.items() if k not in NOT_A_SETTING))


def columns(runs: list[dict]) -> list[tuple[str, str]]:
    """(task, metric) columns in the order of TASKS: the main metric, and F1 for MRPC."""
    tasks = {r["task"] for r in runs}
    cols = []
    for name in [*TASKS, "tsv"]:
        if name in tasks:
            main = next(r["main_metric"] for r in runs if r["task"] == name)
            cols.append((name, main))
            cols += [(name, "f1")] if name == "mrpc" else []
    return cols


def cell(values: list[float]) -> str:
    mean = 100 * statistics.fmean(values)
    std = 100 * statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{mean:.1f} ± {std:.1f} ({len(values)})"


def row_names(settings: list[tuple]) -> dict[tuple, str]:
    """Each setting's name: the method's label plus the fields that differ between rows."""
    varying = {
        k
        for k in {k for s in settings for k, _ in s}
        if len({dict(s).get(k) for s in settings}) > 1 and k not in SHOWN_BY_LABEL
    }
    names = {}
    for s in settings:
        d = dict(s)
        method = json.loads(d["method"])
        base = f"{method}" + _weights(d, method)
        extra = ", ".join(f"{k}={json.loads(d[k])}" for k in sorted(varying) if k in d)
        names[s] = base + (f" [{extra}]" if extra else "")
    return names


def _weights(d: dict, method: str) -> str:
    m = METHODS.get(method)
    beta, gamma = json.loads(d.get("beta", "null")), json.loads(d.get("gamma", "null"))
    if m is None or not m.free_weights or (beta, gamma) == (m.beta, m.gamma):
        return ""
    return f" (β={beta:g}, γ={gamma:g})"


def tables(runs: list[dict]) -> str:
    """Markdown tables, two (final, selected) per number of shots, and what was left out."""
    groups: dict[int, list[dict]] = defaultdict(list)
    for run in runs:
        groups[run["config"]["shots"]].append(run)
    out, left_out = [], []
    for shots in sorted(groups):
        kept, dropped = _one_per_seed(groups[shots])
        left_out += dropped
        for which in ("final", "selected"):
            out.append(_table(shots, kept, which))
    if left_out:
        out.append("Left out (a seed already counted in its cell):\n" + "\n".join(left_out))
    return "\n\n".join(out) if out else "no finished runs found"


def _one_per_seed(runs: list[dict]) -> tuple[list[dict], list[str]]:
    seen, kept, dropped = set(), [], []
    for run in sorted(runs, key=lambda r: r["path"]):
        key = (setting(run), run["task"], run["config"]["data_dir"], run["config"]["seed"])
        if key in seen:
            dropped.append(f"- {run['path']}: seed {run['config']['seed']} counted already")
            continue
        seen.add(key)
        kept.append(run)
    return kept, dropped


def _table(shots: int, runs: list[dict], which: str) -> str:
    scores: dict[tuple, dict[tuple, list[float]]] = defaultdict(lambda: defaultdict(list))
    for run in runs:
        for metric, value in run["test"][which].items():
            scores[setting(run)][(run["task"], metric)].append(value)
    cols = columns(runs)
    order = {m: i for i, m in enumerate(METHODS)}
    keyed = sorted(scores, key=lambda s: (order.get(json.loads(dict(s)["method"]), 99), s))
    names = row_names(keyed)
    rule = "final epoch (the paper's rule)" if which == "final" else "best on validation"
    title = f"### {shots} training examples" if shots else "### full training set"
    head = ["method"] + [f"{TASK_NAMES.get(t, t)} ({METRIC_NAMES.get(m, m)})" for t, m in cols]
    lines = [f"{title}: test.{which}, {rule}", "", "| " + " | ".join(head) + " |"]
    lines.append("|" + "---|" * len(head))
    for key in keyed:
        row = [names[key]] + [cell(scores[key][c]) if scores[key][c] else "–" for c in cols]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)
