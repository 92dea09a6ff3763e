r"""One row block where it lives: its rows of A, b, w, and the solver's O(n) vectors for those rows.

A :class:`Block` holds ``A_k`` (m_k, d), ``b_k``, ``w_k`` (m_k,) and a dict of named (m_k,)
vectors (z, f, r, q, v, images A u) that the driver refers to by key
(:class:`theory.engine.BlockVector`). Its methods are the **kernels** of the engines: each reads
and writes only this block's arrays and returns O(1), O(d) or O(d²) numbers, never a vector of
length m_k. The z-space ones run :class:`theory.loss.SoftmaxLoss` (the in-memory loss's own code) on
the block's rows, given the global numbers the driver merges (arXiv 2306.04933, appendix C;
``f = softmax(z)``, ``s = <b, 1>``)::

    softmax_stats   m_k = max z_k,  e_k = exp(z_k − m_k),  S_k = Σ e_k
                    driver: m = max_k m_k,  S = Σ_k S_k e^{m_k − m},  lse = m + log S,
                            c_k = e^{m_k − m} / S            (so f_k = c_k e_k)
    softmax_finish  f_k = c_k e_k, and the block's SoftmaxLoss.sums (ℓ's three, <1, t>, Σ f², Σ b f)
    derivatives     r, q, v by SoftmaxLoss.vectors with the global s − <1, t>
    sweep           the loss-and-gradient partial of theory.sweep (one read of A_k)
    rmatvec         A_kᵀ [r₁, …]   (d,) or (d, k);     weighted_gram   A_kᵀ diag(v_k) A_k  (d, d)

and, for the sketched solvers, the subspace workspace (``matvec_into`` A u into a column of Z,
``subspace_model`` Z_kᵀ[r, f, q] (k, 3) and Z_kᵀ diag(v_k) Z_k (k, k), ``trial_point`` z + Z y
with ℓ's sums there in one round (theory.sweep.point_sums), ``push_image``) and the sketches
(``positive_part`` v₊ and the Gram of the rows v < 0,
``countsketch`` / ``gaussian_sketch`` S_k diag(√v_k) A_k (s, d), ``row_norms2`` ℓ = ||A_k Ω||²
kept on the block, ``drift``, ``sample_gram`` Σ_sampled c_i v_i a_i a_iᵀ / (s p_i) (d, d)); a
kernel that draws random numbers seeds them with ``(seed, k)``, the driver's seed and the block's
index. The driver's merges are sums in block order, so a solve is deterministic for a given
blocking. The sketch kernels run :mod:`theory.linalg`'s per-row functions, the ones the in-memory
sketches run. The same code runs on numpy arrays (in process, in a thread pool, on a Dask worker)
and on torch tensors (any device), through the array API namespace of the block's arrays
(``array_api_compat``); numpy blocks take numpy's own calls where they are faster or release the
GIL (the blocked Gram, ``np.dot``, ``matmul`` into a column, the CountSketch as a sparse
product), and :meth:`Block.host` turns results into float64 numpy.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from array_api_compat import array_namespace, is_numpy_namespace
from array_api_compat import device as array_device

from theory.linalg import (
    countsketch,
    gaussian_sketch,
    gram_and_product,
    ratio_range,
    row_norms2,
    sample_rows,
    to_host,
    weighted_gram,
)
from theory.loss import HessianParts, SoftmaxLoss
from theory.sweep import Partial, hessp_sweep, point_sums, sweep


class Block:
    """Rows ``start : start + m`` of A, b, w (see the module docstring): float64 arrays of one
    module, numpy or torch, on one device. ``xp`` is their array API namespace
    (``array_api_compat``), ``numpy`` whether it is numpy's (where numpy's own BLAS calls are
    faster or release the GIL)."""

    def __init__(self, A, b, w, start: int = 0):
        self.A, self.w, self.start = A, w, start
        self.xp = array_namespace(A)
        self.numpy = is_numpy_namespace(self.xp)
        self.device = array_device(A)
        self.set_b(b)
        self.vec: dict[str, Any] = {}
        self.m = int(A.shape[0])

    # -- moving numbers between driver and block ------------------------------------------------

    def dev(self, x):
        """A driver array (numpy, O(d) or O(d²)) as this block's array type."""
        return self.xp.asarray(np.asarray(x, dtype=np.float64), device=self.device)

    def host(self, x):
        """A small result as float64 numpy (a float for a scalar)."""
        x = to_host(x)
        return float(x) if x.ndim == 0 else x

    def free(self, keys) -> None:
        for k in keys:
            self.vec.pop(k, None)

    def run(self, calls, freed) -> object:
        """``self.kernel(*args)`` for each ``(kernel, args)`` of ``calls`` in order, then free the
        vectors ``freed`` (after: a deferred call may still read a vector whose handle has since
        died); the last call's result. One round's message (an engine's only entry point, so a
        Dask actor gets one message per round, deferred kernels included)."""
        out = None
        for kernel, args in calls:
            out = getattr(self, kernel)(*args)
        if freed:
            self.free(freed)
        return out

    # -- generation and set-up -------------------------------------------------------------------

    def info(self):
        """``(m_k, d, Σ b_k, min w_k², all finite)``: checked once by the engine."""
        finite = all(bool(self.xp.isfinite(a).all()) for a in (self.A, self.b, self.w2))
        return (
            self.m,
            int(self.A.shape[1]),
            self.host(self.b.sum()),
            self.host(self.w2.min()),
            finite,
        )

    def set_b(self, b) -> None:
        """``b_k ← b``, and the block's z-space loss (:class:`~theory.loss.SoftmaxLoss`, the
        in-memory one's formulas on these rows) with it."""
        self.b = b
        self.loss = SoftmaxLoss(b, self.w)
        self.w2 = self.loss.w2
        self.b_sums = (self.host(b.sum()), self.host(b @ b))  # Σ b_k, Σ b_k²: every point's

    def scale_b(self, c: float) -> None:
        """``b_k ← c b_k`` (normalising b generated on the workers)."""
        self.set_b(self.b * c)

    def plant_scale(self, x):
        """``max_i |A_k x|_i``: the peaked family's ``||A x♮||_∞`` (:func:`planted_direction`)."""
        return self.host(self.xp.abs(self.A @ self.dev(x)).max())

    def plant(self, x, c: float) -> None:
        """``b_k = exp(c A_k x)`` (unnormalised; ``|c A x| ≤ PEAK_LOGIT``, so no shift is needed)."""
        self.set_b(self.xp.exp(c * (self.A @ self.dev(x))))

    # -- the z-space loss ------------------------------------------------------------------------

    def matvec(self, key: str, x) -> None:
        """``vec[key] = A_k x`` (m_k,) or (m_k, j)."""
        self.vec[key] = self.A @ self.dev(x)

    def zeros(self, key: str, cols: int | None = None) -> None:
        """``vec[key] = 0``, (m_k,) or (m_k, cols), the matrix column-major (its columns are the
        subspace images, each written and read whole)."""
        if cols is None:
            self.vec[key] = self.xp.zeros(self.m, dtype=self.A.dtype, device=self.device)
        else:
            self.vec[key] = self.xp.zeros((cols, self.m), dtype=self.A.dtype, device=self.device).T

    def matvec_into(self, key: str, j: int, x) -> None:
        """``vec[key][:, j] = A_k x``: an image written into column j of an (m_k, k) matrix."""
        if self.numpy:  # into the column: no temporary of m_k numbers
            np.matmul(self.A, self.dev(x), out=self.vec[key][:, j])
        else:
            self.vec[key][:, j] = self.A @ self.dev(x)

    def softmax_stats(self, z: str, e: str):
        """``(m_k, S_k)`` with ``vec[e] = exp(z_k − m_k)``."""
        self.vec[e], m, total = self.loss.exp_shifted(self.vec[z])
        return m, total

    def softmax_finish(self, z: str, e: str, f: str, c: float, lse: float):
        """``vec[f] = c e_k`` (``vec[e]`` dropped), and the block's six sums of
        :meth:`~theory.loss.SoftmaxLoss.sums` (an array, summed over blocks)."""
        self.scale_into(e, f, c)
        return np.array(self.loss.sums(self.vec[z], self.vec[f], lse, full=True))

    def derivatives(self, z: str, f: str, keys, s: float, tsum: float) -> None:
        """``vec[keys[0]] = r``, and with three keys ``q``, ``v`` too
        (:meth:`~theory.loss.SoftmaxLoss.vectors` with the global ``s − <1, t>``)."""
        out = self.loss.vectors(self.vec[z], self.vec[f], coef=s - tsum, hessian=len(keys) == 3)
        for key, vec in zip(keys, out):
            self.vec[key] = vec

    def sweep(self, x, z: str | None = None) -> Partial:
        """The block's :class:`~theory.sweep.Partial` at x: ℓ's sums and ``A_kᵀ [u, u ∘ b, u²,
        w² ∘ z − b]`` in one read of A_k (:func:`theory.sweep.sweep`); ``vec[z] = A_k x`` too
        when ``z`` is given."""
        z_out = None
        if z is not None:
            z_out = self.vec[z] = self.loss.ops.empty(self.b)
        return sweep(self.A, self.b, self.w2, self.dev(x), z_out=z_out)

    def hessp_sweep(self, parts, v, with_range: bool = False):
        """``[A_kᵀ(diag ∘ A_k v), fᵀ(A_k v), qᵀ(A_k v)]`` (d + 2,) for B's parts on the block (keys
        ``parts`` = diag, f, q): :func:`theory.sweep.hessp_sweep`, one read of A_k."""
        diag, f, q = (self.vec[key] for key in parts)
        return hessp_sweep(self.A, diag, f, q, self.dev(v), with_range=with_range)

    def softmax_at(self, z: str, f: str, lse: float) -> None:
        """``vec[f] = exp(z_k − lse)``: f where the global lse is known (after a sweep)."""
        self.vec[f] = self.loss.softmax_from(self.vec[z], lse).f

    # -- products with A -------------------------------------------------------------------------

    def rmatvec(self, keys):
        """``A_kᵀ r_k`` (d,) for one key, ``A_kᵀ [r₁ … r_j]`` (d, j) for a list."""
        if isinstance(keys, str):
            return self.host(self.loss.ops.dot(self.A.T, self.vec[keys]))
        R = self.xp.stack([self.vec[k] for k in keys], axis=1)
        return self.host(self.loss.ops.dot(self.A.T, R))

    def weighted_gram(self, v: str):
        """``A_kᵀ diag(v_k) A_k`` (d, d)."""
        return self._gram(self.A, self.vec[v])

    def gram_and_rmatvec(self, v: str, keys):
        """``[A_kᵀ diag(v_k) A_k, A_kᵀ [r₁ … r_j]]`` (d, d + j): the exact Hessian's two sums in
        one round and (numpy) one read of A_k (:func:`theory.linalg.gram_and_product`)."""
        if not self.numpy:
            return np.hstack([self.weighted_gram(v), self.rmatvec(keys)])
        R = np.stack([self.vec[k] for k in keys], axis=1)
        return np.hstack(gram_and_product(self.A, self.vec[v], R))

    def _gram(self, M, w):
        """``Mᵀ diag(w) M`` (d, d) as numpy, for rows M of this block and weights w of any sign."""
        if self.numpy:
            return weighted_gram(M, w)
        return self.host(M.T @ (w[:, None] * M))

    def scale_rows(self, out: str, v: str, Y: str) -> None:
        """``vec[out] = v_k[:, None] ∘ Y_k`` for an (m_k, j) ``vec[Y]``."""
        self.vec[out] = self.vec[v][:, None] * self.vec[Y]

    def dots(self, pairs):
        """``[Σ a ∘ c for (a, c) in pairs]`` (keys), an array."""
        return np.array([self.host(self.vec[a] @ self.vec[c]) for a, c in pairs])

    def image_sumsq(self, U):
        """``||A_k U||_F²``."""
        P = self.A @ self.dev(U)
        return self.host((P * P).sum())

    def sumsq(self):
        """``||A_k||_F²``."""
        return self.host((self.A * self.A).sum())

    def amax(self, key: str, absolute: bool = False) -> float:
        """``max_i vec[key]_i`` (of ``|vec[key]|`` with ``absolute``)."""
        x = self.vec[key]
        return self.host((self.xp.abs(x) if absolute else x).max())

    # -- the subspace solver's z-space workspace (theory.subspace) --------------------------------

    def subspace_model(self, Z: str, k: int, r: str, v: str, f: str, q: str):
        """``(Z_kᵀ [r, f, q], Z_kᵀ diag(v_k) Z_k)``, (k, 3) and (k, k), for the first k columns of
        ``vec[Z]``: the block's share of the subspace gradient, Gram and low-rank range."""
        parts = HessianParts(diag=self.vec[v], f=self.vec[f], q=self.vec[q], kappa=0.0)
        ZR, ZVZ = parts.subspace_sums(self.vec[Z][:, :k], self.vec[r])
        return self.host(ZR), self.host(ZVZ)

    def trial_point(self, out: str, e: str, z: str, Z: str, y):
        """``vec[out] = z_k + Z_k y`` for y (k,), a trial point of the subspace solver, and the
        block's share of ℓ's sums there (:func:`theory.sweep.point_sums`): one round where the
        formulas as written take two (z + Z y and its maximum, then f and ℓ's sums).
        ``vec[e] = exp(z_k − m_k)``, for :meth:`scale_into`."""
        y = self.dev(y)
        zt = self.vec[out] = self.vec[Z][:, : y.shape[0]] @ y + self.vec[z]
        p, self.vec[e] = point_sums(zt, self.b, self.w2, self.b_sums)
        return p

    def scale_into(self, e: str, f: str, c: float) -> None:
        """``vec[f] = c vec[e]`` in place (``vec[e]`` dropped): f = e^{m_k − lse} exp(z_k − m_k)."""
        fk = self.vec.pop(e)
        fk *= c
        self.vec[f] = fk

    def push_image(self, Z: str, y) -> None:
        """``vec[Z] ← [Z_k[:, 0], Z_k y, Z_k[:, 1:-1]]``: the step's image ``Z y`` becomes the
        newest memory column (the oldest drops out; column 0 is overwritten by the next ``A u``)."""
        y = self.dev(y)
        Zk = self.vec[Z]
        Zy = Zk[:, : y.shape[0]] @ y
        if Zk.shape[1] > 2:
            Zk[:, 2:] = Zk[:, 1:-1] * 1  # a copy first: the slices overlap
        Zk[:, 1] = Zy

    # -- sketches of A_kᵀ diag(v_k) A_k (theory.sketch); randomness from (seed, block index) -----

    def positive_part(self, out: str, v: str):
        """``vec[out] = max(v_k, 0)``; returns ``(max v_k, #{v_i < 0}, Σ_{v_i < 0} v_i a_i a_iᵀ)``
        (the Gram None when no row is negative): the rows sampling never sees, added exactly."""
        vk = self.vec[v]
        self.vec[out] = vk.clip(0)
        neg = vk < 0
        count = int(neg.sum())
        return self.host(vk.max()), count, (self._gram(self.A[neg], vk[neg]) if count else None)

    def drift(self, v: str, ref: str, floor: float):
        """``(max, min)`` over the block of ``max(v, floor) / max(ref, floor)``
        (:func:`theory.linalg.ratio_range`)."""
        return ratio_range(self.vec[v], self.vec[ref], floor)

    def row_norms2(self, out: str, Omega, chunk: int) -> None:
        """``vec[out]_i = ||a_iᵀ Ω||²``: the approximate leverage scores of :mod:`theory.sketch`
        on the block's rows (:func:`theory.linalg.row_norms2`)."""
        self.vec[out] = row_norms2(self.A, self.dev(Omega), chunk)

    def sample_gram(
        self, v: str, ell: str | None, total: float, s: int, seed: int, k: int, draws: int
    ):
        """``Σ_i c_i v_i a_i a_iᵀ / (s p_i)`` (d, d) over ``draws`` i.i.d. rows of this block drawn
        with probabilities ∝ ``p_i = v_i ℓ_i / total`` (``ℓ = vec[ell]``; ``p_i = 1/total`` for
        ``ell`` None: uniform), ``c_i`` the times row i was drawn; and the distinct rows drawn."""
        vk = self.vec[v]
        p = np.full(self.m, 1.0 / total) if ell is None else self.host(vk * self.vec[ell]) / total
        if not draws:
            return np.zeros((self.A.shape[1],) * 2), 0
        idx, scale = sample_rows(p, draws, s, np.random.default_rng([seed, k]))
        rows = self.xp.asarray(idx, device=self.device)
        return self._gram(self.A[rows], vk[rows] * self.dev(scale)), int(idx.size)

    def countsketch(self, v: str, s: int, seed: int, k: int):
        """``S_k diag(√v_k) A_k`` (s, d) for this block's columns of a CountSketch S
        (:func:`theory.linalg.countsketch`, drawn from ``(seed, k)``)."""
        return countsketch(self.A, self.vec[v], s, np.random.default_rng([seed, k]))

    def gaussian_sketch(self, v: str, s: int, seed: int, k: int):
        """``S_k diag(√v_k) A_k`` (s, d) for this block's columns of a Gaussian S, N(0, 1/s)."""
        return gaussian_sketch(self.A, self.vec[v], s, np.random.default_rng([seed, k]))


