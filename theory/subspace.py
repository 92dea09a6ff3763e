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

**When to (re)build P** (its only O(n d²) work). P starts as the identity (well-conditioned
problems never need more). Each iteration measures the contraction ``c`` of ``||g||_{P⁻¹}`` over the
last two iterations under the current P (after ``max(2, ⌊K/4⌋)`` iterations under a new P and
``max(1, ⌊K/4⌋)`` under P = I: the first contractions under P = I understate the later ones, and a P
built far from x* goes stale, so an expensive build — K ≈ 12 iterations at 65536×1024 — first rents
a quarter of its price; at 65536×1024 it then builds once instead of twice, and never spends more
than about 4× on builds what it spends on iterations), and
rebuilds P at the current x when the iterations still needed at that rate,
``log(|g|∞ / tol) / log(1/c)``, exceed those needed after a rebuild,
``K + log(|g|∞ / tol) / log(1/c_fresh)``. K is the build's cost in iterations, from a cost model in
gradient evaluations (not measured times, so that the same seed gives the same iterates);
``c_fresh`` the contraction seen in the two iterations after a build (geometric mean over the
builds so far; 0.3 before any). P is the sketch (s = 64 d rows by default, at most max(8 d, n/8):
each iteration is cheap, so a sharper P pays), made exact on the range of the rank-2 term
(:func:`preconditioner`), or the exact Hessian when that is cheaper (small d), as in
:class:`theory.newton.SketchedNewtonCGSolver`.

z is updated incrementally (``z ← z + Z y``); each update rounds like a fresh ``A x`` would (both
are sums of d products), so after k iterations z is within about √k roundings of ``A x``
(checked: the reported gradient equals ``∇L(x)`` recomputed from ``A x`` to 1e-13, tests).

