"""The contract every backend's problem meets (:class:`Regression`): ``L(x) = ℓ(A x)`` of appendix C
and its derivatives, from the row-matrix protocol and the z-space loss. The in-memory problem,
:class:`theory.objective.SoftmaxRegression`, extends it with A, b, w on the driver and the dense
n×n ``B``; :class:`theory.distributed.EngineRegression` meets it with A, b, w on an engine's
blocks. Conventions: A (n, d), x (d,), float64.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from theory.loss import HessianParts
from theory.rows import RowMatrix
from theory.validation import as_float64


class Regression:
    """The contract every backend meets: ``L(x) = ℓ(A x)`` and its derivatives from the row-matrix
    protocol ``rows`` (:mod:`theory.rows`) and the z-space loss ``loss_z`` (:mod:`theory.loss`,
    or its engine counterpart), with ``s = <b, 1>``: ``loss``, ``loss_parts``, ``gradient``,
    ``hessian``, ``hessp``, ``hessian_parts``. :class:`SoftmaxRegression` is A, b, w in memory
    (and adds the dense ``B``); :class:`theory.distributed.EngineRegression` is A, b, w on an
    engine's blocks. :func:`theory.solve.solve` takes any Regression."""

    rows: RowMatrix
    s: float
    # the z-space loss: SoftmaxLoss (GroupedSoftmaxLoss is it per group) or an engine's EngineLoss,
    # the driver's side of SoftmaxLoss run on every block (theory.distributed)
    loss_z: Any

    @property
    def n(self) -> int:
        return self.rows.shape[0]

    @property
    def d(self) -> int:
        return self.rows.shape[1]

    def check_x(self, x, name: str = "x") -> np.ndarray:
        """``x`` as a finite float64 vector of shape (d,); ValueError naming ``name`` otherwise."""
        return as_float64(name, x, ndim=1, shape=(self.d,))

    def z(self, x) -> np.ndarray:
        """``z = A x`` (n,), one pass over A."""
        return self.rows.matvec(self.check_x(x))

    # -- value and derivatives ---------------------------------------------------------------

    def loss_parts(self, x) -> dict[str, float]:
        """``{"exp": L_exp, "cent": L_cent, "reg": L_reg}`` at x (Defs. C.6, C.7, C.8)."""
        z = self.z(x)
        return self.loss_z.parts(z, self.loss_z.softmax(z))

    def loss(self, x) -> float:
        """``L(x) = L_exp + L_cent + L_reg``."""
        return sum(self.loss_parts(x).values())

    def residual(self, x) -> np.ndarray:
        """``r = J c + (s f - b) + w² ∘ A x`` (n,), so that ``∇L = Aᵀ r`` (Lemma C.10)."""
        z = self.z(x)
        return self.loss_z.residual(z, self.loss_z.softmax(z).f)

    def sweeps(self) -> bool:
        """Whether :meth:`point` takes one sweep over A (:meth:`swept_point`): never here; where
        it pays for :class:`SoftmaxRegression` and the engines' problem."""
        return False

    @property
    def point_passes(self) -> int:
        """Passes over A of one :meth:`point`."""
        return 1 if self.sweeps() else 2

    def swept_point(self, x, out=None, f_out=None):
        raise NotImplementedError  # pragma: no cover - sweeps() is False

    def point(self, x, out=None, f_out=None):
        """``(z, softmax(z), L(x), ∇L(x))``: what a solver keeps about a new x (z into ``out``, f
        into ``f_out`` where given): one sweep (:meth:`swept_point`) where :meth:`sweeps`, else
        row by row, z = A x then ``Aᵀ r`` (two passes)."""
        if self.sweeps():
            return self.swept_point(x, out, f_out)
        return self.row_by_row_point(x, out, f_out)

    def hessp_sweeps(self) -> bool:
        """Whether ``∇²L v`` takes one sweep (:meth:`hessp_given`) rather than two passes: where
        :meth:`point` does (an engine's problem: always, one round instead of two)."""
        return self.sweeps()

    def hessp_sweep(self, parts, v, with_range: bool = False) -> np.ndarray:
        """``[Aᵀ(diag ∘ A v), fᵀ(A v), qᵀ(A v)]`` (d + 2,) in one read of A, and ``Aᵀ [f, q]``
        after them with ``with_range`` (:func:`theory.sweep.hessp_sweep`), for a problem whose
        :meth:`hessp_sweeps`."""
        raise NotImplementedError  # pragma: no cover - hessp_sweeps() is False

    def hessp_given(self, parts, v, rows=None, G: np.ndarray | None = None):
        """``(Aᵀ B (A v), G)`` for B's ``parts``. Where :meth:`hessp_sweeps`: one sweep
        (:meth:`hessp_sweep`) with the rank-2 term from ``G = Aᵀ [f, q]`` (d, 2), computed in
        the same sweep when None (the first product at a B) and returned for the next ones.
        Else ``A v`` then ``Aᵀ (B A v)`` through ``rows`` (a counted view; ``self.rows`` by
        default), G passed through."""
        rows = self.rows if rows is None else rows
        if not self.hessp_sweeps():
            return rows.rmatvec(parts.apply(rows.matvec(v))), G
        d = self.d
        swept = self.hessp_sweep(parts, v, with_range=G is None)
        if G is None:
            G = swept[d + 2 :].reshape(2, d).T
        return parts.rank2_plus(swept[:d], G[:, 0], G[:, 1], swept[d], swept[d + 1]), G

    def row_by_row_point(self, x, out=None, f_out=None):
        """:meth:`point` as two passes: z = A x, then ``Aᵀ r`` with r formed row by row."""
        z = self.rows.matvec(self.check_x(x), out)
        sm = self.loss_z.softmax(z, f_out)
        g = self.rows.rmatvec(self.loss_z.residual(z, sm.f))
        return z, sm, self.loss_z.value(z, sm), g

    def loss_and_gradient(self, x) -> tuple[float, np.ndarray]:
        """``(L(x), ∇L(x))`` (:meth:`point`'s)."""
        _, _, loss, g = self.point(x)
        return loss, g

    def gradient(self, x) -> np.ndarray:
        """``∇L(x)`` (d,), from :meth:`loss_and_gradient`."""
        return self.loss_and_gradient(x)[1]

    def hessian_parts(self, x) -> HessianParts:
        """``B(x)`` as diagonal plus rank ≤ 2 (see :mod:`theory.loss`), one pass over A."""
        z = self.z(x)
        return self.loss_z.derivatives(z, self.loss_z.softmax(z).f)[1]

    def hessian(self, x) -> np.ndarray:
        """``∇²L(x) = Aᵀ diag(v) A + low rank`` (d, d): one syrk, O(n d²); never an n×n array."""
        return self.hessian_parts(x).hessian(self.rows)

    def hessp(self, x, v) -> np.ndarray:
        """``∇²L(x) v = Aᵀ B(x) A v`` (d,): three passes over A (z, A v, Aᵀ(B A v)), or z,
        one sweep where :meth:`hessp_sweeps`; O(n d)."""
        v = self.check_x(v, name="v")
        return self.hessp_given(self.hessian_parts(x), v)[0]
