"""Checks behind docs/paper-notes.md that live nowhere else."""

import numpy as np

from theory import SoftmaxRegression


def test_algorithm1_line8_as_printed_ascends():
    """Line 8 prints x_{t+1} = x_t + H̃⁻¹ g: with the exact Hessian that step raises L, x_t − H⁻¹ g lowers it."""
    rng = np.random.default_rng(0)
    A, b = rng.standard_normal((200, 5)), rng.dirichlet(np.ones(200))
    prob = SoftmaxRegression(A, b, 0.3)
    x = rng.standard_normal(5) * 0.5
    step = np.linalg.solve(prob.hessian(x), prob.gradient(x))
    assert prob.loss(x + step) > prob.loss(x) > prob.loss(x - step)
