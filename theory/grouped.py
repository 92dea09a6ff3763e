r"""Grouped softmax regression: the objective of appendix C with the softmax taken within groups.

Rows are partitioned into G groups (``groups`` (n,): the group of each row). With ``z = A x``
(n,) and, for each group g (rows I_g, targets b_g, ``s_g = <b_g, 1>``)::

    f_g = softmax(z_g)                                       (Defs. C.1–C.4: u, v, α, f, within g)
    ℓ(z) = Σ_g [ e ½ ||f_g − b_g||² − <b_g, log f_g> ] + ½ <w² ∘ z, z>      (Defs. C.6–C.8)
    r = ∂ℓ/∂z:  r_g = e J_g (f_g − b_g) + (s_g f_g − b_g) + w_g² ∘ z_g,   J_g = diag f_g − f_g f_gᵀ
    B = ∂²ℓ/∂z² = ⊕_g B_g,  B_g = diag(v_g) + κ_g f_g f_gᵀ − q_g f_gᵀ − f_g q_gᵀ
    q_g = e (2 f_g − b_g) ∘ f_g,  v_g = q_g − e <f_g, f_g − b_g> f_g + s_g f_g + w_g²,
    κ_g = e <3 f_g − 2 b_g, f_g> − s_g

Per group, the L_cent parts are the paper's (its gradient Lemma C.10 part 3, its Hessian
Def. C.13 and Lemma C.14); the L_exp parts, gradient e J_g (f_g − b_g) and Hessian e B_exp,g,
are DLS23's (Deng, Li, Song 2023, arXiv 2304.10411), and W² is the regulariser's. So
``∇L = Aᵀ r`` and ``∇²L = Aᵀ B A = Aᵀ diag(v) A + Σ_g (κ_g g_g g_gᵀ − h_g g_gᵀ − g_g h_gᵀ)`` with
``g_g = A_gᵀ f_g``, ``h_g = A_gᵀ q_g`` (d,): B is block-diagonal, each block a diagonal plus
rank ≤ 2, so the Hessian is one weighted Gram plus a term of rank ≤ 2G, and a Hessian-vector
product is two passes over A. ``e = exp_weight``; one group is
:class:`~theory.objective.SoftmaxRegression` exactly. Every per-group sum is a ``np.bincount``
over the group codes (O(n)); the per-group maximum of the softmax's shift one
``np.maximum.reduceat`` over the rows sorted by group.

**Multinomial logistic regression** is the case e = 0, one group per example and one row per
class: for examples ``X`` (N, p) with labels y and classes k = 1..C, ``x = vec(W)`` (W (C, p),
row-major), the rows of example i are ``e_k ⊗ X_i`` (z_{ik} = W_k · X_i), ``b`` the one-hot labels;
a ridge ``½ λ ||x||²`` is d more rows ``√λ e_j`` in singleton groups with b = 0 (a singleton's
softmax is 1: it adds only ``½ w² z²``), or a weight w on every row (the paper's ``½ ||W A x||²``,
a ridge on the logits). :func:`multinomial_logistic` builds it.

**Explicit constants (Lemmas C.15, C.16, extended).** The proofs in :mod:`theory.bounds` hold block
by block: B (less W²) is block-diagonal, so its norm and Lipschitz constant are the largest of the
blocks', and the grouped softmax's Jacobian ``⊕_g J_g`` still has norm ≤ 1/2 (Fact 1 per block),
so ``||f(z) − f(z')|| ≤ ||z − z'|| / 2``. Splitting each bound into its L_exp part (scaled by e)
and its L_cent part::

    ||B_exp,g + B_cent,g|| ≤ M_g = e (1/4 + 8/27 + 1/2 + (5/2) ||b_g||_∞) + |s_g| / 2,
    ||B_g(f) − B_g(f')|| ≤ L_B,g ||f_g − f'_g||,   L_B,g = e (31 + 3 ||b_g||₂ + 10 ||b_g||_∞) + 3 |s_g|

(the s J term of the Lipschitz sum is the 3|s| one); a singleton group has f_g ≡ 1, so B_g = 0 and
M_g = L_B,g = 0. Then ``M = max_g M_g``, ``∇²L ⪰ l I`` with ``l = (min w² − M) σ_min(A)²``
(Lemma C.15), and ``||∇²L(x) − ∇²L(y)|| ≤ L_H ||x − y||``, ``L_H = ||A||₂³ max_g L_B,g / 2``
(Lemma C.16). Neither depends on R, n or G. With one group and e = 1 they are
:func:`theory.bounds.B_norm_bound` and :func:`theory.bounds.hessian_lipschitz`.

Conventions: A (n, d), b, w, groups, z, f, r, q, v (n,), x (d,), per-group arrays (G,), float64.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from theory.bounds import GOOD_START, MAX_SKETCH_EPS, SANDWICH_FACTOR, Condition, sigma_min
from theory.loss import Softmax, SoftmaxLoss
from theory.objective import SoftmaxRegression
from theory.regression import Regression
from theory.rows import as_rows

EXP_PART = 0.25 + 8 / 27 + 0.5  # M's constant from B_exp (theory.bounds, Lemma A)


def check_groups(groups, n: int) -> tuple[np.ndarray, np.ndarray]:
    """``(codes (n,) in 0..G−1, labels (G,))`` for an integer array of length n; ValueError naming
    the problem otherwise. Group labels may be any integers, in any order."""
    arr = np.asarray(groups)
    if arr.dtype.kind not in "iu":
        raise ValueError(
            f"groups must be an integer array (the group of each row); got dtype {arr.dtype}. "
            "Pass e.g. np.repeat(np.arange(N), C) for N groups of C rows."
        )
    if arr.shape != (n,):
        raise ValueError(f"groups must have shape ({n},), one entry per row of A; got {arr.shape}.")
    labels, codes = np.unique(arr, return_inverse=True)
    return codes.reshape(n).astype(np.intp), labels


class GroupLayout:
    """The partition of n rows into G groups: ``codes`` (n,), ``counts`` (G,), and the rows sorted
    by group (``perm``, None when already sorted) with each group's first position ``starts``."""

    def __init__(self, codes: np.ndarray, G: int):
        self.codes, self.G, self.n = codes, G, codes.size
        self.counts = np.bincount(codes, minlength=G)
        self.perm = None if np.all(codes[1:] >= codes[:-1]) else np.argsort(codes, kind="stable")
        self.starts = np.concatenate([[0], np.cumsum(self.counts)[:-1]])
        self._indptr = np.arange(self.n + 1)

    def sum(self, v: np.ndarray) -> np.ndarray:
        """``Σ_{i ∈ I_g} v_i`` (G,)."""
        return np.bincount(self.codes, weights=v, minlength=self.G)

    def max(self, v: np.ndarray) -> np.ndarray:
        """``max_{i ∈ I_g} v_i`` (G,)."""
        return np.maximum.reduceat(v if self.perm is None else v[self.perm], self.starts)

    def columns(self, v: np.ndarray) -> sp.csr_array:
        """The (n, G) sparse matrix whose column g holds v on the rows of group g (a copy of v)."""
        return sp.csr_array((v.copy(), self.codes, self._indptr), shape=(self.n, self.G))