class GeneratedBlock(Block):
    """A block whose rows are drawn where it lives (:func:`block_rows`), never sent from the driver."""

    def __init__(self, family: str, n: int, d: int, seed: int, start: int, stop: int):
        A, b, w = block_rows(family, n, d, seed, start, stop)
        super().__init__(A, b, w, start)


# -- the instance families, drawn tile by tile (theory.instances documents what each is for) ------

FAMILIES = ("theorem", "quadratic", "sparse", "peaked", "coherent", "wide")
BLOCK_FAMILIES = FAMILIES[1:]  # theorem's w needs all of b on one machine (theory.bounds)
TILE_ROWS = 1024  # rows drawn from one seed: a block draws the tiles it overlaps
SPARSE_SUPPORT = 4  # rows that carry b in the sparse and wide families
PEAK_LOGIT = 12.0  # ||A x♮||_∞ of the peaked family: f spans e^{±12} around 1/n
WIDE_MIN_D = 1024
W2 = {"theorem": 1.0, "quadratic": 1.0, "coherent": 1.0, "sparse": 0.1, "peaked": 0.1, "wide": 0.1}
"""w² = W2[family] / n (quadratic: w² = 1; theorem: a placeholder, its w comes from the bound)."""


def check_family(family: str, n: int, d: int, engine: bool = False) -> None:
    """ValueError for an unknown family, or one that cannot be drawn at (n, d) / on an engine."""
    if engine and family in FAMILIES and family not in BLOCK_FAMILIES:
        raise ValueError(
            f"family {family!r} cannot be drawn block by block (its w needs all of b in one "
            f"place); valid on an engine: {', '.join(BLOCK_FAMILIES)}."
        )
    if family not in FAMILIES:
        raise ValueError(f"unknown family {family!r}; valid families: {', '.join(FAMILIES)}.")
    if family == "wide" and d < WIDE_MIN_D:
        raise ValueError(f"the wide family needs d ≥ {WIDE_MIN_D}; got d = {d}.")


