"""Dense kernels for ``Aᵀ diag(v) A``: the one O(n d²) product every Hessian in this package needs."""

from __future__ import annotations

import numpy as np


def gram(M: np.ndarray) -> np.ndarray:
    """``Mᵀ M`` (d, d) for M (m, d): numpy sends ``M.T @ M`` to BLAS ``syrk`` (half a ``gemm``'s flops)
    and mirrors the triangle, so the result is exactly symmetric.

    (scipy's ``blas.dsyrk`` on ``M.T`` was measured 3× slower than this here; see docs/theory.md.)
    """
    return M.T @ M


def weighted_gram(A: np.ndarray, v: np.ndarray) -> np.ndarray:
    """``Aᵀ diag(v) A = sum_i v_i a_i a_iᵀ`` (d, d) for A (n, d), v (n,) of any sign.

    Rows are scaled by ``sqrt|v_i|`` and fed to :func:`gram`; rows with ``v_i < 0`` (few, in the
    Hessians here) go to a second ``syrk`` that is subtracted, so nothing cancels inside one sum.
    """
    M = A * np.sqrt(np.abs(v))[:, None]  # (n, d)
    neg = v < 0
    if not neg.any():
        return gram(M)
    return gram(M[~neg]) - gram(M[neg])
