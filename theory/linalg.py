"""Dense kernels for ``Aᵀ diag(v) A``: the one O(n d²) product every Hessian in this package needs."""

from __future__ import annotations

import numpy as np


def gram(M: np.ndarray) -> np.ndarray:
    """``Mᵀ M`` (d, d) for M (m, d): numpy sends ``M.T @ M`` to BLAS ``syrk`` (half a ``gemm``'s flops)
    and mirrors the triangle, so the result is exactly symmetric.

    (scipy's ``blas.dsyrk`` on ``M.T`` was measured 3× slower than this here; see docs/theory.md.)
    """
    return M.T @ M


BLOCK_ROWS = 4096  # rows scaled and fed to syrk at a time: the block stays in cache.
BLOCK_MAX_D = 512  # wider A: one syrk over all rows was as fast (65536×1024, one thread).


def weighted_gram(A: np.ndarray, v: np.ndarray) -> np.ndarray:
    """``Aᵀ diag(v) A = sum_i v_i a_i a_iᵀ`` (d, d) for A (n, d), v (n,) of any sign.

    Rows are scaled by ``sqrt|v_i|`` and fed to :func:`gram`; rows with ``v_i < 0`` (few, in the
    Hessians here) go to a second ``syrk`` that is subtracted, so nothing cancels inside one sum.
    For d ≤ 512 this runs over blocks of 4096 rows, never copying all of A: 1.7× faster at
    n = 1048576, d = 64 and 1.2× at 131072 × 256 (one thread; ``python -m benchmarks.derivatives``).
    """
    n, d = A.shape
    if d > BLOCK_MAX_D or n <= 2 * BLOCK_ROWS:
        return _weighted_gram(A, v)
    H = np.zeros((d, d))
    for i in range(0, n, BLOCK_ROWS):
        H += _weighted_gram(A[i : i + BLOCK_ROWS], v[i : i + BLOCK_ROWS])
    return H


def _weighted_gram(A: np.ndarray, v: np.ndarray) -> np.ndarray:
    M = A * np.sqrt(np.abs(v))[:, None]  # (m, d)
    neg = v < 0
    if not neg.any():
        return gram(M)
    return gram(M[~neg]) - gram(M[neg])
