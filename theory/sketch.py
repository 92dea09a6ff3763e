r"""Randomized approximations of ``H = Aᵀ diag(v) A`` (d, d) for a non-negative weight v (n,).

Every sketch here returns ``H̃ = (S M)ᵀ (S M)`` for ``M = diag(√v) A`` (n, d) and a random S (s, n),
built so that, with probability at least 1 − δ,

    (1 − ε) H ⪯ H̃ ⪯ (1 + ε) H                                                        (spectral)

at the sample size ``s(d, ε, δ)`` of :meth:`Sketch.size`. That is the sampling step of Algorithm 1
(arXiv 2306.04933, appendix D; the sampling lemma is Lemma 4.2 of Song, Yang, Yang, Zhou 2022,
arXiv 2211.14407). Two kinds:

* **row sampling** (``leverage``, ``leverage-exact``, ``uniform``): draw s rows i.i.d. with
  probabilities ``p_i`` and weight each by ``1/(s p_i)``, so ``H̃ = Σ_sampled v_i a_i a_iᵀ/(s p_i)``;
  only the distinct sampled rows are read, and the build costs O(s d²) instead of O(n d²);
* **projections** (``countsketch``, ``srtt``, ``gaussian``): ``S M`` mixes all n rows.

Sample-size rules. For row sampling with ``p_i ≥ τ_i / (β d)``, where ``τ_i = m_iᵀ H⁻¹ m_i`` are the
leverage scores of M (``Σ τ_i = d``), matrix Bernstein (Tropp 2015, Thm 6.1.1) applied to the s
i.i.d. terms ``X_k = (H^{-½} m_i m_iᵀ H^{-½}/p_i − I)/s`` (``||X_k|| ≤ β d/s``, variance ≤ β d/s) gives

    P(||H^{-½} H̃ H^{-½} − I|| > ε) ≤ 2d exp(−s ε² / (2 β d (1 + ε/3)))
    ⇒  s(d, ε, δ) = ⌈2 β d (1 + ε/3) ln(2d/δ) / ε²⌉.                                  (Bernstein)

β = 1 for exact scores; β = the coherence ``(n/d) max τ_i`` for uniform sampling; β = 12 for the
approximate scores of :class:`ApproximateLeverage` (above the worst ``τ_i / (d p_i)`` seen on
heavy-tailed test matrices; docs/solver.md, "Measured constants").

Each sketch is written once, over the rows' sketch methods (:mod:`theory.rows`:
``sample_gram``, ``leverage_scores``, ``countsketch``, ``gaussian_sketch``, ``ratio_range``),
which run where the rows live. In memory they are the textbook constructions above. On an
engine (:class:`~theory.distributed.EngineRows`; v, the scores ℓ and every other (n,) vector stay
on the blocks) randomness comes from one driver-drawn seed and the block index k
(``default_rng([seed, k])``), so H̃ is deterministic for a given seed and blocking (another
random stream than in memory):

* row sampling (``uniform``, ``leverage``): **per-block multinomial**. The driver draws the block
  counts ``(s_k) ~ Multinomial(s, P_k / P)``, ``P_k = Σ_{i∈k} p_i`` (for leverage one round
  returns ``Σ_{i∈k} v_i ℓ_i``), and block k draws its s_k rows i.i.d. from ``p_i / P_k``,
  returning ``Σ c_i v_i a_i a_iᵀ / (s p_i)`` (d, d). s i.i.d. draws from p grouped by block are
  exactly this, so the estimator is the in-memory one in distribution (same expectation
  ``Aᵀ diag(v) A``, same Bernstein rule); Poisson sampling would also be unbiased but would make
  s random and change the variance the rule assumes.
* leverage scores: the JL construction of :func:`theory.linalg.approximate_leverage_scores` split
  at its sums: the CountSketch ``S₁ diag(√v) A`` (2d, d) is a sum of per-block sketches (one
  round), R and ``Ω = R⁻¹ G`` are formed on the driver (:func:`theory.linalg.jl_map`), and
  ``ℓ_i = ||a_iᵀ Ω||²`` is computed and kept on the blocks (one round); the drift test compares
  v with the v of the last computation block by block (one round).
* projections (``countsketch``, ``gaussian``): ``S M = Σ_k S_k M_k``, each block drawing its own
  columns of S (one round, (s, d) per block). ``srtt`` and ``leverage-exact`` mix or factor all
  rows at once and are refused (ValueError).

Conventions: A (n, d) in memory is anything :func:`theory.rows.as_rows` takes (an ndarray, a
``numpy.memmap``, a :class:`~theory.rows.DenseRows`), v (n,) ≥ 0 an ndarray; on an engine, A is
its :class:`~theory.distributed.EngineRows` and v a :class:`~theory.engine.BlockVector`; float64.
"""

