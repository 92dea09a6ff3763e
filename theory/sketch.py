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

On an engine (v a :class:`~theory.engine.BlockVector`: v, the scores ℓ and every other (n,)
vector stay on the blocks; :meth:`Sketch.gram` dispatches on v). Randomness comes from one
driver-drawn seed and the block index k (``default_rng([seed, k])``), so H̃ is deterministic for
a given seed and blocking (not equal to the in-memory draw: another random stream).

* row sampling (``uniform``, ``leverage``): **per-block multinomial**. The driver draws the block
  counts ``(s_k) ~ Multinomial(s, P_k / P)``, ``P_k = Σ_{i∈k} p_i`` (for leverage one round
  returns ``Σ_{i∈k} v_i ℓ_i``), and block k draws its s_k rows i.i.d. from ``p_i / P_k``,
  returning ``Σ c_i v_i a_i a_iᵀ / (s p_i)`` (d, d). s i.i.d. draws from p grouped by block are
  exactly this, so the estimator is the in-memory one in distribution (same expectation
  ``Aᵀ diag(v) A``, same Bernstein rule); Poisson sampling would also be unbiased but would make
  s random and change the variance the rule assumes.
* leverage scores: the JL construction of :func:`approximate_leverage_scores` split at its sums:
  the CountSketch ``S₁ diag(√v) A`` (2d, d) is a sum of per-block sketches (one round), R and
  ``Ω = R⁻¹ G`` are formed on the driver (:func:`jl_map`), and ``ℓ_i = ||a_iᵀ Ω||²`` is computed
  and kept on the blocks (one round); the drift test compares v with the v of the last
  computation block by block (one round).
* projections (``countsketch``, ``gaussian``): ``S M = Σ_k S_k M_k``, each block drawing its own
  columns of S (one round, (s, d) per block). ``srtt`` and ``leverage-exact`` mix or factor all
  rows at once and are refused (ValueError).

