"""Direct tests of small helpers that the solvers rely on: the trust-region step to the boundary
(``_to_boundary``), the preconditioner's cost model and rebuild rule (``PreconditionerPolicy``),
leverage-score reuse (``drifted``), the Bernstein sample size (``bernstein_size``), the JL map of
the approximate leverage scores (``jl_map``) and the row blocks of a generated A (``block_bounds``).
Each is checked against what its docstring promises, computed independently here."""

import math

import numpy as np
import pytest

from theory.blocks import block_bounds
from theory.linalg import jl_map
from theory.newton_cg import _to_boundary
from theory.preconditioner import PreconditionerPolicy
from theory.rows import as_rows
from theory.sketch import bernstein_size, drifted

# -- _to_boundary: τ ≥ 0 with ||p + τ d|| = Δ ------------------------------------------------------


@pytest.mark.parametrize(
    ("p", "d", "radius", "tau"),
    [
        ([0.0, 0.0], [3.0, 4.0], 10.0, 2.0),  # from the centre: Δ / ||d||
        ([1.0, 0.0], [0.0, 1.0], math.sqrt(2.0), 1.0),  # orthogonal: 1 + τ² = 2
        ([1.0, 0.0], [-1.0, 0.0], 2.0, 3.0),  # backwards through the centre: |1 − τ| = 2, τ > 0
        ([1.0, 0.0], [1.0, 0.0], 1.0, 0.0),  # on the boundary, pointing out: τ = 0, not −2
        ([1.0, 0.0], [-1.0, 0.0], 1.0, 2.0),  # on the boundary, pointing in: across to −p
        ([0.5, 0.0], [0.0, 2.0], 1.0, math.sqrt(0.75) / 2.0),  # ¼ + 4τ² = 1
    ],
)
def test_to_boundary_on_hand_made_cases(p, d, radius, tau):
    got = _to_boundary(np.array(p), np.array(d), radius)
    assert got == pytest.approx(tau, abs=1e-15)
    assert np.linalg.norm(np.array(p) + got * np.array(d)) == pytest.approx(radius, rel=1e-14)


def test_to_boundary_from_inside_the_ball_lands_on_the_sphere_with_a_positive_step():
    rng = np.random.default_rng(0)
    for _ in range(200):
        dim = int(rng.integers(1, 10))
        radius = float(rng.uniform(0.1, 10.0))
        p = rng.standard_normal(dim)
        p *= radius * rng.uniform(0.0, 0.999) / np.linalg.norm(p)  # strictly inside
        d = rng.standard_normal(dim) * 10.0 ** rng.uniform(-3, 3)
        tau = _to_boundary(p, d, radius)
        # Inside the ball the quadratic's roots have opposite signs: the one returned is > 0.
        assert tau > 0
        assert np.linalg.norm(p + tau * d) == pytest.approx(radius, rel=1e-12)


# -- PreconditionerPolicy: the cost model (d/22 and 2 + extra + (s + 3d) d / (22 n)) ---------------


def test_policy_builds_the_exact_hessian_when_it_is_the_cheaper():
    # n = 1000, d = 22, s = 352: exact = 22/22 = 1; sketch = 2 + (352 + 66)·22/(22·1000) = 2.418.
    pol = PreconditionerPolicy.for_problem(1000, 22, 352, rebuild_after=None)
    assert pol.exact and not pol.always and not pol.corrected
    assert pol.price == pytest.approx(1.0, rel=1e-15) and pol.s == 352


def test_policy_builds_the_sketch_when_it_is_the_cheaper():
    # n = 10⁶, d = 440, s = 7040: exact = 20; sketch = 2 + (7040 + 1320)·440/(22·10⁶) = 2.1672.
    pol = PreconditionerPolicy.for_problem(10**6, 440, 7040, rebuild_after=None, corrected=True)
    assert not pol.exact and pol.corrected
    assert pol.price == pytest.approx(2.1672, rel=1e-12)
    # The sketch's extra passes (the range correction's two) are added to its price.
    extra = PreconditionerPolicy.for_problem(10**6, 440, 7040, rebuild_after=None, extra=2.0)
    assert extra.price == pytest.approx(4.1672, rel=1e-12) and not extra.exact
    # ... and can make the exact Hessian the cheaper: d = 88 gives exact = 4 < 2 + 3 + ε.
    assert PreconditionerPolicy.for_problem(10**6, 88, 1408, rebuild_after=None, extra=3.0).exact


