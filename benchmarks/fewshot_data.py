"""The few-shot report's data: the grid's runs loaded and checked, the paper's numbers, scores."""

from __future__ import annotations

import json
import statistics
from collections import defaultdict
from pathlib import Path

import numpy as np

from benchmarks.fewshot import (
    DATA_DIRS,
    Run,
)
from infoprompt.methods import METHODS
from infoprompt.metrics import compute
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


def method_rank(method: str) -> int:
    """A method's place in the registry (the tables' row order)."""
    return list(METHODS).index(method)


def scores(runs: dict[Run, dict], which: str) -> dict[tuple[str, int, str], dict[int, float]]:
    """{(task, shots, method): {seed: test[which][main metric]}}, ``which`` = final | selected."""
    out: dict[tuple[str, int, str], dict[int, float]] = defaultdict(dict)
    for run, r in runs.items():
        out[(run.task, run.shots, run.method)][run.seed] = r["test"][which][r["main_metric"]]
    return out


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
