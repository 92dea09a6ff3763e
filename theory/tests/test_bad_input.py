"""Bad input stops before any work with a message naming the argument and the fix."""

import numpy as np
import pytest

from theory import PrecisionWarning, SoftmaxRegression

A = np.ones((4, 2))
b = np.full(4, 0.25)


@pytest.mark.parametrize(
    ("args", "match"),
    [
        ((np.ones(4), b, 1.0), r"A must be 2-D; got an array of shape \(4,\)"),
        ((A, np.ones(3), 1.0), r"b must have shape \(4,\); got \(3,\)"),
        ((A, b, np.ones(5)), r"w must have shape \(4,\); got \(5,\)"),
        ((np.ones((0, 2)), np.ones(0), 1.0), r"A is empty \(shape \(0, 2\)\)"),
        ((np.ones((4, 0)), b, 1.0), r"A is empty"),
        (
            (np.where(np.eye(4, 2) > 0, np.nan, 1.0), b, 1.0),
            r"A has 2 non-finite entries .* index \(0, 0\)",
        ),
        ((A, np.array([0.25, np.inf, 0, 0]), 1.0), r"b has 1 non-finite entries .* index \(1,\)"),
        (
            (A, b, np.array([1.0, -2.0, 1.0, 1.0])),
            r"w must be non-negative .* w\[1\] = -2.0.*np\.abs\(w\)",
        ),
        (
            (A.astype(complex), b, 1.0),
            r"A must be a real floating-point array; got dtype complex128",
        ),
        ((A, b.astype(object), 1.0), r"b must be a real floating-point array; got dtype object"),
        ((A > 0, b, 1.0), r"A must be a real floating-point array; got dtype bool"),
    ],
)
def test_bad_problem_input_raises_a_message_naming_the_argument(args, match):
    with pytest.raises(ValueError, match=match):
        SoftmaxRegression(*args)


@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.float32, np.float16])
def test_integer_and_low_precision_input_is_cast_with_a_warning(dtype):
    with pytest.warns(PrecisionWarning, match=f"A has dtype {np.dtype(dtype)}; casting to float64"):
        prob = SoftmaxRegression(A.astype(dtype), b, 1.0)
    assert prob.A.dtype == np.float64


def test_scalar_w_is_broadcast():
    assert np.array_equal(SoftmaxRegression(A, b, 2.0).w, np.full(4, 2.0))


@pytest.mark.parametrize(
    ("x", "match"),
    [
        (np.ones(3), r"x must have shape \(2,\); got \(3,\)"),
        (np.ones((2, 1)), r"x must be 1-D"),
        (np.array([np.nan, 0.0]), r"x has 1 non-finite entries"),
    ],
)
def test_bad_x_raises_before_any_work(x, match):
    prob = SoftmaxRegression(A, b, 1.0)
    for method in (prob.loss, prob.gradient, prob.hessian):
        with pytest.raises(ValueError, match=match):
            method(x)


def test_bad_direction_in_hessp_is_named_v():
    with pytest.raises(ValueError, match=r"v must have shape \(2,\)"):
        SoftmaxRegression(A, b, 1.0).hessp(np.zeros(2), np.ones(5))


def test_dense_B_refuses_large_n_and_names_the_alternatives():
    big = SoftmaxRegression(np.ones((5000, 1)), np.zeros(5000), 1.0)
    with pytest.raises(ValueError, match=r"hessian\(x\), hessp\(x, v\)"):
        big.B(np.zeros(1))


def test_non_finite_entries_are_found_across_row_blocks(tmp_path):
    """A memmap is scanned in row blocks; the count and the first index span blocks correctly."""
    A = np.lib.format.open_memmap(
        tmp_path / "A.npy", mode="w+", dtype=np.float64, shape=(3000, 2000)
    )
    A[:] = 1.0
    A[2500, 7], A[2999, 0] = np.nan, np.inf
    with pytest.raises(ValueError, match=r"A has 2 non-finite entries .* index \(2500, 7\)"):
        SoftmaxRegression(A, np.zeros(3000), 1.0)
