"""Input checks shared by the theory package: every message names the argument and the fix."""

from __future__ import annotations

import warnings

import numpy as np


class PrecisionWarning(UserWarning):
    """An input was cast to float64 (integers, float16 or float32): the theory works in float64."""


def as_float64(name: str, value, ndim: int, shape: tuple[int, ...] | None = None) -> np.ndarray:
    """Return ``value`` as a finite float64 array with ``ndim`` dimensions (and ``shape`` if given).

    Integer, float16 and float32 input is cast to float64 with a :class:`PrecisionWarning`;
    bool, complex, object and string input raises. A float64 ``numpy.memmap`` is kept as it is
    (no copy). Raises ``ValueError`` naming ``name`` and the fix.
    """
    arr = np.asarray(value)
    kind = arr.dtype.kind
    if kind in "iu" or (kind == "f" and arr.dtype != np.float64):
        warnings.warn(
            f"{name} has dtype {arr.dtype}; casting to float64 (the theory works in float64). "
            f"Pass a float64 array to silence this warning.",
            PrecisionWarning,
            stacklevel=3,
        )
        arr = arr.astype(np.float64)
    elif kind != "f":
        raise ValueError(
            f"{name} must be a real floating-point array; got dtype {arr.dtype}. "
            f"Convert it with np.asarray({name}, dtype=np.float64)."
        )
    if arr.ndim != ndim:
        want = {0: "a scalar", 1: "1-D", 2: "2-D"}[ndim]
        raise ValueError(f"{name} must be {want}; got an array of shape {arr.shape}.")
    if arr.size == 0:
        raise ValueError(f"{name} is empty (shape {arr.shape}); it needs at least one entry.")
    if shape is not None and arr.shape != shape:
        raise ValueError(f"{name} must have shape {shape}; got {arr.shape}.")
    _check_finite(name, arr)
    return arr


def _check_finite(name: str, arr: np.ndarray, block_entries: int = 1 << 22) -> None:
    """Raise if ``arr`` has NaN or inf; scans row blocks of ≤ 4M entries, so that a large
    ``numpy.memmap`` is streamed with bounded extra memory."""
    rows = max(1, block_entries // max(1, arr[0].size)) if arr.ndim > 1 else arr.shape[0]
    bad, first = 0, None
    for start in range(0, arr.shape[0], rows):
        finite = np.isfinite(arr[start : start + rows])
        if not finite.all():
            bad += int((~finite).sum())
            if first is None:
                hit = np.argwhere(~finite)[0]
                first = (int(hit[0]) + start, *(int(i) for i in hit[1:]))
    if bad:
        raise ValueError(
            f"{name} has {bad} non-finite entries (NaN or inf), the first at index {first}; "
            f"replace them before building the problem."
        )


def check_size(n, d) -> None:
    """The one size rule of the package: integers n ≥ 1 rows and d ≥ 1 columns. n < d is allowed:
    A then has rank < d, L is flat along null(A), and every solver keeps x in A's row space (its
    minimum-norm minimiser; a ``RankWarning`` names the rank where it matters)."""
    ok = all(isinstance(v, int | np.integer) and not isinstance(v, bool) for v in (n, d))
    if not (ok and n >= 1 and d >= 1):
        raise ValueError(f"A needs n ≥ 1 rows and d ≥ 1 columns (integers); got n={n}, d={d}.")