Conventions: A (n, d) in memory is anything :func:`theory.rows.as_rows` takes (an ndarray, a
``numpy.memmap``, a :class:`~theory.rows.DenseRows`), v (n,) ≥ 0 an ndarray; on an engine, v is a
:class:`~theory.engine.BlockVector` and A is reached only through its blocks' kernels; float64.
"""

from __future__ import annotations

import math
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np
import scipy.fft
import scipy.sparse

from theory.blocks import Block
from theory.engine import BlockVector, Kernel
from theory.linalg import (
    countsketch,
    gaussian_sketch,
    gram,
    ratio_range,
    row_norms2,
    sample_rows,
    weighted_gram,
)
from theory.rows import as_rows

APPROX_LEVERAGE_BETA = 12.0  # ≥ max τ_i / (d p_i) (docs/solver.md, "Measured constants").
JL_COLUMNS = 16  # columns of the Gaussian G in τ̃_i = ||a_iᵀ R⁻¹ G||² (Johnson–Lindenstrauss).
JL_BLOCK_ROWS = 2048  # rows of A cast to float32 at a time for A (R⁻¹G): a block stays in cache.
PRECOND_ROWS_PER_D = 2  # CountSketch rows per column for the R of ApproximateLeverage (s₁ = 2d).
RANK_FLOOR = 1e-12  # Cholesky pivots² below this fraction of the largest: M is rank-deficient.
DEFAULT_DRIFT = 2.0  # reuse leverage scores while every v_i changed by a factor within [1/2, 2].


def _gram_of_rows(A, idx: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """``Σ_k weight_k a_{idx_k} a_{idx_k}ᵀ`` (d, d): the build of a row-sampled Hessian, O(|idx| d²)."""
    return weighted_gram(as_rows(A).take_rows(idx), weight)


def drifted(v: np.ndarray, v_ref: np.ndarray, gamma: float | None) -> bool:
    """Whether some ``v_i / v_ref_i`` left ``[1/γ, γ]`` (always, for γ None). Both are floored at
    1e-8 of their largest entry: rows of negligible weight do not move ``Aᵀ diag(v) A``."""
    if gamma is None:
        return True
    floor = 1e-8 * max(float(np.max(v)), float(np.max(v_ref)))
    hi, lo = ratio_range(v, v_ref, floor)
    return hi > gamma or lo < 1 / gamma


# -- the interface --------------------------------------------------------------------------------


@dataclass(frozen=True)
class SketchedGram:
    """``H̃ ≈ Aᵀ diag(v) A`` (d, d) and what it cost.

    ``size`` is s (rows drawn or rows of S); ``rows`` the distinct rows of A read (row sampling) or
    s (projections); ``leverage_time`` the seconds spent on sampling probabilities; ``recomputed``
    whether those were computed afresh at this call; ``passes`` the sweeps over A made by engine
    kernels rather than the row protocol (which counts its own; the solver adds these).
    """

    H: np.ndarray
    size: int
    rows: int
    leverage_time: float = 0.0
    recomputed: bool = False
    passes: int = 0


class Sketch(ABC):
    """A sketch of ``Aᵀ diag(v) A``: :meth:`size` is its rule s(d, ε, δ), :meth:`gram` draws one."""

    name: str = ""

    @abstractmethod
    def size(self, d: int, eps: float, delta: float, n: int | None = None) -> int:
        """Sample size s(d, ε, δ) at which the spectral bound holds with probability ≥ 1 − δ."""

    def gram(self, A, v, s: int, rng: np.random.Generator) -> SketchedGram:
        """``H̃`` (d, d) from s samples; A (n, d), v (n,) ≥ 0: an ndarray, or a
        :class:`~theory.engine.BlockVector` when A is on an engine (the engine path)."""
        if isinstance(v, BlockVector):
            return self._engine_gram(A, v, s, rng)
        return self._gram(A, v, s, rng)

    @abstractmethod
    def _gram(self, A, v: np.ndarray, s: int, rng: np.random.Generator) -> SketchedGram:
        """``H̃`` for v in memory."""

    def _engine_gram(self, A, v, s: int, rng: np.random.Generator) -> SketchedGram:
        """``H̃`` for v on an engine (module docstring, "On an engine")."""
        raise ValueError(
            f"sketch {self.name!r} needs all of A in one place; on an engine use 'leverage', "
            "'uniform', 'countsketch' or 'gaussian'."
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def bernstein_size(d: int, eps: float, delta: float, beta: float = 1.0) -> int:
    """``s = ⌈2 β d (1 + ε/3) ln(2d/δ) / ε²⌉`` (module docstring, (Bernstein))."""
    return math.ceil(2 * beta * d * (1 + eps / 3) * math.log(2 * d / delta) / eps**2)


def _probabilities(scores: np.ndarray) -> np.ndarray:
    """``p = scores / Σ scores`` (n,), with the total renormalised for ``Generator.choice``."""
    total = float(np.sum(scores))
    if not total > 0:
        raise ValueError("the weights v are all zero: there is nothing to sample.")
    return scores / total


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

    def _gram(self, A, v, s, rng):
        n = v.size
        idx, scale = sample_rows(np.full(n, 1.0 / n), s, s, rng)
        return SketchedGram(_gram_of_rows(A, idx, v[idx] * scale), s, idx.size)

    def _engine_gram(self, A, v, s, rng):
        H, rows = _engine_sample(v, None, s, rng)
        return SketchedGram(H, s, rows)


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

    def _gram(self, A, v, s, rng):
        t0 = time.perf_counter()
        p = _probabilities(exact_leverage_scores(A, v))
        t_lev = time.perf_counter() - t0
        idx, scale = sample_rows(p, s, s, rng)
        return SketchedGram(_gram_of_rows(A, idx, v[idx] * scale), s, idx.size, t_lev, True)


def approximate_leverage_scores(A, v: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``ℓ_i = ||a_iᵀ R⁻¹ G||²`` (n,), so that ``v_i ℓ_i ≈ τ_i`` (Drineas et al. 2012, Alg. 1).

    R (d, d) is the Cholesky factor of ``(S₁M)ᵀ(S₁M)`` for a CountSketch S₁ with s₁ = 2d rows
    (Clarkson–Woodruff 2013), so ``M R⁻¹`` has nearly orthonormal columns; G (d, k) is Gaussian,
    k = min(d, 16), so ``||m_iᵀ R⁻¹ G||² ≈ ||m_iᵀ R⁻¹||²`` (Johnson–Lindenstrauss). Cost: two
    passes over A (the sparse product and ``A (R⁻¹G)``, (n, k)) plus O(s₁ d² + d³) — about two
    gradient evaluations. The product ``A (R⁻¹G)`` runs in float32, in blocks of
    ``JL_BLOCK_ROWS`` rows (faster than float64; docs/solver.md, "Measured constants"): the
    scores, which only set sampling probabilities, change by ~1e-6 relative (if A overflows float32, the product is redone in
    float64). ℓ does not depend on v beyond R, which is what lets the solver reuse it.
    """
    d = A.shape[1]
    SM = countsketch(as_rows(A).array(), v, PRECOND_ROWS_PER_D * d, rng)  # (s₁, d)
    Omega, scale = jl_map(SM, rng)
    return row_norms2(as_rows(A).array(), Omega / scale, JL_BLOCK_ROWS) * scale**2