def block_rows(family: str, n: int, d: int, seed: int, start: int, stop: int):
    """Rows ``start:stop`` of an instance family: the one generator of every backend and of
    :func:`theory.instances.make_instance`.

    Rows come in tiles of :data:`TILE_ROWS`, tile t drawn from ``(seed, t)`` alone, so every
    blocking of the same n rows gives the same A, b, w. b comes unnormalised (the caller divides by
    its global sum; ``peaked``'s b is zero here and planted afterwards, :func:`planted_direction`).
    A (m, d) is standard Gaussian (``theorem``: divided by √n; ``coherent``: row i scaled by
    1 + Pareto(1.5)); b ∝ Gamma(10) draws (``quadratic``: Dirichlet(10)), Gamma(1) (``theorem``,
    ``coherent``: Dirichlet(1)) or 1 on 4 rows chosen from the seed (``sparse``, ``wide``);
    w = √(:data:`W2`[family] / n), w = 1 for ``quadratic``. Returns numpy arrays.
    """
    check_family(family, n, d)
    m = stop - start
    A, b = np.empty((m, d)), np.zeros(m)
    first, last = start // TILE_ROWS, (stop - 1) // TILE_ROWS
    for t in range(first, last + 1):
        lo, hi = t * TILE_ROWS, min(n, (t + 1) * TILE_ROWS)
        At, bt = _tile(family, n, d, seed, t, lo, hi)
        i, j = max(lo, start), min(hi, stop)
        dst, src = slice(i - start, j - start), slice(i - lo, j - lo)
        A[dst], b[dst] = At[src], bt[src]
    w2 = 1.0 if family == "quadratic" else W2[family] / n
    return A, b, np.full(m, math.sqrt(w2))


