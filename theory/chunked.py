"""The beyond-memory path: A (n, d) read one block of rows at a time.

``ChunkedMatrix(source, block_rows)`` wraps a ``numpy.memmap`` (or any 2-D ndarray), a sequence of
(m_k, d) row blocks, or a ``dask.array`` (its row chunks, computed one at a time with whatever
scheduler is active). It offers exactly what the solvers use: ``A @ x``, ``A.T @ r``, ``blocks()``
and ``take_rows(idx)``. ``ChunkedSoftmaxRegression`` is :class:`~theory.objective.SoftmaxRegression`
over such an A, so :func:`theory.solve.solve` runs on it unchanged.

Extra memory, beyond the O(n) vectors z, f, q, v of the objective: O(block·d) for one block in
flight, O(s·d) for sampled rows, O(d²) for Hessians. Per-block work (Lemma C.10, appendix C)::

    A x     = concat_k (A_k x)                       (n,)
    Aᵀ r    = Σ_k A_kᵀ r_k                           (d,)
    Aᵀ D A  = Σ_k A_kᵀ diag(v_k) A_k                 (d, d)   (the exact Hessian, one syrk per block)

Leverage scores, CountSketch and Gaussian sketches and row sampling stream over ``blocks()``
(:mod:`theory.sketch`); the SRTT mixes all rows and needs A in memory.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

from theory.linalg import weighted_gram
from theory.objective import SoftmaxRegression
from theory.validation import as_float64

DEFAULT_BLOCK_ROWS = 65536  # 65536 × d float64: 32 MiB at d = 64.


class ChunkedMatrix:
    """A (n, d) float64 matrix stored as row blocks; see the module docstring."""

    ndim = 2
    dtype = np.dtype(np.float64)

    def __init__(self, source, block_rows: int = DEFAULT_BLOCK_ROWS):
        if block_rows < 1:
            raise ValueError(f"block_rows must be ≥ 1; got {block_rows}.")
        self.source = source
        if isinstance(source, np.ndarray) or hasattr(source, "chunks"):
            n = source.shape[0]
            self._bounds = [(i, min(i + block_rows, n)) for i in range(0, n, block_rows)]
            if hasattr(source, "chunks") and not isinstance(source, np.ndarray):  # dask
                ends = np.cumsum(source.chunks[0])
                self._bounds = list(zip(np.r_[0, ends[:-1]].tolist(), ends.tolist(), strict=True))
            d = source.shape[1]
        elif isinstance(source, Sequence) and len(source) > 0:
            sizes = [blk.shape[0] for blk in source]
            ends = np.cumsum(sizes).tolist()
            self._bounds = list(zip([0, *ends[:-1]], ends, strict=True))
            n, d = ends[-1], source[0].shape[1]
        else:
            raise ValueError(
                "A must be a 2-D array, a numpy.memmap, a dask array or a non-empty "
                "sequence of (m_k, d) row blocks."
            )
        self.shape = (n, d)
        for start, blk in self.blocks():  # one pass: dtype, shape and finiteness of every block
            as_float64(f"A[{start}:{start + blk.shape[0]}]", blk, ndim=2, shape=(blk.shape[0], d))

    def _block(self, k: int) -> np.ndarray:
        start, stop = self._bounds[k]
        if isinstance(self.source, np.ndarray) or hasattr(self.source, "chunks"):
            return np.asarray(self.source[start:stop], dtype=np.float64)
        return np.asarray(self.source[k], dtype=np.float64)

    def blocks(self) -> Iterator[tuple[int, np.ndarray]]:
        """``(start, A[start:start + m])`` for each block, in order; one block in memory at a time."""
        for k, (start, _) in enumerate(self._bounds):
            yield start, self._block(k)

    def take_rows(self, idx: np.ndarray) -> np.ndarray:
        """``A[idx]`` (len(idx), d) for sorted idx, reading only the blocks that hold them."""
        out = np.empty((idx.size, self.shape[1]))
        starts = np.array([b[0] for b in self._bounds])
        which = np.searchsorted(starts, idx, side="right") - 1
        for k in np.unique(which):
            sel = which == k
            out[sel] = self._block(int(k))[idx[sel] - starts[k]]
        return out

    def __matmul__(self, x: np.ndarray) -> np.ndarray:
        """``A x``: (n,) for x (d,), (n, k) for x (d, k)."""
        return np.concatenate([blk @ x for _, blk in self.blocks()])

    @property
    def T(self) -> _Transposed:
        return _Transposed(self)


class _Transposed:
    """``Aᵀ`` of a ChunkedMatrix, for ``A.T @ r`` = Σ_k A_kᵀ r_k (r of shape (n,) or (n, k))."""

    def __init__(self, A: ChunkedMatrix):
        self.A = A

    def __matmul__(self, r: np.ndarray) -> np.ndarray:
        out = np.zeros((self.A.shape[1], *r.shape[1:]))
        for start, blk in self.A.blocks():
            out += blk.T @ r[start : start + blk.shape[0]]
        return out


class ChunkedSoftmaxRegression(SoftmaxRegression):
    """:class:`SoftmaxRegression` with A a :class:`ChunkedMatrix` (built from ``A`` if need be).

    ``loss``, ``gradient``, ``hessp`` and ``hessian_parts`` are inherited (they only use ``A @``
    and ``A.T @``); ``hessian`` sums one weighted syrk per block; ``B`` (n×n) is not offered.
    """

    def __init__(self, A, b, w, block_rows: int = DEFAULT_BLOCK_ROWS):
        self.A = A if isinstance(A, ChunkedMatrix) else ChunkedMatrix(A, block_rows)
        self._set_targets(b, w)

    def hessian_at(self, p) -> np.ndarray:
        """``∇²L(x) = Σ_k A_kᵀ diag(v_k) A_k + low rank`` (d, d), one block at a time."""
        parts = self.hessian_parts_at(p)
        H = np.zeros((self.d, self.d))
        for start, blk in self.A.blocks():
            H += weighted_gram(blk, parts.diag[start : start + blk.shape[0]])
        return H + parts.low_rank(self.A)

    def B(self, x):
        raise ValueError("B(x) is n×n; a chunked problem never builds it. Use hessian_parts(x).")
