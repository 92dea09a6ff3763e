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
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from infoprompt.backbone import portable
from infoprompt.errors import ConfigError
from infoprompt.methods import METHODS, method_named
from infoprompt.tasks import TASKS

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
WHICH = ("final", "selected")
SHOWN_BY_LABEL = ("method", "beta", "gamma")


CONFIG_KEYS = ("method", "seed", "shots", "data_dir")
"""The ``config`` fields a report reads of every run."""


def _warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


def find_results(
    folders: Sequence[str | Path], warn: Callable[[str], None] = _warn
) -> list[dict[str, Any]]:
    """The finished runs with reported-set scores under ``folders`` (see the module docstring).
    A file that is not a trainer's results (unreadable, not JSON, or without the keys a report
    reads: ``problem``) is skipped with a warning naming it and what it lacks."""
    runs = []
    for folder in folders:
        if not Path(folder).is_dir():
            raise ConfigError(f"report: {folder} is not a folder; pass folders that hold runs")
        for path in sorted(Path(folder).rglob("results.json")):
            try:
                results = json.loads(path.read_text())
            except (OSError, ValueError) as e:
                warn(f"skipped {path}: not a readable results file ({e})")
                continue
            if not isinstance(results, dict) or "config" not in results:
                warn(f"skipped {path}: not a trainer's results file (no 'config')")
                continue
            if not (results.get("finished") and "test" in results):
                continue  # an unfinished run, or an lr search's sub-run: nothing to report yet
            why = problem(results)
            if why:
                warn(f"skipped {path}: not a trainer's results file ({why})")
                continue
            runs.append(results | {"path": str(path)})
    return runs


def problem(results: dict[str, Any]) -> str | None:
    """What a finished results dict lacks for a report, or None: its ``config`` with the fields
    of ``CONFIG_KEYS``, ``task``, ``main_metric`` and ``test`` with ``final`` and ``selected``
    metric tables."""
    config, test = results.get("config"), results.get("test")
    if not isinstance(config, dict):
        return "no 'config' object"
    missing = [k for k in CONFIG_KEYS if k not in config]
    missing += [k for k in ("task", "main_metric") if k not in results]
    if missing:
        return f"missing {', '.join(repr(k) for k in missing)}"
    if not isinstance(test, dict) or not all(isinstance(test.get(w), dict) for w in WHICH):
        return "'test' lacks the 'final' and 'selected' scores"
    return None


Setting = tuple[tuple[str, str], ...]


def setting(run: dict[str, Any]) -> Setting:
    """What a row stands for: every configuration field but those of NOT_A_SETTING (the encoder
    by its portable name, ``backbone.portable``, so that runs that saved the packaged folder's
    path share a row with those that name the package)."""
    c = dict(run["config"])
    if isinstance(c.get("model"), str):
        c["model"] = portable(c["model"])
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
    """Mean ± standard deviation in percent, and n; one seed is its value alone (no spread)."""
    mean = 100 * statistics.fmean(values)
    if len(values) == 1:
        return f"{mean:.1f} (1)"
    return f"{mean:.1f} ± {100 * statistics.stdev(values):.1f} ({len(values)})"


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


def _weights(d: dict[str, str], method: str) -> str:
    """ " (β=…, γ=…)" where a method with free weights ran with others than its own."""
    m = method_named(method)
    beta, gamma = json.loads(d.get("beta", "null")), json.loads(d.get("gamma", "null"))
    return "" if m is None else m.label(beta, gamma).removeprefix(method)


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