@dataclass(frozen=True)
class GroupedHessianParts:
    """``B = diag(diag) + Σ_g (κ_g f_g f_gᵀ − q_g f_gᵀ − f_g q_gᵀ)`` (n, n), B's block-diagonal
    form (module docstring). ``f`` and ``q`` are (n, G) sparse matrices, column g holding f_g
    (q_g) on the rows of group g, so ``Aᵀ f`` is the (d, G) matrix of the g_g; ``kappa`` (G,).
    The same methods as :class:`theory.loss.HessianParts` (one group: the same numbers)."""

    diag: np.ndarray
    f: sp.csr_array
    q: sp.csr_array
    kappa: np.ndarray

    def range(self, A) -> np.ndarray:
        """``[Aᵀ f, Aᵀ q]`` (d, 2G): one pass over A's row blocks (an ndarray or a
        :class:`~theory.rows.RowMatrix`), a sparse product per block."""
        rows, G = as_rows(A), self.kappa.size
        out = np.zeros((rows.shape[1], 2 * G))
        for start, blk in rows.blocks():
            stop = start + blk.shape[0]
            out[:, :G] += (self.f[start:stop].T @ blk).T
            out[:, G:] += (self.q[start:stop].T @ blk).T
        return out

    def low_rank(self, A, G: np.ndarray | None = None) -> np.ndarray:
        """``Σ_g κ_g g_g g_gᵀ − h_g g_gᵀ − g_g h_gᵀ`` (d, d) from ``G = [g_1..g_G, h_1..h_G]``
        (d, 2G) when known (:meth:`range`), else one pass over A."""
        G = self.range(A) if G is None else G
        ng = self.kappa.size
        g, h = G[:, :ng], G[:, ng:]
        K = (g * self.kappa) @ g.T
        hg = h @ g.T
        return 0.5 * (K + K.T) - (hg + hg.T)  # exactly symmetric in floating point

    def hessian(self, rows) -> np.ndarray:
        """``Aᵀ B A`` (d, d): one weighted Gram and one pass (:meth:`range`)."""
        return rows.weighted_gram(self.diag) + self.low_rank(rows)

    def subspace_sums(self, Z, r, VZ=None):
        """``(Zᵀ [r, f_1..f_G, q_1..q_G], Zᵀ diag Z)``, (k, 1 + 2G) and (k, k): as
        :meth:`theory.loss.HessianParts.subspace_sums`, a column per group."""
        VZ = np.multiply(self.diag[:, None], Z, out=VZ)
        Zt = Z.T
        return np.column_stack([Zt @ r, Zt @ self.f, Zt @ self.q]), Zt @ VZ

    def apply(self, t: np.ndarray) -> np.ndarray:
        """``B t`` (n,) for t (n,): O(n), no n×n array."""
        ft, qt = self.f.T @ t, self.q.T @ t  # (G,)
        return self.diag * t + self.f @ (self.kappa * ft - qt) - self.q @ ft

    def dense(self) -> np.ndarray:
        """``B`` (n, n), for teaching and small-n tests only."""
        F, Q = self.f.toarray(), self.q.toarray()
        return np.diag(self.diag) + (F * self.kappa) @ F.T - Q @ F.T - F @ Q.T


