r"""The loss in z-space: ``L(x) = ℓ(A x)``, and ℓ, its residual and B's parts as functions of z.

With ``z = A x`` (n,), ``f = softmax(z)``, ``c = f − b``, ``s = <b, 1>`` (arXiv 2306.04933, appendix C)::

    ℓ(z)   = e ½ ||f − b||²  −  <b, log f>  +  ½ <w² ∘ z, z>               (Defs. C.6–C.8)
    r      = ∂ℓ/∂z = J c + (s f − b) + w² ∘ z,   J = diag f − f fᵀ   (s f − b: Lemma C.10 part 3; J c: DLS23)
    B      = ∂²ℓ/∂z² = B_exp + B_cent + W² = diag(v) + κ f fᵀ − q fᵀ − f qᵀ    (B_exp: DLS23; B_cent: Def. C.13, Lemma C.14)
    q = (2f − b) ∘ f,   v = q − <f, c> f + s f + w²,   κ = <3f − 2b, f> − s

so ``∇L = Aᵀ r`` and ``∇²L = Aᵀ B A``. Computed with ``t = f ∘ c`` and ``t_u = t + (s − <1, t>) f``
(shared terms): ``r = t_u − b + w² ∘ z``, ``q = t + f²``, ``v = t_u + f² + w²``,
``κ = 3<f, f> − 2<b, f> − s``. ``e = exp_weight`` (default 1: the paper's L) weights L_exp; r and
B are linear in e through B_exp and ∇L_exp, so the code scales t by e and f² by e in q and v, and
``κ = e (3<f, f> − 2<b, f>) − s`` (e = 0: L_cent + L_reg, softmax cross-entropy with a ridge on z). The softmax takes one exp: ``f = exp(z − m) / Σ exp(z − m)``,
``m = max z``, ``lse = m + log Σ exp(z − m)``, and ``log f = z − lse`` (never ``log(f)``).

:class:`SoftmaxLoss` knows b and w, nothing of A. Its methods are pure functions of z (and f, which
is a function of z): they change no state of the loss. A caller that wants no allocation per call
(the subspace solver evaluates ℓ at many z) passes its own buffers: ``out`` arrays that receive
the results and ``tmp``, two (n,) scratch arrays (a (2, n) array or a pair). Conventions: z, f, r, q, v, b, w (n,), float64.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
from array_api_compat import array_namespace, is_numpy_namespace

from theory.rows import as_rows


@dataclass(frozen=True)
class HessianParts:
    """``B = diag(diag) + kappa f fᵀ − q fᵀ − f qᵀ`` (n, n), stored as three (n,) vectors and κ.

    ``diag`` can be negative where ``b_i > 2 f_i`` (peaked b); solvers that sample it add those
    rows exactly (:func:`theory.newton.sampled_diagonal_part`; docs/solver.md, "Algorithms").
    """

    diag: Any  # (n,) arrays (numpy or torch), or an engine's BlockVectors
    f: Any
    q: Any
    kappa: Any  # a float (per group: an array)

    def range(self, A):
        """``[g, h] = Aᵀ [f, q]`` (d, 2), the low-rank term's range: one pass over A (an ndarray or
        a :class:`~theory.rows.RowMatrix`, an engine's included)."""
        A = as_rows(A)
        return A.rmatvec(A.columns(self.f, self.q))

    def low_rank(self, A, G: np.ndarray | None = None) -> np.ndarray:
        """``Aᵀ (κ f fᵀ − q fᵀ − f qᵀ) A = κ g gᵀ − h gᵀ − g hᵀ`` (d, d), ``G = [g, h]`` (d, 2)
        when already known (:meth:`range`), else one pass over A."""
        G = self.range(A) if G is None else G
        g, h = G[:, 0], G[:, 1]
        hg = np.outer(h, g)
        return self.kappa * np.outer(g, g) - (hg + hg.T)  # exactly symmetric in floating point

    def hessian(self, rows) -> np.ndarray:
        """``Aᵀ B A = Aᵀ diag(v) A + Aᵀ (κ f fᵀ − q fᵀ − f qᵀ) A`` (d, d) for A's
        :class:`~theory.rows.RowMatrix`: the weighted Gram and ``Aᵀ [f, q]`` in one read of A, one
        round on an engine."""
        H, G = rows.gram_and_rmatvec(self.diag, rows.columns(self.f, self.q))
        return H + self.low_rank(None, G)

    def subspace_sums(self, Z, r, VZ=None):
        """``(Zᵀ [r, f, q], Zᵀ diag(diag) Z)``, (k, 3) and (k, k), for images Z = A V (n, k) of
        k directions and the residual r: the subspace model's sums before its rank-2 term
        (:func:`subspace_model`). Over row blocks they add up; ``VZ`` (n, k) is scratch for
        ``diag ∘ Z``. numpy or torch arrays."""
        ops = ArrayOps(Z)
        VZ = ops.mul(self.diag[:, None], Z, out=VZ)
        Zt = Z.T
        ZR = ops.xp.stack([ops.dot(Zt, r), ops.dot(Zt, self.f), ops.dot(Zt, self.q)], axis=1)
        return ZR, ops.dot(Zt, VZ)

    def apply(self, t: np.ndarray) -> np.ndarray:
        """``B t = diag ∘ t + (κ fᵀt − qᵀt) f − (fᵀt) q`` (n,) for t (n,) in memory: O(n), no n×n
        array (an engine's problem takes ``∇²L v`` in one sweep instead)."""
        return self.rank2_plus(self.diag * t, self.f, self.q, float(self.f @ t), float(self.q @ t))

    def rank2_plus(self, dt, f, q, ft: float, qt: float):
        """``dt + (κ fᵀt − qᵀt) f − (fᵀt) q``: B t with ``dt = diag ∘ t`` and (f, q), or
        ``Aᵀ B A v`` with ``dt = Aᵀ(diag ∘ A v)`` and ``(g, h) = Aᵀ [f, q]`` (t = A v)."""
        return dt + (self.kappa * ft - qt) * f - ft * q

    def dense(self) -> np.ndarray:
        """``B`` (n, n), for teaching and small-n tests only."""
        f, q = self.f, self.q
        return np.diag(self.diag) + self.kappa * np.outer(f, f) - np.outer(q, f) - np.outer(f, q)


