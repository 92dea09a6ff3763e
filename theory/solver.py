r"""The solver base: one documented order of steps, one state record, one result type.

Every solver of :func:`theory.solve.solve` that is not a scipy anchor subclasses :class:`Solver`
(structure of scikit-learn's ``_newton_solver.py``) and runs::

    state = setup(x0)                         State at x_0: z = A x_0, L, g = ∇L = Aᵀ r, B's parts
    repeat, while check_convergence() finds no stop:
        model = update_hessian(state)         Model: H_k (exact, sketched) or a preconditioner
        step  = inner_solve(state, model)     Step: p_k ≈ −H_k⁻¹ g_k,  λ_k² = −g_kᵀ p_k
        new, status = line_search(state, step)  State at x_{k+1} = x_k + t_k p_k (None: rejected)
        check_convergence(new, step)          (1) ||g||_∞ ≤ tol   (2) ½ λ_k² ≤ decrement_tol
                                              (3) k = max_iter
    finalize(state, status)                   SolveResult

``update_hessian``, ``inner_solve`` and ``line_search`` are abstract; a solver replaces exactly
those and reads nothing else of the base than the read-only ``prob``, ``opts``, ``rows`` (A, its
passes counted), ``loss`` (ℓ in z-space) and ``rng`` set at construction. The base reads nothing
of a solver but its class-level declarations (below), whose defaults it defines. Per-iterate quantities
travel as records (:class:`State`, :class:`Model`, :class:`Step`), never as attributes, and a
solver's own memory between iterations (a trust radius, a preconditioner) is set and read by that
solver alone. The base counts what the result reports, through the helpers :meth:`Solver.value`,
:meth:`Solver.evaluate`, :meth:`Solver.hessian`, :meth:`Solver.hessp`, :meth:`Solver.count_hessians`, and checks
each fallback solve for the rank of A (:meth:`Solver.check_fallback`).

Each solver declares on itself its ``method`` name, the ``options`` (fields of
:class:`SolverOptions`) that apply to it and whether it is ``sketched``; registering it with
:func:`theory.solve.solve` is one entry of :data:`theory.solve.SOLVERS`.
"""

from __future__ import annotations

import math
import time
import warnings
from abc import ABC, abstractmethod
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

import numpy as np

from theory.engine import BlocksLost, BlocksLostWarning, BlocksUnrecoverable
from theory.loss import Softmax
from theory.rows import CountedRows

ROUNDING = 64 * np.finfo(float).eps  # loss changes below this (relative) are rounding noise.
MAX_RESTARTS = 3  # lost workers a solve survives; a fourth ends it with a RuntimeError

MESSAGES = {
    0: "Converged: max |gradient| <= tol.",
    1: "Converged: half the squared Newton decrement <= decrement_tol.",
    2: "Maximum number of iterations reached before convergence.",
    3: "Stopped at the rounding floor: no step decreases the loss by more than its rounding "
    "error, so max |gradient| cannot fall further in float64 (a larger tol stops here).",
    4: "Diverged: the loss or the gradient is not finite (a full step left the region where the "
    "model is accurate; use line_search=True).",
    5: "No decrease found along the step although the model predicts one above rounding: the "
    "Hessian approximation is poor here (try a larger sketch_size or a smaller eps).",
    6: "The scipy method stopped by its own test before max |gradient| <= tol.",
}


class HessianWarning(UserWarning):
    """The (approximate) Hessian was not safely positive definite; a fallback solve was used."""


class RankWarning(HessianWarning):
    """A has (numerical) rank r < d (zero or duplicated columns): L is flat along null(A), and the
    solver keeps its steps in the row space of A."""


