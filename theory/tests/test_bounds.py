"""Lemmas C.15 and C.16 with explicit constants (theory.bounds): hypothesis hunts for violations."""

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from theory import SoftmaxRegression, appendix, bounds

peaked_z = st.sampled_from([0.1, 1.0, 5.0, 30.0])


@st.composite
def simplex_points(draw, max_n=10):
    """(f, b): f = softmax(z) anywhere on the simplex (flat to saturated), b of any kind and sign."""
    n = draw(st.integers(1, max_n))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    f = appendix.softmax(rng.standard_normal(n) * draw(peaked_z))
    b = draw(
        st.sampled_from(
            [
                lambda: rng.dirichlet(np.ones(n) * 0.2),
                lambda: np.eye(n)[rng.integers(n)],
                lambda: rng.standard_normal(n) * 3,
                lambda: np.zeros(n),
            ]
        )
    )()
    return f, b


@given(simplex_points())
def test_lemma_C15_B_norm_bound_is_never_exceeded(point):
    f, b = point
    B = appendix.B_exp(f, b) + appendix.B_cent(f, b)
    assert np.linalg.norm(B, 2) <= bounds.B_norm_bound(b)


@given(st.integers(0, 2**32 - 1), st.integers(1, 10))
def test_fact_softmax_is_half_lipschitz(seed, n):
    rng = np.random.default_rng(seed)
    z, y = rng.standard_normal((2, n)) * rng.choice([0.1, 1, 10])
    gap = np.linalg.norm(appendix.softmax(z) - appendix.softmax(y))
    assert gap <= 0.5 * np.linalg.norm(z - y) * (1 + 1e-12) + 1e-15


@st.composite
def convex_instances(draw):
    """Instances with min w² above M(b), so that Lemma C.15's l is positive."""
    n = draw(st.integers(2, 12))
    d = draw(st.integers(1, min(n, 4)))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    A = rng.standard_normal((n, d)) * draw(st.sampled_from([0.3, 1.0, 3.0]))
    b = rng.dirichlet(np.ones(n) * draw(st.sampled_from([0.1, 1.0])))
    margin = draw(st.sampled_from([1.0001, 1.1, 2.0, 101.0]))
    w = np.sqrt(margin * bounds.B_norm_bound(b) * (1 + rng.random(n)))
    x = rng.standard_normal(d) * draw(peaked_z) / np.linalg.norm(A, 2)
    return SoftmaxRegression(A, b, w), x


@given(convex_instances())
def test_lemma_C15_hessian_dominates_l_times_identity(inst):
    prob, x = inst
    l = bounds.strong_convexity(prob.A, prob.b, prob.w)
    assert l > 0
    assert np.linalg.eigvalsh(prob.hessian(x)).min() >= l * (1 - 1e-9)


@given(convex_instances())
def test_lemma_C15_part2_sandwich_holds_with_upper_factor_one_plus(inst):
    """(1 − 0.01) B̃ ⪯ W² ⪯ (1 + 0.01) B̃ whenever min w² ≥ 101 M (the paper prints 1 − 0.01 twice)."""
    prob, x = inst
    if np.min(prob.w2) < bounds.SANDWICH_FACTOR * bounds.B_norm_bound(prob.b):
        return
    Bt, W2 = prob.B(x), np.diag(prob.w2)
    assert np.linalg.eigvalsh(W2 - 0.99 * Bt).min() >= -1e-12 * np.max(prob.w2)
    assert np.linalg.eigvalsh(1.01 * Bt - W2).min() >= -1e-12 * np.max(prob.w2)


def test_lemma_C15_part2_as_printed_is_false():
    """The printed right side, W² ⪯ (1 − 0.01) B̃, fails: with B ⪰ 0 it would need W² ⪯ 0.99 W² + ..."""
    rng = np.random.default_rng(0)
    n = 5
    b = np.full(n, 1 / n)
    prob = SoftmaxRegression(rng.standard_normal((n, 2)), b, np.full(n, 100.0))
    Bt, W2 = prob.B(np.zeros(2)), np.diag(prob.w2)
    assert np.linalg.eigvalsh(0.99 * Bt - W2).min() < 0  # "W² ⪯ (1 − 0.01) B̃" is violated
    assert np.linalg.eigvalsh(1.01 * Bt - W2).min() >= 0  # the corrected "(1 + 0.01) B̃" holds


@st.composite
def pairs(draw):
    n = draw(st.integers(1, 10))
    d = draw(st.integers(1, 4))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    A = rng.standard_normal((n, d)) * draw(st.sampled_from([0.3, 1.0, 3.0]))
    b = draw(
        st.sampled_from(
            [
                lambda: rng.dirichlet(np.ones(n)),
                lambda: np.eye(n)[rng.integers(n)],
                lambda: rng.standard_normal(n),
            ]
        )
    )()
    x = rng.standard_normal(d) * draw(peaked_z) / np.linalg.norm(A, 2)
    y = x + rng.standard_normal(d) * draw(st.sampled_from([1e-3, 0.1, 1.0, 10.0]))
    return SoftmaxRegression(A, b, rng.random(n)), x, y


@given(pairs())
def test_lemma_C16_hessian_lipschitz_bound_is_never_exceeded(pair):
    prob, x, y = pair
    gap = np.linalg.norm(prob.hessian(x) - prob.hessian(y), 2)
    rounding = 1e-13 * np.linalg.norm(prob.A, 2) ** 2 * (1 + np.max(prob.w2))
    assert gap <= bounds.hessian_lipschitz(prob.A, prob.b) * np.linalg.norm(x - y) + rounding


def test_bounds_do_not_grow_with_n_or_R_unlike_the_papers_constant():
    b_small, b_large = np.full(10, 0.1), np.full(10_000, 1e-4)
    assert bounds.B_norm_bound(b_large) <= bounds.B_norm_bound(b_small)
    assert bounds.paper_constant(R=3, n=10_000) > 1e3 * bounds.B_norm_bound(b_large)


def test_theorem_conditions_report_which_hold():
    rng = np.random.default_rng(1)
    A, b = rng.standard_normal((50, 3)) / 10, rng.dirichlet(np.ones(50))
    M = bounds.B_norm_bound(b)
    strong = SoftmaxRegression(A, b, np.full(50, np.sqrt(200 * M)))
    weak = SoftmaxRegression(A, b, np.zeros(50))
    x_star = np.zeros(3)
    ok = bounds.theorem_conditions(strong, R=1.0, x0=x_star + 1e-9, x_star=x_star)
    assert all(c.holds for c in ok.values()), ok
    bad = bounds.theorem_conditions(weak, R=1e-3, x0=np.ones(3), x_star=x_star, eps=0.5)
    assert {k for k, c in bad.items() if not c.holds} == {
        "A_bounded",
        "regulariser_dominates",
        "good_start",
        "sketch_accuracy",
    }
