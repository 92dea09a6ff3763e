"""Dense kernels: ``Aᵀ diag(v) A`` (the one O(n d²) product every Hessian in this package needs) and
the (d, d) symmetric solve every Newton step needs; and the sketches' per-row work (row sampling,
CountSketch and Gaussian projections, the leverage scores' row norms, the drift test), written once
for A in memory and for each engine block's rows (numpy or torch)."""

from __future__ import annotations

import math

import numpy as np
import scipy.linalg
import scipy.sparse
from array_api_compat import array_namespace, is_numpy_namespace, to_device
from array_api_compat import device as array_device
from scipy.linalg import lapack


def gram(M: np.ndarray) -> np.ndarray:
    """``Mᵀ M`` (d, d) for M (m, d): numpy sends ``M.T @ M`` to BLAS ``syrk`` (half a ``gemm``'s flops)
    and mirrors the triangle, so the result is exactly symmetric.

    (scipy's ``blas.dsyrk`` on ``M.T`` was slower; docs/theory.md has the measurement.)
    """
    return M.T @ M


BLOCK_ROWS = 4096  # rows scaled and fed to syrk at a time: the block stays in cache.
BLOCK_MAX_D = (
    512  # wider A: one syrk over all rows is as fast (docs/solver.md, "Measured constants").
)


def weighted_gram(A: np.ndarray, v: np.ndarray) -> np.ndarray:
    """``Aᵀ diag(v) A = sum_i v_i a_i a_iᵀ`` (d, d) for A (n, d), v (n,) of any sign.

    Rows are scaled by ``sqrt|v_i|`` and fed to :func:`gram`; rows with ``v_i < 0`` (few, in the
    Hessians here) go to a second ``syrk`` that is subtracted, so nothing cancels inside one sum.
    For d ≤ 512 this runs over blocks of 4096 rows, never copying all of A (faster on tall A;
    docs/solver.md, "Measured constants").
    """
    return _gram_blocks(A, v, None)[0]


def gram_and_product(A: np.ndarray, v: np.ndarray, R: np.ndarray):
    """``(Aᵀ diag(v) A, Aᵀ R)``, (d, d) and (d, j), for R (n, j): :func:`weighted_gram` with ``Aᵀ R``
    added up block by block while each block of A is in cache, so A is read once (the exact
    Hessian's Gram and its range ``Aᵀ [f, q]``)."""
    return _gram_blocks(A, v, R)


def _gram_blocks(A: np.ndarray, v: np.ndarray, R: np.ndarray | None):
    n, d = A.shape
    if d > BLOCK_MAX_D or n <= 2 * BLOCK_ROWS:
        return _weighted_gram(A, v), (None if R is None else np.dot(A.T, R))
    H = np.zeros((d, d))
    G = None if R is None else np.zeros((d, R.shape[1]))
    buf = np.empty((BLOCK_ROWS, d))  # reused: a fresh (4096, d) array per block page-faults where
    for i in range(0, n, BLOCK_ROWS):  # glibc returns freed memory at once (Dask's workers)
        rows = slice(i, i + BLOCK_ROWS)
        if R is not None and G is not None:
            G += np.dot(A[rows].T, R[rows])
        H += _weighted_gram(A[rows], v[rows], buf)
    return H, G


def _weighted_gram(A: np.ndarray, v: np.ndarray, buf: np.ndarray | None = None) -> np.ndarray:
    """One syrk (two with negative weights) of ``sqrt|v| ∘ A``, scaled into ``buf`` if given."""
    out = None if buf is None else buf[: A.shape[0]]
    M = np.multiply(A, np.sqrt(np.abs(v))[:, None], out=out)  # (m, d)
    neg = v < 0
    if not neg.any():
        return gram(M)
    return gram(M[~neg]) - gram(M[neg])


RCOND_MIN = 1e-13  # Cholesky solves with a reciprocal condition below this lose all digits.
EIG_FLOOR = 1e-10  # fallback: |eigenvalues| below this fraction of the largest are a null space.


class SPDSolver:
    """``y ≈ H⁻¹ r`` for a symmetric H (d, d), a descent direction for any H.

    Cholesky when H is safely positive definite (reciprocal condition ≥ 1e-13). Otherwise the
    eigendecomposition ``H = V diag(λ) Vᵀ``, inverted as ``1 / max(|λ|, 1e-10 max|λ|)`` (negative
    curvature flipped, Nocedal & Wright §3.4); ``fallback`` says why, or is None. The eigenvectors
    with ``|λ| ≤ 1e-10 max|λ|`` are ``null`` (d, d − rank). When they span a null space of A (zero
    or duplicated columns make ∇²L singular along null(A), where L is flat), :meth:`restrict`
    leaves them out: ``y = V₊ diag(1/|λ₊|) V₊ᵀ r``, the minimum-norm step, in the row space of A.
    """

    def __init__(self, H: np.ndarray):
        self.fallback: str | None = None
        self.rank = H.shape[0]
        self.null = np.zeros((H.shape[0], 0))
        try:
            self._cho = scipy.linalg.cho_factor(H, lower=False, check_finite=False)
            rcond, _ = lapack.dpocon(self._cho[0], float(np.max(np.sum(np.abs(H), axis=0))))
            if not rcond >= RCOND_MIN:
                self.fallback = f"ill-conditioned (reciprocal condition {rcond:.1e})"
        except (np.linalg.LinAlgError, ValueError):
            self.fallback = "not positive definite"
        if self.fallback is not None:
            lam, self._V = np.linalg.eigh(H)
            floor = EIG_FLOOR * max(float(np.max(np.abs(lam))), 1e-300)
            self._small = np.abs(lam) <= floor
            self.rank = int(np.sum(~self._small))
            self.null = self._V[:, self._small]
            self._inv = 1.0 / np.maximum(np.abs(lam), floor)

    def restrict(self) -> None:
        """Leave the ``null`` eigenvectors out of every later solve (a pseudo-inverse)."""
        if self.fallback is not None:
            self._inv[self._small] = 0.0

    def solve(self, r: np.ndarray) -> np.ndarray:
        if self.fallback is None:
            return scipy.linalg.cho_solve(self._cho, r, check_finite=False)
        return self._V @ (self._inv * (self._V.T @ r))