def subspace_model(parts, ZR, ZVZ) -> tuple[np.ndarray, np.ndarray]:
    """``(gy, Hy) = (Zᵀ r, Zᵀ B Z)`` (k,) and (k, k), the gradient and Hessian of
    ``y ↦ ℓ(z + Z y)`` at y = 0 (:mod:`theory.subspace`), from B's ``parts`` and their
    ``subspace_sums`` (summed over blocks): ``Zᵀ diag Z`` plus the low-rank term on the columns
    ``ZR[:, 1:]`` = ``[Zᵀ f, Zᵀ q]``."""
    return ZR[:, 0], ZVZ + parts.low_rank(None, ZR[:, 1:])


class Softmax(NamedTuple):
    """``f = softmax(z)`` (n,) and ``lse = log Σ exp z``."""

    f: Any  # (n,): an array, or an engine's BlockVector
    lse: Any  # a float (per group: an array)


class ArrayOps:
    """The array module of b (numpy, or torch on any device) and its functions that write into
    ``out=``: the one implementation of ℓ runs on both (numpy's ufuncs and torch's functions take
    ``out=`` alike; the array API has no ``out=``, and the buffers are what keeps the in-memory
    solver free of allocations)."""

    sub: Any
    matmul: Any
    dot: Any
    mul: Any
    add: Any
    exp: Any

    def __init__(self, like):
        self.xp = array_namespace(like)
        self.numpy = is_numpy_namespace(self.xp)
        if self.numpy:
            self.sub, self.mul, self.add, self.exp = np.subtract, np.multiply, np.add, np.exp
            self.matmul, self.dot = np.matmul, np.dot  # np.dot releases the GIL (thread pools)
        else:
            import torch

            self.sub, self.mul, self.add, self.exp = torch.sub, torch.mul, torch.add, torch.exp
            self.matmul = self.dot = torch.matmul

    def empty(self, like, rows: int | None = None):
        """An uninitialised array shaped like ``like`` (n,), or (rows, n)."""
        if rows is None:
            return self.xp.empty_like(like)
        return self.xp.empty((rows, like.shape[0]), dtype=like.dtype, device=like.device)


