r"""Line-search solvers for ``min_x L(x)``: exact Newton, Algorithm 1's sketched Newton, gradient descent.

Each follows the steps of :class:`theory.solver.Solver` and differs from the others in one step:

* :class:`NewtonSolver` — ``update_hessian``: ``H_k = ∇²L(x_k) = Aᵀ B(x_k) A`` (structured,
  O(n d²)); ``inner_solve``: ``p_k = −H_k⁻¹ g_k`` by Cholesky;
* :class:`SketchedNewtonSolver` — ``update_hessian``: Algorithm 1 of arXiv 2306.04933 (appendix D),
  ``H̃_k = Aᵀ D̃ A + Aᵀ diag(v₋) A + low rank``, D̃ a sampled diagonal (:func:`sketched_hessian`);
  the step **subtracts** ``H̃⁻¹ g`` (the paper's line 8, ``x + H̃⁻¹ g``, has the sign wrong);
* :class:`GradientDescentSolver` — ``inner_solve``: ``p_k = −α_k g_k``, a teaching baseline.

The line search (:class:`LineSearchSolver`) is Armijo backtracking,
``L(x + t p) ≤ L(x) + c₁ t gᵀp``, or, with ``line_search=False``, always t = 1 (the theorem's full
step). Numerical trouble never raises: an indefinite or ill-conditioned H warns
(:class:`~theory.solver.HessianWarning`, or :class:`~theory.solver.RankWarning` naming the rank of
A when that is the cause) and falls back to :class:`~theory.linalg.SPDSolver`'s eigenvalue
solve; a failed line search or a non-finite loss ends the solve with ``success=False``.

Conventions: x, g, p (d,); H (d, d); v, f, q (n,).
"""

from __future__ import annotations

import math
from typing import ClassVar

import numpy as np

from theory.linalg import SPDSolver
from theory.rows import as_rows
from theory.sketch import make_sketch
from theory.solver import (
    ROUNDING,
    SKETCH_OPTIONS,
    Model,
    Solver,
    SolverOptions,
    State,
    Step,
)

ARMIJO_C1 = 1e-4  # sufficient decrease constant (Nocedal & Wright, p. 33: "quite small, say 1e-4").
MAX_HALVINGS = 40  # 2⁻⁴⁰ ≈ 1e-12: a smaller step no longer moves x in float64 for ||x|| ~ 1.
QUADRATIC_FLOOR = 1e3  # a predicted decrease below 1e3 roundings of L is at L's rounding floor.
DEFAULT_SAMPLES_PER_D = 16  # sketch size s = 16 d when neither sketch_size nor eps is given.
NEWTON_HINT = "L may be non-convex here (w too small); the line search keeps the solve safe."
SKETCH_HINT = (
    "The sample is too small next to the exact, indefinite rank ≤ 2 part; a larger sketch_size "
    "(or eps) avoids this."
)


def sketched_hessian(A, parts, sketch, s: int, rng: np.random.Generator):
    """Algorithm 1's ``H̃ = Aᵀ D̃ A + Aᵀ diag(v₋) A + (κ g gᵀ − h gᵀ − g hᵀ)`` (d, d).

    ``v = parts.diag`` splits into ``v₊ = max(v, 0)``, whose ``Aᵀ diag(v₊) A`` is sampled
    (D̃ sparse, non-negative; :mod:`theory.sketch`), and ``v₋ < 0`` (rows with ``b_i > 2 f_i``,
    few), added exactly so that sampling never meets a negative weight. If
    ``(1 − ε) Aᵀ diag(v₊) A ⪯ Aᵀ D̃ A ⪯ (1 + ε) Aᵀ diag(v₊) A`` then ``|H̃ − H| ⪯ ε Aᵀ diag(v₊) A``,
    which is ``≈ ε H`` when v₊ carries most of H (the theorem regime, where W² does).
    Returns ``(H̃, SketchedGram)``.
    """
    D, sk = sampled_diagonal_part(A, parts, sketch, s, rng)
    return D + parts.low_rank(as_rows(A)), sk


def sampled_diagonal_part(A, parts, sketch, s: int, rng: np.random.Generator):
    """``D̃ = Aᵀ D̃₊ A + Aᵀ diag(v₋) A`` (d, d): v₊ sampled by ``sketch``, the rows v_i < 0 exact.
    Returns ``(D̃, SketchedGram)``; :func:`sketched_hessian` adds the rank-2 term. The split of v
    is the row protocol's (``split_positive``: in memory, or one round on an engine's blocks)."""
    A = as_rows(A)
    v_plus, N = A.split_positive(parts.diag)
    sk = sketch.gram(A, v_plus, s, rng)
    return (sk.H if N is None else sk.H + N), sk


def resolve_sketch_size(opts: SolverOptions, sketch, n: int, d: int, default: int) -> int:
    """s: ``sketch_size``, else the sketch's rule at ``eps``, else the method's ``default``."""
    if opts.sketch_size is not None:
        return opts.sketch_size
    if opts.eps is not None:
        return sketch.size(d, opts.eps, opts.delta, n=n)
    return default


def make_solver_sketch(opts: SolverOptions):
    """The sketch named by ``opts.sketch`` (with ``drift`` for leverage sampling)."""
    return make_sketch(opts.sketch, **({"drift": opts.drift} if opts.sketch == "leverage" else {}))