Counters: ``nfev`` counts products with A (``A x₀``, then one ``A u`` per iteration), ``njev``
products ``Aᵀ r`` (as many), ``nhev`` builds of P; ``history["cg_iter"]`` holds the Newton steps
taken in the subspace.
"""

from __future__ import annotations

import math

import numpy as np

from theory.newton import (
    ARMIJO_C1,
    EIG_FLOOR,
    ROUNDING,
    SketchedNewtonSolver,
    SPDSolver,
    build_costs,
    sampled_diagonal_part,
)
from theory.objective import Point
from theory.sketch import SketchedGram, matvec_into

MEMORY = 1  # previous steps kept in the subspace (1: PCG on a quadratic)
SAMPLES_PER_D = 64  # default s = 64 d, but ≤ max(8 d, n/8) (see setup)
INNER_MAX = 20  # damped Newton steps in the subspace per iteration (quadratic convergence: few)
INNER_HALVINGS = 30
MODEL_FIT = 0.01  # an inner step whose decrease is within 1% of the model's ends the inner solve
RETURNS = 3.0  # inner solve stops when the next step's predicted gain < RETURNS/d · gain so far
QUADRATIC_FLOOR = 1e3  # predicted decrease below 1e3 roundings of φ: the quadratic model is exact
CORRECTION_GRADS = 1.5  # the preconditioner's exact part: Aᵀ[f, q], A U, Aᵀ(v ∘ A U)
WAIT = 2  # iterations under a built P before a rebuild is considered (1 under P = I)
WINDOW = 2  # the contraction is measured over the last two iterations under the same P
RENT = 0.25  # at least ⌊RENT·K⌋ iterations under each P (P = I included) before a build
FRESH_CONTRACTION = 0.3  # assumed ||g||_{P⁻¹} contraction just after a build, before any is seen


class SubspaceNewtonSolver(SketchedNewtonSolver):
    """See the module docstring. Options: ``sketch``, ``sketch_size``/``eps``/``delta``, ``drift``
    as the other sketched solvers; ``rebuild_after`` = k treats a build as costing k iterations
    (0: build P at every iteration)."""

    method = "sketched-subspace-newton"

    def setup(self, x0):
        super().setup(x0)
        n, d = self.prob.n, self.prob.d
        if self.opts.sketch_size is None and self.opts.eps is None:
            # The build's Gram costs O(s d²) against an iteration's O(n d): capped at n/8 rows
            # (at 65536×1024, s = 8 d took 1.36 s against 1.58 s at 16 d and 1.57 s at 4 d).
            self.s = min(SAMPLES_PER_D * d, max(8 * d, n // 8))
        self.here = self.prob.point(self.x)  # z = A x, f, r (the gradient's), B's parts when asked
        self.dirs: list[np.ndarray] = []  # previous steps s_j (d,), newest first
        self.Z = np.empty((n, 1 + MEMORY), order="F")  # [A u, A s₁, …]: columns contiguous
        self.VZ = np.empty_like(self.Z)  # v ∘ Z
        self.slots: list[Point] = []  # points refilled in place (point_z(z, out=...))
        self.P: SPDSolver | None = None
        self.G_hist: list[float] = []
        self.fresh: list[float] = []  # log contractions seen in the iterations after each build
        self.builds, self.c_fresh = 0, math.nan
        exact, sketch = build_costs(n, d, self.s, extra=CORRECTION_GRADS)
        self.exact_preconditioner = exact <= sketch
        self.k_build = (
            min(exact, sketch) if self.opts.rebuild_after is None else self.opts.rebuild_after
        )

    # -- the preconditioner ------------------------------------------------------------------------

    def update_hessian(self):
        """``u = −P⁻¹ g``; first rebuild P at x if that pays (see the module docstring)."""
        self.last_sketch = None
        self.u = self._direction()
        if not self._rebuild_pays():
            return
        if self.exact_preconditioner:
            H = self.prob.hessian_at(self.here)
            self.last_sketch = SketchedGram(H, self.prob.n, self.prob.n)
            self.P = SPDSolver(H)  # clipped if need be: still SPD
        else:
            parts = self.prob.hessian_parts_at(self.here)
            self.P, self.last_sketch = preconditioner(
                self.prob, parts, self.sketch, self.s, self.rng
            )
            self.timing["t_leverage"] = self.last_sketch.leverage_time
        self.nhev += 1
        self.builds += 1
        self.u = self._direction()
        self.G_hist = [self.G]

    def _direction(self) -> np.ndarray:
        """``u = −P⁻¹ g`` (d,), and ``G = gᵀ P⁻¹ g`` (the squared P⁻¹-norm of g)."""
        u = -self.g if self.P is None else -self.P.solve(self.g)
        self.G = -float(self.g @ u)
        return u

    def _rebuild_pays(self) -> bool:
        """Ski rental in iterations: rebuild when the rate under P costs more than K + a fresh rate."""
        if self.opts.rebuild_after == 0:
            return True
        self.G_hist.append(self.G)
        if len(self.G_hist) < 1 + max(WAIT if self.builds else 1, int(RENT * self.k_build)):
            return False
        j = min(WINDOW, len(self.G_hist) - 1)
        old, new = self.G_hist[-1 - j], self.G_hist[-1]
        c = (new / old) ** (0.5 / j) if old > 0 else 1.0  # contraction of ||g||_{P⁻¹} per iteration
        if len(self.G_hist) == 1 + WINDOW and self.builds:  # geometric mean over builds
            self.fresh.append(math.log(c))
            self.c_fresh = math.exp(sum(self.fresh) / len(self.fresh))
        if not c < 1:
            return True
        c_new = min(FRESH_CONTRACTION if math.isnan(self.c_fresh) else self.c_fresh, 0.99)
        orders = math.log(max(float(np.max(np.abs(self.g))) / self.opts.tol, math.e))
        return orders / -math.log(c) > self.k_build + orders / -math.log(c_new)

    # -- one iteration -----------------------------------------------------------------------------

    def inner_solve(self):
        """The new direction's image (one pass over A), then ``min_y ℓ(z + Z y)``."""
        self.nfev += 1
        k = 1 + len(self.dirs)
        V = np.column_stack([self.u, *self.dirs])  # (d, k)
        matvec_into(self.prob.A, self.u, self.Z[:, 0])
        y, self.new_point, self.new_loss = self._minimise(self.Z[:, :k])
        self.cg_iter = self.inner_steps
        self.p, self.y = V @ y, y
        self.decrement2 = 2.0 * (self.loss - self.new_loss)

    def _slot(self, *busy: Point) -> Point:
        """A point of this solver's not in ``busy``, to be refilled (at most three are made)."""
        for p in self.slots:
            if not any(p is b for b in busy):
                return p
        n = self.prob.n
        self.slots.append(Point(x=None, z=np.empty(n), f=np.empty(n), logf=None))
        return self.slots[-1]

    def _minimise(self, Z: np.ndarray):
        """Damped Newton for ``φ(y) = ℓ(z + Z y)`` from y = 0 (O(n k²) a step; no pass over A).

        Stops after a full step whose decrease matched the quadratic model's ``−½ gᵀdy`` to 1%
        (φ is then close to quadratic along the step, and the next step would gain little next to
        this one), at the rounding floor of φ, or when the next step's predicted gain is below
        ``(RETURNS/d)·(φ(0) − φ(y))``: each inner step costs a few dozen O(n) operations, ≈ 3/d of an
        outer iteration's two passes, so a step gaining less than that share of what the inner solve
        has gained is better spent on the next outer iteration. (Along a saturating softmax
        direction φ falls like an exponential tail, the model never fits to 1%, and without this
        rule coherent 16384×64 spent 20 inner steps gaining 6e-6 in one iteration.)
        Returns ``(y, point, φ)``.
        """
        prob, z = self.prob, self.here.z
        y, point, phi = np.zeros(Z.shape[1]), self.here, self.loss
        VZ = self.VZ[:, : Z.shape[1]]
        self.inner_steps = 0
        for _ in range(INNER_MAX):
            r, parts = prob.residual_and_parts_at(point)
            gy = Z.T @ r
            np.multiply(parts.diag[:, None], Z, out=VZ)
            G = np.column_stack([Z.T @ parts.f, Z.T @ parts.q])  # (k, 2), no (n, 2) copy
            Hy = Z.T @ VZ + parts.low_rank(Z, G)
            dy = _newton_step(Hy, gy)
            slope = float(gy @ dy)
            if not slope < 0 or -0.5 * slope < RETURNS / self.prob.d * (self.loss - phi):
                break
            floor = -slope <= QUADRATIC_FLOOR * ROUNDING * max(abs(phi), 1.0)
            t, trial = 1.0, self._slot(self.here, point)
            for _ in range(INNER_HALVINGS):
                np.matmul(Z, y + t * dy, out=trial.z)
                trial.z += z
                phi_t = sum(prob.point_z(trial.z, out=trial).loss_parts.values())
                if floor or phi_t <= phi + ARMIJO_C1 * t * slope:
                    break
                t *= 0.5
            else:
                break
            predicted, actual = -0.5 * slope, phi - phi_t
            y, point, phi = y + t * dy, trial, phi_t
            self.inner_steps += 1
            if floor or (t == 1.0 and abs(actual - predicted) <= MODEL_FIT * predicted):
                break
        return y, point, phi

    def line_search(self):
        """Move to the subspace minimiser (it never increases L), then one gradient pass."""
        if not (self.inner_steps and self.new_loss <= self.loss + ROUNDING * abs(self.loss)):
            self.status = 3
            return
        self.x, self.loss, self.here = self.x + self.p, self.new_loss, self.new_point
        self.here.x = self.x
        if MEMORY:  # A s = Z y, the step's image, kept for the next subspace (not z_new − z_old,
            Zy = self.VZ[:, 0]  # which near x* is all rounding); VZ is free between solves
            np.matmul(self.Z[:, : self.y.size], self.y, out=Zy)
            self.Z[:, 2:] = self.Z[:, 1:-1]
            self.Z[:, 1] = Zy
            self.dirs = [self.p, *self.dirs][:MEMORY]
        self.g = self._counted_grad(
            lambda: self.prob.A.T @ self.prob.residual_and_parts_at(self.here)[0]
        )
        self.step = float(np.linalg.norm(self.p))

    def _sketch_size(self):
        return 0.0 if self.last_sketch is None else float(self.last_sketch.size)


