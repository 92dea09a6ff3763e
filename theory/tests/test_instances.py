"""Instance families: reproducible from a seed, each in the regime its name claims."""

import numpy as np
import pytest

from theory.instances import FAMILIES, make_instance, theorem_report
from theory.solve import solve


def test_theorem_family_satisfies_every_condition_of_theorem_d1():
    inst = make_instance("theorem", 2048, 8, seed=1)
    report = theorem_report(inst)
    assert all(c.holds for c in report.values()), report


def test_in_the_theorem_regime_w2_is_at_least_99_percent_of_b():
    inst = make_instance("theorem", 512, 4, seed=0)
    p = inst.prob
    B = p.B(inst.x_star)
    rest = B - np.diag(p.w2)
    assert np.linalg.norm(rest, 2) <= 0.01 * p.w2.min()


@pytest.mark.parametrize("family", [f for f in FAMILIES if f != "wide"])
def test_same_seed_same_instance(family):
    a, b = make_instance(family, 256, 4, seed=5), make_instance(family, 256, 4, seed=5)
    assert np.array_equal(a.prob.A, b.prob.A) and np.array_equal(a.prob.b, b.prob.b)


@pytest.mark.parametrize("family", ["quadratic", "sparse", "peaked", "coherent"])
def test_reference_minimiser_is_stationary_to_rounding(family):
    inst = make_instance(family, 2048, 8, seed=0)
    p, x = inst.prob, inst.x_star
    newton_step = np.linalg.solve(p.hessian(x), p.gradient(x))
    assert np.linalg.norm(newton_step) <= 1e-12 * max(1.0, float(np.linalg.norm(x)))


def test_near_quadratic_family_takes_about_one_newton_step():
    assert solve(make_instance("quadratic", 4096, 8).prob, method="newton", tol=1e-8).nit <= 2


@pytest.mark.parametrize("family", ["sparse", "peaked"])
def test_nonlinear_families_need_several_newton_iterations(family):
    assert solve(make_instance(family, 4096, 8).prob, method="newton", tol=1e-8).nit >= 4


def test_coherent_family_concentrates_leverage_on_few_rows():
    A = make_instance("coherent", 4096, 8).prob.A
    Q = np.linalg.qr(A).Q
    tau = np.sum(Q**2, axis=1)
    assert 4096 * tau.max() / 8 > 50  # coherence μ = (n/d) max τ_i; 1 for orthogonal designs


def test_wide_family_needs_d_at_least_1024_and_unknown_names_are_listed():
    with pytest.raises(ValueError, match="d ≥ 1024"):
        make_instance("wide", 4096, 64)
    with pytest.raises(ValueError, match="valid families: theorem, quadratic"):
        make_instance("banded", 64, 4)