@dataclass(frozen=True)
class SolveResult:
    """The outcome of a solve (scipy's ``OptimizeResult`` fields, with one meaning for every method).

    Fields:
        x         the last iterate x_nit (d,).
        success   whether the solve met its test (status 0 or 1).
        status    the key of its message in :data:`MESSAGES`.
        message   why it stopped (:data:`MESSAGES`, with scipy's own words for the anchors).
        nit       iterations taken: x_0 … x_nit.
        nfev      evaluations of the loss L (at trial points included).
        njev      evaluations of the gradient ∇L.
        nhev      Hessians (exact or sketched) and Hessian-vector products formed.
        npass     full passes over the rows of A (A x, Aᵀ r, a Gram Aᵀ diag(v) A, a streamed
                  sketch: one each; reading sampled rows counts none).
        fun       L(x).
        jac       ∇L(x) (d,).
        method    the method's name.
        history   per iterate x_0 … x_nit (arrays of nit + 1 entries): ``loss``, ``grad_inf``
                  (max|g|), ``step`` (||x_k − x_{k−1}||, NaN at x_0), ``sketch_size`` (rows of a
                  sketch built at that iteration, 0 if none, NaN for unsketched methods), ``time``
                  (s since the start), ``inner_iter`` (CG iterations or Newton steps in the
                  subspace; 0 otherwise), ``t_grad``, ``t_leverage``, ``t_build``, ``t_solve``,
                  ``t_line_search`` (seconds spent per iteration in gradients, leverage scores,
                  the rest of update_hessian, inner_solve, and line_search besides gradients),
                  and ``error`` (||x_k − x*||) when x* is given.
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
    npass: int = 0

    def __repr__(self) -> str:
        return (
            f"SolveResult(method={self.method!r}, success={self.success}, nit={self.nit}, "
            f"fun={self.fun:.6g}, max|g|={np.max(np.abs(self.jac)):.3g}, message={self.message!r})"
        )


@dataclass(frozen=True)
class SolverOptions:
    """Options of the solvers, validated by :func:`theory.solve.solve` (each solver declares which
    apply to it).

    ``sketch_size`` s, when None, follows the sketch's rule s(d, eps, delta) if ``eps`` is given,
    else the method's default (16 d for Algorithm 1 and Newton-CG; min(64 d, max(8 d, n/8)) for the
    subspace solver). ``drift`` γ: reuse leverage scores while v changes by factors within
    [1/γ, γ] (:func:`theory.sketch.drifted`); None recomputes them at every iteration.
    ``rebuild_after`` = k: a preconditioner build costs k iterations' work in the rebuild rule
    (None: from the cost model; 0: build at every iteration; :mod:`theory.preconditioner`).
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


SKETCH_OPTIONS = frozenset({"sketch_size", "eps", "delta", "drift"})


@dataclass(frozen=True)
class State:
    """The iterate x_k and what the loss says there. ``z``, ``f``, ``r`` and ``parts`` may live in
    the solver's workspace (valid until its next step); ``parts`` is None for solvers that declare
    ``uses_hessian = False``."""

    x: np.ndarray  # (d,)
    z: np.ndarray  # (n,) = A x
    f: np.ndarray  # (n,) = softmax(z)
    loss: float  # L(x)
    g: np.ndarray  # (d,) = ∇L(x) = Aᵀ r
    r: np.ndarray  # (n,) = ∂ℓ/∂z
    parts: Any  # B = ∂²ℓ/∂z², diagonal + rank ≤ 2 (HessianParts or an engine's); None without B
    step: float = math.nan  # ||x_k − x_{k−1}||

    @property
    def grad_inf(self) -> float:
        return float(np.max(np.abs(self.g)))

    def with_step(self, length: float) -> State:
        """This state, reached by a step of length ``length``."""
        return replace(self, step=length)


@dataclass(frozen=True)
class Model:
    """What ``update_hessian`` returns: the curvature used at this iteration (an exact or sketched
    Hessian's factor, a preconditioner; None for the identity), and what building it cost."""

    H: object = None
    sketch_size: float = math.nan  # rows of a sketch built at this iteration (0: none)
    leverage_time: float = 0.0  # seconds of it spent on leverage scores


@dataclass(frozen=True)
class Step:
    """What ``inner_solve`` returns: the step p_k (d,), ``decrement2`` λ² = −gᵀp_k (the Newton
    decrement's square when p_k = −H⁻¹g), and the inner iterations it took."""

    p: np.ndarray
    decrement2: float
    inner_iter: int = 0


