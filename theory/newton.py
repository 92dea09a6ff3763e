r"""Newton-type solvers for ``min_x L(x)`` (:class:`theory.objective.SoftmaxRegression`).

All of them iterate (structure of scikit-learn's ``_newton_solver.py``)::

    setup(x0)                                   g_0 = ∇L(x_0)
    repeat:
        update_hessian()                        H_k  (exact, sketched, or a preconditioner)
        inner_solve()                           p_k ≈ −H_k⁻¹ g_k,   λ_k² = −g_kᵀ p_k
        line_search()                           x_{k+1} = x_k + t_k p_k,   g_{k+1} = ∇L(x_{k+1})
        check_convergence()                     (1) ||g_{k+1}||_∞ ≤ tol   (2) ½ λ_k² ≤ decrement_tol
    finalize()

and differ in one step:

* :class:`NewtonSolver` — ``H_k = ∇²L(x_k) = Aᵀ B(x_k) A`` (structured, O(n d²)), Cholesky solve;
* :class:`SketchedNewtonSolver` — Algorithm 1 of arXiv 2306.04933 (appendix D):
  ``H̃_k = Aᵀ D̃ A + Aᵀ diag(v₋) A + low rank``, D̃ a sampled diagonal; the step **subtracts**
  ``H̃⁻¹ g`` (the paper's line 8, ``x + H̃⁻¹ g``, has the sign wrong);
* :class:`SketchedNewtonCGSolver` — beyond the paper: ``H̃_k`` (factored once) preconditions
  conjugate gradients on the exact product ``∇²L(x_k) v`` (O(n d) each);
* :class:`GradientDescentSolver` — ``p_k = −α_k g_k``, a teaching baseline.

Conventions: x, g, p (d,); H (d, d); v, f, q (n,). A step is accepted by Armijo backtracking
(``L(x + t p) ≤ L(x) + c₁ t gᵀp``) or, with ``line_search=False``, always at t = 1 (the theorem's
full step). Numerical trouble never raises: an indefinite or ill-conditioned H warns
(:class:`HessianWarning`) and falls back to an eigenvalue-clipped solve; a failed line search or a
non-finite loss ends the solve with ``success=False`` and a message from :data:`MESSAGES`.
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass, field

import numpy as np
import scipy.linalg
from scipy.linalg import lapack

from theory.linalg import weighted_gram
from theory.sketch import SketchedGram, make_sketch, take_rows

ARMIJO_C1 = 1e-4  # sufficient decrease constant (Nocedal & Wright, p. 33: "quite small, say 1e-4").
MAX_HALVINGS = 40  # 2⁻⁴⁰ ≈ 1e-12: a smaller step no longer moves x in float64 for ||x|| ~ 1.
ROUNDING = 64 * np.finfo(float).eps  # loss changes below this (relative) are rounding noise.
RCOND_MIN = 1e-13  # Cholesky solves with a reciprocal condition below this lose all digits.
EIG_FLOOR = 1e-10  # fallback: eigenvalues clipped to ≥ this fraction of the largest |λ|.
INITIAL_RADIUS, MAX_RADIUS, ETA = (
    1.0,
    1000.0,
    0.15,
)  # scipy's trust-region defaults (_trustregion.py)
RADIUS_MIN = 1e-14  # relative to 1 + ||x||: a smaller trust region no longer moves x in float64.
HESSIAN_GRADS_PER_D = 22.0  # exact Hessian ≈ d/22 gradient evaluations (DESIGN §2 says d/40).
LEVERAGE_GRADS = 2.0  # approximate leverage scores ≈ 2 gradient evaluations (benchmarks/solvers.py)
FRESH_PCG_ITERATIONS = 2  # PCG iterations per Newton step with a freshly built preconditioner.
DEFAULT_SAMPLES_PER_D = 16  # sketch size s = 16 d when neither sketch_size nor eps is given.

MESSAGES = {
    0: "Converged: max |gradient| <= tol.",
    1: "Converged: half the squared Newton decrement <= decrement_tol.",
    2: "Maximum number of iterations reached before convergence.",
    3: "No decrease found along the step (line search or trust region): the loss is at its "
    "rounding level, or the Hessian approximation is poor (try a larger sketch).",
    4: "Diverged: the loss or the gradient is not finite (a full step left the region where the "
    "model is accurate; use line_search=True).",
}


class HessianWarning(UserWarning):
    """The (approximate) Hessian was not safely positive definite; a fallback solve was used."""


@dataclass(frozen=True)
class SolveResult:
    """The outcome of a solve (scipy's ``OptimizeResult`` fields).

    ``status`` indexes :data:`MESSAGES` (0, 1: success). ``nfev``, ``njev``, ``nhev``: loss,
    gradient and Hessian (or Hessian-vector product) evaluations. ``history`` maps each of
    ``loss, grad_inf, step, sketch_size, time`` (and ``error = ||x − x*||`` when x* is given; ``cg_iter``,
    ``t_grad, t_leverage, t_build, t_solve, t_line_search`` for the Newton solvers) to an array with one
    entry per iterate ``x_0 … x_nit``.
    """

    x: np.ndarray
    success: bool
    status: int
    message: str
    nit: int
    nfev: int
    njev: int
    nhev: int
    fun: float
    jac: np.ndarray
    method: str
    history: dict[str, np.ndarray] = field(repr=False)

    def __repr__(self) -> str:
        return (
            f"SolveResult(method={self.method!r}, success={self.success}, nit={self.nit}, "
            f"fun={self.fun:.6g}, max|g|={np.max(np.abs(self.jac)):.3g}, message={self.message!r})"
        )


@dataclass(frozen=True)
class SolverOptions:
    """Options shared by the solvers in this module, validated by :func:`theory.solve.solve`.

    ``sketch_size`` s, when None, follows the sketch's rule s(d, eps, delta) if ``eps`` is given,
    else ``16 d`` (the rules are worst-case bounds; 16 d measures ε ≈ 0.3–0.5 on the instance
    families). ``drift`` γ: reuse leverage scores while v changes by factors within
    [1/γ, γ] (:func:`theory.sketch.drifted`); None recomputes them at every iteration.
    ``rebuild_after``: Newton-CG's first rebuild threshold (None: from its cost model; 0: rebuild
    at every step; see SketchedNewtonCGSolver).
    """

    tol: float = 1e-8
    max_iter: int = 100
    decrement_tol: float | None = None
    line_search: bool = True
    sketch: str = "leverage"
    sketch_size: int | None = None
    eps: float | None = None
    delta: float = 0.1
    drift: float | None = 2.0
    cg_maxiter: int = 50
    rebuild_after: int | None = None
    seed: int | None = 0
    verbose: bool = False


# -- linear algebra helpers -----------------------------------------------------------------------


class SPDSolver:
    """``y = H⁻¹ r`` for a symmetric H (d, d): Cholesky, or, when H is not safely positive
    definite (Cholesky fails or its reciprocal condition is < 1e-13), the clipped inverse
    ``V diag(1 / max(|λ|, 1e-10 max|λ|)) Vᵀ`` of its eigendecomposition (a descent direction always).
    ``fallback`` says why the second was used, or is None.
    """

    def __init__(self, H: np.ndarray):
        self.fallback: str | None = None
        try:
            self._cho = scipy.linalg.cho_factor(H, lower=False, check_finite=False)
            rcond, _ = lapack.dpocon(self._cho[0], float(np.max(np.sum(np.abs(H), axis=0))))
            if not rcond >= RCOND_MIN:
                self.fallback = f"ill-conditioned (reciprocal condition {rcond:.1e})"
        except (np.linalg.LinAlgError, ValueError):
            self.fallback = "not positive definite"
        if self.fallback is not None:
            lam, self._V = np.linalg.eigh(H)
            self._inv = 1.0 / np.maximum(np.abs(lam), EIG_FLOOR * max(np.max(np.abs(lam)), 1e-300))

    def solve(self, r: np.ndarray) -> np.ndarray:
        if self.fallback is None:
            return scipy.linalg.cho_solve(self._cho, r, check_finite=False)
        return self._V @ (self._inv * (self._V.T @ r))


def sketched_hessian(prob, parts, sketch, s: int, rng: np.random.Generator):
    """Algorithm 1's ``H̃ = Aᵀ D̃ A + Aᵀ diag(v₋) A + (κ g gᵀ − h gᵀ − g hᵀ)`` (d, d).

    ``v = parts.diag`` splits into ``v₊ = max(v, 0)``, whose ``Aᵀ diag(v₊) A`` is sampled
    (D̃ sparse, non-negative; :mod:`theory.sketch`), and ``v₋ < 0`` (rows with ``b_i > 2 f_i``,
    few), added exactly so that sampling never meets a negative weight. If
    ``(1 − ε) Aᵀ diag(v₊) A ⪯ Aᵀ D̃ A ⪯ (1 + ε) Aᵀ diag(v₊) A`` then ``|H̃ − H| ⪯ ε Aᵀ diag(v₊) A``,
    which is ``≈ ε H`` when v₊ carries most of H (the theorem regime, where W² does).
    Returns ``(H̃, SketchedGram)``.
    """
    D, sk = sampled_diagonal_part(prob, parts, sketch, s, rng)
    return D + parts.low_rank(prob.A), sk


def sampled_diagonal_part(prob, parts, sketch, s: int, rng: np.random.Generator):
    """``D̃ = Aᵀ D̃₊ A + Aᵀ diag(v₋) A`` (d, d): v₊ sampled by ``sketch``, the rows v_i < 0 exact.
    Returns ``(D̃, SketchedGram)``; :func:`sketched_hessian` adds the rank-2 term."""
    v = parts.diag
    neg = np.flatnonzero(v < 0)
    sk = sketch.gram(prob.A, np.maximum(v, 0.0), s, rng)
    if not neg.size:
        return sk.H, sk
    return sk.H + weighted_gram(take_rows(prob.A, neg), v[neg]), sk


def build_costs(n: int, d: int, s: int, extra: float = 0.0) -> tuple[float, float]:
    """Cost of a preconditioner build in gradient evaluations (≈ Hessian-vector products, both
    two passes over A): ``(exact, sketch)`` = ``(d / 22, 2 + extra + (s + 3d) d / (22 n))`` — one
    syrk for the exact Hessian; approximate leverage scores (≈ 2), ``extra`` passes, and the
    O((s + 3d) d²) CountSketch Gram, sampled Gram and factor for the sketch."""
    exact = d / HESSIAN_GRADS_PER_D
    return exact, LEVERAGE_GRADS + extra + (s + 3 * d) * d / (HESSIAN_GRADS_PER_D * n)


# -- the solvers ----------------------------------------------------------------------------------


class NewtonSolver:
    """Exact Newton: ``H_k = ∇²L(x_k)`` (one O(n d²) syrk), ``p_k = −H_k⁻¹ g_k`` by Cholesky.

    Quadratic convergence near x*; with the line search, globally convergent on strongly convex L.
    """

    method = "newton"
    fallback_hint = "L may be non-convex here (w too small); the line search keeps the solve safe."

    def __init__(self, prob, options: SolverOptions, x_star=None, callback=None):
        self.prob = prob
        self.opts = options
        self.x_star = None if x_star is None else np.asarray(x_star, dtype=np.float64)
        self.callback = callback
        self.rng = np.random.default_rng(options.seed)
        self._warned = False

    # setup → (update_hessian → inner_solve → line_search → check_convergence)* → finalize

    def setup(self, x0: np.ndarray) -> None:
        self.t_start = time.perf_counter()
        self.x = np.array(x0, dtype=np.float64)
        self.nit = self.nfev = self.njev = self.nhev = 0
        self.status = None
        self.timing: dict[str, float] = {}
        self.loss = self._loss(self.x)
        self.g = self._grad(self.x)
        self.step = self.decrement2 = math.nan
        self.hist: dict[str, list[float]] = {}
        self.record()

    def update_hessian(self) -> None:
        self.H = self.prob.hessian(self.x)
        self.nhev += 1

    def inner_solve(self) -> None:
        self.p = -self._spd_solver(self.H).solve(self.g)
        self.decrement2 = -float(self.g @ self.p)

    def line_search(self) -> None:
        """Armijo backtracking from t = 1, or the full step when ``line_search=False``."""
        slope = float(self.g @ self.p)
        if not self.opts.line_search:
            self._accept(self.x + self.p, self._loss(self.x + self.p), 1.0)
            return
        t, g1 = 1.0, np.sum(np.abs(self.g))
        for _ in range(MAX_HALVINGS):
            x_new = self.x + t * self.p
            loss_new = self._loss(x_new)
            if math.isfinite(loss_new):
                if loss_new <= self.loss + ARMIJO_C1 * t * slope:
                    self._accept(x_new, loss_new, t)
                    return
                if loss_new - self.loss <= ROUNDING * abs(self.loss):
                    # Decrease below rounding: accept if the gradient shrank (sklearn's rule).
                    g_new = self._grad(x_new)
                    if np.sum(np.abs(g_new)) < g1:
                        self._accept(x_new, loss_new, t, g_new)
                        return
            t *= 0.5
        self.status = 3

    def check_convergence(self) -> bool:
        """(1) ``||g||_∞ ≤ tol``; (2) ``½ λ² ≤ decrement_tol`` for the step just taken; or a stop."""
        if self.status is not None:
            return True
        if not (math.isfinite(self.loss) and np.all(np.isfinite(self.g))):
            self.status = 4
        elif np.max(np.abs(self.g)) <= self.opts.tol:
            self.status = 0
        elif (
            self.opts.decrement_tol is not None and 0.5 * self.decrement2 <= self.opts.decrement_tol
        ):
            self.status = 1
        elif self.nit >= self.opts.max_iter:
            self.status = 2
        return self.status is not None

    def finalize(self) -> SolveResult:
        return SolveResult(
            x=self.x,
            success=self.status in (0, 1),
            status=self.status,
            message=MESSAGES[self.status],
            nit=self.nit,
            nfev=self.nfev,
            njev=self.njev,
            nhev=self.nhev,
            fun=self.loss,
            jac=self.g,
            method=self.method,
            history={k: np.asarray(v) for k, v in self.hist.items()},
        )

    def solve(self, x0: np.ndarray) -> SolveResult:
        self.setup(x0)
        while not self.check_convergence():
            self.nit += 1
            self.timing = {}
            self._timed("t_build", self.update_hessian)
            self._timed("t_solve", self.inner_solve)
            self._timed("t_line_search", self.line_search)
            if self.status is None:
                self.record()
        return self.finalize()

    # -- bookkeeping -----------------------------------------------------------------------------

    def record(self) -> None:
        """Append one row to the history (iterate x_nit); print it when ``verbose``."""
        row = {
            "loss": self.loss,
            "grad_inf": float(np.max(np.abs(self.g))),
            "step": self.step,
            "sketch_size": self._sketch_size(),
            "time": time.perf_counter() - self.t_start,
            "cg_iter": getattr(self, "cg_iter", math.nan),
            "t_grad": self.timing.get("t_grad", math.nan),
            "t_leverage": self.timing.get("t_leverage", math.nan),
            "t_build": self.timing.get("t_build", math.nan)
            + self.timing.get("t_build_in_solve", 0.0)
            - self.timing.get("t_leverage", 0.0),
            "t_solve": self.timing.get("t_solve", math.nan)
            - self.timing.get("t_build_in_solve", 0.0),
            "t_line_search": self.timing.get("t_line_search", math.nan)
            - self.timing.get("t_grad", 0.0),
        }
        if self.x_star is not None:
            row["error"] = float(np.linalg.norm(self.x - self.x_star))
        for k, val in row.items():
            self.hist.setdefault(k, []).append(val)
        if self.opts.verbose:
            print(format_row(self.method, self.nit, row), flush=True)
        if self.callback is not None:
            self.callback(self.x, row)

    def _sketch_size(self) -> float:
        return math.nan

    def _timed(self, key: str, fn) -> None:
        t0 = time.perf_counter()
        fn()
        self.timing[key] = self.timing.get(key, 0.0) + time.perf_counter() - t0

    def _loss(self, x: np.ndarray) -> float:
        self.nfev += 1
        return self.prob.loss(x)

    def _grad(self, x: np.ndarray) -> np.ndarray:
        return self._counted_grad(lambda: self.prob.gradient(x))

    def _counted_grad(self, compute) -> np.ndarray:
        """``compute()`` (a gradient), counted in ``njev`` and timed into ``t_grad``."""
        t0 = time.perf_counter()
        self.njev += 1
        g = compute()
        self.timing["t_grad"] = self.timing.get("t_grad", 0.0) + time.perf_counter() - t0
        return g

    def _accept(self, x_new, loss_new: float, t: float, g_new=None) -> None:
        self.x, self.loss, self.step = x_new, loss_new, t
        self.g = self._grad(x_new) if g_new is None else g_new

    def _spd_solver(self, H: np.ndarray) -> SPDSolver:
        solver = SPDSolver(H)
        if solver.fallback and not self._warned:
            self._warned = True
            warnings.warn(
                f"{self.method}: the Hessian at iteration {self.nit} is {solver.fallback}; using an "
                f"eigenvalue-clipped Newton step (warned once per solve). {self.fallback_hint}",
                HessianWarning,
                stacklevel=4,
            )
        return solver


class SketchedNewtonSolver(NewtonSolver):
    """Algorithm 1: ``x_{k+1} = x_k − t_k H̃_k⁻¹ g_k`` with the sketched H̃_k of :func:`sketched_hessian`.

    With ``(1 ± ε)`` accuracy and the theorem's conditions, ``||x_{k+1} − x*|| ≤ 0.4 ||x_k − x*||``
    at the full step (Theorem D.1; linear, not quadratic, convergence). Costs per iteration: one
    gradient, leverage scores when v drifted, O(s d²) build, O(d³) Cholesky.
    """

    method = "sketched-newton"
    fallback_hint = (
        "The sample is too small next to the exact, indefinite rank ≤ 2 part; a "
        "larger sketch_size (or eps) avoids this."
    )

    def setup(self, x0):
        self.sketch = make_sketch(
            self.opts.sketch,
            **({"drift": self.opts.drift} if self.opts.sketch == "leverage" else {}),
        )
        self.s = resolve_sketch_size(self.opts, self.sketch, self.prob.n, self.prob.d)
        self.last_sketch = None
        super().setup(x0)

    def update_hessian(self):
        parts = self.prob.hessian_parts(self.x)
        self.H, self.last_sketch = sketched_hessian(self.prob, parts, self.sketch, self.s, self.rng)
        self.timing["t_leverage"] = self.last_sketch.leverage_time
        self.nhev += 1

    def _sketch_size(self):
        return math.nan if self.last_sketch is None else float(self.last_sketch.size)


class SketchedNewtonCGSolver(SketchedNewtonSolver):
    """Trust-region Newton-CG preconditioned by the sketch (beyond the paper).

    Each step approximately minimises the model ``m(p) = gᵀp + ½ pᵀ ∇²L(x_k) p`` over
    ``||p|| ≤ Δ_k`` by preconditioned CG (Steihaug–Toint; Nocedal & Wright, Alg. 7.2) with
    ``P = H̃`` of :func:`sketched_hessian`, factored once. Each CG iteration costs one exact
    product ``∇²L v`` (two passes over A, O(n d)) and one Cholesky solve (O(d²)); if
    ``(1 − ε) H ⪯ H̃ ⪯ (1 + ε) H``, the error contracts by ``(√κ − 1)/(√κ + 1)`` per iteration with
    ``κ ≤ (1 + ε)/(1 − ε)``. CG stops at the relative residual ``η_k = min(0.5, √||g_k||₂)`` (the
    forcing term of scipy's Newton-CG: superlinear convergence), at the boundary, at a direction of
    non-positive curvature, or at ``cg_maxiter``. Δ follows Nocedal & Wright, Alg. 4.1, with
    scipy's constants: ρ = actual / predicted decrease; ρ < ¼: Δ ← ¼Δ; ρ > ¾ at the boundary:
    Δ ← min(2Δ, 1000); the step is taken when ρ > 0.15.

    **When to sketch** (ski rental). Building P costs as much as some number k* of
    Hessian-vector products, and on a well-conditioned Hessian plain CG needs only a few
    iterations anyway. So P starts as the identity and is (re)built at x_k when the previous CG
    took more than ``k* + 2`` iterations (2: what PCG takes with a fresh P, so the rebuild pays).
    Before any build, k* comes from the cost model below; after one, k* = (time of the last
    build) / (time of one product). P is the sketch, or the exact Hessian when that is cheaper
    (small d: then this is a Newton method whose Hessian is refreshed only when CG says so).
    ``rebuild_after`` = k fixes the first k* instead; ``rebuild_after=0`` sketches at every step.

    Cost model, in gradient evaluations (≈ one product ∇²L v; both are two passes over A): the
    exact Hessian costs ``d / 22`` (one syrk; measured at n = 131072, d = 256, one thread), the
    sketch ``3 + (s + 3d) d / (22 n)`` (approximate leverage scores ≈ 3, then the O((s + 3d) d²)
    CountSketch Gram, sampled Gram and factor).
    """

    method = "sketched-newton-cg"

    def setup(self, x0):
        self.P: SPDSolver | None = None
        self.cg_iter, self.radius, self.t_hessp = 0, INITIAL_RADIUS, math.nan
        super().setup(x0)
        n, d = self.prob.n, self.prob.d
        exact, sketch = build_costs(n, d, self.s)
        self.exact_preconditioner = exact <= sketch
        rebuild_after = self.opts.rebuild_after
        self.k_star = min(exact, sketch) if rebuild_after is None else float(rebuild_after)

    def update_hessian(self):
        self.last_sketch = None
        if self.opts.rebuild_after == 0 or self.cg_iter > self.k_star + FRESH_PCG_ITERATIONS:
            t0 = time.perf_counter()
            if self.exact_preconditioner:
                self.H = self.prob.hessian(self.x)
                self.nhev += 1
                self.last_sketch = SketchedGram(self.H, self.prob.n, self.prob.n)
            else:
                super().update_hessian()
            self.P = SPDSolver(self.H)  # clipped if need be: still SPD, so CG needs no warning
            if self.opts.rebuild_after != 0 and math.isfinite(self.t_hessp):
                self.k_star = (time.perf_counter() - t0) / self.t_hessp

    def _sketch_size(self):
        return 0.0 if self.last_sketch is None else float(self.last_sketch.size)

    def inner_solve(self):
        t0 = time.perf_counter()
        self.p, self.predicted, self.hit_boundary = self._steihaug()
        self.t_hessp = (time.perf_counter() - t0) / max(self.cg_iter, 1)
        self.decrement2 = -float(self.g @ self.p)

    def _steihaug(self):
        """Preconditioned truncated CG for ``min m(p)``, ``||p|| ≤ Δ``, from p = 0.

        Returns ``(p, m(p), hit_boundary)``; m is updated exactly along the way,
        ``m(p + a d) = m(p) + a dᵀr + ½ a² dᵀ∇²L d`` with ``r = g + ∇²L p``.
        """
        g = self.g
        tol = min(0.5, math.sqrt(float(np.linalg.norm(g)))) * float(np.linalg.norm(g))
        solve = (lambda u: u) if self.P is None else self.P.solve
        p, r, m = np.zeros_like(g), g.copy(), 0.0
        y = solve(r)
        d, ry = -y, float(r @ y)
        self.cg_iter = 0
        for _ in range(self.opts.cg_maxiter):
            Hd = self.prob.hessp(self.x, d)
            self.nhev += 1
            self.cg_iter += 1
            kappa, dr = float(d @ Hd), float(d @ r)
            a = ry / kappa if kappa > 0 else math.inf
            if kappa <= 0 or np.linalg.norm(p + a * d) >= self.radius:
                tau = _to_boundary(p, d, self.radius)
                return p + tau * d, m + tau * dr + 0.5 * tau**2 * kappa, True
            p, m, r = p + a * d, m + a * dr + 0.5 * a**2 * kappa, r + a * Hd
            if np.linalg.norm(r) <= tol:
                break
            y = solve(r)
            ry_new = float(r @ y)
            d, ry = -y + (ry_new / ry) * d, ry_new
        return p, m, False

    def line_search(self):
        """Trust-region acceptance: take the step when ρ > 0.15, and update Δ (see the class)."""
        x_new = self.x + self.p
        loss_new = self._loss(x_new)
        actual = self.loss - loss_new
        rho = actual / -self.predicted if self.predicted < 0 else -math.inf
        step = float(np.linalg.norm(self.p))
        if not rho >= 0.25:
            self.radius = 0.25 * step
        elif rho > 0.75 and self.hit_boundary:
            self.radius = min(2 * self.radius, MAX_RADIUS)
        g_new = None
        if math.isfinite(loss_new) and -actual <= ROUNDING * abs(self.loss) and not rho > ETA:
            g_new = self._grad(x_new)  # decrease below rounding: accept if |g|₁ shrank (sklearn)
            rho = ETA + 1 if np.sum(np.abs(g_new)) < np.sum(np.abs(self.g)) else rho
        if rho > ETA:
            self._accept(x_new, loss_new, step, g_new)
        elif self.radius <= RADIUS_MIN * (1 + float(np.linalg.norm(self.x))):
            self.status = 3
        else:
            self.step = 0.0


def _to_boundary(p: np.ndarray, d: np.ndarray, radius: float) -> float:
    """τ ≥ 0 with ``||p + τ d|| = Δ``: the positive root of ``|d|² τ² + 2 pᵀd τ + |p|² − Δ² = 0``."""
    dd, pd, pp = float(d @ d), float(p @ d), float(p @ p)
    return (-pd + math.sqrt(max(pd * pd + dd * (radius**2 - pp), 0.0))) / dd


class GradientDescentSolver(NewtonSolver):
    """``x_{k+1} = x_k − t_k α_k g_k``: Armijo backtracking, ``α_{k+1} = 2 t_k α_k`` (a teaching baseline).

    Linear convergence at rate ``1 − 1/κ(∇²L)``: thousands of iterations on ill-conditioned problems.
    """

    method = "gradient-descent"

    def setup(self, x0):
        super().setup(x0)
        self.alpha = 1.0 / max(float(np.linalg.norm(self.g)), 1e-300)

    def update_hessian(self):
        pass

    def inner_solve(self):
        self.p = -self.alpha * self.g
        self.decrement2 = math.nan

    def line_search(self):
        super().line_search()
        if self.status is None:
            self.alpha *= 2 * self.step


NEWTON_SOLVERS: dict[str, type[NewtonSolver]] = {
    cls.method: cls
    for cls in (SketchedNewtonCGSolver, SketchedNewtonSolver, NewtonSolver, GradientDescentSolver)
}


def resolve_sketch_size(opts: SolverOptions, sketch, n: int, d: int) -> int:
    """s: ``sketch_size``, else the sketch's rule at ``eps``, else ``16 d`` (see SolverOptions)."""
    if opts.sketch_size is not None:
        return opts.sketch_size
    if opts.eps is not None:
        return sketch.size(d, opts.eps, opts.delta, n=n)
    return DEFAULT_SAMPLES_PER_D * d


def format_row(method: str, it: int, row: dict) -> str:
    """One log line: iteration, loss, max|g|, step, sketch size, time and (if known) ||x − x*||."""
    err = f"  |x-x*| {row['error']:.3e}" if "error" in row else ""
    s = row["sketch_size"]
    sk = f"  s {int(s):>7d}" if math.isfinite(s) else ""
    return (
        f"{method:>20s} it {it:3d}  loss {row['loss']:.12e}  max|g| {row['grad_inf']:.3e}  "
        f"step {row['step']:.3g}{sk}  t {row['time']:7.3f}s{err}"
    )
