"""The softmax/cross-entropy regression objective of appendix C, with structured derivatives.

``SoftmaxRegression(A, b, w)`` evaluates (arXiv 2306.04933, Defs. C.6–C.8)::

    L(x) = 0.5 ||f - b||²  -  <b, log f>  +  0.5 ||diag(w) A x||²,     f = softmax(A x)

and its derivatives. With ``J = diag f - f fᵀ``, ``c = f - b``, ``q = (2f - b) ∘ f``, ``s = <b, 1>``::

    ∇L(x)  = Aᵀ r,        r = J c + (s f - b) + w² ∘ A x                         (Lemma C.10)
    ∇²L(x) = Aᵀ B(x) A,   B = B_exp + B_cent + W²                           (Lemmas C.11, C.14)
    B(x)   = diag(v) + κ f fᵀ - q fᵀ - f qᵀ                           (diagonal + rank ≤ 2)
    v      = q - <f, c> f + s f + w²,      κ = <3f - 2b, f> - s

so ``∇²L = Aᵀ diag(v) A + κ g gᵀ - h gᵀ - g hᵀ`` with ``g = Aᵀ f``, ``h = Aᵀ q``: one O(n d²)
syrk plus O(n d) work, and a Hessian-vector product costs two passes over A, O(n d). No method but
:meth:`SoftmaxRegression.B` ever holds an n×n array.

Conventions: A (n, d), b (n,), w (n,), x (d,), float64. Quantities that depend on x alone are
computed once per point and cached, so ``loss``, ``gradient``, ``hessian`` and ``hessp`` at the same
x share one pass ``z = A x``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from theory import appendix
from theory.linalg import weighted_gram
from theory.validation import as_float64

DENSE_B_MAX_N = 4096  # B(x) is n×n: at n = 4096 it already takes 128 MiB.


@dataclass
class Point:
    """Per-x quantities, all (n,): ``z = A x``, ``f``, ``log f`` (x (d,), or None when unknown), and
    the residual r and ``B``'s parts once asked for (so that, e.g., repeated ``hessp`` calls at one x
    compute them once).

    Points made by :meth:`SoftmaxRegression.point_z` carry ``lse = log Σ exp z`` and their loss
    parts instead of ``log f``, and may be refilled in place (``point_z(z, out=p)``): ``bufs`` keeps
    the arrays that r and B's parts are written into, so that refilling allocates nothing.
    """

    x: np.ndarray | None
    z: np.ndarray
    f: np.ndarray
    logf: np.ndarray | None
    r: np.ndarray | None = None
    parts: HessianParts | None = None
    lse: float = float("nan")
    loss_parts: dict[str, float] | None = None
    bufs: dict[str, np.ndarray] = field(default_factory=dict, repr=False)


@dataclass(frozen=True)
class HessianParts:
    """``B(x) = diag(diag) + kappa f fᵀ - q fᵀ - f qᵀ`` (n, n), stored as three (n,) vectors and κ.

    ``diag`` can be negative where ``b_i > 2 f_i`` (peaked b); solvers that sample it must add those
    rows exactly (DESIGN §2).
    """

    diag: np.ndarray
    f: np.ndarray
    q: np.ndarray
    kappa: float

    def low_rank(self, A: np.ndarray, G: np.ndarray | None = None) -> np.ndarray:
        """The rank ≤ 2 term ``κ g gᵀ - h gᵀ - g hᵀ`` (d, d), ``g = Aᵀ f``, ``h = Aᵀ q``.

        ``G = [g, h]`` (d, 2) when already known (:meth:`range`); else one pass over A.
        """
        G = self.range(A) if G is None else G
        g, h = G[:, 0], G[:, 1]
        hg = np.outer(h, g)
        return self.kappa * np.outer(g, g) - (hg + hg.T)  # exactly symmetric in floating point

    def range(self, A: np.ndarray) -> np.ndarray:
        """``[g, h] = Aᵀ [f, q]`` (d, 2): the low-rank term's range, one pass over A."""
        return A.T @ np.stack([self.f, self.q], axis=1)


