"""Appendix C of the InfoPrompt paper, object by object.

Each function below is one named object of appendix C of Wu et al., "InfoPrompt: Information-
Theoretic Soft Prompt Tuning for Natural Language Understanding" (arXiv 2306.04933), written so that
a reader can follow the appendix in code. They favour clarity over speed: ``B_exp`` and ``B_cent``
build dense n×n matrices. The fast, structured versions used by solvers live in
:mod:`theory.objective`; both are checked against autograd, finite differences and sympy in
``theory/tests``.

Conventions (float64 throughout)::

    A : (n, d)   data matrix            b : (n,)   target        w : (n,)  regulariser weights
    x : (d,)     variable               z = A x : (n,)
    u = exp(z)                (Def. C.1; Def. C.2 names the same vector v)
    alpha = <u, 1_n>          (Def. C.3)      f = u / alpha           (Def. C.4)
    c = f - b                 (DLS23's definition; not one of the paper's)
    L_exp  = 0.5 ||c||²                        (Def. C.6)
    L_cent = -<b, log f>                       (Def. C.7)
    L_reg  = 0.5 ||diag(w) A x||²              (Def. C.8)
    J = diag(f) - f fᵀ  (n, n), the Jacobian of the softmax z -> f
    s = <b, 1_n>,   q = (2f - b) ∘ f

Numbering: the paper's, as tabled in ``docs/paper-notes.md`` ("The paper's numbering"), which
``theory/tests/test_numbering.py`` checks these docstrings against. What the paper does not contain —
c, ∇L_exp and B_exp — comes from Deng, Li and Song 2023 ("DLS23", "Attention scheme inspired softmax
regression", arXiv 2304.10411) and says so; ∇L_reg and B_reg are elementary.
``u`` and ``alpha`` overflow for z > 709; everything else is computed from the max-shifted softmax
and ``log f = z - logsumexp(z)`` (never ``log(softmax)``), so it stays finite for |z| up to 1e300.
"""

from __future__ import annotations

import numpy as np

# ---------------------------------------------------------------------------------------------
# Definitions C.1–C.4: u (= v), alpha, f; and DLS23's c
# ---------------------------------------------------------------------------------------------


