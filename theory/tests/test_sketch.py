"""Sketches of ``Aᵀ diag(v) A``: the spectral bound at each documented size, over fixed seeds."""

import numpy as np
import pytest

from theory.linalg import approximate_leverage_scores
from theory.sketch import (
    APPROX_LEVERAGE_BETA,
    SKETCHES,
    ApproximateLeverage,
    UniformSampling,
    exact_leverage_scores,
    make_sketch,
)

N, D = 4096, 6
EPS, DELTA = 0.5, 0.2
SEEDS = range(20)  # allowed failures: DELTA * 20 = 4


def coherent_matrix(seed=0):
    """Rows of heavy-tailed norms (1 + Pareto(1.5)): a few rows carry most of the leverage."""
    rng = np.random.default_rng(seed)
    return rng.standard_normal((N, D)) * (1 + rng.pareto(1.5, N))[:, None]


def spectral_error(H_tilde, H) -> float:
    """``||H^{-½} H̃ H^{-½} − I||₂``: the smallest ε with (1 − ε)H ⪯ H̃ ⪯ (1 + ε)H."""
    L = np.linalg.cholesky(H)
    X = np.linalg.solve(L, np.linalg.solve(L, H_tilde).T)
    return float(np.max(np.abs(np.linalg.eigvalsh(X) - 1)))


def documented_size(name, A, v):
    if name == "uniform":
        tau = exact_leverage_scores(A, v)
        return UniformSampling().size(D, EPS, DELTA, coherence=N * tau.max() / D)
    return make_sketch(name).size(D, EPS, DELTA, n=N)


@pytest.mark.parametrize("name", list(SKETCHES))
def test_spectral_bound_holds_at_documented_size_with_failure_rate_below_delta(name):
    A = coherent_matrix() if name != "uniform" else np.random.default_rng(1).standard_normal((N, D))
    v = np.random.default_rng(2).uniform(0.1, 1.0, N)
    H = (A * v[:, None]).T @ A
    s = documented_size(name, A, v)
    errors = [
        spectral_error(make_sketch(name).gram(A, v, s, np.random.default_rng(k)).H, H)
        for k in SEEDS
    ]
    assert sum(e > EPS for e in errors) <= DELTA * len(SEEDS), (s, max(errors))


def test_leverage_sampling_beats_uniform_on_coherent_rows():
    A, v = coherent_matrix(), np.ones(N)
    H = A.T @ A
    s = 40 * D
    err = {
        name: np.median(
            [
                spectral_error(make_sketch(name).gram(A, v, s, np.random.default_rng(k)).H, H)
                for k in range(5)
            ]
        )
        for name in ("leverage", "uniform")
    }
    assert err["leverage"] < 0.5 < err["uniform"], err


def test_exact_leverage_scores_sum_to_the_rank():
    A = coherent_matrix()
    tau = exact_leverage_scores(A, np.ones(N))
    assert np.isclose(tau.sum(), D) and tau.min() >= 0 and tau.max() <= 1 + 1e-12


@pytest.mark.parametrize("seed", range(3))
def test_approximate_scores_underestimate_by_at_most_beta(seed):
    A, v = coherent_matrix(seed), np.random.default_rng(seed).uniform(0.1, 1, N)
    tau = exact_leverage_scores(A, v)
    approx = v * approximate_leverage_scores(A, v, np.random.default_rng(seed))
    p = approx / approx.sum()
    assert np.max(tau / (D * p)) <= APPROX_LEVERAGE_BETA


def test_leverage_scores_are_reused_while_the_diagonal_drifts_little():
    A, v, rng = coherent_matrix(), np.ones(N), np.random.default_rng(0)
    sketch = ApproximateLeverage(drift=2.0)
    assert sketch.gram(A, v, 200, rng).recomputed
    assert not sketch.gram(A, 1.5 * v, 200, rng).recomputed
    assert sketch.gram(A, 3.0 * v, 200, rng).recomputed
    every = ApproximateLeverage(drift=None)
    assert every.gram(A, v, 200, rng).recomputed and every.gram(A, v, 200, rng).recomputed


def test_row_sampling_reads_only_the_sampled_rows():
    A, v = coherent_matrix(), np.ones(N)
    out = make_sketch("leverage").gram(A, v, 100, np.random.default_rng(0))
    assert out.size == 100 and out.rows <= 100


def test_unknown_sketch_lists_the_valid_names():
    with pytest.raises(ValueError, match="valid sketches: leverage, leverage-exact, uniform"):
        make_sketch("hadamard")


def test_approximate_scores_in_float32_match_the_float64_fallback_and_do_not_depend_on_scale():
    # The JL product runs in float32. At 1e40 A overflows float32 and the scores are redone in
    # float64 from the same draws; 1e-20 stays in float32's range. Leverage ignores A's scale.
    rng = np.random.default_rng(0)
    A = rng.standard_normal((3000, 20)) * np.exp(rng.standard_normal((3000, 1)))
    v = rng.uniform(0.5, 2.0, 3000)
    ell = approximate_leverage_scores(A, v, np.random.default_rng(1))
    assert np.all(ell > 0)
    for factor in (1e40, 1e-20):
        scaled = approximate_leverage_scores(A * factor, v, np.random.default_rng(1))
        np.testing.assert_allclose(scaled, ell, rtol=1e-4)
