"""GroupedSoftmaxRegression: the one-group case, derivatives against autograd and finite
differences, B's block structure, the explicit constants, the solvers, and multinomial logistic
regression against scikit-learn."""

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from theory import GroupedSoftmaxRegression, SoftmaxRegression, grouped, solve
from theory import bounds as single_bounds
from theory.tests.helpers import five_point, instances, rel_err

EXP_WEIGHTS = st.sampled_from([1.0, 0.0, 0.37])


@st.composite
def grouped_instances(draw, max_n=10, max_d=4, min_w=0.0):
    """(A, b, w, groups, e, x): an :func:`instances` draw with random group labels (any ints)."""
    A, b, w, x = draw(instances(max_n=max_n, max_d=max_d))
    n = A.shape[0]
    k = draw(st.integers(1, n), label="groups")
    groups = np.array(draw(st.lists(st.integers(-3, k), min_size=n, max_size=n)), dtype=np.int64)
    return A, b, np.maximum(w, min_w), groups, draw(EXP_WEIGHTS, label="e"), x


# -- the independent reference: torch.func on the definition, one group at a time ---------------


def _torch():
    """torch, or a skip naming the reason (only the autograd references need it)."""
    return pytest.importorskip("torch", reason="the autograd reference needs torch")


def torch_loss(A, b, w, groups, e):
    """``x ↦ L(x)`` in torch (float64), by definition: a Python loop over the groups, each with
    torch's own log_softmax (no algebra shared with theory.grouped)."""
    torch = _torch()
    At, bt, wt = (torch.as_tensor(np.asarray(a, dtype=np.float64)) for a in (A, b, w))
    rows = [torch.as_tensor(np.flatnonzero(groups == g)) for g in np.unique(groups)]

    def L(x):
        z = At @ x
        total = 0.5 * torch.sum((wt * z) ** 2)
        for idx in rows:
            logf = torch.log_softmax(z[idx], dim=0)
            total = total + e * 0.5 * torch.sum((torch.exp(logf) - bt[idx]) ** 2)
            total = total - torch.sum(bt[idx] * logf)
        return total

    return L


def reference(A, b, w, groups, e, x):
    """(L, ∇L, ∇²L) by torch.func (reverse mode; forward-over-reverse for the Hessian)."""
    torch = _torch()
    L, xt = torch_loss(A, b, w, groups, e), torch.as_tensor(x)
    return float(L(xt)), torch.func.grad(L)(xt).numpy(), torch.func.hessian(L)(xt).numpy()


# -- one group is SoftmaxRegression --------------------------------------------------------------


@given(instances(max_n=12, max_d=4), EXP_WEIGHTS, st.integers(-5, 5))
def test_one_group_equals_softmax_regression(inst, e, label):
    A, b, w, x = inst
    single = SoftmaxRegression(A, b, w, exp_weight=e)
    one = GroupedSoftmaxRegression(A, b, w, np.full(A.shape[0], label), exp_weight=e)
    v = np.linspace(-1.0, 1.0, A.shape[1])
    assert one.n_groups == 1
    for name, a, ref in [
        ("loss", one.loss(x), single.loss(x)),
        ("gradient", one.gradient(x), single.gradient(x)),
        ("hessian", one.hessian(x), single.hessian(x)),
        ("hessp", one.hessp(x, v), single.hessp(x, v)),
        ("B", one.B(x), single.B(x)),
    ]:
        assert rel_err(a, ref) <= 1e-12, name
    for k, val in single.loss_parts(x).items():
        assert rel_err(one.loss_parts(x)[k], val) <= 1e-12, k


def test_exp_weight_one_is_the_default_and_zero_drops_L_exp():
    rng = np.random.default_rng(1)
    A, b, w = rng.standard_normal((9, 3)), rng.dirichlet(np.ones(9)), rng.uniform(0, 1, 9)
    x = rng.standard_normal(3)
    paper, scaled = SoftmaxRegression(A, b, w), SoftmaxRegression(A, b, w, exp_weight=0.0)
    parts = paper.loss_parts(x)
    assert scaled.loss(x) == pytest.approx(parts["cent"] + parts["reg"], rel=1e-14)
    assert scaled.loss_parts(x)["exp"] == 0.0 and parts["exp"] > 0


# -- derivatives: autograd, finite differences, B's structure ------------------------------------


@given(grouped_instances())
def test_gradient_and_hessian_match_autograd(inst):
    A, b, w, groups, e, x = inst
    prob = GroupedSoftmaxRegression(A, b, w, groups, exp_weight=e)
    L, g, H = reference(A, b, w, groups, e, x)
    assert rel_err(prob.loss(x), L) <= 1e-10
    assert rel_err(prob.gradient(x), g) <= 1e-10
    assert rel_err(prob.hessian(x), H) <= 1e-10
    v = np.cos(np.arange(A.shape[1]))
    assert rel_err(prob.hessp(x, v), H @ v) <= 1e-10


