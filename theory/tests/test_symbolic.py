"""sympy derivations from the definitions alone against the closed forms."""

import numpy as np
import pytest

pytest.importorskip("sympy", reason="the symbolic reference needs sympy")

from theory import SoftmaxRegression, symbolic  # noqa: E402
from theory.tests.helpers import rel_err


@pytest.mark.parametrize("n", [1, 2, 3])
def test_lemmas_C10_C11_C14_hold_exactly_in_z(n):
    assert symbolic.z_space_identities(n) == {
        "grad_exp": True,
        "grad_cent": True,
        "B_exp": True,
        "B_cent": True,
    }


@pytest.mark.parametrize(("n", "d", "seed"), [(3, 2, 0), (3, 2, 1), (1, 1, 2), (2, 1, 3)])
def test_closed_forms_match_sympy_at_random_rational_points(n, d, seed):
    rng = np.random.default_rng(seed)
    A, b, w, x = (
        rng.standard_normal((n, d)),
        rng.standard_normal(n),
        rng.random(n),
        rng.standard_normal(d),
    )
    ref = symbolic.derivatives_at(A, b, w, x, dps=40)
    prob = SoftmaxRegression(A, b, w)
    parts = prob.loss_parts(x)
    for name in ("exp", "cent", "reg"):
        exact = float(ref[name]["loss"])
        assert abs(parts[name] - exact) <= 1e-13 * max(1.0, abs(exact))
    assert rel_err(prob.gradient(x), sum(r["grad"] for r in ref.values())) < 1e-12
    assert rel_err(prob.hessian(x), sum(r["hess"] for r in ref.values())) < 1e-12
