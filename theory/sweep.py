r"""The loss and its gradient in one sweep over A: the online softmax normaliser (beyond the paper).

``∇L = Aᵀ r`` (Lemma C.10) needs ``f = softmax(A x)``, whose normaliser ``α = Σ_i exp z_i`` is a
sum over all of A; computed as written, z must be finished before ``Aᵀ r`` can start, so a
gradient reads A twice. It need not be. With ``u = exp(z − m)`` for a shift m,
``f = u / α`` (α = Σ u), and every term of ℓ and of ``Aᵀ r`` is a sum over rows of u, u², b and
z (``e`` = exp_weight, ``s = <b, 1>``; the shared terms of :mod:`theory.loss`)::

    Aᵀ f = Aᵀ u / α,   Aᵀ(f ∘ b) = Aᵀ(u ∘ b) / α,   Aᵀ f² = Aᵀ u² / α²,   <1, t> = e (Σ f² − Σ f b)
    ∇L   = e (Aᵀ f² − Aᵀ(f ∘ b)) + (s − <1, t>) Aᵀ f + Aᵀ(w² ∘ z − b)
    ℓ    = ½ e (Σ f² − 2 Σ f b + Σ b²)  −  (Σ b (z − m) − s log α)  +  ½ Σ w² z²     (lse = m + log α)

So a chunk of rows A_k (its z_k = A_k x computed while A_k is in cache) contributes its
:class:`Partial`: ``G_k = A_kᵀ [u, u ∘ b, u², w² ∘ z − b]`` (d, 4) and seven sums, u taken
relative to the chunk's own maximum ``m_k``. Two partials merge by rescaling to the larger maximum
(the online normaliser of Milakov & Gimelshein, 2018, behind FlashAttention): the u and u ∘ b
terms by ``e^{m_k − m}``, the u² terms by ``e^{2(m_k − m)}``, ``Σ b (z − m)`` by adding
``(m_k − m) Σ b``. No exponent is ever positive, so the sweep is overflow-safe as
:meth:`theory.loss.SoftmaxLoss.softmax` is, and ``Σ b (z − m)`` keeps the loss free of the
``<b, z> − s lse`` cancellation.

The same three functions serve every backend: :func:`sweep` over an array's chunks (numpy in
memory or a ``numpy.memmap``, torch on any device; through ``array_api_compat``), :func:`merge` of
partials (a block's chunks, then the blocks on the driver), :func:`finish` into ``(parts, ∇L)``.
Rounding: ``∇L`` here differs from ``Aᵀ r`` formed row by row by a few ulps of
``|A|ᵀ(|f| + |b| + |w² z|)``, the scale of the terms (tests: within 1e-12 of it on every family).
"""

from __future__ import annotations

import functools
import math
from typing import Any, NamedTuple

import numpy as np
from array_api_compat import device as array_device

from theory.linalg import to_host
from theory.loss import ArrayOps, parts_from_sums

CHUNK_BYTES = 1 << 20  # a chunk of A: read twice while it stays in one core's L2 (docs/solver.md)
SWEEP_MIN_BYTES = 1 << 26  # solvers sweep beyond 64 MiB of A, past the L3 cache (docs/solver.md)
SUMS = ("u", "ub", "u2", "bzm", "wz2", "b", "b2")
"""The sums of a :class:`Partial`: Σu, Σ u b, Σ u², Σ b (z − m), Σ w² z², Σ b, Σ b²."""


class Partial(NamedTuple):
    """One sweep's sums over some rows, relative to their maximum ``m`` of z: ``sums`` (7,)
    (:data:`SUMS`) and ``G = Aᵀ [u, u ∘ b, u², w² ∘ z − b]`` (d, 4), float64 numpy."""

    m: float
    sums: np.ndarray
    G: np.ndarray


def pays(n: int, d: int) -> bool:
    """Whether a solver's new point takes one sweep rather than ``A x`` then ``Aᵀ r``: where A is
    larger than :data:`SWEEP_MIN_BYTES`. Below it A stays in the last-level cache between the two
    passes, and two passes cost less than the sweep's per-chunk work (docs/solver.md)."""
    return 8 * n * d > SWEEP_MIN_BYTES