def ratio_range(v, ref, floor: float) -> tuple[float, float]:
    """``(max, min)`` of ``max(v, floor) / max(ref, floor)``: how far weights v have moved from
    ``ref`` (numpy or torch arrays; :func:`theory.sketch.drifted`, an engine block's ``drift``)."""
    ratio = v.clip(floor) / ref.clip(floor)
    return float(ratio.max()), float(ratio.min())


def row_norms2(A, Omega, chunk: int):
    """``||a_iᵀ Ω||²`` (n,) for A (n, d) and Ω (d, k) of one array module (numpy or torch), in
    float32, ``chunk`` rows at a time; in float64 where A overflows float32 (or every norm comes
    out zero). The approximate leverage scores of :mod:`theory.sketch` (float32 is about twice
    as fast; docs/solver.md, "Measured constants")."""
    xp = array_namespace(A)
    O32 = xp.asarray(Omega, dtype=xp.float32)
    parts = []
    with np.errstate(over="ignore", invalid="ignore"):  # checked just below
        for i in range(0, A.shape[0], chunk):
            Y = xp.asarray(xp.asarray(A[i : i + chunk], dtype=xp.float32) @ O32, dtype=xp.float64)
            parts.append((Y * Y).sum(1))
    ell = xp.concat(parts)
    if not (bool(xp.isfinite(ell).all()) and bool((ell > 0).any())):
        Y = A @ Omega
        ell = (Y * Y).sum(1)
    return ell


def countsketch(A, v, s: int, rng: np.random.Generator):
    """``S diag(√v) A`` (s, d) as float64 numpy, for A (n, d) and v (n,) ≥ 0 of one array module
    and a CountSketch S (one ±1 per column, in a random one of s rows; the draws and their order
    are ``scipy.linalg.clarkson_woodruff_transform``'s). numpy: the weights go into a sparse S, no
    scaled copy of A; torch: bucket sums by ``index_add_``. O(nnz(A)) work, O(s d) memory."""
    n = A.shape[0]
    rows = rng.integers(0, s, size=n)
    signs = rng.choice(np.array([1.0, -1.0]), size=n)
    xp = array_namespace(A)
    if is_numpy_namespace(xp):
        S = scipy.sparse.csc_array((signs * np.sqrt(v), (rows, np.arange(n))), shape=(s, n))
        return np.asarray(S @ A)
    dev = array_device(A)
    M = (xp.asarray(signs, device=dev) * xp.sqrt(v))[:, None] * A
    out = xp.zeros((s, A.shape[1]), dtype=A.dtype, device=dev)
    return to_host(out.index_add_(0, xp.asarray(rows, device=dev), M))


def gaussian_sketch(A, v, s: int, rng: np.random.Generator):
    """``S diag(√v) A`` (s, d) as float64 numpy for a Gaussian S (s, n), entries N(0, 1/s) drawn
    on the host (A, v numpy or torch)."""
    xp = array_namespace(A)
    S = rng.standard_normal((s, A.shape[0])) / math.sqrt(s)
    return to_host(xp.asarray(S, device=array_device(A)) @ (xp.sqrt(v)[:, None] * A))


# -- leverage scores (theory.sketch.ApproximateLeverage) ---------------------------------------

JL_COLUMNS = 16  # columns of the Gaussian G in τ̃_i = ||a_iᵀ R⁻¹ G||² (Johnson–Lindenstrauss).
JL_BLOCK_ROWS = 2048  # rows of A cast to float32 at a time for A (R⁻¹G): a block stays in cache.
PRECOND_ROWS_PER_D = 2  # CountSketch rows per column for the R of ApproximateLeverage (s₁ = 2d).
RANK_FLOOR = 1e-12  # Cholesky pivots² below this fraction of the largest: M is rank-deficient.


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
    SM = countsketch(A, v, PRECOND_ROWS_PER_D * d, rng)  # (s₁, d)
    Omega, scale = jl_map(SM, rng)
    return row_norms2(A, Omega / scale, JL_BLOCK_ROWS) * scale**2


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


def to_host(a) -> np.ndarray:
    """An array of any array module (numpy, torch on any device) as float64 numpy."""
    return np.asarray(to_device(a, "cpu"), dtype=np.float64)


def probabilities(scores: np.ndarray) -> np.ndarray:
    """``p = scores / Σ scores`` (n,) for non-negative scores; ValueError when they are all zero."""
    total = float(np.sum(scores))
    if not total > 0:
        raise ValueError("the weights v are all zero: there is nothing to sample.")
    return scores / total


def sample_rows(p: np.ndarray, draws: int, s: int, rng: np.random.Generator):
    """``(idx, scale)``: ``draws`` i.i.d. rows drawn ∝ p (m,), the rows' probabilities in a
    sample of s from all n rows (on an engine's block they sum to the block's share), as sorted
    distinct indices and the reweighting ``c_i / (s p_i)``, ``c_i`` the times row i was drawn."""
    idx, counts = np.unique(rng.choice(p.size, size=draws, p=p / p.sum()), return_counts=True)
    return idx, counts / (s * p[idx])
