"""Dense kernels for ``Aᵀ diag(v) A``: the one O(n d²) product every Hessian in this package needs."""

from __future__ import annotations

import numpy as np
from scipy.linalg import blas


def gram(M: np.ndarray) -> np.ndarray:
    """``Mᵀ M`` (d, d) for M (m, d) by one BLAS ``syrk`` (half the flops of a ``gemm``).

    ``M.T`` of a C-ordered M is Fortran-ordered, so ``dsyrk`` reads it without a copy. syrk fills the
    upper triangle; the lower one is mirrored in O(d²).
    """
    if M.shape[0] == 0:
        return np.zeros((M.shape[1], M.shape[1]))
    upper = blas.dsyrk(1.0, np.asarray(M, dtype=np.float64).T, trans=0, lower=0)
    return np.triu(upper) + np.triu(upper, 1).T


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
