"""The few-shot report's comparisons: InfoPrompt against each baseline per cell and across cells
(seed-level statistics from ``infoprompt.stats``, Holm over the family the verdict counts), and
the orderings of methods.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

from scipy import stats

from benchmarks.fewshot import (
    Run,
)
from benchmarks.fewshot_data import (
    MIN_SEEDS_ACROSS,
    OURS,
    PAPER,
    PAPER_ROWS,
    TASK_ORDER,
    Cell,
    cell_key,
    columns,
    majority,
    scores,
)
from infoprompt.methods import METHODS
from infoprompt.stats import holm, mean_t, sign_test, wilcoxon_p


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


def holm_map(ps: dict[str, float | None]) -> dict[str, float]:
    """Holm over the defined p-values of a family of baselines, keyed back by baseline."""
    keys = [k for k, p in ps.items() if p is not None]
    return dict(zip(keys, holm([ps[k] for k in keys])))


def holm_family(comps: dict[str, list[CellComparison]]) -> dict[tuple[str, Cell], float]:
    """Holm over the family the verdict counts: every (baseline, cell) comparison with a defined
    seed-level p (at least two shared seeds), keyed by (baseline, cell)."""
    keys = [(b, x.cell) for b, cs in comps.items() for x in cs if not math.isnan(x.p)]
    ps = {(b, x.cell): x.p for b, cs in comps.items() for x in cs}
    return dict(zip(keys, holm([ps[k] for k in keys])))


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