@given(grouped_instances(max_n=8, max_d=3))
def test_derivatives_match_five_point_differences(inst):
    A, b, w, groups, e, x = inst
    prob = GroupedSoftmaxRegression(A, b, w, groups, exp_weight=e)
    assert rel_err(prob.gradient(x), five_point(prob.loss, x)) <= 1e-6
    assert rel_err(prob.hessian(x), five_point(prob.gradient, x)) <= 1e-6


@given(grouped_instances(max_n=10, max_d=2))
def test_B_is_the_z_hessian_block_diagonal_with_rank_two_blocks(inst):
    """B = ∂²ℓ/∂z² (autograd with A = I), zero between groups, and each block minus its
    diagonal part diag(v_g) has rank ≤ 2."""
    A, b, w, groups, e, x = inst
    z = A @ x
    prob = GroupedSoftmaxRegression(np.eye(z.size), b, w, groups, exp_weight=e)
    B = prob.B(z)
    torch = _torch()
    L = torch_loss(np.eye(z.size), b, w, groups, e)
    ref = torch.func.hessian(L)(torch.as_tensor(z)).numpy()
    assert rel_err(B, ref) <= 1e-10
    same = groups[:, None] == groups[None, :]
    assert np.all(B[~same] == 0.0)
    v = prob.hessian_parts(z).diag
    for g in np.unique(groups):
        idx = np.flatnonzero(groups == g)
        low = B[np.ix_(idx, idx)] - np.diag(v[idx])
        assert np.linalg.matrix_rank(low, tol=1e-9 * max(1.0, np.abs(low).max())) <= 2


def test_a_singleton_group_adds_only_its_ridge():
    rng = np.random.default_rng(2)
    A, b = rng.standard_normal((7, 3)), np.array([1.0, 0, 0, 0, 1, 0, 0.0])
    groups = np.array([0, 0, 0, 1, 1, 1, 2])
    x = rng.standard_normal(3)
    base = GroupedSoftmaxRegression(A[:6], b[:6], 0.0, groups[:6], exp_weight=0.0)
    with_ridge = GroupedSoftmaxRegression(A, b, np.r_[np.zeros(6), 2.0], groups, exp_weight=0.0)
    assert with_ridge.loss(x) == pytest.approx(base.loss(x) + 0.5 * 4.0 * (A[6] @ x) ** 2, 1e-13)


# -- explicit constants (Lemmas C.15, C.16 extended) ---------------------------------------------


@settings(max_examples=40)
@given(grouped_instances(max_n=10, max_d=3), st.integers(0, 2**31 - 1))
def test_grouped_constants_are_never_violated(inst, seed):
    A, b, w, groups, e, x = inst
    prob = GroupedSoftmaxRegression(A, b, w, groups, exp_weight=e)
    rng = np.random.default_rng(seed)
    y = x + rng.standard_normal(x.size)
    W2 = np.diag(prob.w2)
    M = grouped.B_norm_bound(prob)
    for point in (x, y):
        assert np.linalg.norm(prob.B(point) - W2, 2) <= M * (1 + 1e-12) + 1e-12
        lam = np.linalg.eigvalsh(prob.hessian(point))[0]
        assert lam >= grouped.strong_convexity(prob) - 1e-9 * max(1.0, abs(lam))
    dH = np.linalg.norm(prob.hessian(x) - prob.hessian(y), 2)
    assert dH <= grouped.hessian_lipschitz(prob) * np.linalg.norm(x - y) * (1 + 1e-12) + 1e-12


def test_grouped_constants_reduce_to_theory_bounds_for_one_group():
    rng = np.random.default_rng(3)
    A, b = rng.standard_normal((20, 4)), rng.standard_normal(20)
    prob = GroupedSoftmaxRegression(A, b, 1.0, np.zeros(20, dtype=int))
    assert grouped.B_norm_bound(prob) == pytest.approx(single_bounds.B_norm_bound(b), 1e-14)
    assert grouped.hessian_lipschitz(prob) == pytest.approx(
        single_bounds.hessian_lipschitz(A, b), 1e-12
    )
    ours = grouped.theorem_conditions(prob, R=3.0, x0=np.zeros(4), x_star=np.ones(4))
    theirs = single_bounds.theorem_conditions(prob, R=3.0, x0=np.zeros(4), x_star=np.ones(4))
    assert ours.keys() == theirs.keys()
    for k in ours:
        assert ours[k].holds == theirs[k].holds
        assert ours[k].lhs == pytest.approx(theirs[k].lhs, 1e-12), k


def test_grouped_bound_is_the_largest_blocks():
    """M is the max over groups, not a bound for the concatenated b: with b = 1 on every row of
    many groups, each group's s_g = 1 and M stays at its one-hot value."""
    groups = np.repeat(np.arange(50), 4)
    b = np.tile([1.0, 0, 0, 0], 50)
    prob = GroupedSoftmaxRegression(np.ones((200, 1)), b, 1.0, groups)
    assert grouped.B_norm_bound(prob) == pytest.approx(
        single_bounds.B_norm_bound(np.array([1.0, 0, 0, 0]))
    )