class LineSearchSolver(Solver):
    """A solver whose ``line_search`` is Armijo backtracking from t = 1 (or the full step).
    ``full_step_usual``: t = 1 is usually accepted, so it is evaluated with its gradient."""

    full_step_usual: ClassVar[bool] = True

    def line_search(self, state: State, step: Step):
        """Halve t until ``L(x + t p) ≤ L(x) + c₁ t gᵀp``; below rounding, accept if |g|₁ shrank
        (sklearn's rule). No step found: status 3 at the rounding floor (the predicted decrease
        ½λ² is within 1e3 roundings of L), else 5 (the model is poor). The full step, usually
        taken, is evaluated with its gradient in one sweep (:meth:`~theory.solver.Solver.point`);
        a shorter one by its loss first."""
        slope = float(state.g @ step.p)
        if not self.opts.line_search:
            return self._moved(state, step.p), None
        t, g1 = 1.0, np.sum(np.abs(state.g))
        for _ in range(MAX_HALVINGS):
            x, dx, new = state.x + t * step.p, t * step.p, None
            if t == 1.0 and self.full_step_usual:
                new = self.point(x).with_step(float(np.linalg.norm(dx)))
                loss = new.loss
            else:
                z, sm, loss = self.value(x)
            if math.isfinite(loss):
                sufficient = loss <= state.loss + ARMIJO_C1 * t * slope
                if sufficient or loss - state.loss <= ROUNDING * abs(state.loss):
                    if new is None:
                        new = self._moved(state, dx, x, z, sm, loss)
                    if sufficient or np.sum(np.abs(new.g)) < g1:
                        return new, None
            t *= 0.5
        floor = -0.5 * slope <= QUADRATIC_FLOOR * ROUNDING * max(abs(state.loss), 1.0)
        return None, 3 if floor or not self.sketched else 5

    def _moved(self, state, dx, x=None, z=None, sm=None, loss=None) -> State:
        """The state at ``x = state.x + dx`` (one sweep unless z, sm, loss are given)."""
        x = state.x + dx if x is None else x
        new = self.point(x) if z is None else self.evaluate(x, z, sm, loss)
        return new.with_step(float(np.linalg.norm(dx)))


class NewtonSolver(LineSearchSolver):
    """Exact Newton: ``H_k = ∇²L(x_k)`` (one O(n d²) syrk), ``p_k = −H_k⁻¹ g_k`` by Cholesky.

    Quadratic convergence near x*; with the line search, globally convergent on strongly convex L.
    """

    method = "newton"
    options = frozenset({"decrement_tol", "line_search", "verbose"})

    def update_hessian(self, state):
        H = SPDSolver(self.hessian(state))
        self.check_fallback(H, NEWTON_HINT)
        return Model(H)

    def inner_solve(self, state, model):
        p = -model.H.solve(state.g)
        return Step(p=p, decrement2=-float(state.g @ p))


class SketchedNewtonSolver(NewtonSolver):
    """Algorithm 1: ``x_{k+1} = x_k − t_k H̃_k⁻¹ g_k`` with the sketched H̃_k of :func:`sketched_hessian`.

    With ``(1 ± ε)`` accuracy and the theorem's conditions, ``||x_{k+1} − x*|| ≤ 0.4 ||x_k − x*||``
    at the full step (Theorem D.1; linear, not quadratic, convergence). Costs per iteration: one
    gradient, leverage scores when v drifted, O(s d²) build, O(d³) Cholesky. s = 16 d by default.
    """

    method = "sketched-newton"
    options = NewtonSolver.options | SKETCH_OPTIONS
    sketched = True

    def setup(self, x0):
        self._sketch = make_solver_sketch(self.opts)
        n, d = self.prob.n, self.prob.d
        self._s = resolve_sketch_size(self.opts, self._sketch, n, d, DEFAULT_SAMPLES_PER_D * d)
        return super().setup(x0)

    def update_hessian(self, state):
        H, sk = sketched_hessian(self.rows, state.parts, self._sketch, self._s, self.rng)
        self.count_hessians()
        H = SPDSolver(H)
        self.check_fallback(H, SKETCH_HINT)
        return Model(H, float(sk.size), sk.leverage_time)


class GradientDescentSolver(LineSearchSolver):
    """``x_{k+1} = x_k − t_k α_k g_k``: Armijo backtracking, ``α_{k+1} = 2 t_k α_k`` (a teaching baseline).

    Linear convergence at rate ``1 − 1/κ(∇²L)``: thousands of iterations on ill-conditioned problems.
    """

    full_step_usual = (
        False  # the step doubles each iteration: t = 1 is rejected about half the time
    )
    method = "gradient-descent"
    options = frozenset({"line_search", "verbose"})
    uses_hessian = False

    def setup(self, x0):
        state = super().setup(x0)
        self._alpha = 1.0 / max(float(np.linalg.norm(state.g)), 1e-300)
        return state

    def update_hessian(self, state):
        return Model()

    def inner_solve(self, state, model):
        return Step(p=-self._alpha * state.g, decrement2=math.nan)

    def line_search(self, state, step):
        new, status = super().line_search(state, step)
        if new is not None:
            self._alpha *= 2 * new.step / max(float(np.linalg.norm(step.p)), 1e-300)
        return new, status
