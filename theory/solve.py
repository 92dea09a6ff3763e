"""``solve(prob, method=..., sketch=..., tol=..., seed=...)``: one entry point, one result type.

A thin front over the solvers of :data:`SOLVERS` (each a :class:`~theory.solver.Solver` that
declares its options and family on itself, or a :class:`ScipyAnchor`: ``scipy.optimize`` given the
same closed-form derivatives). Every argument is checked before any work (ValueError
naming the mistake and the valid choices); unknown options warn (:class:`SolverOptionWarning`), as
scipy's ``minimize`` does. A solve that does not converge returns ``success=False`` and a message;
it does not raise.

>>> import numpy as np
>>> from theory import SoftmaxRegression
>>> rng = np.random.default_rng(0)
>>> prob = SoftmaxRegression(rng.standard_normal((2000, 8)), np.full(2000, 1 / 2000), 1.0)
>>> res = solve(prob, tol=1e-10, seed=0)
>>> res.success, res.nit <= 5
(True, True)
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import fields

import numpy as np
import scipy.optimize

from theory.newton import GradientDescentSolver, NewtonSolver, SketchedNewtonSolver
from theory.newton_cg import SketchedNewtonCGSolver
from theory.regression import Regression
from theory.rows import CountedRows
from theory.sketch import SKETCHES
from theory.solver import MESSAGES, SolveResult, SolverOptions, format_row
from theory.subspace import SubspaceNewtonSolver


class ScipyAnchor:
    """``scipy.optimize.minimize(method=scipy_name)`` given this package's closed-form derivatives
    (see :func:`_solve_scipy`); ``hessian`` says which of ``hess``/``hessp`` it gets."""

    options = frozenset({"verbose"})
    sketched = False

    def __init__(self, method: str, scipy_name: str, hessian: str | None):
        self.method, self.scipy_name, self.hessian = method, scipy_name, hessian


SOLVERS = {
    s.method: s
    for s in (
        SubspaceNewtonSolver,
        SketchedNewtonCGSolver,
        SketchedNewtonSolver,
        NewtonSolver,
        GradientDescentSolver,
        ScipyAnchor("scipy-trust-exact", "trust-exact", "hess"),
        ScipyAnchor("scipy-trust-krylov", "trust-krylov", "hessp"),
        ScipyAnchor("scipy-newton-cg", "Newton-CG", "hessp"),
        ScipyAnchor("scipy-l-bfgs-b", "L-BFGS-B", None),
    )
}  # registering a method: one entry here; its options and family are declared on it

DEFAULT_METHOD = "sketched-subspace-newton"  # see docs/solver.md, "Choosing the default"
DEFAULT_SKETCH = "leverage"
METHODS = tuple(SOLVERS)
SCIPY_METHODS = {m: s.scipy_name for m, s in SOLVERS.items() if isinstance(s, ScipyAnchor)}


class SolverOptionWarning(UserWarning):
    """An option was not recognised, or does not apply to the chosen method, and is ignored."""


def solve(
    prob,
    method: str = DEFAULT_METHOD,
    sketch: str | None = None,
    tol: float = 1e-8,
    seed: int | None = 0,
    *,
    x0=None,
    x_star=None,
    max_iter: int = 100,
    callback=None,
    **options,
) -> SolveResult:
    """Minimise ``L(x)`` of ``prob`` (a :class:`~theory.objective.Regression`: a
    ``SoftmaxRegression`` in memory, an ``EngineRegression`` on an engine) from x0 (default 0).

    Parameters
    ----------
    method : one of :data:`METHODS`: ``"sketched-subspace-newton"`` (the default: Newton in a small
        subspace, two passes over A an iteration, :mod:`theory.subspace`), ``"sketched-newton-cg"``
        (sketch-preconditioned Newton-CG), ``"sketched-newton"`` (Algorithm 1), ``"newton"``,
        ``"gradient-descent"``, or a scipy anchor ``"scipy-trust-exact"``,
        ``"scipy-trust-krylov"``, ``"scipy-newton-cg"``, ``"scipy-l-bfgs-b"``.
    sketch : for the sketched methods, one of :data:`theory.sketch.SKETCHES` (default "leverage").
    tol : stop when ``max |∇L(x)| ≤ tol`` (> 0).
    seed : seeds the sketches; the same seed gives bit-identical iterates, in any process and under
        any load (no decision depends on a measured time).
    x_star : a reference minimiser; when given, ``history["error"]`` holds ``||x_k − x*||``.
    max_iter : at most this many iterations (≥ 1).
    callback : ``callback(x, row)`` after each iterate, row being that iterate's history entry.
    **options : fields of :class:`~theory.solver.SolverOptions` that apply to the method
        (``line_search``, ``decrement_tol``, ``sketch_size``, ``eps``, ``delta``,
        ``drift``, ``cg_maxiter``, ``rebuild_after``, ``verbose``).
    """
    if not isinstance(prob, Regression):
        raise TypeError(
            f"solve takes a problem, not {type(prob).__name__}: build it first, "
            "solve(SoftmaxRegression(A, b, w), ...)"
        )
    rows = "memory" if prob.rows.in_memory else "engine"  # what the sketches may ask of A
    opts = check_options(method, sketch, tol, seed, max_iter, options, d=prob.d, rows=rows)
    x0 = np.zeros(prob.d) if x0 is None else prob.check_x(x0, name="x0")
    x_star = None if x_star is None else prob.check_x(x_star, name="x_star")
    spec = SOLVERS[method]
    if isinstance(spec, ScipyAnchor):
        return _solve_scipy(prob, spec, x0, opts, x_star, callback)
    return spec(prob, opts, x_star=x_star, callback=callback).solve(x0)


def check_options(
    method, sketch, tol, seed, max_iter, options, d: int, rows: str = "memory", stacklevel=3
) -> SolverOptions:
    """:func:`solve`'s checks of everything but the problem, for a problem with d columns whose
    A is ``rows`` (``"memory"`` or ``"engine"``): ValueError naming the mistake,
    warnings for ignored options; the options record. The command line calls it before any work."""
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; valid methods: {', '.join(METHODS)}.")
    if not (isinstance(tol, int | float) and math.isfinite(tol) and tol > 0):
        raise ValueError(
            f"tol must be a positive finite number (a bound on max |∇L|); got {tol!r}."
        )
    if isinstance(max_iter, bool) or not isinstance(max_iter, int | np.integer) or max_iter < 1:
        raise ValueError(f"max_iter must be an integer ≥ 1; got {max_iter!r}.")
    spec = SOLVERS[method]
    if sketch is not None and sketch not in SKETCHES:
        raise ValueError(f"unknown sketch {sketch!r}; valid sketches: {', '.join(SKETCHES)}.")

    def warn(message: str) -> None:
        warnings.warn(message, SolverOptionWarning, stacklevel + 1)

    if sketch is not None and not spec.sketched:
        warn(f"sketch={sketch!r} is ignored by method {method!r}.")
    known = {f.name for f in fields(SolverOptions)}
    unknown = sorted(set(options) - known)
    if unknown:
        warn(
            f"unknown solver options ignored: {', '.join(unknown)}; valid options: "
            f"{', '.join(sorted(spec.options))}."
        )
    foreign = sorted(set(options) & known - spec.options)
    if foreign:
        warn(f"options {', '.join(foreign)} do not apply to method {method!r} and are ignored.")
    kept = {k: v for k, v in options.items() if k in spec.options}
    opts = SolverOptions(
        tol=float(tol), max_iter=int(max_iter), seed=seed, sketch=sketch or DEFAULT_SKETCH, **kept
    )
    if spec.sketched:
        _validate_sketch(opts, d, rows)
    return opts


def _validate_sketch(opts: SolverOptions, d: int, rows: str) -> None:
    s = opts.sketch_size
    if s is not None and (not isinstance(s, int | np.integer) or s < d):
        raise ValueError(
            f"sketch_size must be an integer ≥ d = {d} (a smaller sketch of the "
            f"d×d Hessian is singular); got {s!r}."
        )
    if opts.eps is not None and not 0 < opts.eps < 1:
        raise ValueError(
            f"eps must lie in (0, 1) (the sketch's relative accuracy); got {opts.eps!r}."
        )
    if not 0 < opts.delta < 1:
        raise ValueError(f"delta must lie in (0, 1) (a failure probability); got {opts.delta!r}.")
    if opts.eps is not None and opts.sketch_size is None and opts.sketch == "uniform":
        SKETCHES["uniform"]().size(d, opts.eps, opts.delta)  # raises: no rule without coherence
    if opts.sketch == "srtt" and rows != "memory":
        raise ValueError(
            "sketch 'srtt' needs A in memory; use 'leverage' for A in row blocks or on an engine."
        )
    if opts.sketch == "leverage-exact" and rows == "engine":
        raise ValueError(
            "sketch 'leverage-exact' needs a QR of all of A, which an engine never gathers; use "
            "'leverage' (approximate scores computed on the blocks)."
        )


# -- scipy anchors --------------------------------------------------------------------------------


class _Derivatives:
    """fun/jac/hess/hessp for scipy, counted; its own memory of the last x (z = A x, the softmax,
    r and B's parts), so that scipy's calls at one x share one pass ``A x``.

    scipy's solvers can probe non-finite points or directions (trust-krylov's trlib passes a NaN
    direction after a breakdown); those get NaN back, so scipy reports the failure itself instead
    of our input validation raising in the middle of a solve.
    """

    def __init__(self, prob):
        self.prob, self.loss = prob, prob.loss_z
        self.rows = CountedRows(prob.rows)
        self.nfev = self.njev = self.nhev = 0
        self._x, self._at, self._g = None, {}, None

    def _point(self, x) -> dict:
        """z, softmax (and later r, parts, g) at x, computed once per x; with the gradient, in one
        sweep, where the problem sweeps (:meth:`~theory.regression.Regression.sweeps`)."""
        if self._x is None or not np.array_equal(x, self._x):
            if self.prob.sweeps() and x.any():
                self.rows.passes += 1
                self.njev += 1
                z, sm, loss, g = self.prob.swept_point(x)
                self._at = {"z": z, "sm": sm, "loss": loss, "g": g}
            else:
                z = self.rows.matvec(x) if x.any() else self.rows.zero_image()  # A 0 = 0, no pass
                self._at = {"z": z, "sm": self.loss.softmax(z)}
            self._x = np.array(x)
        return self._at

    def value(self, x) -> float:
        """L(x), uncounted (for the history)."""
        at = self._point(x)
        if "loss" not in at:
            at["loss"] = self.loss.value(at["z"], at["sm"])
        return at["loss"]

    def fun(self, x):
        self.nfev += 1
        return self.value(x) if np.all(np.isfinite(x)) else math.nan

    def jac(self, x):
        if not np.all(np.isfinite(x)):
            self.njev += 1
            return np.full(self.prob.d, math.nan)
        at = self._point(x)
        if "g" not in at:
            self.njev += 1
            at["g"] = self.rows.rmatvec(self.loss.residual(at["z"], at["sm"].f))
        return at["g"]

    def _parts(self, x):
        at = self._point(x)
        if "parts" not in at:
            at["parts"] = self.loss.derivatives(at["z"], at["sm"].f)[1]
        return at["parts"]

    def hess(self, x):
        self.nhev += 1
        return self._parts(x).hessian(self.rows)

    def hessp(self, x, v):
        self.nhev += 1
        if not (np.all(np.isfinite(x)) and np.all(np.isfinite(v))):
            return np.full(self.prob.d, math.nan)
        at = self._point(x)
        self.rows.passes += self.prob.hessp_sweeps()  # a sweep bypasses the counted rows
        Hv, at["G"] = self.prob.hessp_given(self._parts(x), v, self.rows, at.get("G"))
        return Hv


def _scipy_options(name: str, max_iter: int, tol: float) -> dict:
    """Inner tolerances small enough that our test ``max|g| ≤ tol`` (in the callback) decides."""
    if name == "L-BFGS-B":
        return {"maxiter": max_iter, "gtol": tol, "ftol": 0.0}
    if name == "Newton-CG":
        return {"maxiter": max_iter, "xtol": 1e-300}
    return {"maxiter": max_iter, "gtol": tol * 1e-3}


def _solve_scipy(prob, spec: ScipyAnchor, x0, opts: SolverOptions, x_star, callback) -> SolveResult:
    """Run the anchor; stop in its callback once ``max|g| ≤ tol`` (our test, for every method)."""
    method, name = spec.method, spec.scipy_name
    der = _Derivatives(prob)
    hist: dict[str, list[float]] = {}
    t0 = time.perf_counter()

    def record(x, it):
        g = der.jac(x)
        row = {
            "loss": der.value(x),
            "grad_inf": float(np.max(np.abs(g))),
            "step": math.nan,
            "sketch_size": math.nan,
            "time": time.perf_counter() - t0,
        }
        if x_star is not None:
            row["error"] = float(np.linalg.norm(x - x_star))
        for k, v in row.items():
            hist.setdefault(k, []).append(v)
        if opts.verbose:
            print(format_row(method, it, row), flush=True)
        if callback is not None:
            callback(x, row)
        return row["grad_inf"] <= opts.tol

    def cb(intermediate_result):
        if record(intermediate_result.x, len(hist["loss"])):
            raise StopIteration

    kwargs = {spec.hessian: getattr(der, spec.hessian)} if spec.hessian else {}
    if record(x0, 0):
        x, nit, sp_message = x0, 0, ""
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", scipy.optimize.OptimizeWarning)
            r = scipy.optimize.minimize(
                der.fun,
                x0,
                method=name,
                jac=der.jac,
                callback=cb,
                options=_scipy_options(name, opts.max_iter, opts.tol),
                **kwargs,
            )
        x, nit, sp_message = r.x, len(hist["loss"]) - 1, str(r.message)
    g = der.jac(x)
    status = 0 if np.max(np.abs(g)) <= opts.tol else (2 if nit >= opts.max_iter else 6)
    if status == 6 and not np.all(np.isfinite(g)):
        status = 4
    message = MESSAGES[status] + (f" (scipy: {sp_message})" if status else "")
    return SolveResult(
        x=np.asarray(x),
        success=status == 0,
        status=status,
        message=message,
        nit=nit,
        nfev=der.nfev,
        njev=der.njev,
        nhev=der.nhev,
        npass=der.rows.passes,
        fun=der.value(x),
        jac=g,
        method=method,
        history={k: np.asarray(v) for k, v in hist.items()},
    )
