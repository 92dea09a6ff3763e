"""Hypothesis strategies and numerical helpers shared by the theory tests."""

import numpy as np
import pytest
from hypothesis import strategies as st


@st.composite
def instances(draw, max_n=8, max_d=4, z_max=30.0, b_kind=None):
    """(A, b, w, x) with 1 ≤ n ≤ max_n, 1 ≤ d ≤ max_d and |A x| ≤ z_max, drawn from a seed.

    ``b_kind``: "simplex" (b ≥ 0, sum 1), "sparse" (one-hot), "zero", "signed" (any sign), or
    None to draw one of them.
    """
    n = draw(st.integers(1, max_n), label="n")
    d = draw(st.integers(1, max_d), label="d")
    seed = draw(st.integers(0, 2**32 - 1), label="seed")
    scale = draw(st.sampled_from([0.1, 1.0, 5.0]), label="scale")
    kind = b_kind or draw(st.sampled_from(["simplex", "sparse", "zero", "signed"]), label="b")
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((n, d))
    x = rng.standard_normal(d) * scale
    z = A @ x
    if np.max(np.abs(z)) > z_max:
        x *= z_max / np.max(np.abs(z))
    b = {
        "simplex": lambda: rng.dirichlet(np.ones(n)),
        "sparse": lambda: np.eye(n)[rng.integers(n)],
        "zero": lambda: np.zeros(n),
        "signed": lambda: rng.standard_normal(n),
    }[kind]()
    w = rng.random(n) * draw(st.sampled_from([0.0, 0.1, 1.0, 3.0]), label="w scale")
    return A, b, w, x


def rel_err(a, b) -> float:
    """max |a − b| / max(1, max |b|): relative to the reference's scale, absolute near zero."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return float(np.max(np.abs(a - b)) / max(1.0, float(np.max(np.abs(b)))))


def five_point(fun, x, h=1e-3):
    """Five-point central difference of ``fun`` (scalar- or vector-valued) at x: O(h⁴) error.

    Returns (d,) for a scalar fun, (m, d) for a vector fun (column j = d fun / d x_j).
    """
    cols = []
    for j in range(x.size):
        e = np.zeros_like(x)
        e[j] = h
        cols.append(
            (
                -np.asarray(fun(x + 2 * e))
                + 8 * np.asarray(fun(x + e))
                - 8 * np.asarray(fun(x - e))
                + np.asarray(fun(x - 2 * e))
            )
            / (12 * h)
        )
    return np.stack(cols, axis=-1)


def autodiff():
    """:mod:`theory.autodiff` (torch.func), or a skip naming the reason when torch is missing."""
    return pytest.importorskip("theory.autodiff", reason="the autograd reference needs torch")