def _newton_step(H: np.ndarray, g: np.ndarray) -> np.ndarray:
    """``−H⁻¹ g`` for the small (k, k) subspace Hessian, eigenvalues clipped to ≥ 1e-10 max|λ| (as
    :class:`~theory.newton.SPDSolver`'s fallback: a descent direction when H is indefinite)."""
    lam, V = np.linalg.eigh(H)
    return -V @ ((V.T @ g) / np.maximum(np.abs(lam), EIG_FLOOR * max(np.max(np.abs(lam)), 1e-300)))


def preconditioner(prob, parts, sketch, s: int, rng: np.random.Generator):
    """Algorithm 1's H̃ (:func:`theory.newton.sketched_hessian`), made exact on the range of the
    rank-2 term; an :class:`~theory.newton.SPDSolver`.

    Where the rank-2 term nearly cancels the diagonal part ``D = Aᵀ diag(v) A`` (κ < 0: measured
    at x* of the sparse family, ``uᵀ H u = 0.017 uᵀ D u`` in one direction), the sampling error
    ``ε D`` swamps H there and one eigenvalue of ``H̃⁻¹ H`` falls to 0.1 (s = 64 d). With
    ``U = orth[g, h]`` (d, 2) and ``Δ = D̃ − D``, adding ``E Uᵀ + U Eᵀ − U UᵀE Uᵀ``, ``E = −Δ U``
    (two more passes over A for ``D U``), leaves the error ``(I − UUᵀ) Δ (I − UUᵀ)``, zero on
    span(U); measured there, the smallest eigenvalue of ``H̃⁻¹ H`` rose from 0.10 to 0.54. The
    correction is not always positive definite: if its Cholesky fails, H̃ itself is used.
    Returns ``(P, SketchedGram)``.
    """
    A, v = prob.A, parts.diag
    G = parts.range(A)  # (d, 2)
    low = parts.low_rank(A, G)
    D, sk = sampled_diagonal_part(prob, parts, sketch, s, rng)
    U, _ = np.linalg.qr(G)
    E = A.T @ (v[:, None] * (A @ U)) - D @ U  # (d, 2) = (D_exact − D̃) U
    UE = U @ (U.T @ E)
    P = SPDSolver(D + E @ U.T + U @ E.T - 0.5 * (UE @ U.T + U @ UE.T) + low)
    return (P if P.fallback is None else SPDSolver(D + low)), sk
