r"""Named families of :class:`~theory.objective.SoftmaxRegression` instances, generated from a seed.

``make_instance(family, n, d, seed)`` returns an :class:`Instance`: the problem, a start x0, and
(lazily) a reference minimiser x* to about 1e-12. The families and what each is for:

* ``theorem`` — inside Theorem D.1 with the explicit constants of :mod:`theory.bounds`:
  ``min w² ≥ 101 M(b)`` (so ``(1 − 0.01) B̃ ⪯ W² ⪯ (1 + 0.01) B̃``, Lemma C.15), A of full column
  rank, and a start with ``L_H ||x0 − x*|| ≤ 0.1 l`` (``l`` of Lemma C.15, ``L_H`` of Lemma C.16).
  ``||A||₂ ≤ R`` and ``||x*|| ≤ R`` hold with ``R = max(||A||₂, ||x*||)``. W² is ≥ 99% of B.
* ``quadratic`` — near-quadratic: ``w = 1``, b spread over the simplex (Dirichlet(10)), so
  ``L_reg = ½||Ax||²`` dominates and f ≈ 1/n: exact Newton takes about one step.
* ``sparse`` — nonlinear: b on 4 rows (mass 1/4 each), ``w² = 0.1/n`` (f ≈ 1/n off the support): the optimum
  saturates the softmax on the support rows; Newton needs several damped steps.
* ``peaked`` — nonlinear and planted: ``b = softmax(A x♮)`` with ``||A x♮||_∞ = 12`` (a peaked f),
  ``w² = 0.1/n``: x* is near x♮, far from 0 on the scale of the softmax.
* ``coherent`` — rows of heavy-tailed norms (Pareto(1.5) + 1 times a Gaussian row), b spread,
  ``w² = 1/n``: a few rows carry most leverage, so uniform sampling misses them and leverage
  sampling does not; the large rows saturate the softmax.
* ``wide`` — ``sparse`` at d ≥ 1024 (the default n is 64 d): where sketching the Hessian pays.

Conventions: A (n, d) standard Gaussian unless stated; b (n,) ≥ 0 with ``<b, 1> = 1``; x0 = 0
except for ``theorem``. Every family is drawn tile by tile from the seed
(:func:`theory.blocks.block_rows`), the same draw on every backend.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from theory import bounds
from theory.blocks import FAMILIES, GeneratedBlock, check_family  # noqa: F401 (FAMILIES: re-exported)
from theory.engine import LocalEngine
from theory.linalg import SPDSolver
from theory.objective import SoftmaxRegression
from theory.solve import solve
from theory.validation import check_size

POLISH_STEPS = 3  # from max|g| ≤ 1e-10, quadratic convergence reaches the floor in ≤ 2 steps.
THEOREM_MARGIN = 1.02  # w² = 1.02 · 101 M(b): inside the regime with a 2% margin.


@dataclass
class Instance:
    """A named problem: ``prob``, start ``x0``, and the reference minimiser ``x_star`` (computed once)."""

    family: str
    seed: int
    prob: SoftmaxRegression
    x0: np.ndarray
    notes: dict = field(default_factory=dict)
    _x_star: np.ndarray | None = field(default=None, repr=False)
    backend: str = "numpy"  # where A lives, for the name (``numpy``, ``torch on cuda:0``, …)

    @property
    def name(self) -> str:
        return (
            f"{self.family}(n={self.prob.n}, d={self.prob.d}, seed={self.seed}) on {self.backend}"
        )

    @property
    def x_star(self) -> np.ndarray:
        """x* by exact Newton run to its rounding floor (``||x − x*|| ≲ 1e-12`` on these families)."""
        if self._x_star is None:
            self._x_star = reference_solution(self.prob, self.x0)
        return self._x_star


def reference_solution(prob, x0=None) -> np.ndarray:
    """x*: damped exact Newton to ``max|g| ≤ 1e-10 max(1, max|g_0|)``, then full Newton steps
    ``x ← x − H⁻¹ g`` (quadratic convergence) until the step is below ``1e-15 (1 + ||x||)``."""
    x0 = np.zeros(prob.d) if x0 is None else x0
    tol = 1e-10 * max(1.0, float(np.max(np.abs(prob.gradient(x0)))))
    x = solve(prob, method="newton", tol=tol, max_iter=200, x0=x0).x
    for _ in range(POLISH_STEPS):
        p = SPDSolver(prob.hessian(x)).solve(prob.gradient(x))
        x = x - p
        if np.linalg.norm(p) <= 1e-15 * (1 + np.linalg.norm(x)):
            break
    return x


def make_instance(family: str, n: int, d: int, seed: int = 0) -> Instance:
    """The instance of ``family`` (one of :data:`FAMILIES`) at size (n, d), drawn from ``seed`` by
    the one generator of every backend (:func:`theory.blocks.block_rows`, tile-seeded): an engine
    generated from the same family, size and seed holds the same A, b, w."""
    check_size(n, d)
    check_family(family, n, d)
    eng = LocalEngine([GeneratedBlock(family, n, d, seed, 0, n)])
    eng.finish_family(family, n, d, seed)
    blk = eng.blocks[0]
    w = blk.w
    if family == "theorem":  # w² = 1.02 · 101 M(b): inside the regime with a 2% margin
        w = math.sqrt(THEOREM_MARGIN * bounds.SANDWICH_FACTOR * bounds.B_norm_bound(blk.b))
    inst = Instance(family, seed, SoftmaxRegression(blk.A, blk.b, w), np.zeros(d))
    if family == "theorem":
        _place_good_start(inst, np.random.default_rng([seed, n, d, 1]))
    return inst


def _place_good_start(inst: Instance, rng) -> None:
    """x0 = x* + r u (u uniform on the sphere) with ``L_H r = ½ · 0.1 l``: the good start, halved."""
    p = inst.prob
    l = bounds.strong_convexity(p.A, p.b, p.w)
    L_H = bounds.hessian_lipschitz(p.A, p.b)
    x_star = reference_solution(p)
    u = rng.standard_normal(p.d)
    radius = 0.5 * bounds.GOOD_START * l / L_H
    inst.x0 = x_star + radius * u / np.linalg.norm(u)
    inst._x_star = x_star
    R = max(float(np.linalg.norm(p.A, 2)), float(np.linalg.norm(x_star)))
    inst.notes = {"l": l, "L_H": L_H, "M": bounds.B_norm_bound(p.b), "R": R, "radius": radius}


def theorem_report(inst: Instance, eps: float = 0.01) -> dict:
    """:func:`theory.bounds.theorem_conditions` for the instance, with its own R, x0 and x*."""
    R = inst.notes.get("R", float(np.linalg.norm(inst.prob.A, 2)))
    return bounds.theorem_conditions(inst.prob, R, x0=inst.x0, x_star=inst.x_star, eps=eps)
