"""The loss and gradient in one sweep (theory.sweep): against autograd, against the gradient formed
row by row, for every chunking and blocking, overflow-safe, one round on an engine."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given

import theory.sweep
from theory import GroupedSoftmaxRegression, SoftmaxRegression, solve
from theory.distributed import EngineRegression
from theory.engine import LocalEngine, TorchEngine
from theory.instances import make_instance
from theory.sweep import finish, merge, merge_all, sweep
from theory.tests.helpers import autodiff, instances, rel_err

FAMILIES = ("theorem", "quadratic", "sparse", "peaked", "coherent")


def row_by_row(prob, x):
    """``(L, ∇L)`` formed as before the sweep: z = A x, then Aᵀ r."""
    _, _, loss, grad = prob.row_by_row_point(x)
    return loss, grad


def term_scale(prob, x) -> float:
    """``max |A|ᵀ(f + |b| + |w² z|)``: the scale of the gradient's terms, the unit of its rounding."""
    z = prob.A @ x
    f = np.exp(z - z.max())
    f /= f.sum()
    return float(np.max(np.abs(prob.A).T @ (f + np.abs(prob.b) + np.abs(prob.w2 * z))))


@given(instances(max_n=12, max_d=4))
def test_loss_and_gradient_match_autograd(inst):
    A, b, w, x = inst
    prob = SoftmaxRegression(A, b, w)
    loss, grad = prob.loss_and_gradient(x)
    assert loss == pytest.approx(autodiff().loss(A, b, w, x), rel=1e-12, abs=1e-12)
    assert rel_err(grad, autodiff().gradient(A, b, w, x)) < 1e-11


@given(instances(max_n=40, max_d=4, z_max=700.0))
def test_every_chunking_gives_the_same_sums(inst):
    """One row a chunk, three, all: the running maximum rises at different chunks each time."""
    A, b, w, x = inst
    w2 = w * w
    whole = finish(sweep(A, b, w2, x, rows=A.shape[0]))
    for rows in (1, 3):
        swept = finish(sweep(A, b, w2, x, rows=rows))
        assert swept.sums == pytest.approx(whole.sums, rel=1e-12, abs=1e-12)
        assert swept.lse == pytest.approx(whole.lse, rel=1e-14, abs=1e-14)
        assert rel_err(swept.grad, whole.grad) < 1e-12


def test_point_keeps_z_and_f_as_the_row_by_row_point():
    """z (written by the sweep) is A x bit for bit; f = exp(z − lse) is softmax(z) to rounding."""
    prob = make_instance("peaked", 20000, 8, seed=5).prob
    x = np.random.default_rng(5).standard_normal(8)
    z, sm, loss, grad = prob.swept_point(x)
    np.testing.assert_array_equal(z, prob.A @ x)
    np.testing.assert_allclose(sm.f, prob.loss_z.softmax(z).f, rtol=1e-12, atol=0)
    assert (loss, list(grad)) == (prob.loss_and_gradient(x)[0], list(prob.gradient(x)))


@pytest.mark.parametrize("method", ["newton", "sketched-newton-cg", "scipy-l-bfgs-b"])
def test_solvers_that_sweep_reach_the_same_minimiser_with_fewer_passes(method, monkeypatch):
    """Below SWEEP_MIN_BYTES a solver's new point is A x then Aᵀ r; with the threshold at 0 the
    sweep: the same iterations and minimiser, and one pass less per accepted full step."""
    prob = make_instance("sparse", 20000, 8, seed=6).prob
    rows = solve(prob, method=method, tol=1e-9)
    monkeypatch.setattr(theory.sweep, "SWEEP_MIN_BYTES", 0)
    swept = solve(prob, method=method, tol=1e-9)
    assert swept.success and rows.success
    assert abs(swept.nit - rows.nit) <= 1
    np.testing.assert_allclose(swept.x, rows.x, rtol=0, atol=1e-8)
    assert swept.npass < rows.npass


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("z_max", [0.0, 1.0, 30.0, 1e4])
def test_the_gradient_is_the_row_by_row_one_to_rounding(family, z_max):
    """On every family, at ‖A x‖∞ up to 1e4 (where exp(z) overflows without the shift)."""
    prob = make_instance(family, 30000, 16, seed=3).prob
    x = np.random.default_rng(0).standard_normal(16)
    x *= z_max / np.max(np.abs(prob.A @ x))
    loss, grad = prob.loss_and_gradient(x)
    ref_loss, ref_grad = row_by_row(prob, x)
    assert np.isfinite(loss) and np.all(np.isfinite(grad))
    assert loss == pytest.approx(ref_loss, rel=1e-12, abs=1e-13)
    assert np.max(np.abs(grad - ref_grad)) <= 1e-12 * term_scale(prob, x)
    np.testing.assert_array_equal(prob.gradient(x), grad)


