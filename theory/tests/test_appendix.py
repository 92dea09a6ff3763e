"""Appendix C, lemma by lemma: each closed form against autograd and five-point differences."""

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from theory import SoftmaxRegression, appendix
from theory.tests.helpers import autodiff, five_point, instances, rel_err

TOL = 1e-10  # closed forms vs autograd, relative, for |A x| ≤ 30
FD_TOL = 1e-6  # five-point differences: O(h⁴) truncation and O(eps/h) rounding at h = 1e-3


# -- the vector identities the appendix's proofs use (not a numbered object) --------------------------------


@given(st.integers(0, 2**32 - 1), st.integers(1, 20))
def test_fact_C5_hadamard_and_inner_product_identities(seed, n):
    rng = np.random.default_rng(seed)
    u, v, w = rng.standard_normal((3, n))
    assert np.isclose(u @ v, np.sum(u * v * np.ones(n)))  # <u, v> = <u ∘ v, 1>
    assert np.allclose(u * v, np.diag(u) @ v)  # u ∘ v = diag(u) v
    assert np.isclose((u * v) @ w, u @ (v * w))  # <u ∘ v, w> = <u, v ∘ w>
    assert np.linalg.norm(u * v) <= np.max(np.abs(u)) * np.linalg.norm(v) * (1 + 1e-12)
    assert abs(u @ v) <= np.linalg.norm(u) * np.linalg.norm(v) * (1 + 1e-12)


@given(instances())
def test_fact_C5_f_lies_on_the_simplex(inst):
    A, _, _, x = inst
    f = appendix.f(A, x)
    assert np.all(f >= 0) and np.isclose(f.sum(), 1.0)
    assert np.linalg.norm(f) ** 2 <= np.max(f) + 1e-15 <= 1 + 1e-15


# -- Definitions C.1–C.4 --------------------------------------------------------------------------


@given(instances(z_max=30.0))
def test_def_C1_to_C3_softmax_equals_u_over_alpha(inst):
    A, _, _, x = inst
    assert rel_err(appendix.f(A, x), appendix.u(A, x) / appendix.alpha(A, x)) < 1e-14


def test_def_C3_softmax_is_finite_where_u_overflows():
    z = np.array([1e4, 0.0, -1e4])
    with np.errstate(over="ignore"):
        assert not np.isfinite(np.exp(z)).all()
    f = appendix.softmax(z)
    assert np.all(np.isfinite(f)) and f[0] == 1.0
    assert np.allclose(appendix.log_softmax(z), [0.0, -1e4, -2e4])


# -- Lemma C.9: derivatives of u, alpha, f, log f -----------------------------------------------


@given(instances(max_n=6, max_d=3, z_max=10.0))
def test_lemma_C9_df_dx_matches_autograd_and_finite_differences(inst):
    A, _, _, x = inst
    J = appendix.df_dx(A, x)
    assert rel_err(J, autodiff().softmax_jacobian(A, x)) < TOL
    assert rel_err(J, five_point(lambda y: appendix.f(A, y), x)) < FD_TOL


@given(instances(max_n=6, max_d=3, z_max=5.0))
def test_lemma_C9_du_dalpha_dlogf_match_finite_differences(inst):
    A, _, _, x = inst
    assert rel_err(appendix.du_dx(A, x), five_point(lambda y: appendix.u(A, y), x)) < FD_TOL
    assert rel_err(appendix.dalpha_dx(A, x), five_point(lambda y: appendix.alpha(A, y), x)) < FD_TOL
    logf = lambda y: appendix.log_softmax(A @ y)
    assert rel_err(appendix.dlogf_dx(A, x), five_point(logf, x)) < FD_TOL


def test_lemma_C9_softmax_jacobian_is_psd_with_norm_at_most_half():
    rng = np.random.default_rng(0)
    for _ in range(200):
        f = appendix.softmax(rng.standard_normal(rng.integers(1, 10)) * 4)
        eig = np.linalg.eigvalsh(appendix.softmax_jacobian(f))
        assert eig.min() >= -1e-15 and eig.max() <= 0.5 + 1e-15