def test_policy_rebuild_after_sets_the_price_and_zero_means_every_iteration():
    pol = PreconditionerPolicy.for_problem(10**6, 440, 7040, rebuild_after=5)
    assert pol.price == 5.0 and not pol.always and not pol.exact  # the choice stays the model's
    every = PreconditionerPolicy.for_problem(10**6, 440, 7040, rebuild_after=0)
    assert every.always and every.pays(0.0, 100.0) and every.waited(0, 10)


def test_policy_pays_is_ski_rental_with_a_strict_inequality():
    pol = PreconditionerPolicy(exact=False, price=2.5, always=False, s=64, corrected=False)
    assert pol.pays(5.0, 2.0)  # 5 > 2.5 + 2
    assert not pol.pays(4.5, 2.0)  # 4.5 = 2.5 + 2: not more than the price
    assert not pol.pays(3.0, 2.0)


def test_policy_waits_max_of_minimum_and_a_quarter_of_the_price():
    pol = PreconditionerPolicy(exact=False, price=12.0, always=False, s=64, corrected=False)
    assert not pol.waited(2, 1) and pol.waited(3, 1)  # ⌊12/4⌋ = 3
    assert not pol.waited(4, 5) and pol.waited(5, 5)  # the minimum wins
    cheap = PreconditionerPolicy(exact=False, price=2.1672, always=False, s=64, corrected=False)
    assert not cheap.waited(1, 2) and cheap.waited(2, 2)  # ⌊0.54⌋ = 0: the minimum alone
    assert cheap.waited(0, 0)


def test_policy_builds_the_exact_p_from_the_callers_hessian():
    H = np.array([[4.0, 1.0], [1.0, 3.0]])
    pol = PreconditionerPolicy(exact=True, price=1.0, always=False, s=4, corrected=False)
    calls = []

    def exact_hessian():
        calls.append(1)
        return H

    P, sk = pol.build(None, None, None, None, exact_hessian)
    assert sk is None and calls == [1] and P.fallback is None
    r = np.array([1.0, -2.0])
    np.testing.assert_allclose(P.solve(r), np.linalg.solve(H, r), rtol=1e-14)


# -- drifted: some v_i / v_ref_i outside [1/γ, γ] --------------------------------------------------

MEMORY = as_rows(np.zeros((1, 1)))  # rows in memory: v, v_ref are ndarrays


def test_drifted_without_gamma_is_always_true():
    v = np.array([1.0, 2.0, 3.0])
    assert drifted(MEMORY, v, v, None)


def test_drifted_bounds_are_inclusive_in_both_directions():
    v_ref = np.array([1.0, 2.0, 4.0, 8.0])
    assert not drifted(MEMORY, v_ref, v_ref, 2.0)
    assert not drifted(MEMORY, 2.0 * v_ref, v_ref, 2.0)  # ratio exactly γ
    assert not drifted(MEMORY, 0.5 * v_ref, v_ref, 2.0)  # ratio exactly 1/γ
    up = v_ref.copy()
    up[1] *= 2.01
    down = v_ref.copy()
    down[2] *= 0.49
    assert drifted(MEMORY, up, v_ref, 2.0) and drifted(MEMORY, down, v_ref, 2.0)
    assert not drifted(MEMORY, up, v_ref, 2.5)