def _tile(family: str, n: int, d: int, seed: int, t: int, lo: int, hi: int):
    """Tile t's rows ``lo:hi`` of A and of the unnormalised b."""
    rng = np.random.default_rng([seed, t])
    A = rng.standard_normal((hi - lo, d))
    if family == "theorem":
        return A / math.sqrt(n), rng.gamma(1.0, size=hi - lo)
    if family == "quadratic":
        return A, rng.gamma(10.0, size=hi - lo)
    if family == "coherent":
        A *= (1.0 + rng.pareto(1.5, hi - lo))[:, None]
        return A, rng.gamma(1.0, size=hi - lo)
    b = np.zeros(hi - lo)
    if family in ("sparse", "wide"):
        support = np.random.default_rng([seed, n]).choice(n, SPARSE_SUPPORT, replace=False)
        b[support[(support >= lo) & (support < hi)] - lo] = 1.0
    return A, b


def planted_direction(n: int, d: int, seed: int) -> np.ndarray:
    """x♮ (d,) of the peaked family, b = softmax(c A x♮) with ``c = PEAK_LOGIT / ||A x♮||_∞``."""
    return np.random.default_rng([seed, n, d]).standard_normal(d)


def block_bounds(
    n: int, blocks: int | None = None, block_rows: int | None = None
) -> list[tuple[int, int]]:
    """``[(start, stop), …]``: ``blocks`` near-equal blocks, or blocks of ``block_rows`` rows."""
    if (blocks is None) == (block_rows is None):
        raise ValueError("give exactly one of blocks and block_rows.")
    if blocks is not None:
        if not 1 <= blocks <= n:
            raise ValueError(f"blocks must lie in [1, n = {n}]; got {blocks}.")
        edges = [n * k // blocks for k in range(blocks + 1)]
    else:
        assert block_rows is not None  # exactly one was given
        if block_rows < 1:
            raise ValueError(f"block_rows must be ≥ 1; got {block_rows}.")
        edges = [*range(0, n, block_rows), n]
    return list(zip(edges[:-1], edges[1:]))