def u(A: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Def. C.1: ``u(x) = exp(A x)``, shape (n,). Overflows for ``A x > 709``; teaching only.

    Def. C.2 defines ``v(x) = exp(A x)``, the same vector under a second name; this function is both.
    """
    return np.exp(A @ x)


def alpha(A: np.ndarray, x: np.ndarray) -> float:
    """Def. C.3: ``alpha(x) = <u(x), 1_n>``, a scalar. Overflows with ``u``; teaching only."""
    return float(np.sum(u(A, x)))


def logsumexp(z: np.ndarray) -> float:
    """``log alpha = log sum_i exp(z_i)``, computed as ``m + log sum exp(z - m)`` with m = max z."""
    m = np.max(z)
    return float(m + np.log(np.sum(np.exp(z - m))))


def softmax(z: np.ndarray) -> np.ndarray:
    """``f = exp(z - max z) / sum exp(z - max z)`` (n,): Def. C.4 without overflow."""
    e = np.exp(z - np.max(z))
    return e / np.sum(e)


def log_softmax(z: np.ndarray) -> np.ndarray:
    """``log f = z - logsumexp(z)`` (n,): finite even where ``f`` underflows to 0."""
    return z - logsumexp(z)


def f(A: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Def. C.4: ``f(x) = alpha(x)^{-1} u(x) = softmax(A x)``, shape (n,), on the simplex."""
    return softmax(A @ x)


def c(A: np.ndarray, x: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``c(x) = f(x) - b``, shape (n,): a definition of DLS23 (arXiv 2304.10411), not of the paper."""
    return f(A, x) - b


# ---------------------------------------------------------------------------------------------
# Definitions C.6–C.8: the three losses
# ---------------------------------------------------------------------------------------------


def L_exp(A: np.ndarray, x: np.ndarray, b: np.ndarray) -> float:
    """Def. C.6: ``L_exp(x) = 0.5 ||f(x) - b||²``."""
    return 0.5 * float(np.sum(c(A, x, b) ** 2))


def L_cent(A: np.ndarray, x: np.ndarray, b: np.ndarray) -> float:
    """Def. C.7: ``L_cent(x) = -<b, log f(x)>``, with ``log f = z - logsumexp(z)``."""
    return -float(b @ log_softmax(A @ x))


def L_reg(A: np.ndarray, x: np.ndarray, w: np.ndarray) -> float:
    """Def. C.8: ``L_reg(x) = 0.5 ||diag(w) A x||² = 0.5 sum_i w_i² (A x)_i²``."""
    return 0.5 * float(np.sum((w * (A @ x)) ** 2))


def L(A: np.ndarray, x: np.ndarray, b: np.ndarray, w: np.ndarray) -> float:
    """``L = L_exp + L_cent + L_reg`` (appendix C, the objective of Theorem D.1)."""
    return L_exp(A, x, b) + L_cent(A, x, b) + L_reg(A, x, w)


# ---------------------------------------------------------------------------------------------
# Lemma C.9: first derivatives of u, alpha, f; Lemma C.10 parts 1–2: of log f
# ---------------------------------------------------------------------------------------------


def du_dx(A: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Lemma C.9: ``du/dx_i = u ∘ A_{*,i}``, i.e. the Jacobian ``diag(u) A``, shape (n, d)."""
    return u(A, x)[:, None] * A


def dalpha_dx(A: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Lemma C.9: ``dalpha/dx_i = <u, A_{*,i}>``, i.e. ``Aᵀ u``, shape (d,)."""
    return A.T @ u(A, x)


def softmax_jacobian(fz: np.ndarray) -> np.ndarray:
    """``J = diag(f) - f fᵀ`` (n, n): the Jacobian of z -> softmax(z), symmetric PSD, ``||J|| ≤ 1/2``.

    Lemma C.11 (the Hessian of log f) in these terms: ``d² log f_j / dx² = -Aᵀ J A`` for every j,
    since ``log f_j = z_j - logsumexp(z)`` and the Hessian of logsumexp in z is J.
    """
    return np.diag(fz) - np.outer(fz, fz)


def df_dx(A: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Lemma C.9: ``df/dx_i = f ∘ A_{*,i} - <f, A_{*,i}> f``, i.e. ``J A``, shape (n, d)."""
    fx = f(A, x)
    return fx[:, None] * A - np.outer(fx, A.T @ fx)


def dlogf_dx(A: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Lemma C.10 part 1: ``d log f / dx_i = A_{*,i} - <f, A_{*,i}> 1_n``, shape (n, d).

    Contracted with b, ``dlogf_dx(A, x).T @ b = Aᵀ b - s Aᵀ f``, it is Lemma C.10 part 2,
    ``<d log f / dx_i, b>``; its negative is ∇L_cent (part 3).
    """
    return A - (A.T @ f(A, x))[None, :]


# ---------------------------------------------------------------------------------------------
# Gradients of the three losses: DLS23 (L_exp), Lemma C.10 part 3 (L_cent), elementary (L_reg)
# ---------------------------------------------------------------------------------------------


def grad_L_exp(A: np.ndarray, x: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``∇L_exp = Aᵀ J c = Aᵀ (f ∘ c - <f, c> f)``, shape (d,): from DLS23 (arXiv 2304.10411).

    The paper states no lemma for it (its Lemma C.10 is about log f and L_cent).
    """
    fx = f(A, x)
    cx = fx - b
    return A.T @ (fx * cx - (fx @ cx) * fx)


def grad_L_cent(A: np.ndarray, x: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Lemma C.10 part 3: ``∇L_cent = Aᵀ (s f - b)`` with ``s = <b, 1_n>``, shape (d,)."""
    return A.T @ (np.sum(b) * f(A, x) - b)


def grad_L_reg(A: np.ndarray, x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """``∇L_reg = Aᵀ diag(w²) A x``, shape (d,): the derivative of a quadratic (no lemma of the paper)."""
    return A.T @ (w**2 * (A @ x))


# ---------------------------------------------------------------------------------------------
# Hessians: Aᵀ B(x) A with B dense (n, n) — DLS23's B_exp, Def. C.13 and Lemma C.14
# ---------------------------------------------------------------------------------------------


def B_exp(fz: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``∇²L_exp = Aᵀ B_exp A`` with (n, n), from DLS23 (arXiv 2304.10411); not in the paper:

    ``B_exp = <3f - 2b, f> f fᵀ - <f - b, f> diag(f) + diag(q) - q fᵀ - f qᵀ``,  ``q = (2f - b) ∘ f``.

    It is ``Jᵀ J + sum_i c_i ∇²_z f_i``; the second term makes it indefinite in general.
    Checked here against autograd, finite differences and sympy (``theory/tests``).
    """
    q = (2 * fz - b) * fz
    return (
        ((3 * fz - 2 * b) @ fz) * np.outer(fz, fz)
        - ((fz - b) @ fz) * np.diag(fz)
        + np.diag(q)
        - np.outer(q, fz)
        - np.outer(fz, q)
    )


def B_cent(fz: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Def. C.13: ``B_cent = s (diag(f) - f fᵀ) = s J`` (n, n), ``s = <b, 1_n>``.

    Lemma C.14: ``∇²L_cent = Aᵀ B_cent A``; ``B_cent ⪰ 0`` when ``s ≥ 0``.
    """
    return np.sum(b) * softmax_jacobian(fz)


def B_reg(w: np.ndarray) -> np.ndarray:
    """``∇²L_reg = Aᵀ B_reg A`` with ``B_reg = diag(w²) = W²`` (n, n): elementary, no lemma of the paper."""
    return np.diag(w**2)


def B(A: np.ndarray, x: np.ndarray, b: np.ndarray, w: np.ndarray) -> np.ndarray:
    """``B(x) = B_exp + B_cent + W²`` (n, n), so that ``∇²L(x) = Aᵀ B(x) A``.

    Lemma C.15 calls this matrix B̃; its ``B_exp`` part is DLS23's.
    """
    fx = f(A, x)
    return B_exp(fx, b) + B_cent(fx, b) + B_reg(w)


def hessian_dense(A: np.ndarray, x: np.ndarray, b: np.ndarray, w: np.ndarray) -> np.ndarray:
    """``∇²L(x) = Aᵀ B(x) A`` (d, d) through the dense B: O(n² d), teaching only."""
    return A.T @ B(A, x, b, w) @ A