class SoftmaxRegression:
    """``min_x L_exp(x) + L_cent(x) + L_reg(x)`` for A (n, d), b (n,), w (n,) or a scalar w ≥ 0.

    Inputs are validated up front (shapes, dtypes, finiteness, w ≥ 0); integer and float32 input is
    cast to float64 with a :class:`~theory.validation.PrecisionWarning`. ``A`` may be a float64
    ``numpy.memmap``; it is not copied.

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> prob = SoftmaxRegression(rng.standard_normal((50, 3)), np.full(50, 1 / 50), 1.0)
    >>> x = np.zeros(3)
    >>> bool(np.allclose(prob.hessp(x, np.ones(3)), prob.hessian(x) @ np.ones(3)))
    True
    """

    def __init__(self, A, b, w):
        self.A = as_float64("A", A, ndim=2)
        self._set_targets(b, w)

    def _set_targets(self, b, w) -> None:
        """Validate and store b, w (and w², Σb) against ``self.A``'s n rows."""
        n = self.A.shape[0]
        self.b = as_float64("b", b, ndim=1, shape=(n,))
        w = np.asarray(w)
        if w.ndim == 0:
            w = np.full(n, w, dtype=w.dtype)
        self.w = as_float64("w", w, ndim=1, shape=(n,))
        if (self.w < 0).any():
            i = int(np.argmax(self.w < 0))
            raise ValueError(
                f"w must be non-negative (it weights the regulariser 0.5||diag(w) A x||²); "
                f"w[{i}] = {self.w[i]}. Pass np.abs(w), which gives the same objective."
            )
        self.w2 = self.w**2
        self.s = float(np.sum(self.b))
        self._cache: Point | None = None
        self._work: np.ndarray | None = None  # two (n,) scratch arrays, made when first needed

    @property
    def n(self) -> int:
        return self.A.shape[0]

    @property
    def d(self) -> int:
        return self.A.shape[1]

    def __repr__(self) -> str:
        return f"SoftmaxRegression(n={self.n}, d={self.d}, sum(b)={self.s:.3g})"

    # -- per-point state ---------------------------------------------------------------------

    def check_x(self, x, name: str = "x") -> np.ndarray:
        """``x`` as a finite float64 vector of shape (d,); ValueError naming ``name`` otherwise."""
        return as_float64(name, x, ndim=1, shape=(self.d,))

    def point(self, x) -> Point:
        """``z = A x``, ``f = softmax(z)``, ``log f = z - logsumexp(z)`` at x (cached for the last x)."""
        x = self.check_x(x)
        if self._cache is not None and np.array_equal(self._cache.x, x):
            return self._cache
        z = self.A @ x
        logf = appendix.log_softmax(z)
        self._cache = Point(x=x.copy(), z=z, f=np.exp(logf), logf=logf)
        return self._cache

    def point_z(self, z: np.ndarray, out: Point | None = None) -> Point:
        """The per-point state from ``z = A x`` (n,) itself, without a pass over A, and its loss.

        L depends on x only through z, so a solver that keeps z (and the images ``A u`` of its
        directions) evaluates L, ``r`` and ``B`` anywhere on ``z + Z y`` in O(n) per point.
        One exp, not :meth:`point`'s two: ``f = exp(z − m) / Σ exp(z − m)``, ``m = max z``,
        ``lse = m + log Σ exp(z − m)``, ``L_cent = −<b, z − lse>``.
        ``out``: a point from an earlier call, refilled in place (``z`` may be ``out.z`` itself), so
        that nothing of size n is allocated — at n = 10⁶ a fresh (n,) array costs about 1.3 ms of
        page faults here, as much as five vector operations, and the subspace solver makes several
        points an iteration. (:meth:`point`, which the scipy anchors' loss and gradient use, keeps
        the appendix's ``log_softmax``: L-BFGS-B's line search, at its rounding floor, is sensitive
        to the last bit, and the anchors should be measured as they were.)
        """
        if out is None:
            out = Point(x=None, z=z, f=np.empty_like(z), logf=None)
        elif out.z is not z:
            np.copyto(out.z, z)
        out.x, out.logf, out.r, out.parts = None, None, None, None
        z, f, tmp = out.z, out.f, self._scratch(0)
        m = float(np.max(z))
        np.subtract(z, m, out=f)
        np.exp(f, out=f)
        total = float(np.sum(f))
        f *= 1.0 / total
        out.lse = m + float(np.log(total))
        np.subtract(f, self.b, out=tmp)
        exp = 0.5 * float(tmp @ tmp)
        np.subtract(z, out.lse, out=tmp)  # log f, without <b, z> − s·lse's cancellation
        cent = -float(self.b @ tmp)
        np.multiply(self.w2, z, out=tmp)
        out.loss_parts = {"exp": exp, "cent": cent, "reg": 0.5 * float(tmp @ z)}
        return out

    def _scratch(self, k: int) -> np.ndarray:
        """The k-th of two reusable (n,) work arrays (so this object is not thread-safe)."""
        if self._work is None:
            self._work = np.empty((2, self.n))
        return self._work[k]

    # -- value and derivatives ---------------------------------------------------------------

    def loss_parts(self, x) -> dict[str, float]:
        """``{"exp": L_exp, "cent": L_cent, "reg": L_reg}`` at x (Defs. C.6, C.7, C.8)."""
        return self.loss_parts_at(self.point(x))

    def loss_parts_at(self, p: Point) -> dict[str, float]:
        """:meth:`loss_parts` at a :class:`Point` (O(n), no pass over A)."""
        if p.loss_parts is not None:
            return p.loss_parts
        return {
            "exp": 0.5 * float(np.sum((p.f - self.b) ** 2)),
            "cent": -float(self.b @ p.logf),
            "reg": 0.5 * float(self.w2 @ p.z**2),
        }

    def loss(self, x) -> float:
        """``L(x) = L_exp + L_cent + L_reg``."""
        return sum(self.loss_parts(x).values())

    def residual(self, x) -> np.ndarray:
        """``r = J c + (s f - b) + w² ∘ A x`` (n,), so that ``∇L = Aᵀ r`` (Lemma C.10)."""
        return self.residual_at(self.point(x))

    def residual_at(self, p: Point) -> np.ndarray:
        """:meth:`residual` at a :class:`Point`: ``r = ∂L/∂z`` (n,), O(n)."""
        if p.r is None:
            c = p.f - self.b
            p.r = p.f * c - (p.f @ c) * p.f + (self.s * p.f - self.b) + self.w2 * p.z
        return p.r

    def gradient(self, x) -> np.ndarray:
        """``∇L(x) = Aᵀ r`` (d,), two passes over A."""
        return self.A.T @ self.residual(x)

    def hessian_parts(self, x) -> HessianParts:
        """``B(x)`` as diagonal plus rank ≤ 2 (see the module docstring), O(n)."""
        return self.hessian_parts_at(self.point(x))

    def residual_and_parts_at(self, p: Point) -> tuple[np.ndarray, HessianParts]:
        """r (as :meth:`residual_at`) and B's parts together, sharing their terms: with
        ``t = f ∘ c``, ``tu = t + (s − <f, c>) f``: ``r = tu − b + w² ∘ z``, ``q = t + f²``,
        ``v = tu + f² + w²``, ``κ = 3<f, f> − 2<b, f> − s``. Computed once per point, into the
        point's ``bufs`` (reused when the point is refilled) and two scratch arrays."""
        if p.r is None or p.parts is None:
            f, b, bufs = p.f, self.b, p.bufs
            r, q, v = (bufs.get(k) for k in ("r", "q", "v"))
            if r is None:
                r = bufs["r"] = np.empty_like(f)
                q = bufs["q"] = np.empty_like(f)
                v = bufs["v"] = np.empty_like(f)
            t, tu = self._scratch(0), self._scratch(1)
            np.subtract(f, b, out=t)
            t *= f  # t = f ∘ (f − b)
            np.multiply(f, self.s - float(np.sum(t)), out=tu)
            tu += t
            np.multiply(f, f, out=v)  # f²
            kappa = 3.0 * float(np.sum(v)) - 2.0 * float(b @ f) - self.s
            np.add(t, v, out=q)
            v += tu
            v += self.w2
            if p.r is None:  # (one computed by residual_at is kept: the anchors see one r per x)
                np.subtract(tu, b, out=r)
                np.multiply(self.w2, p.z, out=t)
                r += t
            else:
                r = p.r
            p.r, p.parts = r, HessianParts(diag=v, f=f, q=q, kappa=kappa)
        return p.r, p.parts

    def hessian_parts_at(self, p: Point) -> HessianParts:
        """:meth:`hessian_parts` at a :class:`Point`: ``B = ∂²L/∂z²`` as diagonal + rank ≤ 2, O(n)."""
        return self.residual_and_parts_at(p)[1]

    def hessian(self, x) -> np.ndarray:
        """``∇²L(x) = Aᵀ diag(v) A + low rank`` (d, d): one syrk, O(n d²); never an n×n array."""
        return self.hessian_at(self.point(x))

    def hessian_at(self, p: Point) -> np.ndarray:
        """:meth:`hessian` at a :class:`Point`."""
        parts = self.hessian_parts_at(p)
        return weighted_gram(self.A, parts.diag) + parts.low_rank(self.A)

    def hessp(self, x, v) -> np.ndarray:
        """``∇²L(x) v = Aᵀ B(x) A v`` (d,): two passes over A, O(n d)."""
        v = self.check_x(v, name="v")
        parts = self.hessian_parts(x)
        t = self.A @ v  # (n,)
        ft, qt = parts.f @ t, parts.q @ t
        y = parts.diag * t + (parts.kappa * ft - qt) * parts.f - ft * parts.q
        return self.A.T @ y

    def B(self, x) -> np.ndarray:
        """The dense ``B(x) = B_exp + B_cent + W²`` (n, n), for teaching and small-n tests only."""
        if self.n > DENSE_B_MAX_N:
            raise ValueError(
                f"B(x) is a dense {self.n}×{self.n} matrix; it is built only for n ≤ "
                f"{DENSE_B_MAX_N}. Use hessian(x), hessp(x, v) or hessian_parts(x) instead."
            )
        parts = self.hessian_parts(x)
        f, q = parts.f, parts.q
        return np.diag(parts.diag) + parts.kappa * np.outer(f, f) - np.outer(q, f) - np.outer(f, q)
