"""The statistics the verdicts use, as pure functions: the seed is the unit of replication.

- ``paired_t``: the paired t test over seeds of two arms run on the same seeds (same draws), with
  its mean difference, two-sided (1 − α) interval and two-sided p.
- ``holm``: Holm's step-down adjustment of a family of p values (the family is the caller's to
  name: every p value the verdict counts).
- ``power_paired_t`` / ``detectable``: the power of the two-sided paired t test at a true mean
  difference δ with paired standard deviation σ (noncentral t, df n − 1), and the smallest δ
  reached with a given power — what the pre-registration plans with.
- ``sign_test`` and ``wilcoxon_p``: the across-cell tests (unit: the cell's mean difference).

No test here pools examples over seeds: a per-example test counts each test sentence once per
seed and ignores training variance, so it describes and never decides.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy import optimize, stats


@dataclass(frozen=True)
class PairedT:
    n: int
    mean: float  # mean of a − b
    low: float  # two-sided (1 − alpha) interval of the mean difference
    high: float
    p: float  # two-sided p of H0: mean difference 0 (nan below two pairs or with sd 0)


def paired_t(a: ArrayLike, b: ArrayLike, alpha: float = 0.05) -> PairedT:
    """Paired t test of a − b over seeds (a[i], b[i]: the two arms on seed i)."""
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if x.ndim != 1 or x.shape != y.shape:
        raise ValueError(
            f"paired_t takes two 1-D sequences of equal length, got {x.shape}, {y.shape}"
        )
    return mean_t(x - y, alpha)


def mean_t(d: ArrayLike, alpha: float = 0.05) -> PairedT:
    """The one-sample t test of mean(d) = 0 and its (1 − alpha) interval (d: paired differences)."""
    x = np.asarray(d, dtype=float)
    n = len(x)
    mean = float(x.mean()) if n else math.nan
    if n < 2:
        return PairedT(n, mean, math.nan, math.nan, math.nan)
    se = float(x.std(ddof=1)) / math.sqrt(n)
    if se == 0:
        return PairedT(n, mean, mean, mean, math.nan if mean == 0 else 0.0)
    half = float(stats.t.ppf(1 - alpha / 2, n - 1)) * se
    p = float(2 * stats.t.sf(abs(mean) / se, n - 1))
    return PairedT(n, mean, mean - half, mean + half, p)


def holm(pvalues: ArrayLike) -> list[float]:
    """Holm-adjusted p values, in the input's order (nan stays nan and is not counted)."""
    p = np.asarray(pvalues, dtype=float)
    ok = np.flatnonzero(~np.isnan(p))
    out = np.full(len(p), math.nan)
    order = ok[np.argsort(p[ok], kind="stable")]
    m, running = len(order), 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        out[i] = running
    return out.tolist()


def power_paired_t(delta: float, sd: float, n: int, alpha: float = 0.05) -> float:
    """Power of the two-sided paired t test at level ``alpha`` with n pairs, true mean
    difference ``delta`` and paired standard deviation ``sd``: P(|T| > t_{1−α/2, n−1}) for T
    noncentral t with df n − 1 and noncentrality δ √n / σ."""
    if n < 2 or sd <= 0:
        raise ValueError(f"power needs n >= 2 and sd > 0, got n={n}, sd={sd}")
    df, nc = n - 1, delta * math.sqrt(n) / sd
    crit = stats.t.ppf(1 - alpha / 2, df)
    power = float(stats.nct.sf(crit, df, nc) + stats.nct.cdf(-crit, df, nc))
    return power if math.isfinite(power) else 1.0  # scipy's nct gives nan far in the tail


def detectable(sd: float, n: int, alpha: float = 0.05, power: float = 0.8) -> float:
    """The smallest δ > 0 that the two-sided paired t test detects with ``power``."""
    hi = sd * 10
    return float(optimize.brentq(lambda d: power_paired_t(d, sd, n, alpha) - power, 1e-12, hi))


def sign_test(wins: int, losses: int) -> float:
    """Two-sided exact sign test (ties dropped): min(1, 2 Σ_{i ≤ min(w, l)} C(n, i) / 2^n),
    n = w + l; 1 for n = 0."""
    n = wins + losses
    tail = sum(math.comb(n, i) for i in range(min(wins, losses) + 1)) / 2**n
    return min(1.0, 2 * tail)


def wilcoxon_p(d: Sequence[float]) -> float | None:
    """Two-sided Wilcoxon signed-rank p (``scipy.stats.wilcoxon``) of the non-zero differences
    (zeros dropped, Wilcoxon's rule); None without a non-zero one."""
    nonzero = [x for x in d if x != 0]
    return float(stats.wilcoxon(nonzero).pvalue) if nonzero else None