def chunk_rows(d: int) -> int:
    """Rows of a chunk of A (n, d): :data:`CHUNK_BYTES` of float64, at least 64."""
    return max(64, CHUNK_BYTES // (8 * d))


def _rows(A, rows: int | None) -> int:
    """Rows per chunk for A (m, d): ``rows``, or :func:`chunk_rows` on the CPU and one chunk on
    another device (it runs the chunk whole); at most m."""
    if rows is None:
        on_cpu = str(getattr(A, "device", "cpu")).startswith("cpu")
        rows = chunk_rows(A.shape[1]) if on_cpu else A.shape[0]
    return min(rows, A.shape[0])


def sweep(A, b, w2, x, rows: int | None = None, z_out=None) -> Partial:
    """The :class:`Partial` of rows A (m, d), b, w² (m,) at x (d,), ``rows`` rows at a time
    (default :func:`chunk_rows`; on a torch device other than the CPU one chunk: the device runs
    it whole). ``z_out`` (m,), when given, receives ``A x``. A chunk's vectors are written into
    one reused (4, rows) buffer ``R`` (at cache-sized chunks, allocations would cost more than the
    arithmetic) and its sums added into the running ones, rescaled when a chunk raises the
    maximum (module docstring). Array methods (``z.max()``, ``R.sum(1)``), which numpy and torch
    spell alike, keep the per-chunk calls few."""
    ops, n = ArrayOps(A), A.shape[0]
    rows = _rows(A, rows)
    R = ops.xp.empty((4, rows), dtype=A.dtype, device=array_device(A))
    m, acc, G = -math.inf, np.zeros(7), np.zeros((A.shape[1], 4))
    for i in range(0, n, rows):
        A_k, b_k, w2_k = A[i : i + rows], b[i : i + rows], w2[i : i + rows]
        k = A_k.shape[0]
        u, ub, u2, r = R[0, :k], R[1, :k], R[2, :k], R[3, :k]
        z = ops.matmul(A_k, x, out=r)  # z lives in r's row until r is formed
        if z_out is not None:
            z_out[i : i + k] = z
        m_k = float(z.max())
        if m_k > m:
            if i:
                acc, G = _rescaled(acc, G, m - m_k)
            m = m_k
        ops.sub(z, m, out=u)
        bzm = float(b_k @ u)  # Σ b (z − m)
        ops.mul(w2_k, z, out=ub)
        wz2 = float(ub @ z)  # Σ w² z²
        ops.sub(ub, b_k, out=r)  # r = w² ∘ z − b (z is not needed again)
        ops.exp(u, out=u)
        ops.mul(u, b_k, out=ub)
        ops.mul(u, u, out=u2)
        G += to_host(ops.dot(R[:, :k], A_k).T)  # A_kᵀ Rᵀ (d, 4)
        acc[:3] += to_host(R[:3, :k].sum(1))
        acc[3:6] += (bzm, wz2, float(b_k.sum()))
    acc[6] = float(b @ b)  # Σ b², the same at every x
    return Partial(m, acc, G)


def hessp_sweep(A, diag, f, q, v, rows: int | None = None, with_range: bool = False) -> np.ndarray:
    """``[Aᵀ(diag ∘ t), fᵀt, qᵀt]`` (d + 2,) with ``t = A v``, for rows A (m, d) and B's parts on
    them, in one read of A: each chunk's ``t_k = A_k v`` is used while A_k is in cache. With
    ``[g, h] = Aᵀ [f, q]`` known, ``∇²L v = Aᵀ(diag ∘ t) + (κ fᵀt − qᵀt) g − (fᵀt) h``
    (:meth:`theory.loss.HessianParts.rank2_plus`): one sweep instead of ``A v`` then ``Aᵀ(B A v)``.
    ``with_range``: ``[g, h]`` too, from the same read (3d + 2,: g and h follow). numpy or torch
    arrays, summed over blocks."""
    ops, n, d = ArrayOps(A), A.shape[0], A.shape[1]
    rows = _rows(A, rows)
    buf = ops.xp.empty((rows,), dtype=A.dtype, device=array_device(A))
    out = np.zeros(3 * d + 2 if with_range else d + 2)
    for i in range(0, n, rows):
        A_k, f_k, q_k = A[i : i + rows], f[i : i + rows], q[i : i + rows]
        t = ops.matmul(A_k, v, out=buf[: A_k.shape[0]])
        out[d] += float(f_k @ t)
        out[d + 1] += float(q_k @ t)
        ops.mul(diag[i : i + rows], t, out=t)
        if with_range:  # Aᵀ [diag ∘ t, f, q] in one product while A_k is in cache
            P = to_host(ops.dot(ops.xp.stack([t, f_k, q_k]), A_k))  # (3, d)
            out[:d] += P[0]
            out[d + 2 :] += P[1:].reshape(-1)
        else:
            out[:d] += to_host(ops.dot(t, A_k))
    return out


def _rescaled(acc, G, delta: float):
    """Sums and G (numpy) relative to a maximum larger by ``−delta ≥ 0``: u terms × c, u² terms
    × c², ``Σ b (z − m)`` plus ``delta Σ b``; c = e^delta (new arrays)."""
    if delta == 0.0:
        return acc, G
    c = math.exp(delta)
    acc, G = acc * 1.0, G * 1.0
    acc[0:2] *= c
    acc[2] *= c * c
    acc[3] += delta * acc[5]
    G[:, 0:2] *= c
    G[:, 2] *= c * c
    return acc, G


def merge(p: Partial, q: Partial) -> Partial:
    """The :class:`Partial` of p's rows and q's together: both rescaled to the larger maximum."""
    m = max(p.m, q.m)
    sp, Gp = _rescaled(p.sums, p.G, p.m - m)
    sq, Gq = _rescaled(q.sums, q.G, q.m - m)
    return Partial(m, sp + sq, Gp + Gq)


def merge_all(partials) -> Partial:
    """:func:`merge` over a non-empty sequence of partials, in order."""
    return functools.reduce(merge, partials)


def point_sums(z, b, w2, b_sums=None) -> tuple[Partial, Any]:
    """ℓ's sums at a point z (m,) whose image under A is not needed (a trial point of
    :mod:`theory.subspace`), relative to ``m = max z``: the :class:`Partial` with an empty G
    (:func:`merge` and :func:`finish` give lse and ℓ's sums from the blocks' partials in one
    round, the online normaliser), and ``u = exp(z − m)``, so that f = u e^{m − lse} needs no
    second exp. ``b_sums``: ``(Σ b, Σ b²)``, the same at every point (computed when None).
    numpy or torch."""
    ops = ArrayOps(z)
    m = float(z.max())
    u = ops.sub(z, m, out=ops.empty(z))
    bzm = float(b @ u)  # Σ b (z − m), free of the <b, z> − s lse cancellation
    ops.exp(u, out=u)
    wz2 = float((w2 * z) @ z)
    sb, sb2 = (float(b.sum()), float(b @ b)) if b_sums is None else b_sums
    sums = [float(u.sum()), float(b @ u), float(u @ u), bzm, wz2, sb, sb2]
    return Partial(m, np.array(sums), np.zeros((0, 4))), u


class Swept(NamedTuple):
    """What one sweep says about x: ``loss`` = L(x), ``grad`` = ∇L(x) (d,), ``lse`` = log Σ exp z,
    and ``sums``: ℓ's terms and what r and κ need, under the keys of
    :meth:`theory.loss.SoftmaxLoss.sums` (``exp2`` Σ(f − b)², ``bzl`` Σ b (z − lse), ``wz2``
    Σ w² z², ``tsum`` <1, t>, ``ff`` Σ f², ``bf`` Σ b f)."""

    loss: float
    grad: np.ndarray
    lse: float
    sums: dict[str, float]


def finish(p: Partial, exp_weight: float = 1.0) -> Swept:
    """:class:`Swept` from the partial of all n rows (module docstring)."""
    su, sub, su2, sbzm, swz2, s, sb2 = (float(v) for v in p.sums)
    e = exp_weight
    F, FB, F2 = p.G[:, 0] / su, p.G[:, 1] / su, p.G[:, 2] / (su * su)
    ff, bf = su2 / (su * su), sub / su
    tsum = e * (ff - bf)
    grad = e * (F2 - FB) + (s - tsum) * F + p.G[:, 3]
    log_su = math.log(su)
    sums = {
        "exp2": ff - 2.0 * bf + sb2,
        "bzl": sbzm - s * log_su,
        "wz2": swz2,
        "tsum": tsum,
        "ff": ff,
        "bf": bf,
    }
    parts = parts_from_sums(e, sums["exp2"], sums["bzl"], swz2)
    return Swept(parts["exp"] + parts["cent"] + parts["reg"], grad, p.m + log_su, sums)
