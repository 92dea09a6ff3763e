"""The beyond-memory path: A (n, d) read one block of rows at a time.

``ChunkedSoftmaxRegression(A, b, w, block_rows)`` is :class:`~theory.objective.SoftmaxRegression`
over a :class:`~theory.rows.BlockRows` view of A — a ``numpy.memmap`` (or any 2-D ndarray) in
slices of ``block_rows`` rows or a sequence of (m_k, d) row blocks, read in this process one block
at a time — so :func:`theory.solve.solve` runs on it unchanged. For A on a cluster, a GPU or a
thread pool, use an engine (:mod:`theory.engine`, :class:`theory.distributed.EngineRegression`),
which keeps the blocks and the O(n) vectors where they live. ``ChunkedMatrix`` is that view (the name of issue 3).

Extra memory, beyond the O(n) vectors z, f, q, v of the loss: O(block·d) for one block in flight,
O(s·d) for sampled rows, O(d²) for Hessians. Per-block work (Lemma C.10, appendix C)::

    A x     = concat_k (A_k x)                       (n,)
    Aᵀ r    = Σ_k A_kᵀ r_k                           (d,)
    Aᵀ D A  = Σ_k A_kᵀ diag(v_k) A_k                 (d, d)   (the exact Hessian, one syrk per block)

Leverage scores, CountSketch and Gaussian sketches and row sampling stream over the blocks
(:mod:`theory.sketch`); the SRTT mixes all rows and needs A in memory.
"""

from __future__ import annotations

from theory.objective import SoftmaxRegression
from theory.rows import DEFAULT_BLOCK_ROWS, BlockRows, as_rows

ChunkedMatrix = BlockRows


class ChunkedSoftmaxRegression(SoftmaxRegression):
    """:class:`SoftmaxRegression` with A read in row blocks (see the module docstring); ``B``
    (n×n) is not offered."""

    def __init__(self, A, b, w, block_rows: int = DEFAULT_BLOCK_ROWS):
        self._init(as_rows(A, block_rows), b, w)

    def B(self, x):
        raise ValueError("B(x) is n×n; a chunked problem never builds it. Use hessian_parts(x).")