def test_merge_is_order_free_and_rescales_to_the_larger_maximum():
    rng = np.random.default_rng(1)
    A, b, w2 = rng.standard_normal((300, 5)), rng.random(300), rng.random(300)
    x = 4 * rng.standard_normal(5)
    pieces = [sweep(A[i : i + 100], b[i : i + 100], w2[i : i + 100], x) for i in (0, 100, 200)]
    ab, ba = merge(pieces[0], pieces[1]), merge(pieces[1], pieces[0])
    assert ab.m == ba.m == max(pieces[0].m, pieces[1].m)
    np.testing.assert_allclose(ab.G, ba.G, rtol=1e-14)
    one = finish(sweep(A, b, w2, x, rows=300))
    three = finish(merge_all(pieces))
    assert three.loss == pytest.approx(one.loss, rel=1e-13)
    assert rel_err(three.grad, one.grad) < 1e-13


def test_the_exp_weight_scales_l_exp():
    prob = make_instance("quadratic", 5000, 6, seed=2).prob
    x = 0.3 * np.random.default_rng(2).standard_normal(6)
    for e in (0.0, 0.5, 2.0):
        p = SoftmaxRegression(prob.A, prob.b, prob.w, exp_weight=e)
        loss, grad = p.loss_and_gradient(x)
        ref_loss, ref_grad = row_by_row(p, x)
        assert loss == pytest.approx(ref_loss, rel=1e-12)
        assert np.max(np.abs(grad - ref_grad)) <= 1e-12 * term_scale(p, x)


def test_grouped_problems_keep_the_row_by_row_gradient():
    """The softmax within groups has one normaliser per group: the sweep does not apply."""
    rng = np.random.default_rng(3)
    A, groups = rng.standard_normal((30, 3)), np.repeat(np.arange(10), 3)
    prob = GroupedSoftmaxRegression(A, np.tile([1.0, 0, 0], 10), 0.5, groups)
    x = rng.standard_normal(3)
    np.testing.assert_array_equal(prob.gradient(x), row_by_row(prob, x)[1])


def test_on_an_engine_one_round_per_loss_and_gradient():
    ref = make_instance("coherent", 20000, 8, seed=4).prob
    x = 0.1 * np.random.default_rng(4).standard_normal(8)
    ref_loss, ref_grad = ref.loss_and_gradient(x)
    engines = (
        LocalEngine.from_arrays(ref.A, ref.b, ref.w, blocks=5, workers=2),
        TorchEngine.from_arrays(ref.A, ref.b, ref.w, blocks=3, device="cpu"),
    )
    for eng in engines:
        prob = EngineRegression(eng)
        before = eng.rounds
        loss, grad = prob.loss_and_gradient(x)
        assert eng.rounds - before == 1
        assert loss == pytest.approx(ref_loss, rel=1e-12)
        assert np.max(np.abs(grad - ref_grad)) <= 1e-12 * term_scale(ref, x)
        eng.close()


def test_the_hessian_vector_product_in_one_sweep_is_the_two_pass_one():
    """``Aᵀ(diag ∘ A v) + (κ fᵀAv − qᵀAv) g − (fᵀAv) h`` from one read of A, in memory and on a
    thread pool (one round), against ``hessp`` (A v, then Aᵀ(B A v))."""
    ref = make_instance("coherent", 20000, 8, seed=7).prob  # heavy rows: the terms cancel
    rng = np.random.default_rng(7)
    x, v = 0.1 * rng.standard_normal(8), rng.standard_normal(8)
    expected = ref.hessp(x, v)
    eng = LocalEngine.from_arrays(ref.A, ref.b, ref.w, blocks=3, workers=2)
    for prob in (ref, EngineRegression(eng)):
        parts = prob.hessian_parts(x)
        G = parts.range(prob.rows)
        rounds = eng.rounds
        swept = prob.hessp_sweep(parts, v)
        assert prob is ref or eng.rounds - rounds == 1
        y, ft, qt = swept[:-2], swept[-2], swept[-1]
        got = parts.rank2_plus(y, G[:, 0], G[:, 1], ft, qt)
        # the terms cancel in d-space here, row by row there: rounding of the terms' scale
        scale = np.abs(y).max() + (abs(parts.kappa * ft) + abs(qt) + abs(ft)) * np.abs(G).max()
        assert np.abs(got - expected).max() <= 1e-13 * scale
        # with_range: [g, h] from the same read (and round), the rest unchanged
        rounds = eng.rounds
        both = prob.hessp_sweep(parts, v, with_range=True)
        assert prob is ref or eng.rounds - rounds == 1
        np.testing.assert_allclose(both[:-16].reshape(-1), swept, rtol=1e-13, atol=0)
        np.testing.assert_allclose(both[-16:].reshape(2, 8).T, G, rtol=1e-12, atol=0)
        G2 = both[-16:].reshape(2, 8).T
        Hv = parts.rank2_plus(both[:8], G2[:, 0], G2[:, 1], both[8], both[9])
        assert prob is ref or np.array_equal(Hv, prob.hessp_given(parts, v)[0])
        assert np.abs(Hv - expected).max() <= 1e-13 * scale
    eng.close()