from __future__ import annotations

import math
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np
import scipy.fft

from theory.linalg import gram, probabilities, sample_rows, weighted_gram
from theory.rows import RowMatrix, as_rows

APPROX_LEVERAGE_BETA = 12.0  # ≥ max τ_i / (d p_i) (docs/solver.md, "Measured constants").
DEFAULT_DRIFT = 2.0  # reuse leverage scores while every v_i changed by a factor within [1/2, 2].


def drifted(rows: RowMatrix, v, v_ref, gamma: float | None) -> bool:
    """Whether some ``v_i / v_ref_i`` left ``[1/γ, γ]`` (always, for γ None); v, v_ref ≥ 0 where
    ``rows`` keeps its vectors. Both are floored at 1e-8 of their largest entry: rows of
    negligible weight do not move ``Aᵀ diag(v) A``."""
    if gamma is None:
        return True
    floor = 1e-8 * max(rows.amax_abs(v), rows.amax_abs(v_ref))
    hi, lo = rows.ratio_range(v, v_ref, floor)
    return hi > gamma or lo < 1 / gamma


def _all_of(rows: RowMatrix, name: str) -> np.ndarray:
    """All of A in memory, for the sketches that mix or factor every row at once."""
    if not rows.in_memory:
        raise ValueError(
            f"sketch {name!r} needs all of A in one place; on an engine use 'leverage', "
            "'uniform', 'countsketch' or 'gaussian'."
        )
    return rows.array()


# -- the interface --------------------------------------------------------------------------------


@dataclass(frozen=True)
class SketchedGram:
    """``H̃ ≈ Aᵀ diag(v) A`` (d, d) and what it cost.

    ``size`` is s (rows drawn or rows of S); ``rows`` the distinct rows of A read (row sampling) or
    s (projections); ``leverage_time`` the seconds spent on sampling probabilities; ``recomputed``
    whether those were computed afresh at this call. The passes over A are counted by the rows
    (:class:`~theory.rows.CountedRows`).
    """

    H: np.ndarray
    size: int
    rows: int
    leverage_time: float = 0.0
    recomputed: bool = False


