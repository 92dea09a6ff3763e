r"""The row-matrix protocol: everything the objective, the sketches and the solvers ask of A (n, d).

L depends on x only through ``z = A x`` (appendix C), and every quantity a solver needs is a sum
over row blocks (DESIGN §2, "Scale"). So A is reached through six operations, and nothing else in
the package looks at how A is stored::

    A.matvec(x, out=None)   z = A x                       (n,) for x (d,), (n, k) for x (d, k)
    A.rmatvec(r)            Aᵀ r = Σ_k A_kᵀ r_k           (d,) for r (n,), (d, k) for r (n, k)
    A.blocks()              (start, A_k) for each row block, in order, one block in memory at a time
    A.take_rows(idx)        A[idx] (len(idx), d) for sorted row indices
    A.weighted_gram(v)      Aᵀ diag(v) A = Σ_k A_kᵀ diag(v_k) A_k     (d, d), v (n,) of any sign
    A.array()               all of A as one ndarray (only where ``in_memory``; the SRTT needs it)

and three conveniences with defaults in terms of those: ``zero_image()`` (A 0, no pass),
``image_norm(U)`` = ||A U||_F and ``frobenius()`` = ||A||_F (one pass each).

:func:`as_rows` is the one place that looks at the type of A: an ndarray (a ``numpy.memmap``
included) becomes :class:`DenseRows`; a sequence of (m_k, d) row blocks becomes
:class:`BlockRows` (a ``dask.array`` goes to :class:`theory.dask_engine.DaskEngine` instead); a :class:`RowMatrix` is kept. ``A @ x`` and
``A.T @ r`` work on every RowMatrix, as on an ndarray.

Every operation is a pure function of A and its arguments (no state changes), so one RowMatrix may
be shared between threads. An engine that runs the per-block work where the blocks live (a thread pool, a GPU, a Dask
cluster) is another RowMatrix, :class:`theory.distributed.EngineRows`: its ``A x`` stays on the
blocks, and ``rmatvec`` and ``weighted_gram`` move O(d) or O(d²) numbers per block.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence

import numpy as np

from theory.linalg import weighted_gram
from theory.validation import as_float64

DEFAULT_BLOCK_ROWS = (
    65536  # rows per block of a memmap or array given as BlockRows: 32 MiB at d = 64.
)


class RowMatrix(ABC):
    """A (n, d) float64 matrix reached through the operations of the module docstring."""

    ndim = 2
    dtype = np.dtype(np.float64)
    in_memory = False  # whether :meth:`array` is offered

    shape: tuple[int, int]

    @abstractmethod
    def blocks(self) -> Iterator[tuple[int, np.ndarray]]:
        """``(start, A[start:start + m])`` for each row block, in order."""

    @abstractmethod
    def take_rows(self, idx: np.ndarray) -> np.ndarray:
        """``A[idx]`` (len(idx), d) for sorted row indices ``idx``."""

    def matvec(self, x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """``A x``: (n,) for x (d,), (n, k) for x (d, k); written into ``out`` when given."""
        z = np.concatenate([blk @ x for _, blk in self.blocks()])
        if out is None:
            return z
        out[...] = z
        return out

    def rmatvec(self, r: np.ndarray) -> np.ndarray:
        """``Aᵀ r = Σ_k A_kᵀ r_k``: (d,) for r (n,), (d, k) for r (n, k)."""
        out = np.zeros((self.shape[1], *r.shape[1:]))
        for start, blk in self.blocks():
            out += blk.T @ r[start : start + blk.shape[0]]
        return out

    def weighted_gram(self, v: np.ndarray) -> np.ndarray:
        """``Aᵀ diag(v) A = Σ_k A_kᵀ diag(v_k) A_k`` (d, d), one syrk per block."""
        H = np.zeros((self.shape[1], self.shape[1]))
        for start, blk in self.blocks():
            H += weighted_gram(blk, v[start : start + blk.shape[0]])
        return H

    def zero_image(self) -> np.ndarray:
        """``A 0 = 0`` (n,), without a pass over A."""
        return np.zeros(self.shape[0])

    def image_norm(self, U: np.ndarray) -> float:
        """``||A U||_F`` for U (d, k): one pass."""
        return float(np.linalg.norm(self.matvec(U)))

    def frobenius(self) -> float:
        """``||A||_F``: one pass."""
        return float(np.sqrt(sum(np.linalg.norm(blk) ** 2 for _, blk in self.blocks())))

    def array(self) -> np.ndarray:
        """All of A (n, d) in memory."""
        raise ValueError(f"{type(self).__name__} does not hold A in memory; use its blocks().")

    def __matmul__(self, x: np.ndarray) -> np.ndarray:
        return self.matvec(x)

    @property
    def T(self) -> _Transposed:
        return _Transposed(self)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(shape={self.shape})"


class _Transposed:
    """``Aᵀ`` of a RowMatrix, so that ``A.T @ r`` reads as it does for an ndarray."""

    def __init__(self, A: RowMatrix):
        self.A = A

    def __matmul__(self, r: np.ndarray) -> np.ndarray:
        return self.A.rmatvec(r)


class DenseRows(RowMatrix):
    """A (n, d) held as one ndarray (a ``numpy.memmap`` is not copied): one block, BLAS products."""

    in_memory = True

    def __init__(self, A: np.ndarray):
        self.A = A
        self.shape = A.shape

    def blocks(self):
        yield 0, self.A

    def take_rows(self, idx):
        return self.A[idx]

    def matvec(self, x, out=None):
        return self.A @ x if out is None else np.matmul(self.A, x, out=out)

    def rmatvec(self, r):
        return self.A.T @ r

    def weighted_gram(self, v):
        return weighted_gram(self.A, v)

    def array(self):
        return self.A


class BlockRows(RowMatrix):
    """A (n, d) as row blocks: a sequence of (m_k, d) arrays, or row slices of ``block_rows`` rows
    of an array or a ``numpy.memmap``, read in this process one at a time. Every block is checked once, at construction (dtype, width,
    finiteness). Extra memory: one block in flight."""

    def __init__(self, source, block_rows: int = DEFAULT_BLOCK_ROWS):
        if block_rows < 1:
            raise ValueError(f"block_rows must be ≥ 1; got {block_rows}.")
        self.source = source
        if hasattr(source, "chunks") and hasattr(source, "compute"):
            raise TypeError(
                "A is a dask array: pulling its chunks into this process is what a cluster is "
                "for avoiding. Use theory.dask_engine.DaskEngine.from_dask_array(client, A, b, w) "
                "and theory.distributed.EngineRegression (docs/solver.md, 'On a cluster')."
            )
        self._sliced = isinstance(source, np.ndarray)
        if self._sliced:
            n, d = source.shape
            ends = list(range(block_rows, n, block_rows)) + [n]
        elif isinstance(source, Sequence) and len(source) > 0:
            ends = np.cumsum([blk.shape[0] for blk in source]).tolist()
            n, d = ends[-1], source[0].shape[1]
        else:
            raise ValueError(
                "A must be a 2-D array, a numpy.memmap or a non-empty sequence of (m_k, d) "
                "row blocks."
            )
        self._bounds = list(zip([0, *ends[:-1]], ends, strict=True))
        self.shape = (n, d)
        for start, blk in self.blocks():
            as_float64(f"A[{start}:{start + blk.shape[0]}]", blk, ndim=2, shape=(blk.shape[0], d))

    def _block(self, k: int) -> np.ndarray:
        start, stop = self._bounds[k]
        blk = self.source[start:stop] if self._sliced else self.source[k]
        return np.asarray(blk, dtype=np.float64)

    def blocks(self):
        for k, (start, _) in enumerate(self._bounds):
            yield start, self._block(k)

    def take_rows(self, idx):
        """``A[idx]``, reading only the blocks that hold the rows."""
        out = np.empty((idx.size, self.shape[1]))
        starts = np.array([b[0] for b in self._bounds])
        which = np.searchsorted(starts, idx, side="right") - 1
        for k in np.unique(which):
            sel = which == k
            out[sel] = self._block(int(k))[idx[sel] - starts[k]]
        return out


def as_rows(A, block_rows: int | None = None) -> RowMatrix:
    """A as a :class:`RowMatrix` (see the module docstring); ``block_rows`` asks for
    :class:`BlockRows` even for an ndarray."""
    if isinstance(A, RowMatrix):
        return A
    if isinstance(A, np.ndarray) and block_rows is None:
        return DenseRows(A)
    return BlockRows(A, DEFAULT_BLOCK_ROWS if block_rows is None else block_rows)


class CountedRows(RowMatrix):
    """A view of a RowMatrix that counts full passes over its rows in ``passes``: one per
    ``matvec``, ``rmatvec``, ``weighted_gram`` and ``blocks()`` sweep; ``take_rows`` reads only
    the rows asked for and counts none. A solver makes one for its own solve (its counter is the
    solver's, so the shared A stays free of state)."""

    def __init__(self, A: RowMatrix):
        self.inner = A
        self.shape = A.shape
        self.in_memory = A.in_memory
        self.passes = 0

    def blocks(self):
        self.passes += 1
        yield from self.inner.blocks()

    def take_rows(self, idx):
        return self.inner.take_rows(idx)

    def matvec(self, x, out=None):
        self.passes += 1
        return self.inner.matvec(x, out)

    def rmatvec(self, r):
        self.passes += 1
        return self.inner.rmatvec(r)

    def weighted_gram(self, v):
        self.passes += 1
        return self.inner.weighted_gram(v)

    def zero_image(self):
        return self.inner.zero_image()

    def image_norm(self, U):
        self.passes += 1
        return self.inner.image_norm(U)

    def frobenius(self):
        self.passes += 1
        return self.inner.frobenius()

    def array(self):
        return self.inner.array()
