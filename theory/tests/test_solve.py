"""``theory.solve``: every method reaches the tolerance; Algorithm 1's contraction in the theorem
regime; bad input fails before any work; numerical trouble ends a solve, never raises."""

import warnings

import numpy as np
import pytest

from theory.instances import make_instance
from theory.linalg import SPDSolver
from theory.objective import SoftmaxRegression
from theory.sketch import SKETCHES
from theory.solve import METHODS, SolverOptionWarning, solve
from theory.solver import MESSAGES, HessianWarning, RankWarning


@pytest.fixture(scope="module")
def sparse():
    return make_instance("sparse", 2048, 8, seed=0)


@pytest.mark.parametrize("method", METHODS)
def test_every_method_reaches_tol_on_a_saturating_softmax(sparse, method):
    max_iter = 3000 if method == "gradient-descent" else 100
    # scipy's Newton-CG stops CG at curvature pᵀHp ≤ 3 eps (absolute), i.e. at |g| ~ 1e-8 here;
    # trust-krylov judges a step by the change in L, and at max|g| = 1.0e-8 on this instance what
    # is left to gain, ½ gᵀH⁻¹g = 9e-17, is below L's rounding ε L = 1.4e-15: it stalls there.
    tol = 1e-7 if method in ("scipy-newton-cg", "scipy-trust-krylov") else 1e-8
    res = solve(sparse.prob, method=method, tol=tol, max_iter=max_iter, x_star=sparse.x_star)
    assert res.success and res.status == 0, res
    assert np.max(np.abs(res.jac)) <= tol
    assert res.history["error"][-1] < 1e-6
    assert len(res.history["loss"]) == res.nit + 1


@pytest.mark.filterwarnings("ignore::theory.solver.HessianWarning")
@pytest.mark.parametrize("sketch", list(SKETCHES))
def test_sketched_newton_converges_with_every_sketch(sparse, sketch):
    res = solve(sparse.prob, method="sketched-newton", sketch=sketch, tol=1e-8, sketch_size=400)
    assert res.success, res


def test_exact_newton_converges_quadratically_near_the_minimiser(sparse):
    res = solve(sparse.prob, method="newton", tol=1e-12, x_star=sparse.x_star)
    e = res.history["error"]
    tail = e[(e < 1e-2) & (e > 1e-11)]
    assert len(tail) >= 2 and all(b <= 10 * a**2 for a, b in zip(tail, tail[1:], strict=False))


def test_full_step_sketched_newton_contracts_by_040_in_the_theorem_regime():
    inst = make_instance("theorem", 1024, 4, seed=0)
    res = solve(
        inst.prob,
        method="sketched-newton",
        sketch="leverage-exact",
        eps=0.01,
        tol=1e-13,
        line_search=False,
        x0=inst.x0,
        x_star=inst.x_star,
        max_iter=6,
    )
    e = res.history["error"]
    ratios = e[1:] / e[:-1]
    assert np.all(ratios[e[:-1] > 1e-11] <= 0.4), ratios


@pytest.mark.filterwarnings("ignore::theory.solver.HessianWarning")
def test_same_seed_gives_the_same_iterates(sparse):
    a, b = (solve(sparse.prob, method="sketched-newton", seed=3, sketch_size=100) for _ in range(2))
    assert np.array_equal(a.x, b.x) and a.nit == b.nit


def test_default_method_is_the_sketched_subspace_newton(sparse):
    assert solve(sparse.prob).method == "sketched-subspace-newton"


def test_iteration_limit_ends_with_success_false_and_a_message(sparse):
    res = solve(sparse.prob, method="gradient-descent", max_iter=2)
    assert not res.success and res.status == 2 and "Maximum number of iterations" in res.message


@pytest.mark.filterwarnings("ignore::theory.solver.HessianWarning")
def test_full_steps_from_far_away_go_uphill_to_the_iteration_cap_without_raising(sparse):
    res = solve(
        sparse.prob,
        method="sketched-newton",
        line_search=False,
        sketch_size=20,
        x0=np.full(8, 30.0),
        max_iter=30,
    )
    # Without a line search no step is rejected, so status 3 (rounding floor) and 5 (poor model)
    # cannot occur; from x0 = 30·1 the full steps of a 20-row sketch go uphill (L from 617 to
    # 3.5e5 on this seed), so it never converges (0); and L and ∇L stay finite (the softmax takes
    # log f = z − lse, which does not overflow at |z| ~ 1e4), so no status 4 either: the
    # iteration cap ends it.
    assert res.status == 2 and not res.success and res.nit == 30
    assert res.message == MESSAGES[2]
    loss = res.history["loss"]
    assert np.all(np.isfinite(loss)) and loss[-1] > 100 * loss[0]


def test_singular_hessian_of_a_wide_a_warns_naming_the_rank_and_converges():
    rng = np.random.default_rng(0)
    prob = SoftmaxRegression(rng.standard_normal((3, 5)), np.array([0.5, 0.5, 0.0]), 1.0)
    with pytest.warns(RankWarning, match="A has rank 3 < d = 5"):
        res = solve(prob, method="newton", tol=1e-8)
    assert res.success, res
    # the minimum-norm minimiser: x stays in the row space of A
    np.testing.assert_allclose(res.x, np.linalg.pinv(prob.A) @ (prob.A @ res.x), atol=1e-12)