class Sketch(ABC):
    """A sketch of ``Aᵀ diag(v) A``: :meth:`size` is its rule s(d, ε, δ), :meth:`gram` draws one."""

    name: str = ""

    @abstractmethod
    def size(self, d: int, eps: float, delta: float, n: int | None = None) -> int:
        """Sample size s(d, ε, δ) at which the spectral bound holds with probability ≥ 1 − δ."""

    def gram(self, A, v, s: int, rng: np.random.Generator) -> SketchedGram:
        """``H̃`` (d, d) from s samples; A (n, d) anything :func:`~theory.rows.as_rows` takes (an
        engine's rows included), v (n,) ≥ 0 where those rows keep their vectors."""
        return self._gram(as_rows(A), v, s, rng)

    @abstractmethod
    def _gram(self, rows: RowMatrix, v, s: int, rng: np.random.Generator) -> SketchedGram:
        """``H̃`` through the rows' sketch methods (:mod:`theory.rows`)."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def bernstein_size(d: int, eps: float, delta: float, beta: float = 1.0) -> int:
    """``s = ⌈2 β d (1 + ε/3) ln(2d/δ) / ε²⌉`` (module docstring, (Bernstein))."""
    return math.ceil(2 * beta * d * (1 + eps / 3) * math.log(2 * d / delta) / eps**2)


# -- row sampling ---------------------------------------------------------------------------------


class UniformSampling(Sketch):
    """``p_i = 1/n``. Rule (Bernstein) with β = the coherence ``μ = (n/d) max_i τ_i`` (1 ≤ μ ≤ n/d).

    Cheap (no pass over A) and accurate on incoherent rows; on rows of heavy-tailed norms μ is
    large and uniform sampling needs many more rows than leverage sampling.
    """

    name = "uniform"

    def size(self, d, eps, delta, n=None, coherence: float | None = None):
        """Needs the coherence μ of ``diag(√v) A``, which depends on v (so on x): without it there
        is no rule (assuming μ = 1 fails on coherent rows)."""
        if coherence is None:
            raise ValueError(
                "sketch 'uniform' has no sample-size rule without the coherence μ = (n/d) max τ_i "
                "of diag(√v) A, which changes with x; pass sketch_size instead of eps, or use "
                "'leverage', whose rule holds for any A."
            )
        return bernstein_size(d, eps, delta, beta=coherence)

    def _gram(self, rows, v, s, rng):
        H, read = rows.sample_gram(v, None, s, rng)
        return SketchedGram(H, s, read)


def exact_leverage_scores(A, v: np.ndarray) -> np.ndarray:
    """``τ_i = ||Q_i||²`` (n,) for the thin QR ``diag(√v) A = Q R``: O(n d²) and an n×d copy."""
    M = np.sqrt(v)[:, None] * as_rows(A).array()  # (n, d)
    Q = np.linalg.qr(M, mode="reduced").Q
    return np.einsum("ij,ij->i", Q, Q)


class ExactLeverage(Sketch):
    """Leverage-score sampling with exact scores (thin QR), ``p_i = τ_i / d``; rule (Bernstein), β = 1.

    The QR costs about as much as four exact Hessians: a reference for the approximate scores,
    not a fast method.
    """

    name = "leverage-exact"

    def size(self, d, eps, delta, n=None):
        return bernstein_size(d, eps, delta)

    def _gram(self, rows, v, s, rng):
        t0 = time.perf_counter()
        p = probabilities(exact_leverage_scores(_all_of(rows, self.name), v))
        t_lev = time.perf_counter() - t0
        idx, scale = sample_rows(p, s, s, rng)
        H = weighted_gram(rows.take_rows(idx), v[idx] * scale)
        return SketchedGram(H, s, idx.size, t_lev, True)


class ApproximateLeverage(Sketch):
    """Leverage-score sampling with fast approximate scores, ``p_i ∝ v_i ℓ_i``; rule (Bernstein), β = 12.

    **Reuse across iterations** (``drift``): ℓ depends on v only through R, so when v moves to v'
    with every ``v'_i / v_i`` in ``[1/γ, γ]``, ``v'_i ℓ_i`` still bounds the new scores up to a factor
    γ² (``H/γ ⪯ H' ⪯ γ H``); the scores are then reused and only re-weighted by v' (O(n)). They are
    recomputed when the drift exceeds γ = ``drift`` (ratios taken with v floored at 1e-8 max v, since
    rows of negligible weight do not matter), and at every call when ``drift=None``. The v of the
    last computation is kept as the reference, not copied: pass a fresh v to each call (the
    solvers' v₊ is), not one array changed in place.
    """

    name = "leverage"

    def __init__(self, drift: float | None = DEFAULT_DRIFT):  # γ; None: recompute every call
        self.drift = drift
        self._ell: np.ndarray | None = None
        self._v_ref: np.ndarray | None = None

    def __repr__(self) -> str:
        return f"ApproximateLeverage(drift={self.drift})"

    def size(self, d, eps, delta, n=None):
        return bernstein_size(d, eps, delta, beta=APPROX_LEVERAGE_BETA)

    def _gram(self, rows, v, s, rng):
        t0 = time.perf_counter()
        v_ref = self._v_ref
        recompute = self._ell is None or v_ref is None or drifted(rows, v, v_ref, self.drift)
        if recompute:  # v is kept, not copied: the solvers' v₊ is fresh and never written again
            self._ell, self._v_ref = rows.leverage_scores(v, rng), v
        t_lev = time.perf_counter() - t0
        H, read = rows.sample_gram(v, self._ell, s, rng)
        return SketchedGram(H, s, read, t_lev, recompute)


# -- projections ----------------------------------------------------------------------------------


class CountSketch(Sketch):
    """``S`` with one random ±1 per column (``scipy.linalg.clarkson_woodruff_transform``), O(nnz(A)).

    Rule: for U (n, d) orthonormal, ``E||UᵀSᵀSU − I||_F² ≤ (d² + d)/s`` (the pairs i ≠ i' that
    share a bucket), so by Markov ``s = ⌈(d² + d)/(ε² δ)⌉`` (Nelson & Nguyen 2013, Thm 3).
    Quadratic in d: accurate sketches of wide problems get large.
    """

    name = "countsketch"

    def size(self, d, eps, delta, n=None):
        return math.ceil((d * d + d) / (eps**2 * delta))

    def _gram(self, rows, v, s, rng):
        return SketchedGram(gram(rows.countsketch(v, s, rng)), s, s)


class SRTT(Sketch):
    """Subsampled randomized trigonometric transform ``S = √(n/s) P C D`` (in memory only).

    D random signs, C the orthonormal DCT-II (n, n) applied by FFT in O(n d log n), P samples s rows
    uniformly with replacement. C D spreads the leverage: every row of ``C D U`` has squared norm
    ≤ (2/n)(√d + √(8 ln(2n/δ)))² with probability 1 − δ/2 (Tropp 2011, Lemma 3.3, with the DCT's
    entries bounded by √(2/n)); rule (Bernstein) with that coherence and δ/2:

        s = ⌈4 (1 + ε/3) (√d + √(8 ln(2n/δ)))² ln(4d/δ) / ε²⌉.
    """

    name = "srtt"

    def size(self, d, eps, delta, n=None):
        if n is None:
            raise ValueError("the SRTT sample size depends on n; pass n.")
        mix = (math.sqrt(d) + math.sqrt(8 * math.log(2 * n / delta))) ** 2
        return math.ceil(4 * (1 + eps / 3) * mix * math.log(4 * d / delta) / eps**2)

    def _gram(self, rows, v, s, rng):
        A, n = _all_of(rows, self.name), v.size
        signs = rng.choice(np.array([-1.0, 1.0]), size=n) * np.sqrt(v)
        CDM = scipy.fft.dct(signs[:, None] * A, type=2, norm="ortho", axis=0, workers=-1)
        idx, scale = sample_rows(np.full(n, 1.0 / n), s, s, rng)
        return SketchedGram(weighted_gram(CDM[idx], scale), s, idx.size)


class GaussianSketch(Sketch):
    """``S`` (s, n) with i.i.d. N(0, 1/s) entries: O(s n d), a reference, not a fast method.

    Rule: the singular values of ``S U`` lie in ``1 ± (√d + t)/√s`` with probability ≥ 1 − 2e^{−t²/2}
    (Vershynin 2012, Cor. 5.35); with ``(√d + t)/√s ≤ ε/3`` the squares lie in 1 ± ε (ε ≤ 3), so

        s = ⌈9 (√d + √(2 ln(2/δ)))² / ε²⌉.
    """

    name = "gaussian"

    def size(self, d, eps, delta, n=None):
        return math.ceil(9 * (math.sqrt(d) + math.sqrt(2 * math.log(2 / delta))) ** 2 / eps**2)

    def _gram(self, rows, v, s, rng):
        return SketchedGram(gram(rows.gaussian_sketch(v, s, rng)), s, s)


SKETCHES: dict[str, type[Sketch]] = {
    cls.name: cls
    for cls in (
        ApproximateLeverage,
        ExactLeverage,
        UniformSampling,
        CountSketch,
        SRTT,
        GaussianSketch,
    )
}


def make_sketch(name: str, **kwargs) -> Sketch:
    """The sketch called ``name`` (one of :data:`SKETCHES`); ValueError listing the names otherwise."""
    if name not in SKETCHES:
        raise ValueError(f"unknown sketch {name!r}; valid sketches: {', '.join(SKETCHES)}.")
    return SKETCHES[name](**kwargs)