@pytest.mark.parametrize("z_max", [0.0, 1.0, 30.0, 1e4])
def test_a_points_sums_over_blocks_give_the_loss_and_softmax(z_max):
    """``point_sums`` on any blocking, merged and finished: ℓ, lse and the sums that r and κ
    need, against the z-space loss; f = u e^{m_k − lse} per block without a second exp."""
    from theory.loss import SoftmaxLoss
    from theory.sweep import point_sums

    rng = np.random.default_rng(11)
    n = 3000
    z = rng.standard_normal(n)
    z *= z_max / max(np.abs(z).max(), 1e-300)
    b, w = rng.dirichlet(np.ones(n)), rng.uniform(0, 1, n)
    loss = SoftmaxLoss(b, w)
    sm = loss.softmax(z)
    exp2, bzl, wz2, tsum, ff, bf = loss.sums(z, sm.f, sm.lse, full=True)
    for cuts in ((0, n), (0, 1, 1700, n), (0, 999, 2000, n)):
        res = [point_sums(z[i:j], b[i:j], (w * w)[i:j]) for i, j in zip(cuts[:-1], cuts[1:])]
        sw = finish(merge_all([p for p, _ in res]))
        assert sw.loss == pytest.approx(loss.value(z, sm), rel=1e-13, abs=1e-15)
        assert sw.lse == pytest.approx(sm.lse, rel=1e-15, abs=1e-15)
        got = [sw.sums[k] for k in ("exp2", "bzl", "wz2", "tsum", "ff", "bf")]
        assert got == pytest.approx([exp2, bzl, wz2, tsum, ff, bf], rel=1e-12, abs=1e-15)
        f = np.concatenate([u * np.exp(p.m - sw.lse) for p, u in res])
        np.testing.assert_allclose(f, sm.f, rtol=1e-13, atol=1e-300)


def test_a_trial_point_of_the_subspace_solver_takes_one_round():
    """On an engine a trial point's z and ℓ come in one round, its softmax with the next, and its
    model in one more: the default takes the in-memory iterations to the same loss."""
    ref = make_instance("sparse", 20000, 8, seed=5).prob
    eng = LocalEngine.from_arrays(ref.A, ref.b, ref.w, blocks=3, workers=2)
    prob = EngineRegression(eng)
    z = prob.rows.matvec(np.full(8, 0.1))
    ws = prob.rows.zspace(2, in_memory=None)
    prob.rows.matvec(np.ones(8), out=ws.column(0))
    before = eng.rounds
    pt = ws.trial(z, np.array([0.05]))
    pt.sm = sm = prob.loss_z.softmax(pt.z)
    value = prob.loss_z.value(pt.z, sm)
    assert eng.rounds - before == 1
    gy, Hy = ws.model_at(prob.loss_z, pt, 1)
    assert eng.rounds - before == 2
    x = np.full(8, 0.1) + 0.05
    assert value == pytest.approx(ref.loss(x), rel=1e-13)
    assert gy[0] == pytest.approx(ref.gradient(x).sum(), rel=1e-10)
    assert Hy[0, 0] == pytest.approx(ref.hessian(x).sum(), rel=1e-10)
    mem, got = solve(ref, tol=1e-9), solve(prob, tol=1e-9)
    assert got.nit == mem.nit and got.fun == pytest.approx(mem.fun, rel=1e-13)
    eng.close()
