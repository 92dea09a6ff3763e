"""The beyond-memory path in one process: A (n, d) a ``numpy.memmap`` (or any 2-D ndarray) read in
slices of ``block_rows`` rows, or a sequence of (m_k, d) row blocks.

``ChunkedSoftmaxRegression(A, b, w, block_rows)`` is the problem on a one-worker
:class:`~theory.engine.LocalEngine` over those blocks (:func:`theory.rows.split_rows`: views of
the memmap, read where a kernel uses them), so :func:`theory.solve.solve` runs on it unchanged and
there is one memmap path, the engines'. ``LocalEngine.from_arrays(A, b, w, block_rows=,
workers=)`` is the same with a thread pool. Per-block work (Lemma C.10, appendix C)::

    A x     = concat_k (A_k x)                       (n,)   kept with the blocks
    Aᵀ r    = Σ_k A_kᵀ r_k                           (d,)
    Aᵀ D A  = Σ_k A_kᵀ diag(v_k) A_k                 (d, d)   (the exact Hessian, one syrk per block)

Extra memory beyond the O(n) vectors: one block's temporaries, O(d²) per Hessian. The SRTT and
``leverage-exact`` need all of A in one place and are refused, as on every engine; ``B(x)``
(n×n) is not offered.
"""

from __future__ import annotations

import numpy as np

from theory.distributed import EngineRegression
from theory.engine import LocalEngine
from theory.rows import DEFAULT_BLOCK_ROWS, split_rows


class ChunkedSoftmaxRegression(EngineRegression):
    """:class:`~theory.objective.SoftmaxRegression`'s base contract (loss, gradient, hessian,
    hessp) over A in row blocks, b (n,), w (n,) or a scalar (module docstring)."""

    def __init__(self, A, b, w, block_rows: int = DEFAULT_BLOCK_ROWS):
        blocks = split_rows(A, block_rows)
        n = sum(blk.shape[0] for blk in blocks)
        b = np.asarray(b, dtype=np.float64)
        w = np.full(n, float(w)) if np.ndim(w) == 0 else np.asarray(w, dtype=np.float64)
        if b.shape != (n,) or w.shape != (n,):
            raise ValueError(f"b and w must have shape ({n},); got {b.shape} and {w.shape}.")
        if (w < 0).any():
            raise ValueError("w must be non-negative (it weights the regulariser).")
        edges = np.cumsum([0] + [blk.shape[0] for blk in blocks])
        parts = [(blk, b[i:j], w[i:j]) for blk, i, j in zip(blocks, edges[:-1], edges[1:])]
        super().__init__(LocalEngine.from_blocks(parts))
