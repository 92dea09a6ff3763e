"""``theory.loss``: ℓ(z), r = ∂ℓ/∂z and B = ∂²ℓ/∂z² against autograd (torch.func on the loss of
appendix C with A = I, so x = z) and five-point differences; buffers change nothing; the objective
composes ℓ with A and keeps value semantics (threads share it)."""

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from hypothesis import given

from theory import SoftmaxRegression
from theory.loss import SoftmaxLoss
from theory.tests.helpers import autodiff, five_point, instances, rel_err

TOL = 1e-10


@given(instances(max_n=6, max_d=3, z_max=20.0))
def test_residual_and_b_match_five_point_differences_in_z(inst):
    A, b, w, x = inst
    loss, z = SoftmaxLoss(b, w), A @ x
    value = lambda y: loss.value(y, loss.softmax(y))
    r, parts = loss.derivatives(z, loss.softmax(z).f)
    assert rel_err(r, five_point(value, z)) < 1e-6
    assert rel_err(loss.residual(z, loss.softmax(z).f), r) < 1e-13
    residual = lambda y: loss.residual(y, loss.softmax(y).f)
    assert rel_err(parts.dense(), five_point(residual, z)) < 1e-6


@given(instances(max_n=6, max_d=3, z_max=30.0))
def test_value_residual_and_b_match_autograd(inst):
    A, b, w, x = inst
    n, loss, z = b.size, SoftmaxLoss(b, w), A @ x
    sm = loss.softmax(z)
    eye = np.eye(n)  # L(x) with A = I is ℓ(z)
    assert loss.value(z, sm) == pytest.approx(autodiff().loss(eye, b, w, z), rel=1e-12, abs=1e-12)
    r, parts = loss.derivatives(z, sm.f)
    assert rel_err(r, autodiff().gradient(eye, b, w, z)) < TOL
    assert rel_err(parts.dense(), autodiff().hessian(eye, b, w, z)) < TOL
    t = np.linspace(-1.0, 1.0, n)
    assert rel_err(parts.apply(t), parts.dense() @ t) < 1e-12


def test_buffers_give_bitwise_the_fresh_results_and_nothing_leaks_between_points():
    rng = np.random.default_rng(0)
    n = 50
    b, w = rng.dirichlet(np.ones(n)), rng.random(n)
    loss = SoftmaxLoss(b, w)
    z1, z2 = rng.standard_normal(n), 3 * rng.standard_normal(n)
    f, out, tmp = np.empty(n), np.empty((3, n)), np.empty((2, n))
    loss.derivatives(z1, loss.softmax(z1, out=f).f, out=out, tmp=tmp)  # fill the buffers at z1
    sm = loss.softmax(z2, out=f)
    r, parts = loss.derivatives(z2, sm.f, out=out, tmp=tmp)
    fresh_sm = loss.softmax(z2)
    fresh_r, fresh_parts = loss.derivatives(z2, fresh_sm.f)
    assert sm.f is f and r.base is out
    np.testing.assert_array_equal(sm.f, fresh_sm.f)
    assert loss.value(z2, sm, tmp) == loss.value(z2, fresh_sm)
    np.testing.assert_array_equal(r, fresh_r)
    np.testing.assert_array_equal(parts.diag, fresh_parts.diag)
    np.testing.assert_array_equal(parts.q, fresh_parts.q)
    assert parts.kappa == fresh_parts.kappa


def test_the_objective_is_the_loss_composed_with_a():
    rng = np.random.default_rng(1)
    A, b, w = rng.standard_normal((40, 3)), rng.dirichlet(np.ones(40)), rng.random(40)
    prob, x = SoftmaxRegression(A, b, w), rng.standard_normal(3)
    z = A @ x
    sm = prob.loss_z.softmax(z)
    r, parts = prob.loss_z.derivatives(z, sm.f)
    assert prob.loss(x) == pytest.approx(prob.loss_z.value(z, sm), rel=1e-15)
    np.testing.assert_allclose(prob.gradient(x), A.T @ r, rtol=1e-13)
    np.testing.assert_allclose(prob.hessian(x), A.T @ parts.dense() @ A, rtol=1e-11, atol=1e-13)


def test_one_problem_shared_by_threads_gives_each_its_own_answers():
    # no hidden cache: interleaved calls at different x in 4 threads equal the serial ones
    rng = np.random.default_rng(2)
    A, b = rng.standard_normal((3000, 8)), rng.dirichlet(np.ones(3000))
    prob = SoftmaxRegression(A, b, 0.3)
    xs = [rng.standard_normal(8) * 0.5 for _ in range(16)]
    serial = [(prob.loss(x), prob.gradient(x), prob.hessp(x, x)) for x in xs]

    def work(x):
        return prob.loss(x), prob.gradient(x), prob.hessp(x, x)

    with ThreadPoolExecutor(4) as pool:
        threaded = list(pool.map(work, xs * 4))
    for k, (loss, g, hv) in enumerate(threaded):
        ref = serial[k % len(xs)]
        assert loss == ref[0]
        np.testing.assert_array_equal(g, ref[1])
        np.testing.assert_array_equal(hv, ref[2])
