r"""Trust-region Newton-CG preconditioned by the sketch (beyond the paper): ``sketched-newton-cg``.

Each step approximately minimises the model ``m(p) = gᵀp + ½ pᵀ ∇²L(x_k) p`` over ``||p|| ≤ Δ_k``
by preconditioned CG (Steihaug–Toint; Nocedal & Wright, Alg. 7.2) with P of
:mod:`theory.preconditioner` (Algorithm 1's H̃, or the exact Hessian when that is cheaper), factored
once per build. Each CG iteration costs one exact product ``∇²L v`` (two passes over A, O(n d)) and
one solve with P (O(d²)); if ``(1 − ε) H ⪯ P ⪯ (1 + ε) H``, the error contracts by
``(√κ − 1)/(√κ + 1)`` per iteration with ``κ ≤ (1 + ε)/(1 − ε)``. CG stops at the relative residual
``η_k = min(0.5, √||g_k||₂)`` (scipy's Newton-CG forcing term: superlinear convergence), at the
boundary, at a direction of non-positive curvature, or at ``cg_maxiter``.

Trust region (Nocedal & Wright, Alg. 4.1, scipy's constants relative to the problem's scale):
ρ = actual / predicted decrease; ρ < ¼: Δ ← ¼||p||; ρ > ¾ at the boundary: Δ ← min(2Δ, 1000 Δ₀);
the step is taken when ρ > 0.15. Δ₀ comes from the problem's scale: the length of the step along
−g₀ that changes some z_i by 1 (the softmax's own unit), ``Δ₀ = max(1, 1 / ||A g₀/||g₀|| ||_∞)``
(one pass), so that a minimiser far from x0 is not reached by doubling from 1.

Rebuild rule (:class:`~theory.preconditioner.PreconditionerPolicy`): the work of a Newton step
under the current P is the CG iterations the last one took; under a fresh P it is the mean of the
CG iterations seen in the steps just after the builds so far, at least ``FRESH_PCG_ITERATIONS``
(so that one lucky CG after a build does not make every later step look worth a rebuild); P is
(re)built at x_k when the former exceeds K + the latter. K is the cost model's price in gradient
evaluations (≈ CG iterations; the sketch's includes the pass for its exact rank-2 part), never a
measured time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from theory.newton import (
    DEFAULT_SAMPLES_PER_D,
    make_solver_sketch,
    resolve_sketch_size,
)
from theory.preconditioner import PreconditionerPolicy
from theory.solver import ROUNDING, SKETCH_OPTIONS, Model, Solver, Step

MIN_RADIUS0 = 1.0  # Δ₀ ≥ 1 (scipy's initial radius)
MAX_RADIUS_FACTOR = 1000.0  # Δ ≤ 1000 Δ₀ (scipy: 1000 with Δ₀ = 1)
ETA = 0.15  # accept the step when ρ > η (scipy's _trustregion.py)
RADIUS_MIN = 1e-14  # relative to 1 + ||x||: a smaller trust region no longer moves x in float64.
FRESH_PCG_ITERATIONS = 2  # PCG iterations per Newton step with a freshly built preconditioner.
RANGE_GRADS = 0.5  # the sketch's exact rank-2 part needs Aᵀ[f, q]: one pass, half a gradient


@dataclass(frozen=True)
class TrustStep(Step):
    """A Steihaug step: ``predicted`` = m(p) (< 0 for a decrease), ``hit_boundary``."""

    predicted: float = 0.0
    hit_boundary: bool = False


class SketchedNewtonCGSolver(Solver):
    """See the module docstring."""

    method = "sketched-newton-cg"
    options = (
        frozenset({"decrement_tol", "verbose", "cg_maxiter", "rebuild_after"}) | SKETCH_OPTIONS
    )
    sketched = True

    def setup(self, x0):
        n, d = self.prob.n, self.prob.d
        self._sketch = make_solver_sketch(self.opts)
        s = resolve_sketch_size(self.opts, self._sketch, n, d, DEFAULT_SAMPLES_PER_D * d)
        self._policy = PreconditionerPolicy.for_problem(
            n, d, s, self.opts.rebuild_after, extra=RANGE_GRADS
        )
        self._P, self._cg_last, self._fresh, self._just_built = None, 0, [], False
        state = super().setup(x0)
        u = state.g / max(float(np.linalg.norm(state.g)), 1e-300)
        unit = self.rows.amax_abs(self.rows.matvec(u))
        self._radius = self._radius0 = max(MIN_RADIUS0, 1.0 / unit if unit > 0 else MIN_RADIUS0)
        return state

    def update_hessian(self, state):
        """P ← a new build at x_k when the last CG's iterations say it pays; else the current P."""
        fresh = max(FRESH_PCG_ITERATIONS, sum(self._fresh) / len(self._fresh) if self._fresh else 0)
        if not self._policy.pays(self._cg_last, fresh):
            return Model(self._P, 0.0)
        self._P, rows, t_lev = self.build_preconditioner(self._policy, state, self._sketch)
        self._just_built = True
        return Model(self._P, rows, t_lev)

    def inner_solve(self, state, model):
        step = self._steihaug(state, model.H)
        self._cg_last = step.inner_iter
        if self._just_built:
            self._fresh.append(step.inner_iter)
            self._just_built = False
        return step

    def _steihaug(self, state, P) -> TrustStep:
        """Preconditioned truncated CG for ``min m(p)``, ``||p|| ≤ Δ``, from p = 0; m is updated
        exactly along the way, ``m(p + a d) = m(p) + a dᵀr + ½ a² dᵀ∇²L d``, ``r = g + ∇²L p``."""
        g = state.g
        tol = min(0.5, math.sqrt(float(np.linalg.norm(g)))) * float(np.linalg.norm(g))
        solve = (lambda u: u) if P is None else P.solve
        p, r, m = np.zeros_like(g), g.copy(), 0.0
        y = solve(r)
        d, ry = -y, float(r @ y)
        radius, it = self._radius, 0
        for it in range(1, self.opts.cg_maxiter + 1):
            Hd = self.hessp(state, d)
            kappa, dr = float(d @ Hd), float(d @ r)
            a = ry / kappa if kappa > 0 else math.inf
            if kappa <= 0 or np.linalg.norm(p + a * d) >= radius:
                tau = _to_boundary(p, d, radius)
                return TrustStep(
                    p=(pb := p + tau * d),
                    decrement2=-float(g @ pb),
                    inner_iter=it,
                    predicted=m + tau * dr + 0.5 * tau**2 * kappa,
                    hit_boundary=True,
                )
            p, m, r = p + a * d, m + a * dr + 0.5 * a**2 * kappa, r + a * Hd
            if np.linalg.norm(r) <= tol:
                break
            y = solve(r)
            ry_new = float(r @ y)
            d, ry = -y + (ry_new / ry) * d, ry_new
        return TrustStep(p=p, decrement2=-float(g @ p), inner_iter=it, predicted=m)

    def line_search(self, state, step):
        """Trust-region acceptance: take the step when ρ > 0.15, and update Δ (module docstring).
        The trial point is evaluated with its gradient in one sweep (:meth:`Solver.point`): most
        steps are taken."""
        x_new = state.x + step.p
        new = self.point(x_new)
        loss_new = new.loss
        actual = state.loss - loss_new
        rho = actual / -step.predicted if step.predicted < 0 else -math.inf
        length = float(np.linalg.norm(step.p))
        if not rho >= 0.25:
            self._radius = 0.25 * length
        elif rho > 0.75 and step.hit_boundary:
            self._radius = min(2 * self._radius, MAX_RADIUS_FACTOR * self._radius0)
        if math.isfinite(loss_new) and -actual <= ROUNDING * abs(state.loss) and not rho > ETA:
            # below rounding: accept if |g|₁ shrank
            rho = ETA + 1 if np.sum(np.abs(new.g)) < np.sum(np.abs(state.g)) else rho
        if rho > ETA:
            return new.with_step(length), None
        if self._radius <= RADIUS_MIN * (1 + float(np.linalg.norm(state.x))):
            return None, 3
        return None, None


def _to_boundary(p: np.ndarray, d: np.ndarray, radius: float) -> float:
    """τ ≥ 0 with ``||p + τ d|| = Δ``: the positive root of ``|d|² τ² + 2 pᵀd τ + |p|² − Δ² = 0``."""
    dd, pd, pp = float(d @ d), float(p @ d), float(p @ p)
    return (-pd + math.sqrt(max(pd * pd + dd * (radius**2 - pp), 0.0))) / dd
