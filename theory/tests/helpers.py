"""Hypothesis strategies and numerical helpers shared by the theory tests."""

import numpy as np
import pytest
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays


@st.composite
def instances(draw, max_n=8, max_d=4, z_max=30.0, b_kind=None):
    """(A, b, w, x) with 1 ≤ n ≤ max_n, 1 ≤ d ≤ max_d and |A x| ≤ z_max, the arrays drawn entry by
    entry (so a failure shrinks to a small, simple matrix).

    ``b_kind``: "simplex" (b ≥ 0, sum 1), "sparse" (one-hot), "zero", "signed" (any sign), or
    None to draw one of them.
    """
    n = draw(st.integers(1, max_n), label="n")
    d = draw(st.integers(1, max_d), label="d")
    A = draw(arrays(np.float64, (n, d), elements=_floats(-3.0, 3.0)), label="A")
    x = draw(arrays(np.float64, d, elements=_floats(-5.0, 5.0)), label="x")
    z = A @ x
    if np.max(np.abs(z)) > z_max:
        x *= z_max / np.max(np.abs(z))
    kind = b_kind or draw(st.sampled_from(["simplex", "sparse", "zero", "signed"]), label="b")
    if kind == "simplex":
        b = draw(arrays(np.float64, n, elements=_floats(0.0, 1.0)), label="b")
        b = b / b.sum() if b.sum() > 0 else np.full(n, 1.0 / n)
    elif kind == "sparse":
        b = np.eye(n)[draw(st.integers(0, n - 1), label="b index")]
    elif kind == "zero":
        b = np.zeros(n)
    else:
        b = draw(arrays(np.float64, n, elements=_floats(-3.0, 3.0)), label="b")
    w = draw(arrays(np.float64, n, elements=_floats(0.0, 3.0)), label="w")
    return A, b, w, x


def _floats(lo: float, hi: float):
    """Bounded finite float64 entries (no subnormals: they only test the hardware)."""
    return st.floats(lo, hi, allow_nan=False, allow_infinity=False, allow_subnormal=False)


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