class GroupedSoftmaxLoss(SoftmaxLoss):
    """ℓ(z) of the module docstring for b, w (n,), a :class:`GroupLayout` and ``exp_weight``:
    :class:`theory.loss.SoftmaxLoss`'s formulas with its reductions taken per group (``total``
    and ``dot`` give (G,), ``expand`` a per-group coefficient to its rows), the softmax per group
    (``Softmax.lse`` is (G,)) and B's parts block-diagonal. Immutable."""

    def __init__(self, b: np.ndarray, w: np.ndarray, layout: GroupLayout, exp_weight: float):
        self.layout = layout
        super().__init__(b, w, exp_weight)  # self.s: the per-group sums of b (G,)

    def total(self, v):
        return self.layout.sum(v)

    def dot(self, a, c):
        return self.layout.sum(a * c)

    def expand(self, c):
        return c[self.layout.codes]

    def softmax(self, z: np.ndarray, out: np.ndarray | None = None) -> Softmax:
        """``f_g = exp(z_g − max z_g) / Σ exp(z_g − max z_g)`` (n,) and ``lse`` (G,)."""
        lay = self.layout
        f = np.empty_like(z) if out is None else out
        m = lay.max(z)
        np.subtract(z, m[lay.codes], out=f)
        np.exp(f, out=f)
        total = lay.sum(f)
        f *= (1.0 / total)[lay.codes]
        return Softmax(f, m + np.log(total))

    def hessian_parts(self, v, f, q, k):
        lay = self.layout
        return GroupedHessianParts(diag=v, f=lay.columns(f), q=lay.columns(q), kappa=k)