def jl_map(SM: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """``(Ω, scale)``: ``Ω = R⁻¹ G`` (d, k) for the Cholesky factor R of ``(S₁M)ᵀ(S₁M)`` given
    ``SM = S₁ M`` (s₁, d), and ``scale = max |Ω|`` (float32 holds Ω/scale in [-1, 1]); see
    :func:`approximate_leverage_scores`."""
    d = SM.shape[1]
    C = gram(SM)
    C[np.diag_indices(d)] += 1e-14 * np.trace(C) / d + 1e-300  # rank-deficient M: a tiny ridge
    R = np.linalg.cholesky(C).T  # (d, d), upper: RᵀR = C
    k = min(d, JL_COLUMNS)
    r = np.abs(np.diag(R))
    if r.min() ** 2 > RANK_FLOOR * r.max() ** 2:
        G = rng.standard_normal((d, k)) / math.sqrt(k) if k < d else np.eye(d)
        Omega = np.linalg.solve(R, G)  # (d, k)
    else:  # rank-deficient M (zero or duplicated columns): R⁻¹ would blow up null(M); use C⁺
        Omega = _pseudo_inverse_root(C, k, rng)
    return Omega, float(np.max(np.abs(Omega))) or 1.0


def _pseudo_inverse_root(C: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """``Ω = W G`` (d, k') with ``W Wᵀ = C⁺`` (eigenvalues ≤ RANK_FLOOR·max left out), G (r, k')
    Gaussian, so that ``||a_iᵀ Ω||² ≈ a_iᵀ C⁺ a_i`` on the row space of M."""
    lam, V = np.linalg.eigh(C)
    keep = lam > RANK_FLOOR * lam[-1]
    W = V[:, keep] / np.sqrt(lam[keep])  # (d, r)
    r = W.shape[1]
    return W @ (rng.standard_normal((r, k)) / math.sqrt(k) if k < r else np.eye(r))


class ApproximateLeverage(Sketch):
    """Leverage-score sampling with fast approximate scores, ``p_i ∝ v_i ℓ_i``; rule (Bernstein), β = 12.

    **Reuse across iterations** (``drift``): ℓ depends on v only through R, so when v moves to v'
    with every ``v'_i / v_i`` in ``[1/γ, γ]``, ``v'_i ℓ_i`` still bounds the new scores up to a factor
    γ² (``H/γ ⪯ H' ⪯ γ H``); the scores are then reused and only re-weighted by v' (O(n)). They are
    recomputed when the drift exceeds γ = ``drift`` (ratios taken with v floored at 1e-8 max v, since
    rows of negligible weight do not matter), and at every call when ``drift=None``.
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

    def _gram(self, A, v, s, rng):
        t0 = time.perf_counter()
        v_ref = self._v_ref
        recompute = self._ell is None or v_ref is None or drifted(v, v_ref, self.drift)
        if recompute:
            self._ell, self._v_ref = approximate_leverage_scores(A, v, rng), v.copy()
        p = _probabilities(v * self._ell)
        t_lev = time.perf_counter() - t0
        idx, scale = sample_rows(p, s, s, rng)
        return SketchedGram(_gram_of_rows(A, idx, v[idx] * scale), s, idx.size, t_lev, recompute)

    def _engine_gram(self, A, v, s, rng):
        t0 = time.perf_counter()
        recompute = self._ell is None or _engine_drifted(v, self._v_ref, self.drift)
        if recompute:  # v is the solver's v₊, a fresh BlockVector never written again: kept as is
            self._ell, self._v_ref = _engine_leverage_scores(v, rng), v
        t_lev = time.perf_counter() - t0
        H, rows = _engine_sample(v, self._ell, s, rng)
        return SketchedGram(H, s, rows, t_lev, recompute, passes=2 * recompute)


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

    def _gram(self, A, v, s, rng):
        return SketchedGram(gram(countsketch(as_rows(A).array(), v, s, rng)), s, s)

    def _engine_gram(self, A, v, s, rng):
        return SketchedGram(gram(_engine_project(Block.countsketch, v, s, rng)), s, s, passes=1)


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

    def _gram(self, A, v, s, rng):
        A, n = as_rows(A).array(), v.size
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

    def _gram(self, A, v, s, rng):
        return SketchedGram(gram(gaussian_sketch(as_rows(A).array(), v, s, rng)), s, s)

    def _engine_gram(self, A, v, s, rng):
        return SketchedGram(gram(_engine_project(Block.gaussian_sketch, v, s, rng)), s, s, passes=1)


# -- on an engine (v a BlockVector: every O(n) vector stays on the blocks) ------------------------


def _block_seed(rng: np.random.Generator) -> int:
    """The driver's draw that, with a block's index k, seeds that block's randomness."""
    return int(rng.integers(2**63 - 1))


def _per_block(v, *extra) -> list[tuple]:
    return [(k, *(e[k] for e in extra)) for k in range(len(v.engine.bounds))]


def _engine_project(kernel: Kernel, v, s: int, rng) -> np.ndarray:
    """``S diag(√v) A`` (s, d) = Σ_k S_k diag(√v_k) A_k: each block draws its own columns of S
    from ``(seed, k)`` (one pass, one round, (s, d) per block)."""
    return v.engine.sum(kernel, v.key, s, _block_seed(rng), per_block=_per_block(v))


def _engine_sample(v, ell, s: int, rng) -> tuple[np.ndarray, int]:
    """Row sampling on an engine: ``(Σ_sampled c_i v_i a_i a_iᵀ/(s p_i), distinct rows)`` for s
    i.i.d. draws with ``p_i = v_i ℓ_i / Σ v ℓ`` (``1/n`` for ``ell`` None).

    Per-block multinomial: the driver draws the counts ``(s_k) ~ Multinomial(s, P_k / P)``,
    ``P_k = Σ_{i ∈ k} p_i`` (one round for the sums; none for uniform), then block k draws its
    s_k rows i.i.d. from ``p_i / P_k`` (seeded by ``(seed, k)``). That is exactly the in-memory
    distribution (s i.i.d. draws from p, grouped by block), so H̃ keeps its expectation
    ``Aᵀ diag(v) A`` and the sampling lemma's bound; only the random stream differs.
    """
    eng = v.engine
    if ell is None:
        mass = np.array([j - i for i, j in eng.bounds], dtype=np.float64)
    else:
        mass = np.array([m for (m,) in eng.map(Block.dots, [(v.key, ell.key)])])
    total = float(np.sum(mass))
    if not total > 0:
        raise ValueError("the weights v are all zero: there is nothing to sample.")
    draws = rng.multinomial(s, mass / total).tolist()
    seed = _block_seed(rng)
    key = None if ell is None else ell.key
    res = eng.map(Block.sample_gram, v.key, key, total, s, seed, per_block=_per_block(v, draws))
    H = res[0][0]
    for h, _ in res[1:]:
        H = H + h
    return H, sum(c for _, c in res)


def _engine_leverage_scores(v, rng):
    """:func:`approximate_leverage_scores` on an engine, as a BlockVector ℓ (two passes): the
    CountSketch ``S₁ diag(√v) A`` summed over blocks (one round, (2d, d) per block), R and Ω on
    the driver (:func:`jl_map`), then ``ℓ_i = ||a_iᵀ Ω/scale||²`` on the blocks (one round,
    nothing returned). ℓ is the in-memory one divided by ``scale²``: p ∝ v ∘ ℓ is unchanged."""
    SM = _engine_project(Block.countsketch, v, PRECOND_ROWS_PER_D * v.engine.shape[1], rng)
    Omega, scale = jl_map(SM, rng)
    ell = v.engine.new()
    v.engine.later(Block.row_norms2, ell.key, Omega / scale, JL_BLOCK_ROWS)
    return ell


def _engine_drifted(v, v_ref, gamma: float | None) -> bool:
    """:func:`drifted` on an engine: the extreme ratios per block (one round; the maxima of v and
    v_ref come with them from ``EngineRows.split_positive``)."""
    if gamma is None:
        return True
    floor = 1e-8 * max(_largest(v), _largest(v_ref))
    ratios = v.engine.map(Block.drift, v.key, v_ref.key, floor)
    return max(hi for hi, _ in ratios) > gamma or min(lo for _, lo in ratios) < 1 / gamma


def _largest(v) -> float:
    """``max v`` for v on an engine: ``v.sums["max"]``, computed (one round) if not yet known."""
    if "max" not in v.sums:
        v.sums["max"] = max(v.engine.map(Block.amax, v.key))
    return v.sums["max"]


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