def test_indefinite_hessian_warns_that_w_may_be_too_small():
    # w = 0 and b = −e₀ (s < 0): B is not PSD, so ∇²L is indefinite although A has full rank
    rng = np.random.default_rng(1)
    prob = SoftmaxRegression(rng.standard_normal((6, 2)), -np.eye(6)[0], 0.0)
    x = np.array([3.0, -2.0])
    assert np.linalg.eigvalsh(prob.hessian(x))[0] < 0
    with pytest.warns(HessianWarning, match="w too small"):
        solve(prob, method="newton", x0=x, max_iter=3)


def test_spd_solver_on_an_indefinite_matrix_gives_a_descent_direction():
    H, g = np.diag([2.0, -1.0, 1e-20]), np.array([1.0, 1.0, 1.0])
    solver = SPDSolver(H)
    assert solver.fallback == "not positive definite"
    assert g @ solver.solve(g) > 0


def test_spd_solver_on_a_singular_matrix_gives_the_minimum_norm_solution():
    # H = M Mᵀ with a null space: the solve is the pseudo-inverse's (lstsq), orthogonal to null(H)
    rng = np.random.default_rng(0)
    M = rng.standard_normal((5, 3))
    H, g = M @ M.T, M @ rng.standard_normal(3)
    solver = SPDSolver(H)
    assert solver.fallback is not None and solver.rank == 3 and solver.null.shape == (5, 2)
    solver.restrict()
    np.testing.assert_allclose(solver.solve(g), np.linalg.lstsq(H, g, rcond=1e-10)[0], atol=1e-8)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"tol": 0.0}, "tol must be a positive"),
        ({"tol": -1.0}, "tol must be a positive"),
        ({"max_iter": 0}, "max_iter must be an integer ≥ 1"),
        (
            {"method": "bfgs"},
            "valid methods: sketched-subspace-newton, sketched-newton-cg, sketched-newton",
        ),
        ({"sketch": "hadamard"}, "valid sketches: leverage"),
        ({"method": "sketched-newton", "sketch_size": 3}, "sketch_size must be an integer ≥ d = 8"),
        ({"x0": np.zeros(7)}, r"x0 must have shape \(8,\)"),
        ({"method": "sketched-newton", "eps": 1.5}, "eps must lie in"),
        ({"method": "sketched-newton", "sketch": "uniform", "eps": 0.5}, "coherence"),
    ],
)
def test_bad_input_raises_a_clear_value_error_before_any_work(sparse, kwargs, match):
    with pytest.raises(ValueError, match=match):
        solve(sparse.prob, **kwargs)


def test_unknown_and_foreign_options_warn(sparse):
    with pytest.warns(SolverOptionWarning, match="unknown solver options ignored: gtol"):
        solve(sparse.prob, method="newton", gtol=1.0)
    with pytest.warns(SolverOptionWarning, match="do not apply"):
        solve(sparse.prob, method="newton", sketch_size=100)
    with pytest.warns(SolverOptionWarning, match="ignored by method 'newton'"):
        solve(sparse.prob, method="newton", sketch="uniform")


def test_history_records_every_documented_field(sparse):
    res = solve(sparse.prob, method="sketched-newton-cg", x_star=sparse.x_star)
    for key in ("loss", "grad_inf", "step", "sketch_size", "time", "error", "inner_iter", "t_grad"):
        assert len(res.history[key]) == res.nit + 1
    assert np.all(np.diff(res.history["time"]) >= 0)


def test_a_start_at_the_minimiser_returns_at_once(sparse):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = solve(sparse.prob, x0=sparse.x_star, tol=1e-6)
    assert res.success and res.nit == 0


def test_scipy_anchor_given_a_nan_direction_gets_nan_back_instead_of_raising():
    """trust-krylov's trlib can probe a NaN direction; the solve must report, not raise."""
    from theory.solve import _Derivatives

    prob = SoftmaxRegression(np.eye(3), np.full(3, 1 / 3), 1.0)
    der = _Derivatives(prob)
    assert np.isnan(der.hessp(np.zeros(3), np.full(3, np.nan))).all()
    assert np.isnan(der.fun(np.full(3, np.inf)))
    assert np.isnan(der.jac(np.full(3, np.nan))).all()


def test_every_field_of_the_result_is_documented_once():
    from dataclasses import fields

    from theory.solver import SolveResult

    doc = SolveResult.__doc__ or ""
    for f in fields(SolveResult):
        assert sum(line.split()[:1] == [f.name] for line in doc.splitlines()) == 1, f.name


def test_counters_mean_the_same_for_every_method(sparse):
    # nfev: losses, njev: gradients, nhev: Hessians or products, npass: passes over A — each
    # solver makes at least one gradient per iteration and reads A at least once per gradient
    for method in METHODS:
        res = solve(sparse.prob, method=method, tol=1e-7, max_iter=3000)
        assert res.njev >= res.nit and res.nfev >= res.nit, method
        assert res.npass >= res.njev + res.nhev, method


def test_newton_cg_trust_radius_starts_from_the_problems_scale():
    # A/100 has the minimiser 100 x* (L depends on x only through A x): from a radius of 1 the
    # solver spent iterations doubling it (11 against 6); from the problem's scale it does not
    p = make_instance("sparse", 4096, 16, seed=0).prob
    base = solve(p, method="sketched-newton-cg", tol=1e-8)
    small = SoftmaxRegression(p.A / 100, p.b, p.w)
    res = solve(small, method="sketched-newton-cg", tol=1e-10)
    assert base.success and res.success
    assert np.linalg.norm(res.x) > 100 and res.nit <= base.nit + 1