class GroupedSoftmaxRegression(SoftmaxRegression):
    """``min_x Σ_g (e L_exp,g + L_cent,g) + L_reg`` for A (n, d), b (n,), w (n,) or a scalar ≥ 0,
    ``groups`` (n,) integers (the group of each row) and ``exp_weight`` e ≥ 0.

    The methods of :class:`~theory.objective.SoftmaxRegression` (loss, loss_parts, gradient,
    hessian, hessp, hessian_parts, B), and :func:`theory.solve` takes it (every method). Inputs are
    validated as there, then ``groups``; ``n_groups`` is G and ``s`` the per-group sums of b (G,).

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> A, groups = rng.standard_normal((12, 3)), np.repeat(np.arange(4), 3)
    >>> prob = GroupedSoftmaxRegression(A, np.tile([1.0, 0, 0], 4), 0.5, groups, exp_weight=0)
    >>> x = np.zeros(3)
    >>> bool(np.allclose(prob.hessp(x, np.ones(3)), prob.hessian(x) @ np.ones(3)))
    True
    """

    def __init__(self, A, b, w, groups, exp_weight: float = 1.0):
        super().__init__(A, b, w, exp_weight=exp_weight)
        self.groups, self.group_labels = check_groups(groups, self.n)
        self.layout = GroupLayout(self.groups, self.group_labels.size)
        self.loss_z = GroupedSoftmaxLoss(self.b, self.w, self.layout, self.exp_weight)
        self.s = self.loss_z.s

    # the softmax is taken within groups: the gradient row by row, not the single sweep
    sweeps, loss_and_gradient = Regression.sweeps, Regression.loss_and_gradient

    @property
    def n_groups(self) -> int:
        return self.layout.G

    def __repr__(self) -> str:
        return (
            f"GroupedSoftmaxRegression(n={self.n}, d={self.d}, groups={self.n_groups}, "
            f"exp_weight={self.exp_weight:g})"
        )


def multinomial_logistic(X, y, n_classes: int, ridge: float = 0.0) -> GroupedSoftmaxRegression:
    """Multinomial logistic regression ``Σ_i −log softmax(W X_i)_{y_i} + ½ ridge ||W||_F²`` as a
    grouped problem (module docstring): e = 0, one group of C rows per example, d ridge rows
    ``√ridge e_j`` in singleton groups (none when ridge = 0). x = vec(W), W (C, p) row-major.
    X (N, p) float64, y (N,) integers in 0..C−1."""
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y)
    if X.ndim != 2 or y.shape != (X.shape[0],) or y.dtype.kind not in "iu":
        raise ValueError(f"X must be (N, p) and y (N,) integers; got {X.shape} and {y.shape}.")
    if n_classes < 2 or y.min() < 0 or y.max() >= n_classes:
        raise ValueError(f"labels must lie in 0..{n_classes - 1} with n_classes ≥ 2.")
    if not (np.isfinite(ridge) and ridge >= 0):
        raise ValueError(f"ridge must be a finite number ≥ 0; got {ridge!r}.")
    N, p = X.shape
    C, d = n_classes, n_classes * p
    A = np.einsum("kc,ij->ikcj", np.eye(C), X).reshape(N * C, d)  # row (i, k) = e_k ⊗ X_i
    b = np.eye(C)[y].ravel()
    groups = np.repeat(np.arange(N), C)
    w = np.zeros(N * C)
    if ridge > 0:
        A = np.vstack([A, np.eye(d)])
        b = np.concatenate([b, np.zeros(d)])
        groups = np.concatenate([groups, N + np.arange(d)])
        w = np.concatenate([w, np.full(d, np.sqrt(ridge))])
    return GroupedSoftmaxRegression(A, b, w, groups, exp_weight=0.0)


# -- explicit constants (module docstring) ------------------------------------------------------