class Solver(ABC):
    """The base of the solvers (module docstring): ``solve(x0)`` runs the documented steps."""

    method: ClassVar[str]
    options: ClassVar[frozenset[str]]
    sketched: ClassVar[bool] = False
    uses_hessian: ClassVar[bool] = True  # states carry B's parts

    def __init__(self, prob, options: SolverOptions, x_star=None, callback=None):
        self.prob = prob
        self.opts = options
        self.loss = prob.loss_z
        self.rows = CountedRows(prob.rows)
        self._range: tuple = (None, None)  # (state, Aᵀ[f, q]) for hessp's sweep
        self.rng = np.random.default_rng(options.seed)
        self._x_star = None if x_star is None else np.asarray(x_star, dtype=np.float64)
        self._callback = callback

    # -- the steps -----------------------------------------------------------------------------

    def solve(self, x0: np.ndarray) -> SolveResult:
        """setup → (update_hessian → inner_solve → line_search → check_convergence)* → finalize."""
        self._t0 = time.perf_counter()
        self._counts = {"nfev": 0, "njev": 0, "nhev": 0}
        self._hist: dict[str, list[float]] = {}
        self._timing: dict[str, float] = {}
        self._warned: set[type] = set()
        self._norm_A: float | None = None
        self._restarts = 0
        state = self._resume(np.array(x0, dtype=np.float64))
        nit, model = 0, Model()
        self._record(state, nit, model, None)
        status = self.check_convergence(state, None, nit)
        while status is None:
            nit += 1
            self._timing = {"t_grad": 0.0}
            try:
                model = self._timed("t_build", self.update_hessian, state)
                step = self._timed("t_solve", self.inner_solve, state, model)
                new, status = self._timed("t_line_search", self.line_search, state, step)
            except BlocksLost as lost:  # the engine rebuilt them: iteration nit again, from x
                self._lost(lost)
                state, nit = self._resume(state.x), nit - 1
                continue
            state = new if new is not None else state.with_step(0.0)  # rejected: x stays
            if status is None:
                self._record(state, nit, model, step)
            status = status if status is not None else self.check_convergence(state, step, nit)
        return self.finalize(state, status, nit)

    def _resume(self, x: np.ndarray) -> State:
        """:meth:`setup` at x, again after each :class:`~theory.engine.BlocksLost`: the driver's
        iterate is all a solve needs to go on (the solver's memory starts afresh)."""
        while True:
            try:
                return self.setup(x)
            except BlocksLost as lost:
                self._lost(lost)

    def _lost(self, lost: BlocksLost) -> None:
        self._restarts += 1
        if self._restarts > MAX_RESTARTS:
            raise BlocksUnrecoverable(
                f"{self.method}: gave up after {MAX_RESTARTS} lost workers ({lost})"
            )
        warnings.warn(f"{self.method}: {lost}; repeating the iteration", BlocksLostWarning, 4)

    def setup(self, x0: np.ndarray) -> State:
        """Returns the state at x0 (z, L, g, B's parts). Sets: a solver's own memory, when it
        extends this (its sketch, trust radius, workspace)."""
        return self.evaluate(x0)

    @abstractmethod
    def update_hessian(self, state: State) -> Model:
        """Returns the curvature for this iteration (H_k's factor, or a preconditioner). Sets: at
        most the solver's own preconditioner."""

    @abstractmethod
    def inner_solve(self, state: State, model: Model) -> Step:
        """Returns the step p_k from ``state`` under ``model``, with λ² = −gᵀp_k. Sets: at most
        the solver's own memory of the inner solve (the CG iterations it took)."""

    @abstractmethod
    def line_search(self, state: State, step: Step) -> tuple[State | None, int | None]:
        """Returns the state at x_{k+1} (None if the step is rejected: x stays) and a stop status
        (None: go on; 3 or 5 when no step decreases L). Sets: at most the solver's own memory
        (trust radius, previous directions)."""

    def check_convergence(self, state: State, step: Step | None, nit: int) -> int | None:
        """(1) ``||g||_∞ ≤ tol`` → 0; (2) ``½ λ² ≤ decrement_tol`` → 1; non-finite → 4;
        ``nit = max_iter`` → 2; else None."""
        if not (math.isfinite(state.loss) and np.all(np.isfinite(state.g))):
            return 4
        if state.grad_inf <= self.opts.tol:
            return 0
        dtol = self.opts.decrement_tol
        if step is not None and dtol is not None and 0.5 * step.decrement2 <= dtol:
            return 1
        return 2 if nit >= self.opts.max_iter else None

    def finalize(self, state: State, status: int, nit: int) -> SolveResult:
        return SolveResult(
            x=state.x,
            success=status in (0, 1),
            status=status,
            message=MESSAGES[status],
            nit=nit,
            **self._counts,
            npass=self.rows.passes,
            fun=state.loss,
            jac=state.g,
            method=self.method,
            history={k: np.asarray(v) for k, v in self._hist.items()},
        )

    # -- evaluations, counted ------------------------------------------------------------------

    def value(
        self, x: np.ndarray, out: np.ndarray | None = None, f_out: np.ndarray | None = None
    ) -> tuple[np.ndarray, Softmax, float]:
        """``(z, softmax(z), L(x))`` with ``z = A x`` (one pass, none at x = 0, where z = 0 exactly;
        into ``out``/``f_out`` if given)."""
        self._counts["nfev"] += 1
        if x.any():
            z = self.rows.matvec(x, out)
        else:
            if out is None:
                z = self.rows.zero_image()
            else:
                z = out
                z[...] = 0.0
        sm = self.loss.softmax(z, f_out)
        return z, sm, self.loss.value(z, sm)

    def value_z(
        self, z: np.ndarray, f_out: np.ndarray | None = None, tmp: np.ndarray | None = None
    ) -> tuple[Softmax, float]:
        """``(softmax(z), ℓ(z))`` for a z the solver already has (no pass over A)."""
        self._counts["nfev"] += 1
        sm = self.loss.softmax(z, f_out)
        return sm, self.loss.value(z, sm, tmp)

    def evaluate(
        self,
        x: np.ndarray,
        z=None,
        sm: Softmax | None = None,
        loss: float | None = None,
        derivs: tuple | None = None,
        **kw,
    ) -> State:
        """The full state at x (z, its softmax and L from :meth:`value` when not given; r and B's
        parts from ``derivs`` when known) and the gradient ``Aᵀ r`` (one pass). ``kw``: buffers
        for :meth:`~theory.loss.SoftmaxLoss.derivatives`."""
        if z is None or sm is None or loss is None:
            z, sm, loss = self.value(x)
        t0 = time.perf_counter()
        self._counts["njev"] += 1
        r, parts = self._r_and_parts(z, sm.f, **kw) if derivs is None else derivs
        g = self.rows.rmatvec(r)
        self._timing["t_grad"] = self._timing.get("t_grad", 0.0) + time.perf_counter() - t0
        return State(x=x, z=z, f=sm.f, loss=loss, g=g, r=r, parts=parts)

    def point(self, x: np.ndarray) -> State:
        """The full state at a new x from :meth:`~theory.regression.Regression.point`: z, the
        loss and the gradient in one sweep over A (one round on an engine) where the problem
        offers it, then r and B's parts from z (O(n), no pass)."""
        self._counts["nfev"] += 1
        self._counts["njev"] += 1
        self.rows.passes += self.prob.point_passes
        t0 = time.perf_counter()
        z, sm, loss, g = self.prob.point(x)
        r, parts = self._r_and_parts(z, sm.f)
        self._timing["t_grad"] = self._timing.get("t_grad", 0.0) + time.perf_counter() - t0
        return State(x=x, z=z, f=sm.f, loss=loss, g=g, r=r, parts=parts)

    def _r_and_parts(self, z, f, **kw):
        """``(r, B's parts)`` at z, f (O(n), no pass); parts None for a solver that declares
        ``uses_hessian = False``. ``kw``: buffers of :meth:`~theory.loss.SoftmaxLoss.derivatives`."""
        if self.uses_hessian:
            return self.loss.derivatives(z, f, **kw)
        return self.loss.residual(z, f, **kw), None

    def hessian(self, state: State) -> np.ndarray:
        """``∇²L(x) = Aᵀ B A`` (d, d): the weighted Gram and ``Aᵀ [f, q]`` in one read of A."""
        self._counts["nhev"] += 1
        return state.parts.hessian(self.rows)

    def hessp(self, state: State, v: np.ndarray) -> np.ndarray:
        """``∇²L(x) v = Aᵀ B (A v)`` (d,): two passes, or where the problem sweeps
        (:meth:`~theory.regression.Regression.hessp_sweeps`) one sweep, the first at a state with
        ``[g, h] = Aᵀ [f, q]`` in it."""
        self._counts["nhev"] += 1
        G = self._range[1] if self._range[0] is state else None
        self.rows.passes += self.prob.hessp_sweeps()  # a sweep bypasses the counted rows
        Hv, G = self.prob.hessp_given(state.parts, v, self.rows, G)
        self._range = (state, G)
        return Hv

    def count_hessians(self, k: int = 1) -> None:
        """Count k Hessian approximations (sketches) built outside :meth:`hessian`."""
        self._counts["nhev"] += k

    def build_preconditioner(self, policy, state: State, sketch):
        """``policy.build`` (:mod:`theory.preconditioner`) at ``state``, counted and checked for
        the rank of A. Returns ``(P, rows sampled (n for the exact P), leverage seconds)``."""
        if not policy.exact:
            self.count_hessians()
        P, sk = policy.build(self.rows, state.parts, sketch, self.rng, lambda: self.hessian(state))
        self.check_fallback(P, None)  # a clipped P is still SPD: only the rank of A is news
        if sk is None:
            return P, float(self.prob.n), 0.0
        return P, float(sk.size), sk.leverage_time

    def check_fallback(self, solver, hint: str | None) -> None:
        """If ``solver`` (an :class:`~theory.linalg.SPDSolver`) fell back, find the cause: when its
        small eigenvectors span a null space of A (``||A U|| ≈ 0``, one pass), restrict the solve
        to the row space and warn (once) naming the rank of A; else warn (once) with ``hint``
        (None: no warning, for a preconditioner, which stays positive definite)."""
        if solver.fallback is None:
            return
        d = self.prob.d
        if solver.rank < d and self._null_of_A(solver.null):
            solver.restrict()
            self._warn(
                f"{self.method}: A has rank {solver.rank} < d = {d} (zero or duplicated columns?): "
                f"L is flat along null(A), so its minimiser is not unique; steps are kept in the "
                f"row space of A (the minimum-norm minimiser from x0 = 0).",
                RankWarning,
            )
        elif hint is not None:
            self._warn(
                f"{self.method}: the (approximate) Hessian is {solver.fallback}; using an "
                f"eigenvalue-clipped Newton step (warned once per solve). {hint}",
                HessianWarning,
            )

    def _warn(self, message: str, category) -> None:
        if category not in self._warned:
            self._warned.add(category)
            warnings.warn(message, category, stacklevel=6)

    def _null_of_A(self, U: np.ndarray) -> bool:
        """Whether ``||A U||_F ≤ 1e-8 ||A||_F ||U||_F`` (one pass, and one for ||A||_F per solve)."""
        if self._norm_A is None:  # ||A||_F, once per solve (one pass)
            self._norm_A = self.rows.frobenius()
        scale = self._norm_A
        return self.rows.image_norm(U) <= 1e-8 * scale * max(1.0, float(np.linalg.norm(U)))

    # -- bookkeeping ---------------------------------------------------------------------------

    def _timed(self, key: str, fn, *args):
        t0 = time.perf_counter()
        out = fn(*args)
        self._timing[key] = time.perf_counter() - t0
        return out

    def _record(self, state: State, nit: int, model: Model, step: Step | None) -> None:
        """One history row for x_nit; printed when ``verbose``, passed to the callback."""
        tm = self._timing
        row = {
            "loss": state.loss,
            "grad_inf": state.grad_inf,
            "step": state.step,
            "sketch_size": model.sketch_size if step is not None or not self.sketched else 0.0,
            "time": time.perf_counter() - self._t0,
            "inner_iter": math.nan if step is None else step.inner_iter,
            "t_grad": tm.get("t_grad", math.nan),
            "t_leverage": model.leverage_time if step is not None else math.nan,
            "t_build": tm.get("t_build", math.nan) - model.leverage_time,
            "t_solve": tm.get("t_solve", math.nan),
            "t_line_search": tm.get("t_line_search", math.nan) - tm.get("t_grad", 0.0),
        }
        if self._x_star is not None:
            row["error"] = float(np.linalg.norm(state.x - self._x_star))
        for k, val in row.items():
            self._hist.setdefault(k, []).append(val)
        if self.opts.verbose:
            print(format_row(self.method, nit, row), flush=True)
        if self._callback is not None:
            self._callback(state.x, row)


def format_row(method: str, it: int, row: dict) -> str:
    """One log line: iteration, loss, max|g|, step, sketch size, time and (if known) ||x − x*||."""
    err = f"  |x-x*| {row['error']:.3e}" if "error" in row else ""
    s = row["sketch_size"]
    sk = f"  s {int(s):>7d}" if math.isfinite(s) else ""
    return (
        f"{method:>20s} it {it:3d}  loss {row['loss']:.12e}  max|g| {row['grad_inf']:.3e}  "
        f"step {row['step']:.3g}{sk}  t {row['time']:7.3f}s{err}"
    )
