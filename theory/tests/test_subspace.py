"""``theory.subspace``: Newton in a small subspace, two passes over A an iteration; and the
preconditioner made exact on the range of the rank-2 term (``theory.subspace.preconditioner``)."""

import warnings

import numpy as np
import pytest
import scipy.linalg

import theory.subspace
from theory.instances import make_instance
from theory.newton import sketched_hessian
from theory.preconditioner import PreconditionerPolicy, range_corrected
from theory.sketch import make_sketch
from theory.solve import solve
from theory.subspace import SubspaceNewtonSolver, uses_chord

METHOD = "sketched-subspace-newton"


@pytest.fixture(scope="module")
def sparse():
    return make_instance("sparse", 4096, 16, seed=0)


def test_reaches_x_star_and_reports_the_gradient_of_x_itself(sparse):
    res = solve(sparse.prob, method=METHOD, tol=1e-10, x_star=sparse.x_star)
    assert res.success and res.history["error"][-1] < 1e-8
    # z = A x is carried along incrementally; the reported loss and gradient are those of x,
    # also after 150 iterations at an unreachable tolerance (the rounding of z does not build up).
    np.testing.assert_allclose(res.jac, sparse.prob.gradient(res.x), rtol=0, atol=1e-13)
    assert res.fun == pytest.approx(sparse.prob.loss(res.x), rel=1e-14)
    long = solve(sparse.prob, method=METHOD, tol=1e-300, max_iter=150)
    # At L's rounding floor the inner solve still takes full steps whose change is within rounding
    # (its ``floor`` branch) and the outer step is accepted while L rises by at most one rounding,
    # so the solver keeps moving at the floor: status 3 would need a step that raises L beyond
    # rounding or a subspace without a descent direction, which this instance never meets in 150
    # iterations. The iteration cap (2) ends it.
    assert long.status == 2 and long.nit == 150 and not long.success
    np.testing.assert_allclose(long.jac, sparse.prob.gradient(long.x), rtol=0, atol=1e-13)


def test_two_passes_over_a_per_iteration():
    quad = make_instance("quadratic", 4096, 16, seed=0)
    res = solve(quad.prob, method=METHOD, tol=1e-10)
    # Aᵀ r(x0) (A x0 = 0 is free at x0 = 0), then one A u and one Aᵀ r per iteration (no
    # preconditioner is built here)
    assert res.nhev == 0 and res.npass == 2 * res.nit + 1 and res.njev == res.nit + 1
    other = solve(quad.prob, method=METHOD, tol=1e-10, x0=np.full(16, 1e-3))
    assert other.nhev == 0 and other.npass == 2 * other.nit + 2
    assert res.nfev >= res.nit + 1  # the loss at x0 and at every trial point of the inner solves


def test_the_loss_never_increases(sparse):
    for family in ("sparse", "peaked", "coherent"):
        loss = solve(make_instance(family, 2048, 8, seed=1).prob, method=METHOD).history["loss"]
        assert np.all(np.diff(loss) <= 1e-12 * np.abs(loss[1:])), family


def test_well_conditioned_problems_never_build_a_preconditioner():
    quad = make_instance("quadratic", 4096, 16, seed=0)
    res = solve(quad.prob, method=METHOD, tol=1e-10)
    assert res.success and res.nhev == 0 and res.nit <= 8


def test_ill_conditioned_problems_build_one_and_rebuild_after_0_builds_every_iteration():
    coherent = make_instance("coherent", 4096, 16, seed=0)
    assert solve(coherent.prob, method=METHOD).nhev >= 1
    res = solve(coherent.prob, method=METHOD, rebuild_after=0)
    assert res.success and res.nhev == res.nit


@pytest.mark.parametrize("k_build", [4, 12, 20])
def test_each_build_waits_a_quarter_of_its_price_in_iterations(k_build):
    # Ski rental: at least max(2, ⌊K/4⌋) iterations under each built P before the next build. At an
    # unreachable tolerance the contraction stalls at the rounding floor, so the rule rebuilds as
    # soon as it may: the gaps between builds are exactly what it allows.
    coherent = make_instance("coherent", 8192, 32, seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = solve(coherent.prob, method=METHOD, rebuild_after=k_build, tol=1e-300, max_iter=60)
    builds = np.flatnonzero(res.history["sketch_size"])  # iterates at which P was built
    assert builds.size >= 5
    assert builds[0] >= max(1, k_build // 4) and np.min(np.diff(builds)) == max(2, k_build // 4)


def test_the_chord_prediction_builds_early_where_p_equal_to_i_crawls(monkeypatch):
    # From 32 MiB of A an exact build's contraction is predicted by the chord method: 0.05 before
    # any build, then each build's c / ρ_b times ρ now. Forced on for this 0.5 MiB A: sparse 4096×16
    # contracts about 0.3× an iteration under P = I, which the one prior 0.3 never beats, so it
    # runs 14 iterations without a build; the chord prediction builds and stops in 5.
    exact, sketch = (PreconditionerPolicy(kind, 1.0, False, 64, False) for kind in (True, False))
    assert uses_chord(exact, 65536, 64) and not uses_chord(exact, 32768, 64)  # 32 and 16 MiB
    assert not uses_chord(sketch, 1 << 20, 64)
    prob = make_instance("sparse", 4096, 16, seed=0).prob
    one_prior = solve(prob, method=METHOD)
    seen = []
    rule = SubspaceNewtonSolver._rebuild_pays

    def watched(self, state):
        pays = rule(self, state)
        if self._fresh:
            seen.append((len(self._fresh), self._c_fresh(state), self._rho(state)))
        return pays

    monkeypatch.setattr(theory.subspace, "CHORD_MIN_BYTES", 0)
    monkeypatch.setattr(SubspaceNewtonSolver, "_rebuild_pays", watched)
    chord = solve(prob, method=METHOD)
    assert (one_prior.nit, one_prior.nhev) == (14, 0) and (chord.nit, chord.nhev) == (5, 2)
    assert chord.success and chord.fun == pytest.approx(one_prior.fun, rel=1e-14)
    # with the same builds seen, the predicted contraction is proportional to |g|∞ / |g₀|∞
    ratios = [c / rho for k, c, rho in seen if k == seen[0][0] and c < 0.99]
    assert len(ratios) >= 2 and np.ptp(ratios) <= 1e-12 * ratios[0]


def test_same_seed_gives_the_same_iterates(sparse):
    a, b = (solve(sparse.prob, method=METHOD, seed=5) for _ in range(2))
    assert np.array_equal(a.x, b.x) and a.nit == b.nit and a.nhev == b.nhev


@pytest.mark.parametrize("seed", range(6))
def test_exact_range_correction_tightens_the_preconditioned_spectrum(sparse, seed):
    prob, x = sparse.prob, sparse.x_star
    H, parts, s = prob.hessian(x), prob.hessian_parts(x), 16 * prob.d
    plain, _ = sketched_hessian(
        prob.rows, parts, make_sketch("leverage"), s, np.random.default_rng(seed)
    )
    P, _ = range_corrected(
        prob.rows, parts, make_sketch("leverage"), s, np.random.default_rng(seed)
    )
    assert P.fallback is None
    e_plain = scipy.linalg.eigvalsh(H, plain)
    e = np.sort(np.linalg.eigvals(P.solve(H)).real)  # P⁻¹H: similar to a symmetric matrix
    assert e[-1] / e[0] <= e_plain[-1] / e_plain[0]
    assert e[-1] / e[0] < 3.0