# -- Lemma C.10 part 3 (∇L_cent); ∇L_exp (DLS23) ---------------------------------------------------------------------

GRADIENTS = {"exp": appendix.grad_L_exp, "cent": appendix.grad_L_cent}
LOSSES = {"exp": appendix.L_exp, "cent": appendix.L_cent}


@pytest.mark.parametrize("part", ["exp", "cent", "reg"])
@given(inst=instances())
def test_lemma_C10_gradient_of_each_part_matches_autograd(part, inst):
    A, b, w, x = inst
    ref = autodiff().gradient(A, b, w, x, part=part)
    mine = appendix.grad_L_reg(A, x, w) if part == "reg" else GRADIENTS[part](A, x, b)
    assert rel_err(mine, ref) < TOL
    assert np.isclose(
        SoftmaxRegression(A, b, w).loss_parts(x)[part],
        autodiff().loss(A, b, w, x, part=part),
        rtol=1e-12,
        atol=1e-12,
    )


@pytest.mark.parametrize("part", ["exp", "cent"])
@given(inst=instances(z_max=5.0))
def test_lemma_C10_gradient_of_each_part_matches_five_point_difference(part, inst):
    A, b, _, x = inst
    assert (
        rel_err(GRADIENTS[part](A, x, b), five_point(lambda y: LOSSES[part](A, y, b), x)) < FD_TOL
    )


# -- B_exp (DLS23), Def. C.13 and Lemma C.14 (B_cent) ---------------------------------------------


@given(instances(max_n=6))
def test_lemma_C11_B_exp_is_the_z_hessian_of_L_exp(inst):
    A, b, _, x = inst
    z = A @ x
    assert rel_err(appendix.B_exp(appendix.softmax(z), b), autodiff().z_hessian(b, z, "exp")) < TOL


@given(instances(max_n=6))
def test_lemma_C14_B_cent_is_the_z_hessian_of_L_cent(inst):
    A, b, _, x = inst
    z = A @ x
    assert (
        rel_err(appendix.B_cent(appendix.softmax(z), b), autodiff().z_hessian(b, z, "cent")) < TOL
    )


@given(instances(max_n=8, b_kind="simplex"))
def test_def_C13_B_cent_is_psd_when_b_sums_to_a_nonnegative_number(inst):
    A, b, _, x = inst
    eig = np.linalg.eigvalsh(appendix.B_cent(appendix.f(A, x), b))
    assert eig.min() >= -1e-14


def test_lemma_C11_B_exp_is_indefinite_for_some_inputs():
    """z = (1, 0, 0), b = (0, 1, 0): B_exp has eigenvalues ≈ −0.116, 0, 0.141.

    So L_exp is not convex in z (the 0 belongs to the direction 1, along which softmax is constant),
    and with A = I not convex in x either: the regulariser is what makes L convex.
    """
    z, b = np.array([1.0, 0.0, 0.0]), np.array([0.0, 1.0, 0.0])
    eig = np.linalg.eigvalsh(appendix.B_exp(appendix.softmax(z), b))
    assert eig.min() < -0.1 and eig.max() > 0.1
    H = autodiff().hessian(np.eye(3), b, np.zeros(3), z, part="exp")
    assert np.linalg.eigvalsh(H).min() < -0.1


# -- The structured objective against autograd -----------------------------------------------------


@given(instances())
@example(  # found by hypothesis: the low-rank term was not exactly symmetric in floating point
    (
        np.array([[0.12573022, -0.13210486, 0.64042265], [0.10490012, -0.53566937, 0.36159505]]),
        np.array([0.64829147, 0.35170853]),
        np.zeros(2),
        np.array([0.1304, 0.0947081, -0.07037352]),
    )
)
def test_objective_gradient_and_hessian_match_autograd(inst):
    A, b, w, x = inst
    prob = SoftmaxRegression(A, b, w)
    assert rel_err(prob.gradient(x), autodiff().gradient(A, b, w, x)) < TOL
    H = prob.hessian(x)
    assert np.array_equal(H, H.T)
    assert rel_err(H, autodiff().hessian(A, b, w, x)) < TOL
    z = A @ x  # the dense B(x) against autograd's z-Hessians, not against the same parts
    B_ref = autodiff().z_hessian(b, z, "exp") + autodiff().z_hessian(b, z, "cent") + np.diag(w**2)
    assert rel_err(prob.B(x), B_ref) < TOL
    assert rel_err(appendix.hessian_dense(A, x, b, w), H) < TOL