def _per_group(prob):
    """(layout, e, b) of a grouped problem, or of a SoftmaxRegression as one group."""
    layout = getattr(prob, "layout", None)
    if layout is None:
        layout = GroupLayout(np.zeros(prob.n, dtype=np.intp), 1)
    return layout, getattr(prob, "exp_weight", 1.0), prob.b


def B_norm_bound(prob) -> float:
    """``M = max_g M_g ≥ ||B_exp(x) + B_cent(x)||₂`` for all x (module docstring)."""
    layout, e, b = _per_group(prob)
    binf = layout.max(np.abs(b))
    M = e * (EXP_PART + 2.5 * binf) + 0.5 * np.abs(layout.sum(b))
    return float(np.max(np.where(layout.counts > 1, M, 0.0)))


def B_lipschitz(prob) -> float:
    """``max_g L_B,g``: ``||B(f) − B(f')|| ≤ L_B ||f − f'||`` for grouped softmax outputs f, f'."""
    layout, e, b = _per_group(prob)
    b2 = np.sqrt(layout.sum(b * b))
    L = e * (31 + 3 * b2 + 10 * layout.max(np.abs(b))) + 3 * np.abs(layout.sum(b))
    return float(np.max(np.where(layout.counts > 1, L, 0.0)))


def strong_convexity(prob, smin: float | None = None) -> float:
    """Lemma C.15: ``l = (min w² − M) σ_min(A)²``, ∇²L(x) ⪰ l I for all x (a certificate when > 0)."""
    smin = sigma_min(np.asarray(prob.A)) if smin is None else smin
    return (float(np.min(prob.w2)) - B_norm_bound(prob)) * smin**2


def hessian_lipschitz(prob, norm_A: float | None = None) -> float:
    """Lemma C.16: ``L_H = ||A||₂³ max_g L_B,g / 2``."""
    norm_A = float(np.linalg.norm(np.asarray(prob.A), 2)) if norm_A is None else norm_A
    return 0.5 * norm_A**3 * B_lipschitz(prob)


def theorem_conditions(prob, R: float, x0=None, x_star=None, eps: float = 0.01, sv=None):
    """Theorem D.1's conditions for a grouped (or single) problem, with the constants above: the
    conditions of :func:`theory.bounds.theorem_conditions` (same names, same statements), each a
    :class:`~theory.bounds.Condition` with its two sides. ``sv``: A's singular values when known
    (descending; else one SVD here)."""
    A = np.asarray(prob.A)
    sv = np.linalg.svd(A, compute_uv=False) if sv is None else np.asarray(sv)
    norm_A, smin = float(sv[0]), float(sv[-1]) if A.shape[0] >= A.shape[1] else 0.0
    M = B_norm_bound(prob)
    w2min = float(np.min(prob.w2))
    l = (w2min - M) * smin**2
    # (name, statement, lhs, rhs, holds: None to compare lhs <= rhs)
    rows: list[tuple[str, str, float, float, bool | None]] = [
        ("A_bounded", "||A||_2 <= R", norm_A, R, None)
    ]
    if x_star is not None:
        rows.append(("x_star_in_ball", "||x*||_2 <= R", float(np.linalg.norm(x_star)), R, None))
    holds = SANDWICH_FACTOR * M <= w2min and smin > 0
    rows.append(
        ("regulariser_dominates", "101 M(b) <= min w^2 and sigma_min(A) > 0",
         SANDWICH_FACTOR * M, w2min, holds)
    )  # fmt: skip
    if x0 is not None and x_star is not None:
        L_H = hessian_lipschitz(prob, norm_A)
        gap = L_H * np.linalg.norm(np.asarray(x0) - x_star)
        rows.append(("good_start", "L_H ||x0 - x*|| <= 0.1 l", gap, GOOD_START * l, None))
    rows.append(("sketch_accuracy", "eps <= 0.1", eps, MAX_SKETCH_EPS, None))
    return {
        name: Condition(name, st, float(lhs), float(rhs), bool(lhs <= rhs if h is None else h))
        for name, st, lhs, rhs, h in rows
    }
