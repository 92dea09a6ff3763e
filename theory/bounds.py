r"""Explicit constants for Lemma C.15 (positive definiteness) and Lemma C.16 (Hessian Lipschitz).

The paper states both constants only as ``exp(O(R² + log n))``. Because ``f = softmax(Ax)`` lies on
the probability simplex for *every* x, the matrices B(x) of the Hessian ``Aᵀ B(x) A`` are bounded by
constants that depend on b alone — not on R, not on n. This module derives them and evaluates them.

Notation: ``β∞ = ||b||_∞``, ``β₂ = ||b||₂``, ``s = <b, 1>``, ``J = diag f − f fᵀ``, ``c = f − b``.

**Fact 1 (softmax Jacobian).** J is symmetric PSD and, by Gershgorin (row i: diagonal
``f_i − f_i²``, off-diagonal sum ``f_i (1 − f_i)``), ``λ_max(J) ≤ max_i 2 f_i (1 − f_i) ≤ 1/2``.
So ``z ↦ softmax(z)`` is 1/2-Lipschitz in ℓ₂ (mean value theorem along a segment).

**Lemma A (norm of B_exp + B_cent).** In z, ``L_exp`` has Hessian ``B_exp = J² + Σ_i c_i ∇²f_i``
with ``∇²f_i = f_i [(e_i − f)(e_i − f)ᵀ − J]``, hence

    B_exp = J² + Σ_i c_i f_i (e_i − f)(e_i − f)ᵀ − <c, f> J.

Bound each term, using ``||e_i − f||² = (1 − f_i)² + Σ_{j≠i} f_j² ≤ 2 (1 − f_i)²``:

* ``||J²|| ≤ 1/4``;
* ``||Σ_i c_i f_i (e_i − f)(e_i − f)ᵀ|| ≤ 2 Σ_i (f_i + |b_i|) f_i (1 − f_i)²
  ≤ 2 (max_t t (1 − t)²) Σ_i f_i + 2 β∞ Σ_i f_i = 2 · 4/27 + 2 β∞``;
* ``|<c, f>| ||J|| ≤ (||f||² + |<b, f>|) / 2 ≤ (1 + β∞) / 2``;
* ``B_cent = s J`` (Def. C.13) has ``||B_cent|| ≤ |s| / 2``.

So for all x::

    ||B_exp(x) + B_cent(x)||₂ ≤ M(b) := 1/4 + 8/27 + 1/2 + (5/2) β∞ + |s|/2.          (M)

**Lemma C.15, explicit.** ``∇²L(x) = Aᵀ (B_exp + B_cent + W²) A ⪰ (min_i w_i² − M) Aᵀ A``, so

    ∇²L(x) ⪰ l I   for all x,   l := (min_i w_i² − M) σ_min(A)²,                        (l)

which is positive when ``min w² > M`` and A has full column rank. The paper's sandwich (its part 2,
with the typo corrected) ``(1 − 0.01) B̃ ⪯ W² ⪯ (1 + 0.01) B̃``, ``B̃ = B_exp + B_cent + W²``, holds
once ``min w² ≥ 101 M``: ``W² ⪯ 1.01 B̃`` needs ``−B ⪯ (0.01/1.01) W²`` and ``0.99 B̃ ⪯ W²`` needs
``0.99 B ⪯ 0.01 W²``; both follow from ``||B|| ≤ M ≤ min w² / 101``.

**Lemma C.16, explicit.** Write B as a polynomial in f (``objective.HessianParts``):
``B = κ₁ f fᵀ − κ₂ diag f + diag q − q fᵀ − f qᵀ + s J + W²`` with ``κ₁ = <3f − 2b, f>``,
``κ₂ = <f − b, f>``, ``q = (2f − b) ∘ f``. For f, f' on the simplex and ``Δ = ||f − f'||₂``:
``|κ₁ − κ₁'| ≤ (6 + 2β₂) Δ``, ``|κ₁| ≤ 3 + 2β∞``, ``||f fᵀ − f' f'ᵀ|| ≤ 2Δ``,
``|κ₂ − κ₂'| ≤ (2 + β₂) Δ``, ``|κ₂| ≤ 1 + β∞``, ``||q − q'||_∞, ||q − q'||₂ ≤ (4 + β∞) Δ``,
``||q||₂ ≤ 2 + β∞``, ``||J − J'|| ≤ 3Δ``. Adding the five terms,

    ||B(f) − B(f')|| ≤ L_B Δ,   L_B := 31 + 3 β₂ + 10 β∞ + 3 |s|,

and with Fact 1, ``Δ ≤ ||A (x − y)|| / 2``::

    ||∇²L(x) − ∇²L(y)|| ≤ L_H ||x − y||,   L_H := ||A||₂³ L_B / 2   for all x, y.           (L_H)

Neither constant depends on R or n; the tests in ``theory/tests/test_bounds.py`` hunt for violations
with hypothesis and ``benchmarks/bounds.py`` measures how loose they are.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SANDWICH_FACTOR = 101.0  # min w² ≥ 101 M gives (1 − 0.01) B̃ ⪯ W² ⪯ (1 + 0.01) B̃ exactly.
GOOD_START = 0.1  # Theorem D.1 / Song et al.'s approximate Newton: L_H ||x0 − x*|| ≤ 0.1 l.
MAX_SKETCH_EPS = 0.1  # (1 ± ε) spectral sketch accuracy under which the 0.4 contraction is proved.


def B_norm_bound(b: np.ndarray) -> float:
    """M(b) = 1/4 + 8/27 + 1/2 + (5/2)||b||_∞ + |<b, 1>|/2 ≥ ||B_exp(x) + B_cent(x)||₂ for all x."""
    b = np.asarray(b, dtype=np.float64)
    return 0.25 + 8 / 27 + 0.5 + 2.5 * float(np.max(np.abs(b))) + 0.5 * abs(float(np.sum(b)))


def sigma_min(A: np.ndarray) -> float:
    """Smallest singular value of A (n, d): 0 when A has rank < d."""
    if A.shape[0] < A.shape[1]:
        return 0.0
    return float(np.linalg.svd(A, compute_uv=False)[-1])


def strong_convexity(A: np.ndarray, b: np.ndarray, w: np.ndarray) -> float:
    """Lemma C.15: l = (min w² − M(b)) σ_min(A)², so that ∇²L(x) ⪰ l I for all x.

    Meaningful (a certificate of strong convexity) only when it is positive.
    """
    w2min = float(np.min(np.asarray(w, dtype=np.float64) ** 2))
    return (w2min - B_norm_bound(b)) * sigma_min(A) ** 2


def B_lipschitz(b: np.ndarray) -> float:
    """L_B = 31 + 3||b||₂ + 10||b||_∞ + 3|<b, 1>|: ||B(f) − B(f')|| ≤ L_B ||f − f'|| on the simplex."""
    b = np.asarray(b, dtype=np.float64)
    return (
        31 + 3 * float(np.linalg.norm(b)) + 10 * float(np.max(np.abs(b))) + 3 * abs(float(b.sum()))
    )


def hessian_lipschitz(A: np.ndarray, b: np.ndarray) -> float:
    """Lemma C.16: L_H = ||A||₂³ L_B / 2, so that ||∇²L(x) − ∇²L(y)|| ≤ L_H ||x − y|| for all x, y."""
    return 0.5 * float(np.linalg.norm(A, 2)) ** 3 * B_lipschitz(b)


def paper_constant(R: float, n: int) -> float:
    """The paper's ``exp(O(R² + log n))`` read with unit constants, ``n e^{R²}``: a generous reading."""
    return float(n * np.exp(R**2))


@dataclass(frozen=True)
class Condition:
    """One condition of Theorem D.1: ``lhs ≤ rhs`` (or the stated relation) and whether it holds."""

    name: str
    statement: str
    lhs: float
    rhs: float
    holds: bool


def theorem_conditions(
    prob, R: float, x0=None, x_star=None, eps: float = 0.01
) -> dict[str, Condition]:
    """Which conditions of Theorem D.1 hold for ``prob`` (a SoftmaxRegression), with our constants.

    Conditions (each with its two sides, so a reader sees by how much it holds or fails):

    * ``A_bounded``: ``||A||₂ ≤ R``;
    * ``x_star_in_ball``: ``||x*||₂ ≤ R`` (when x* is given);
    * ``regulariser_dominates`` (Lemma C.15, both parts): ``min w² ≥ 101 M(b)`` and σ_min(A) > 0,
      i.e. the Hessian is ⪰ l I with ``l = (min w² − M) σ_min(A)² > 0`` and ≈ Aᵀ W² A to 1%;
    * ``good_start``: ``L_H ||x0 − x*|| ≤ 0.1 l`` (when x0 and x* are given);
    * ``sketch_accuracy``: ``ε ≤ 0.1``.
    """
    A, b, w = prob.A, prob.b, prob.w
    M = B_norm_bound(b)
    smin = sigma_min(A)
    w2min = float(np.min(w**2))
    l = (w2min - M) * smin**2
    out = {}

    def add(name, statement, lhs, rhs, holds=None):
        out[name] = Condition(
            name, statement, float(lhs), float(rhs), bool(lhs <= rhs if holds is None else holds)
        )

    add("A_bounded", "||A||_2 <= R", np.linalg.norm(A, 2), R)
    if x_star is not None:
        add("x_star_in_ball", "||x*||_2 <= R", np.linalg.norm(x_star), R)
    add(
        "regulariser_dominates",
        "101 M(b) <= min w^2 and sigma_min(A) > 0",
        SANDWICH_FACTOR * M,
        w2min,
        holds=SANDWICH_FACTOR * M <= w2min and smin > 0,
    )
    if x0 is not None and x_star is not None:
        L_H = hessian_lipschitz(A, b)
        add(
            "good_start",
            "L_H ||x0 - x*|| <= 0.1 l",
            L_H * np.linalg.norm(np.asarray(x0) - x_star),
            GOOD_START * l,
        )
    add("sketch_accuracy", "eps <= 0.1", eps, MAX_SKETCH_EPS)
    return out
