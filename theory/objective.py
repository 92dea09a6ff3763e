"""The softmax/cross-entropy regression objective of appendix C: the z-space loss composed with A.

``SoftmaxRegression(A, b, w)`` evaluates (arXiv 2306.04933, Defs. C.6–C.8)::

    L(x) = ℓ(A x) = 0.5 ||f - b||²  -  <b, log f>  +  0.5 ||diag(w) A x||²,     f = softmax(A x)

and its derivatives, from :mod:`theory.loss` (ℓ, r = ∂ℓ/∂z and B = ∂²ℓ/∂z² as diagonal + rank ≤ 2)
and the row-matrix protocol of :mod:`theory.rows` (A x, Aᵀ r, Aᵀ diag(v) A)::

    ∇L(x)  = Aᵀ r                       (L_cent: Lemma C.10 part 3; L_exp: DLS23)
    ∇²L(x) = Aᵀ B A = Aᵀ diag(v) A + κ g gᵀ - h gᵀ - g hᵀ,   g = Aᵀ f, h = Aᵀ q   (B_cent: Lemma C.14; B_exp: DLS23)

one O(n d²) syrk plus O(n d) work; a Hessian-vector product costs two passes over A, O(n d). No
method but :meth:`SoftmaxRegression.B` ever holds an n×n array.

Value semantics: every method is a pure function of its arguments (each call computes z = A x
afresh; nothing is cached), so one problem may be shared between threads. Solvers that want to
reuse z between calls keep it themselves and call :attr:`SoftmaxRegression.loss_z` and
:attr:`SoftmaxRegression.rows` directly. Conventions: A (n, d), b (n,), w (n,), x (d,), float64.
"""

from __future__ import annotations

import numpy as np

from theory.loss import SoftmaxLoss
from theory.regression import Regression
from theory.rows import RowMatrix, as_rows
from theory.sweep import Swept, finish, hessp_sweep, merge_all, pays, sweep
from theory.validation import as_float64, check_size

DENSE_B_MAX_N = 4096  # B(x) is n×n: at n = 4096 it already takes 128 MiB.


class SoftmaxRegression(Regression):
    """``min_x e L_exp(x) + L_cent(x) + L_reg(x)`` for A (n, d), b (n,), w (n,) or a scalar w ≥ 0,
    and ``e = exp_weight`` ≥ 0 (default 1, the paper's L; 0 drops L_exp).

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

    def __init__(self, A, b, w, exp_weight: float = 1.0):
        self._init(as_float64("A", A, ndim=2), b, w, exp_weight)

    def _init(self, A, b, w, exp_weight: float = 1.0) -> None:
        """Store A (an ndarray or a RowMatrix) and its protocol view; validate b, w against n and
        ``exp_weight`` (the weight of L_exp: a finite number ≥ 0)."""
        self.A = A
        self.rows: RowMatrix = as_rows(A)
        n = self.rows.shape[0]
        check_size(*self.rows.shape)
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
        self.exp_weight = check_exp_weight(exp_weight)
        self.loss_z = SoftmaxLoss(self.b, self.w, self.exp_weight)
        self.w2, self.s = self.loss_z.w2, self.loss_z.s

    def __repr__(self) -> str:
        return f"SoftmaxRegression(n={self.n}, d={self.d}, sum(b)={self.s:.3g})"

    def loss_and_gradient(self, x) -> tuple[float, np.ndarray]:
        """``(L(x), ∇L(x))`` in one sweep over A (:mod:`theory.sweep`: the online normaliser), each
        chunk of rows read once while in cache."""
        swept = self._sweep(x)
        return swept.loss, swept.grad

    def sweeps(self) -> bool:
        """Where A is larger than the cache (:func:`theory.sweep.pays`)."""
        return pays(self.n, self.d)

    def swept_point(self, x, out=None, f_out=None):
        """``(z, softmax(z), L(x), ∇L(x))`` in one sweep over A that also writes z (see
        :meth:`Regression.point`); f = exp(z − lse) afterwards, O(n)."""
        z = np.empty(self.n) if out is None else out
        swept = self._sweep(x, z)
        return z, self.loss_z.softmax_from(z, swept.lse, f_out), swept.loss, swept.grad

    def hessp_sweep(self, parts, v, with_range: bool = False) -> np.ndarray:
        v = self.check_x(v, name="v")
        per_block = (
            hessp_sweep(A_k, parts.diag[k], parts.f[k], parts.q[k], v, with_range=with_range)
            for k, A_k in self._blocks()
        )
        return sum(per_block, np.zeros(3 * self.d + 2 if with_range else self.d + 2))

    def _sweep(self, x, z_out=None) -> Swept:
        x = self.check_x(x)
        partials = (
            sweep(A_k, self.b[k], self.w2[k], x, z_out=None if z_out is None else z_out[k])
            for k, A_k in self._blocks()
        )
        return finish(merge_all(partials), self.exp_weight)

    def _blocks(self):
        """``(rows, A_k)`` for A's row blocks (:meth:`~theory.rows.RowMatrix.blocks`), rows the
        block's slice of the (n,) vectors."""
        for start, A_k in self.rows.blocks():
            yield slice(start, start + len(A_k)), A_k

    def B(self, x) -> np.ndarray:
        """The dense ``B(x) = B_exp + B_cent + W²`` (n, n), for teaching and small-n tests only."""
        if self.n > DENSE_B_MAX_N:
            raise ValueError(
                f"B(x) is a dense {self.n}×{self.n} matrix; it is built only for n ≤ "
                f"{DENSE_B_MAX_N}. Use hessian(x), hessp(x, v) or hessian_parts(x) instead."
            )
        return self.hessian_parts(x).dense()


def check_exp_weight(exp_weight) -> float:
    """``exp_weight`` as a float, or ValueError: it must be a finite real number ≥ 0."""
    ok = isinstance(exp_weight, int | float | np.integer | np.floating) and not isinstance(
        exp_weight, bool
    )
    if not (ok and np.isfinite(exp_weight) and exp_weight >= 0):
        raise ValueError(
            f"exp_weight must be a finite number ≥ 0 (the weight of L_exp; 1 is the paper's L, "
            f"0 drops L_exp); got {exp_weight!r}."
        )
    return float(exp_weight)