def kappa(e: float, ff, bf, s):
    """``κ = e (3<f, f> − 2<b, f>) − s`` from the sums ``ff = <f, f>``, ``bf = <b, f>`` (per group:
    arrays)."""
    return e * (3.0 * ff - 2.0 * bf) - s


def parts_from_sums(e: float, exp2: float, bzl: float, wz2: float) -> dict[str, float]:
    """``{"exp", "cent", "reg"}`` from ``Σ(f − b)²``, ``Σ b (z − lse)`` and ``Σ w² z²``."""
    return {"exp": 0.5 * e * exp2, "cent": -bzl, "reg": 0.5 * wz2}


class SoftmaxLoss:
    """ℓ(z) of the module docstring for targets b (n,), weights w (n,) ≥ 0 and the weight
    ``exp_weight`` ≥ 0 of L_exp (validated by :class:`~theory.objective.SoftmaxRegression`).
    Immutable: safe to share between threads.

    The one implementation of ℓ's formulas: the in-memory problem is its one-block case, each
    engine block (:class:`theory.blocks.Block`, numpy or torch) runs it on its rows with the
    global sums passed in (``coef`` below), and :class:`theory.grouped.GroupedSoftmaxLoss` changes
    only the reductions (:meth:`total`, :meth:`expand`), the softmax and B's parts."""

    def __init__(self, b, w, exp_weight: float = 1.0):
        self.b, self.w = b, w
        self.w2 = w * w
        self.exp_weight = float(exp_weight)
        self.ops = ArrayOps(b)
        self.s = self.total(b)

    # -- the reductions: one softmax over all rows (per group in theory.grouped) -------------------

    def total(self, v):
        """``Σ_i v_i`` (a float; per group: (G,))."""
        return float(self.ops.xp.sum(v))

    def dot(self, a, c):
        """``Σ_i a_i c_i`` (a float; per group: (G,))."""
        return float(a @ c)

    def expand(self, c):
        """A per-softmax coefficient as a per-row one (the identity for one softmax)."""
        return c

    # -- ℓ ------------------------------------------------------------------------------------------

    def exp_shifted(self, z, out=None):
        """``(e, m, S)``: ``e = exp(z − m)`` (into ``out``), ``m = max z``, ``S = Σ e``."""
        e = self.ops.empty(z) if out is None else out
        m = float(self.ops.xp.max(z))
        self.ops.sub(z, m, out=e)
        self.ops.exp(e, out=e)
        return e, m, float(self.ops.xp.sum(e))

    def softmax(self, z, out=None) -> Softmax:
        """``f = exp(z − max z) / Σ exp(z − max z)`` (into ``out`` when given) and ``lse``."""
        f, m, total = self.exp_shifted(z, out)
        f *= 1.0 / total
        return Softmax(f, m + math.log(total))

    def softmax_from(self, z, lse, out=None, sums=None) -> Softmax:
        """``f = exp(z − lse)`` (into ``out``) where lse is already known (:mod:`theory.sweep`);
        ``sums`` is for an engine's f (:class:`theory.distributed.EngineLoss`), unused here."""
        f = self.ops.empty(z) if out is None else out
        self.ops.sub(z, self.expand(lse), out=f)
        self.ops.exp(f, out=f)
        return Softmax(f, lse)

    def sums(self, z, f, lse, tmp=None, full: bool = False) -> list[float]:
        """``[Σ(f − b)², Σ b (z − lse), Σ w² z²]`` (ℓ's terms), and with ``full`` also
        ``[<1, f ∘ (f − b)>, <f, f>, <b, f>]`` (what r and κ need: an engine's blocks send them)."""
        t = self.ops.empty(z) if tmp is None else tmp[0]
        self.ops.sub(f, self.b, out=t)
        out = [float(t @ t)]
        if full:
            t *= f
            tf = float(self.ops.xp.sum(t))
        self.ops.sub(z, self.expand(lse), out=t)  # log f, without <b, z> − s·lse's cancellation
        out.append(float(self.b @ t))
        self.ops.mul(self.w2, z, out=t)
        out.append(float(t @ z))
        if full:
            self.ops.mul(f, f, out=t)
            out += [tf, self.total(t), self.dot(self.b, f)]
        return out

    def parts(self, z, sm: Softmax, tmp=None) -> dict[str, float]:
        """``{"exp": e ½||f − b||², "cent": −<b, z − lse>, "reg": ½<w² ∘ z, z>}`` (Defs. C.6–C.8)."""
        return parts_from_sums(self.exp_weight, *self.sums(z, sm.f, sm.lse, tmp))

    def value(self, z, sm: Softmax, tmp=None) -> float:
        """``ℓ(z) = L_exp + L_cent + L_reg``."""
        p = self.parts(z, sm, tmp)
        return p["exp"] + p["cent"] + p["reg"]

    # -- r and B ------------------------------------------------------------------------------------

    def residual(self, z, f, out=None, tmp=None, coef=None):
        """``r = ∂ℓ/∂z = t_u − b + w² ∘ z`` (n,), so that ``∇L = Aᵀ r`` (Lemma C.10 part 3 for
        L_cent; DLS23 for L_exp). ``coef``: as :meth:`vectors`."""
        if out is not None and not isinstance(out, list | tuple) and out.ndim == 1:
            out = [out]  # r alone
        return self.vectors(z, f, out, tmp, coef, hessian=False)[0]

    def derivatives(self, z, f, out=None, tmp=None):
        """r (as :meth:`residual`) and B's parts together, sharing t and t_u; ``out`` (three (n,)
        arrays) receives r, q and v."""
        r, q, v, ff = self.vectors(z, f, out, tmp)
        k = kappa(self.exp_weight, ff, self.dot(self.b, f), self.s)
        return r, self.hessian_parts(v, f, q, k)

    def hessian_parts(self, v, f, q, k):
        """B's parts from the vectors of :meth:`vectors` and κ."""
        return HessianParts(diag=v, f=f, q=q, kappa=k)

    def vectors(self, z, f, out=None, tmp=None, coef=None, hessian: bool = True):
        """``(r, q, v, <f, f>)`` (module docstring; the last three None without ``hessian``), into
        ``out`` ((3, n) or three arrays). ``coef = s − <1, t>``, computed here unless given: an engine's block
        passes the global one (its rows are not all of them)."""
        ops = self.ops
        tmp = ops.empty(z, 2) if tmp is None else tmp
        out = ops.empty(z, 3 if hessian else 1) if out is None else out
        t, tu, r = tmp[0], tmp[1], out[0]
        ops.sub(f, self.b, out=t)
        t *= f
        e = self.exp_weight
        if e != 1.0:
            t *= e  # t = e f ∘ (f − b)
        if coef is None:
            coef = self.expand(self.s - self.total(t))
        ops.mul(f, coef, out=tu)
        tu += t  # t_u = t + (s − <1, t>) f
        q = v = ff = None
        if hessian:
            q, v = out[1], out[2]
            ops.mul(f, f, out=v)
            ff = self.total(v)
            if e != 1.0:
                v *= e  # e f²
            ops.add(t, v, out=q)
            v += tu
            v += self.w2
        ops.sub(tu, self.b, out=r)
        ops.mul(self.w2, z, out=t)
        r += t
        return r, q, v, ff