def test_drifted_ignores_rows_of_negligible_weight():
    # floor = 1e-8 · max(v, v_ref) = 1e-8: entries below it count as the floor itself.
    v_ref = np.array([1.0, 0.0, 1.0])
    assert not drifted(
        MEMORY, np.array([1.0, 1e-12, 1.0]), v_ref, 2.0
    )  # both at the floor: ratio 1
    assert not drifted(MEMORY, np.array([1.0, 1.5e-8, 1.0]), v_ref, 2.0)  # 1.5 × the floor
    assert drifted(MEMORY, np.array([1.0, 1e-6, 1.0]), v_ref, 2.0)  # 100 × the floor: it moved


# -- bernstein_size: s = ⌈2 β d (1 + ε/3) ln(2d/δ) / ε²⌉ -------------------------------------------


@pytest.mark.parametrize(
    ("d", "eps", "delta", "beta", "s"),
    [
        # 2·10·(7/6)·ln 200 / 0.25 = 494.51…
        (10, 0.5, 0.1, 1.0, 495),
        # ×12 = 5934.1…
        (10, 0.5, 0.1, 12.0, 5935),
        # 2·64·(1 + 0.1/3)·ln(2560)/0.01 = 103 799.7…
        (64, 0.1, 0.05, 1.0, 103800),
        # ε = 1: 2·1·(4/3)·ln 2 = 1.848…
        (1, 1.0, 1.0, 1.0, 2),
    ],
)
def test_bernstein_size_against_the_formula_by_hand(d, eps, delta, beta, s):
    assert bernstein_size(d, eps, delta, beta) == s


@pytest.mark.parametrize("beta", [1.0, 2.0, 12.0])
@pytest.mark.parametrize(("d", "eps", "delta"), [(8, 0.5, 0.1), (64, 0.25, 0.01), (256, 0.1, 1e-3)])
def test_bernstein_size_is_the_smallest_s_whose_tail_bound_is_at_most_delta(d, eps, delta, beta):
    # The module's bound: P(||H^{-½} H̃ H^{-½} − I|| > ε) ≤ 2d exp(−s ε² / (2 β d (1 + ε/3))).
    def tail(s: int) -> float:
        return 2 * d * math.exp(-s * eps**2 / (2 * beta * d * (1 + eps / 3)))

    s = bernstein_size(d, eps, delta, beta)
    assert tail(s) <= delta * (1 + 1e-12) and tail(s - 1) > delta


# -- jl_map: Ω = R⁻¹ G for RᵀR = (S₁M)ᵀ(S₁M), scale = max |Ω| --------------------------------------