# -- solvers ------------------------------------------------------------------------------------

METHODS = ("sketched-subspace-newton", "newton", "sketched-newton", "sketched-newton-cg")


@settings(max_examples=25)
@given(grouped_instances(max_n=40, max_d=5, min_w=0.0), st.floats(0.5, 3.0))
def test_solvers_converge_on_grouped_instances(inst, ridge):
    """Strongly convex through a ridge in singleton groups (rows √ridge e_j): every solver reaches
    max|∇L| ≤ 1e-9 (or stops at L's rounding floor, status 3, with max|∇L| ≤ 1e-8), and all find
    the same minimiser (unique). Outside Theorem D.1's regime (w = 0 on the data rows) Algorithm 1
    converges linearly and can be slow: 256 iterations on a 10-row instance hypothesis found."""
    A, b, w, groups, e, _ = inst
    d = A.shape[1]
    A2 = np.vstack([A, np.eye(d)])
    groups2 = np.r_[groups, groups.max() + 1 + np.arange(d)]
    prob = GroupedSoftmaxRegression(
        A2, np.r_[b, np.zeros(d)], np.r_[w, np.full(d, np.sqrt(ridge))], groups2, exp_weight=e
    )
    xs = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # an indefinite Hessian far from x* warns: not a failure
        for m in METHODS:
            res = solve(prob, method=m, tol=1e-9, max_iter=1000)
            assert res.success or res.status == 3, (m, res.message)
            assert np.max(np.abs(prob.gradient(res.x))) <= 1e-8
            xs[m] = res.x
    for m in METHODS:
        assert rel_err(xs[m], xs["newton"]) <= 1e-6, m


# -- multinomial logistic regression against scikit-learn ----------------------------------------


def test_multinomial_logistic_regression_matches_scikit_learn():
    sklearn = pytest.importorskip("sklearn", reason="the comparison needs scikit-learn")
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(4)
    N, p, C, lam = 90, 4, 3, 0.5
    centres = rng.standard_normal((C, p)) * 1.5
    y = rng.integers(0, C, N)
    X = centres[y] + rng.standard_normal((N, p))
    prob = grouped.multinomial_logistic(X, y, C, ridge=lam)
    res = solve(prob, tol=1e-12)
    assert res.success, res.message
    W = res.x.reshape(C, p)
    # sklearn: min_W ½||W||² + C_sk Σ_i CE_i  ⇔  Σ_i CE_i + ½ (1/C_sk) ||W||²
    ref = LogisticRegression(C=1 / lam, fit_intercept=False, tol=1e-14, max_iter=100_000)
    if tuple(int(v) for v in sklearn.__version__.split(".")[:2]) >= (1, 6):
        ref.set_params(solver="newton-cholesky")
    ref.fit(X, y)
    assert ref.coef_.shape == (C, p)  # multinomial: one row per class
    err = np.max(np.abs(W - ref.coef_)) / np.max(np.abs(ref.coef_))
    assert err <= 1e-6, err
    ce = -np.sum(np.log(ref.predict_proba(X)[np.arange(N), y]))
    assert prob.loss(res.x) <= ce + 0.5 * lam * np.sum(ref.coef_**2) + 1e-9


# -- bad input ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "groups, message",
    [
        (np.zeros(4), "groups must be an integer array"),
        (np.zeros(3, dtype=int), r"groups must have shape \(4,\)"),
        (np.zeros((4, 1), dtype=int), r"groups must have shape \(4,\)"),
        (np.array([True, False, True, False]), "groups must be an integer array"),
    ],
)
def test_bad_groups_are_refused(groups, message):
    with pytest.raises(ValueError, match=message):
        GroupedSoftmaxRegression(np.ones((4, 2)), np.zeros(4), 1.0, groups)


@pytest.mark.parametrize("e", [-1.0, float("nan"), float("inf"), True, "1"])
@pytest.mark.parametrize("cls", ["single", "grouped"])
def test_bad_exp_weight_is_refused(e, cls):
    args = (np.ones((4, 2)), np.zeros(4), 1.0)
    with pytest.raises(ValueError, match="exp_weight must be a finite number ≥ 0"):
        if cls == "single":
            SoftmaxRegression(*args, exp_weight=e)
        else:
            GroupedSoftmaxRegression(*args, np.zeros(4, dtype=int), exp_weight=e)


def test_multinomial_logistic_refuses_bad_labels():
    with pytest.raises(ValueError, match="labels must lie in 0..1"):
        grouped.multinomial_logistic(np.ones((3, 2)), np.array([0, 1, 2]), 2)
    with pytest.raises(ValueError, match="ridge must be a finite number"):
        grouped.multinomial_logistic(np.ones((3, 2)), np.array([0, 1, 0]), 2, ridge=-1.0)