@given(instances(), st.integers(0, 2**32 - 1))
def test_hessp_equals_hessian_times_v_and_autograd_hvp(inst, seed):
    A, b, w, x = inst
    v = np.random.default_rng(seed).standard_normal(x.size)
    prob = SoftmaxRegression(A, b, w)
    assert rel_err(prob.hessp(x, v), prob.hessian(x) @ v) < TOL
    assert rel_err(prob.hessp(x, v), autodiff().hessp(A, b, w, x, v)) < TOL


@given(instances(max_n=6, max_d=3, z_max=5.0))
def test_hessian_columns_match_five_point_difference_of_gradient(inst):
    A, b, w, x = inst
    prob = SoftmaxRegression(A, b, w)
    assert rel_err(prob.hessian(x), five_point(prob.gradient, x)) < FD_TOL


# -- Edge cases -----------------------------------------------------------------------------------


def test_n_equals_one_softmax_is_constant_so_only_the_regulariser_curves():
    A, b, w, x = np.array([[2.0, -1.0]]), np.array([0.3]), np.array([1.5]), np.array([0.2, 0.7])
    prob = SoftmaxRegression(A, b, w)
    assert np.isclose(prob.loss_parts(x)["exp"], 0.5 * 0.7**2)
    assert prob.loss_parts(x)["cent"] == 0.0
    assert rel_err(prob.hessian(x), 1.5**2 * A.T @ A) < 1e-14
    assert rel_err(prob.hessian(x), autodiff().hessian(A, b, w, x)) < TOL


def test_d_equals_one_and_b_zero_match_autograd():
    rng = np.random.default_rng(3)
    A, w, x = rng.standard_normal((5, 1)), rng.random(5), np.array([0.8])
    prob = SoftmaxRegression(A, np.zeros(5), w)
    assert prob.loss_parts(x)["cent"] == 0.0
    assert rel_err(prob.gradient(x), autodiff().gradient(A, np.zeros(5), w, x)) < TOL
    assert rel_err(prob.hessian(x), autodiff().hessian(A, np.zeros(5), w, x)) < TOL


@pytest.mark.parametrize("zmax", [1e2, 1e3, 1e4])
def test_huge_Ax_gives_finite_values_that_match_autograd(zmax):
    rng = np.random.default_rng(4)
    A, b, w = rng.standard_normal((20, 3)), rng.dirichlet(np.ones(20)), rng.random(20)
    x = rng.standard_normal(3)
    x *= zmax / np.max(np.abs(A @ x))
    prob = SoftmaxRegression(A, b, w)
    values = [prob.loss(x), prob.gradient(x), prob.hessian(x), prob.hessp(x, np.ones(3))]
    assert all(np.all(np.isfinite(np.asarray(v))) for v in values)
    assert rel_err(prob.gradient(x), autodiff().gradient(A, b, w, x)) < TOL
    assert rel_err(prob.hessian(x), autodiff().hessian(A, b, w, x)) < TOL


def test_gradient_is_not_stale_after_x_is_changed_in_place():
    rng = np.random.default_rng(5)
    A, b = rng.standard_normal((6, 2)), rng.dirichlet(np.ones(6))
    prob = SoftmaxRegression(A, b, 0.5)
    x = np.array([0.1, 0.2])
    g0 = prob.gradient(x)
    x[0] = 1.0
    assert not np.allclose(prob.gradient(x), g0)
    assert rel_err(prob.gradient(x), autodiff().gradient(A, b, prob.w, x)) < TOL