def _sketch_matrix(rows: int, d: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.standard_normal((rows, d)) * rng.uniform(0.1, 10.0, d)  # columns of mixed scale


def test_jl_map_with_k_equal_to_d_is_the_inverse_cholesky_factor():
    SM = _sketch_matrix(40, 8, seed=1)  # d = 8 ≤ 16 columns: G = I, Ω = R⁻¹ exactly
    Omega, scale = jl_map(SM, np.random.default_rng(0))
    C = SM.T @ SM
    assert Omega.shape == (8, 8)
    np.testing.assert_allclose(Omega.T @ C @ Omega, np.eye(8), atol=1e-10)  # R⁻ᵀ RᵀR R⁻¹ = I
    np.testing.assert_allclose(Omega @ Omega.T, np.linalg.inv(C), rtol=1e-8)
    assert scale == float(np.max(np.abs(Omega)))


def test_jl_map_preserves_the_leverage_norms_in_distribution():
    # d = 48 > 16: Ω = R⁻¹ G with G (48, 16) of N(0, 1/16) entries, so for each row m of S₁M
    # ||mᵀΩ||² = ||mᵀR⁻¹||² χ²₁₆/16: mean mᵀC⁻¹m, relative spread √(2/16) = 0.35.
    d, k = 48, 16
    SM = _sketch_matrix(200, d, seed=2)
    exact = np.einsum("ij,ij->i", SM, np.linalg.solve(SM.T @ SM, SM.T).T)  # mᵀC⁻¹m, Σ = d
    assert exact.sum() == pytest.approx(d, rel=1e-10)
    one, scale = jl_map(SM, np.random.default_rng(0))
    assert one.shape == (d, k) and scale == float(np.max(np.abs(one)))
    ratio = np.sum((SM @ one) ** 2, axis=1) / exact
    assert 0.2 < ratio.min() and ratio.max() < 3.0  # χ²₁₆/16 of 200 rows, fixed seed
    # Over 400 fixed seeds the mean of ||mᵀΩ||² is mᵀC⁻¹m to within 4 standard errors
    # (0.35/√400 = 1.8 %), row by row.
    est = np.mean(
        [np.sum((SM @ jl_map(SM, np.random.default_rng(s))[0]) ** 2, axis=1) for s in range(400)],
        axis=0,
    )
    np.testing.assert_allclose(est / exact, 1.0, atol=0.07)
    assert np.mean(est / exact) == pytest.approx(1.0, abs=0.02)


def test_jl_map_of_a_rank_deficient_sketch_is_a_root_of_the_pseudo_inverse():
    SM = _sketch_matrix(40, 7, seed=3)
    SM = np.hstack([SM, SM[:, :1]])  # a duplicated column: rank 7 of d = 8
    Omega, scale = jl_map(SM, np.random.default_rng(0))
    assert np.all(np.isfinite(Omega)) and scale == float(np.max(np.abs(Omega)))
    # k = 8 ≥ rank 7: Ω = W with W Wᵀ = C⁺, so the scores ||mᵀΩ||² are mᵀC⁺m exactly.
    C = SM.T @ SM
    np.testing.assert_allclose(Omega @ Omega.T, np.linalg.pinv(C, rcond=1e-12), atol=1e-8)


# -- block_bounds: [(start, stop), …] covering 0..n ------------------------------------------------


def _check_cover(bounds: list[tuple[int, int]], n: int) -> None:
    """Contiguous, non-empty, in order, from 0 to n: no gap and no overlap."""
    assert bounds[0][0] == 0 and bounds[-1][1] == n
    assert all(start < stop for start, stop in bounds)
    assert all(a[1] == b[0] for a, b in zip(bounds[:-1], bounds[1:]))


@pytest.mark.parametrize("n", [1, 2, 7, 100, 4097])
def test_block_bounds_by_count_are_near_equal_and_cover_the_rows(n):
    for blocks in sorted({1, min(n, 2), min(n, 3), min(n, 7), n}):
        bounds = block_bounds(n, blocks=blocks)
        assert len(bounds) == blocks
        _check_cover(bounds, n)
        sizes = [stop - start for start, stop in bounds]
        assert max(sizes) - min(sizes) <= 1 and sum(sizes) == n


@pytest.mark.parametrize("n", [1, 5, 2048, 4097])
@pytest.mark.parametrize("block_rows", [1, 3, 2048, 10_000])
def test_block_bounds_by_rows_are_full_blocks_then_the_rest(n, block_rows):
    bounds = block_bounds(n, block_rows=block_rows)
    assert len(bounds) == -(-n // block_rows)  # ⌈n / block_rows⌉
    _check_cover(bounds, n)
    sizes = [stop - start for start, stop in bounds]
    assert all(size == block_rows for size in sizes[:-1]) and 1 <= sizes[-1] <= block_rows


def test_block_bounds_hand_made():
    assert block_bounds(10, blocks=3) == [(0, 3), (3, 6), (6, 10)]
    assert block_bounds(10, block_rows=4) == [(0, 4), (4, 8), (8, 10)]
    assert block_bounds(0, block_rows=4) == []


@pytest.mark.parametrize(
    "kw",
    [
        {},  # neither
        {"blocks": 2, "block_rows": 3},  # both
        {"blocks": 0},
        {"blocks": 11},  # more blocks than rows
        {"block_rows": 0},
    ],
)
def test_block_bounds_refuses_bad_arguments(kw):
    with pytest.raises(ValueError):
        block_bounds(10, **kw)
