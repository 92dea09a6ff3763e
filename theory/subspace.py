r"""Sketch-preconditioned subspace Newton: two passes over A per iteration (beyond the paper).

L depends on x only through ``z = A x`` (appendix C: ``L(x) = ℓ(A x)``). A solver that keeps z, and
the images ``Z = A V`` of a few directions V (d, k), can therefore minimise L over the affine
subspace ``x + V y`` without touching A again: ``L(x + V y) = ℓ(z + Z y)``, whose gradient in y is
``Zᵀ r`` and Hessian ``Zᵀ B Z`` (k, k), all O(n k²) (Narkiss & Zibulevsky's SESOP, 2005, made for
exactly this: a cheap ℓ behind an expensive A). Each iteration::

    u = −P⁻¹ g                                P ≈ ∇²L: the sketched H̃ of Algorithm 1, or exact
    Z = [A u, A s₁, …, A s_m]                 one pass over A (A sⱼ = z_j − z_{j−1} is kept)
    y ≈ argmin_y ℓ(z + Z y)                   damped Newton in k = 1 + m dimensions, O(n k²) a step
    x ← x + V y,  z ← z + Z y,  g ← Aᵀ r(z)    one pass over A

so two passes over A an iteration, where a Newton-CG step costs a gradient, a loss and two passes
per CG iteration. On a quadratic with P fixed, minimising over ``{P⁻¹ g, s₁}`` *is* preconditioned CG
(the iterates coincide), so with ``(1 ± ε)`` accuracy of P the error contracts by
``(√κ − 1)/(√κ + 1)``, ``κ ≤ (1 + ε)/(1 − ε)``, per iteration; on L it keeps that rate near x*, and
far from it every step decreases L at least as much as an exact line search along ``−P⁻¹ g``.

**When to (re)build P** (its only O(n d²) work): the policy of :mod:`theory.preconditioner`,
shared with Newton-CG. P starts as the identity (well-conditioned problems never need more). The
work still needed under the current P is estimated from the contraction ``c`` of ``||g||_{P⁻¹}``
over the last two iterations under it, ``log(|g|∞ / tol) / log(1/c)`` iterations; under a fresh P
from ``c_fresh``, predicted from the contractions seen in the two iterations after each build
(their geometric mean; 0.3 before any). Where the exact Hessian is built and A is 32 MiB or more
(:func:`uses_chord`), the prediction follows the chord method instead: a
Hessian fixed at x_b contracts at a rate ∝ ‖x_b − x*‖, so with ``ρ = |g|∞ / |g₀|∞``,
``c_fresh = mean(c / ρ_b) · ρ`` (the mean geometric over the builds, ρ_b at each; 0.05 before
any). A rate seen after an early build then does not stand for a build near x*, and an exact
build can look worth its price where P = I contracts 0.3× an iteration (sparse 10⁶×64: 7
iterations instead of 14). Below 32 MiB A stays in the last-level cache, where the cost model
under-prices the Hessian 2–4× and the extra builds the prediction calls for cost more than they
save (docs/solver.md, "Measured constants"). Each P is used ``max(2, ⌊K/4⌋)`` iterations (``max(1, ⌊K/4⌋)`` under P = I) before
a rebuild is considered: the first contractions under P = I understate the later ones, and a P
built far from x* goes stale. K, the build's price, is the cost model's (never a measured time).
P is the sketch (s = min(64 d, max(8 d, n/8)) rows by default: each iteration is cheap, so a
sharper P pays, but the O(s d²) Gram must not outweigh the iterations) made exact on the range
of the rank-2 term (:func:`~theory.preconditioner.range_corrected`), or the exact Hessian when
that is cheaper (small d).

z is updated incrementally (``z ← z + Z y``); each update rounds like a fresh ``A x`` would (both
are sums of d products), so after k iterations z is within about √k roundings of ``A x``
(checked: the reported gradient equals ``∇L(x)`` recomputed from ``A x`` to 1e-13, tests).

Counters (:class:`~theory.solver.SolveResult`): ``nfev`` counts evaluations of ℓ (every trial
point of the inner solve), ``njev`` gradients (one per iteration), ``nhev`` builds of P, and
``npass`` the passes over A: two per iteration (``A u``, ``Aᵀ r``), two at x₀ (one at x₀ = 0), and
each build's.
``history["inner_iter"]`` holds the Newton steps taken in the subspace.

**The z-space workspace.** Every O(n) operation of an iteration (the image ``A u`` into Z, the
subspace model ``Zᵀ r``, ``Zᵀ diag(v) Z`` and ``[Zᵀ f, Zᵀ q]``, the trial point ``z + Z y``, pushing
``Z y`` as the next memory column) goes through a workspace (:class:`MemoryZSpace`), so the solver's
logic exists once. In memory it holds three points' z, f, r, q, v, two scratch vectors and Z,
reused between the solves of one thread, so an inner step allocates nothing of size n; on an
engine (:class:`theory.distributed.EngineZSpace`) the same operations are kernels on the blocks,
each returning O(k²) numbers per block.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np

from theory.linalg import EIG_FLOOR
from theory.loss import subspace_model
from theory.newton import (
    ARMIJO_C1,
    QUADRATIC_FLOOR,
    make_solver_sketch,
    resolve_sketch_size,
)
from theory.preconditioner import PreconditionerPolicy
from theory.solver import ROUNDING, SKETCH_OPTIONS, Model, Solver, Step

MEMORY = 1  # previous steps kept in the subspace (1: PCG on a quadratic)
SAMPLES_PER_D = 64  # default s = 64 d, but ≤ max(8 d, n/8) (module docstring)
INNER_MAX = 20  # damped Newton steps in the subspace per iteration (quadratic convergence: few)
INNER_HALVINGS = 30
MODEL_FIT = 0.01  # an inner step whose decrease is within 1% of the model's ends the inner solve
RETURNS = 3.0  # inner solve stops when the next step's predicted gain < RETURNS/d · gain so far
CORRECTION_GRADS = 1.5  # the range correction's extra work: Aᵀ[f, q], A U, Aᵀ(v ∘ A U)
WAIT = 2  # iterations under a built P before a rebuild is considered (1 under P = I)
WINDOW = 2  # the contraction is measured over the last two iterations under the same P
FRESH_CONTRACTION = 0.3  # assumed ||g||_{P⁻¹} contraction just after a build, before any is seen
CHORD_CONTRACTION = 0.05  # the same for an exact build predicted by the chord method
CHORD_MIN_BYTES = 1 << 25  # chord prediction from 32 MiB of A, where d/22 prices the Hessian


def uses_chord(policy: PreconditionerPolicy, n: int, d: int) -> bool:
    """Whether a fresh P's contraction is predicted by the chord method (module docstring): for the
    exact Hessian with A of :data:`CHORD_MIN_BYTES` or more."""
    return policy.exact and 8 * n * d >= CHORD_MIN_BYTES


class MemoryZSpace:
    """The z-space workspace of one solve: the O(n) arrays and every O(n) operation of the solver
    (module docstring), so that :class:`SubspaceNewtonSolver` is written once. In memory: scratch,
    Z and v ∘ Z (n, 1 + MEMORY), and up to three :class:`_Point`; on an engine the same operations
    run on the blocks (:class:`theory.distributed.EngineZSpace`). Operations:

    ``point()``          a point for the state at x₀
    ``value_kw(pt)``, ``softmax_kw(pt)``, ``derivs_kw(pt)``   the point's buffers, passed to
                         :meth:`~theory.solver.Solver.value`, ``value_z`` and the derivatives
    ``column(j)``        where ``rows.matvec(u, out=…)`` writes ``A u``: column j of Z
    ``model(r, parts, k)``  ``(Zᵀ r, Zᵀ B Z)`` on the first k columns (O(n k²))
    ``model_at(loss, pt, k)``  the same at a point whose (r, B's parts) it computes (``pt.derivs``)
    ``trial(z, y, busy)``   a point (not one of ``busy``) holding ``z + Z y``
    ``push(y)``          ``Z y`` becomes the newest memory column
    ``close()``          the arrays back to this thread's pool

    The in-memory arrays are kept per thread between solves (:func:`_take`), so that a solve does
    not pay the page faults of fresh memory (docs/solver.md, "Measured constants").
    """

    def __init__(self, n: int):
        self.n = n
        self.tmp = [np.empty(n), np.empty(n)]
        self.Z = np.empty((n, 1 + MEMORY), order="F")  # [A u, A s₁, …]: columns contiguous
        self.VZ = np.empty_like(self.Z)  # v ∘ Z
        self.points: list[_Point] = []

    def point(self, *busy) -> _Point:
        """A workspace point not in ``busy`` (made when none is free)."""
        for p in self.points:
            if not any(p is b for b in busy):
                return p
        self.points.append(_Point(self.n))
        return self.points[-1]

    def value_kw(self, pt) -> dict:
        return {"out": pt.z, "f_out": pt.f}

    def softmax_kw(self, pt) -> dict:
        return {"f_out": pt.f, "tmp": self.tmp}

    def derivs_kw(self, pt) -> dict:
        return {"out": pt.rqv, "tmp": self.tmp}

    def column(self, j: int) -> np.ndarray:
        return self.Z[:, j]

    def model(self, r, parts, k: int):
        """``(gy, Hy)`` = ``(Zᵀ r, Zᵀ diag(v) Z + low rank)`` for Z's first k columns."""
        return subspace_model(parts, *parts.subspace_sums(self.Z[:, :k], r, self.VZ[:, :k]))

    def model_at(self, loss, pt, k: int):
        """:meth:`model` at a point, its (r, B's parts) computed into its buffers (``pt.derivs``)."""
        pt.derivs = r, parts = loss.derivatives(pt.z, pt.sm.f, **self.derivs_kw(pt))
        return self.model(r, parts, k)

    def trial(self, z, y, busy=()) -> _Point:
        """A free point holding ``z + Z y``."""
        pt = self.point(*busy)
        np.matmul(self.Z[:, : y.size], y, out=pt.z)
        pt.z += z
        return pt

    def push(self, y) -> None:
        """A s = Z y, the step's image, kept for the next subspace (not z_new − z_old, which near
        x* is all rounding); VZ is free between solves."""
        Zy = self.VZ[:, 0]
        np.matmul(self.Z[:, : y.size], y, out=Zy)
        self.Z[:, 2:] = self.Z[:, 1:-1]
        self.Z[:, 1] = Zy

    def close(self) -> None:
        _POOL.last = self


class _Pool(threading.local):
    """The workspace last returned in this thread (one: bounded memory; threads never share)."""

    last: MemoryZSpace | None = None


_POOL = _Pool()


def _take(n: int) -> MemoryZSpace:
    ws, _POOL.last = _POOL.last, None
    if ws is None or ws.n != n:
        return MemoryZSpace(n)
    for p in ws.points:
        p.sm, p.derivs = None, None
    return ws


class _Point:
    """One of the solver's (at most three) workspace points: z, f (n,) and r, q, v (three (n,)
    arrays, made when first needed), refilled in place; ``sm`` its softmax and ``derivs`` its
    (r, B's parts) once computed."""

    def __init__(self, n: int):
        self.z, self.f = np.empty(n), np.empty(n)
        self._rqv: list[np.ndarray] | None = None
        self.sm: Any = None
        self.derivs: Any = None

    @property
    def rqv(self) -> list[np.ndarray]:
        if self._rqv is None:
            self._rqv = [np.empty_like(self.z) for _ in range(3)]
        return self._rqv


@dataclass(frozen=True)
class SubspaceStep(Step):
    """The subspace minimiser: ``y`` (k,), the workspace point holding ``z + Z y``, and its loss."""

    y: np.ndarray | None = None
    point: _Point | None = None
    loss: float = math.nan


class SubspaceNewtonSolver(Solver):
    """See the module docstring. Options: ``sketch``, ``sketch_size``/``eps``/``delta``, ``drift``
    as the other sketched solvers; ``rebuild_after`` = k treats a build as costing k iterations
    (0: build P at every iteration)."""

    method = "sketched-subspace-newton"
    options = frozenset({"decrement_tol", "verbose", "rebuild_after"}) | SKETCH_OPTIONS
    sketched = True

    def setup(self, x0):
        n, d = self.prob.n, self.prob.d
        self._sketch = make_solver_sketch(self.opts)
        default = min(SAMPLES_PER_D * d, max(8 * d, n // 8))
        s = resolve_sketch_size(self.opts, self._sketch, n, d, default)
        self._policy = PreconditionerPolicy.for_problem(
            n, d, s, self.opts.rebuild_after, extra=CORRECTION_GRADS, corrected=True
        )
        ws = self._ws = self.prob.rows.zspace(1 + MEMORY, in_memory=_take)
        self._dirs: list[np.ndarray] = []  # previous steps s_j (d,), newest first
        self._P = None
        self._G_hist: list[float] = []
        self._fresh: list[float] = []  # ln c seen after each build (− ln ρ_b under the chord)
        self._builds, self._built_at = 0, 1.0  # ρ = |g|∞ / |g₀|∞ at the last build
        self._chord = uses_chord(self._policy, n, d)
        here = self._here = ws.point()
        here.z, here.sm, loss = self.value(x0, **ws.value_kw(here))
        state = self.evaluate(x0, here.z, here.sm, loss, **ws.derivs_kw(here))
        self._g0 = state.grad_inf
        return state

    def finalize(self, state, status, nit):
        """The result (x and g are the solver's own copies), then the workspace back to the pool."""
        res = super().finalize(state, status, nit)
        self._ws.close()
        return res

    # -- the preconditioner ------------------------------------------------------------------------

    def update_hessian(self, state):
        """P, rebuilt at x when the policy says it pays (module docstring)."""
        if not self._rebuild_pays(state):
            return Model(self._P, 0.0)
        self._P, rows, t_lev = self.build_preconditioner(self._policy, state, self._sketch)
        self._builds += 1
        self._built_at = self._rho(state)
        self._G_hist = [self._G(state.g)]
        return Model(self._P, rows, t_lev)

    def _G(self, g: np.ndarray) -> float:
        """``gᵀ P⁻¹ g``, the squared P⁻¹-norm of g."""
        return float(g @ (g if self._P is None else self._P.solve(g)))

    def _rebuild_pays(self, state) -> bool:
        """Ski rental in iterations: the work at the current rate against K + the work fresh."""
        if self._policy.always:
            return True
        self._G_hist.append(self._G(state.g))
        if not self._policy.waited(len(self._G_hist) - 1, WAIT if self._builds else 1):
            return False
        j = min(WINDOW, len(self._G_hist) - 1)
        old, new = self._G_hist[-1 - j], self._G_hist[-1]
        c = (new / old) ** (0.5 / j) if old > 0 else 1.0  # contraction of ||g||_{P⁻¹} per iteration
        if len(self._G_hist) == 1 + WINDOW and self._builds:
            self._fresh.append(math.log(c) - (math.log(self._built_at) if self._chord else 0.0))
        if not c < 1:
            return True
        orders = math.log(max(state.grad_inf / self.opts.tol, math.e))
        return self._policy.pays(orders / -math.log(c), orders / -math.log(self._c_fresh(state)))

    def _rho(self, state) -> float:
        """``ρ = |g|∞ / |g₀|∞``, how far from x* (in gradient) the solve is."""
        return state.grad_inf / self._g0 if self._g0 > 0 else 1.0

    def _c_fresh(self, state) -> float:
        """The contraction predicted after a build here: the geometric mean of those seen after the
        builds so far, × ρ under the chord method (module docstring); the prior before any."""
        if not self._fresh:
            return CHORD_CONTRACTION if self._chord else FRESH_CONTRACTION
        log_c = sum(self._fresh) / len(self._fresh)
        return min(math.exp(log_c + (math.log(self._rho(state)) if self._chord else 0.0)), 0.99)

    # -- one iteration -----------------------------------------------------------------------------

    def inner_solve(self, state, model):
        """``u = −P⁻¹ g``, its image ``A u`` (one pass over A), then ``min_y ℓ(z + Z y)``."""
        u = -state.g if model.H is None else -model.H.solve(state.g)
        k = 1 + len(self._dirs)
        V = np.column_stack([u, *self._dirs])  # (d, k)
        self.rows.matvec(u, out=self._ws.column(0))
        y, point, phi, steps = self._minimise(state, k)
        p = V @ y
        return SubspaceStep(
            p=p, decrement2=-float(state.g @ p), inner_iter=steps, y=y, point=point, loss=phi
        )

    def _minimise(self, state, k: int):
        """Damped Newton for ``φ(y) = ℓ(z + Z y)`` over Z's first k columns, from y = 0 (O(n k²)
        a step; no pass over A).

        Stops after a full step whose decrease matched the quadratic model's ``−½ gᵀdy`` to 1%
        (φ is then close to quadratic along the step, and the next step would gain little next to
        this one), at the rounding floor of φ, or when the next step's predicted gain is below
        ``(RETURNS/d)·(φ(0) − φ(y))``: each inner step costs a few dozen O(n) operations, ≈ 3/d of an
        outer iteration's two passes, so a step gaining less than that share of what the inner solve
        has gained is better spent on the next outer iteration (along a saturating softmax
        direction φ falls like an exponential tail and the model never fits to 1%).
        Returns ``(y, point, φ, steps)``; point is None when no step was taken.
        """
        ws, d = self._ws, self.prob.d
        y, cur, phi, steps = np.zeros(k), None, state.loss, 0
        for _ in range(INNER_MAX):
            if cur is None:
                gy, Hy = ws.model(state.r, state.parts, k)
            else:
                gy, Hy = ws.model_at(self.loss, cur, k)
            dy = _newton_step(Hy, gy)
            slope = float(gy @ dy)
            if not slope < 0 or -0.5 * slope < RETURNS / d * (state.loss - phi):
                break
            floor = -slope <= QUADRATIC_FLOOR * ROUNDING * max(abs(phi), 1.0)
            t = 1.0
            for _ in range(INNER_HALVINGS):
                trial = ws.trial(state.z, y + t * dy, busy=(self._here, cur))
                sm, phi_t = self.value_z(trial.z, **ws.softmax_kw(trial))
                if floor or phi_t <= phi + ARMIJO_C1 * t * slope:
                    break
                t *= 0.5
            else:
                break
            trial.sm, trial.derivs = sm, None
            predicted, actual = -0.5 * slope, phi - phi_t
            y, cur, phi = y + t * dy, trial, phi_t
            steps += 1
            if floor or (t == 1.0 and abs(actual - predicted) <= MODEL_FIT * predicted):
                break
        return y, cur, phi, steps

    def line_search(self, state, step):
        """Move to the subspace minimiser (it never increases L), then one gradient pass. No step
        taken, or no decrease beyond rounding: L's rounding floor (status 3)."""
        if not (step.inner_iter and step.loss <= state.loss + ROUNDING * abs(state.loss)):
            return None, 3
        if MEMORY:
            self._ws.push(step.y)
            self._dirs = [step.p, *self._dirs][:MEMORY]
        pt = self._here = step.point
        new = self.evaluate(
            state.x + step.p, pt.z, pt.sm, step.loss, derivs=pt.derivs, **self._ws.derivs_kw(pt)
        )
        return new.with_step(float(np.linalg.norm(step.p))), None


def _newton_step(H: np.ndarray, g: np.ndarray) -> np.ndarray:
    """``−H⁻¹ g`` for the small (k, k) subspace Hessian, eigenvalues clipped to ≥ 1e-10 max|λ| (a
    descent direction when H is indefinite)."""
    lam, V = np.linalg.eigh(H)
    return -V @ ((V.T @ g) / np.maximum(np.abs(lam), EIG_FLOOR * max(np.max(np.abs(lam)), 1e-300)))
