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

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np


@dataclass(frozen=True)
class HessianParts:
    """``B = diag(diag) + kappa f fᵀ − q fᵀ − f qᵀ`` (n, n), stored as three (n,) vectors and κ.

    ``diag`` can be negative where ``b_i > 2 f_i`` (peaked b); solvers that sample it add those
    rows exactly (:func:`theory.newton.sampled_diagonal_part`; docs/solver.md, "Algorithms").
    """

    diag: np.ndarray
    f: np.ndarray
    q: np.ndarray
    kappa: float

    def range(self, A) -> np.ndarray:
        """``[g, h] = Aᵀ [f, q]`` (d, 2), the low-rank term's range: one pass over A (an ndarray or
        a :class:`~theory.rows.RowMatrix`)."""
        return A.T @ np.stack([self.f, self.q], axis=1)

    def low_rank(self, A, G: np.ndarray | None = None) -> np.ndarray:
        """``Aᵀ (κ f fᵀ − q fᵀ − f qᵀ) A = κ g gᵀ − h gᵀ − g hᵀ`` (d, d), ``G = [g, h]`` (d, 2)
        when already known (:meth:`range`), else one pass over A."""
        G = self.range(A) if G is None else G
        g, h = G[:, 0], G[:, 1]
        hg = np.outer(h, g)
        return self.kappa * np.outer(g, g) - (hg + hg.T)  # exactly symmetric in floating point

    def apply(self, t: np.ndarray) -> np.ndarray:
        """``B t`` (n,) for t (n,): O(n), no n×n array."""
        ft, qt = self.f @ t, self.q @ t
        return self.diag * t + (self.kappa * ft - qt) * self.f - ft * self.q

    def dense(self) -> np.ndarray:
        """``B`` (n, n), for teaching and small-n tests only."""
        f, q = self.f, self.q
        return np.diag(self.diag) + self.kappa * np.outer(f, f) - np.outer(q, f) - np.outer(f, q)


class Softmax(NamedTuple):
    """``f = softmax(z)`` (n,) and ``lse = log Σ exp z``."""

    f: np.ndarray
    lse: float


class SoftmaxLoss:
    """ℓ(z) of the module docstring for targets b (n,), weights w (n,) ≥ 0 and the weight
    ``exp_weight`` ≥ 0 of L_exp (validated by :class:`~theory.objective.SoftmaxRegression`).
    Immutable: safe to share between threads."""

    def __init__(self, b: np.ndarray, w: np.ndarray, exp_weight: float = 1.0):
        self.b, self.w = b, w
        self.w2 = w**2
        self.s = float(np.sum(b))
        self.exp_weight = float(exp_weight)

    def softmax(self, z: np.ndarray, out: np.ndarray | None = None) -> Softmax:
        """``f = exp(z − max z) / Σ exp(z − max z)`` (into ``out`` when given) and ``lse``."""
        f = np.empty_like(z) if out is None else out
        m = float(np.max(z))
        np.subtract(z, m, out=f)
        np.exp(f, out=f)
        total = float(np.sum(f))
        f *= 1.0 / total
        return Softmax(f, m + float(np.log(total)))

    def parts(self, z: np.ndarray, sm: Softmax, tmp: np.ndarray | None = None) -> dict[str, float]:
        """``{"exp": e ½||f − b||², "cent": −<b, z − lse>, "reg": ½<w² ∘ z, z>}`` (Defs. C.6–C.8)."""
        return dict(zip(("exp", "cent", "reg"), self._parts(z, sm, tmp), strict=True))

    def value(self, z: np.ndarray, sm: Softmax, tmp: np.ndarray | None = None) -> float:
        """``ℓ(z) = L_exp + L_cent + L_reg``."""
        exp, cent, reg = self._parts(z, sm, tmp)
        return exp + cent + reg

    def _parts(self, z, sm, tmp) -> tuple[float, float, float]:
        t = np.empty_like(z) if tmp is None else tmp[0]
        np.subtract(sm.f, self.b, out=t)
        exp = 0.5 * self.exp_weight * float(t @ t)
        np.subtract(z, sm.lse, out=t)  # log f, without <b, z> − s·lse's cancellation
        cent = -float(self.b @ t)
        np.multiply(self.w2, z, out=t)
        return exp, cent, 0.5 * float(t @ z)

    def residual(
        self,
        z: np.ndarray,
        f: np.ndarray,
        out: np.ndarray | None = None,
        tmp: np.ndarray | None = None,
    ) -> np.ndarray:
        """``r = ∂ℓ/∂z = t_u − b + w² ∘ z`` (n,), so that ``∇L = Aᵀ r`` (Lemma C.10 part 3 for L_cent; DLS23 for L_exp)."""
        t, tu = self._shared(f, tmp)
        r = np.empty_like(z) if out is None else out
        np.subtract(tu, self.b, out=r)
        np.multiply(self.w2, z, out=t)
        r += t
        return r

    def derivatives(
        self,
        z: np.ndarray,
        f: np.ndarray,
        out: np.ndarray | None = None,
        tmp: np.ndarray | None = None,
    ) -> tuple[np.ndarray, HessianParts]:
        """r (as :meth:`residual`) and B's parts together, sharing t and t_u; ``out`` (three (n,)
        arrays) receives r, q and v."""
        out = np.empty((3, z.size)) if out is None else out
        r, q, v = out[0], out[1], out[2]
        t, tu = self._shared(f, tmp)
        np.multiply(f, f, out=v)  # f²
        e = self.exp_weight
        kappa = e * (3.0 * float(np.sum(v)) - 2.0 * float(self.b @ f)) - self.s
        if e != 1.0:
            v *= e  # e f²
        np.add(t, v, out=q)
        v += tu
        v += self.w2
        np.subtract(tu, self.b, out=r)
        np.multiply(self.w2, z, out=t)
        r += t
        return r, HessianParts(diag=v, f=f, q=q, kappa=kappa)

    def _shared(self, f: np.ndarray, tmp: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """``t = e f ∘ (f − b)`` and ``t_u = t + (s − <1, t>) f`` (n,), into ``tmp`` (2, n)."""
        tmp = np.empty((2, f.size)) if tmp is None else tmp
        t, tu = tmp[0], tmp[1]
        np.subtract(f, self.b, out=t)
        t *= f
        if self.exp_weight != 1.0:
            t *= self.exp_weight
        np.multiply(f, self.s - float(np.sum(t)), out=tu)
        tu += t
        return t, tu
