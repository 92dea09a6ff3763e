r"""The row-matrix protocol: everything the objective, the sketches and the solvers ask of A (n, d).

L depends on x only through ``z = A x`` (appendix C), and every quantity a solver needs is a sum
over row blocks (Lemma C.10; docs/solver.md, "On a cluster, a GPU, a thread pool: engines"). So A
is reached through six operations, and nothing else in the package looks at how A is stored::

    A.matvec(x, out=None)   z = A x                       (n,) for x (d,), (n, k) for x (d, k)
    A.rmatvec(r)            Aᵀ r = Σ_k A_kᵀ r_k           (d,) for r (n,), (d, k) for r (n, k)
    A.blocks()              (start, A_k) for each row block, in order, one block in memory at a time
    A.take_rows(idx)        A[idx] (len(idx), d) for sorted row indices
    A.weighted_gram(v)      Aᵀ diag(v) A = Σ_k A_kᵀ diag(v_k) A_k     (d, d), v (n,) of any sign
    A.array()               all of A as one ndarray (only where ``in_memory``; the SRTT needs it)

and three conveniences with defaults in terms of those: ``zero_image()`` (A 0, no pass),
``image_norm(U)`` = ||A U||_F and ``frobenius()`` = ||A||_F (one pass each). The vector
operations the solvers do outside the loss (``amax_abs``, ``scale_rows``, ``split_positive``,
``ratio_range``, ``zspace``) and the sketches' work on the rows (``countsketch``,
``gaussian_sketch``, ``leverage_scores``, ``sample_gram``: :mod:`theory.sketch`) are methods
too, so that each runs where the vectors and rows live: in memory here, on the blocks for an
engine's rows.

:func:`as_rows` and :func:`split_rows` are the places that look at the type of A: an ndarray (a
``numpy.memmap`` included) becomes :class:`DenseRows`, a :class:`RowMatrix` is kept; row blocks (a
memmap in slices, a sequence of (m_k, d) arrays) become an engine's blocks (:func:`split_rows`; a
``dask.array`` goes to :class:`theory.dask_engine.DaskEngine`). ``A @ x`` and ``A.T @ r`` work on
every RowMatrix, as on an ndarray.

Every operation is a pure function of A and its arguments (no state changes), so one RowMatrix may
be shared between threads. An engine that runs the per-block work where the blocks live (a thread
pool, a GPU, a Dask cluster) is another RowMatrix, :class:`theory.distributed.EngineRows`: its
``A x`` stays on the blocks, and ``rmatvec`` and ``weighted_gram`` move O(d) or O(d²) numbers per
block.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence

import numpy as np

from theory.linalg import (
    approximate_leverage_scores,
    countsketch,
    gaussian_sketch,
    gram_and_product,
    probabilities,
    ratio_range,
    sample_rows,
    weighted_gram,
)
from theory.validation import as_float64

DEFAULT_BLOCK_ROWS = 65536  # rows per block of a memmap split by split_rows: 32 MiB at d = 64


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

    @abstractmethod
    def matvec(self, x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """``A x``: (n,) for x (d,), (n, k) for x (d, k); written into ``out`` when given."""

    @abstractmethod
    def rmatvec(self, r: np.ndarray) -> np.ndarray:
        """``Aᵀ r = Σ_k A_kᵀ r_k``: (d,) for r (n,), (d, k) for r (n, k)."""

    @abstractmethod
    def weighted_gram(self, v: np.ndarray) -> np.ndarray:
        """``Aᵀ diag(v) A = Σ_k A_kᵀ diag(v_k) A_k`` (d, d), v (n,) of any sign."""

    def gram_and_rmatvec(self, v, R) -> tuple[np.ndarray, np.ndarray]:
        """``(Aᵀ diag(v) A, Aᵀ R)``, (d, d) and (d, j): the exact Hessian's two products, in one
        read of A (:func:`~theory.linalg.gram_and_product` on each block; one round on an
        engine)."""
        sums = []
        for start, blk in self.blocks():
            rows = slice(start, start + blk.shape[0])
            sums.append(gram_and_product(blk, v[rows], R[rows]))
        H, G = sums[0]
        for h, g in sums[1:]:
            H, G = H + h, G + g
        return H, G

    def zero_image(self) -> np.ndarray:
        """``A 0 = 0`` (n,), without a pass over A."""
        return np.zeros(self.shape[0])

    def image_norm(self, U: np.ndarray) -> float:
        """``||A U||_F`` for U (d, k): one pass."""
        return float(np.linalg.norm(self.matvec(U)))

    def frobenius(self) -> float:
        """``||A||_F``: one pass."""
        return float(np.sqrt(sum(np.linalg.norm(blk) ** 2 for _, blk in self.blocks())))

    # -- the vector operations the solvers do outside the loss, where the vectors live ----------
    # (here for vectors in memory; an engine's rows override them with rounds on its blocks)

    def amax_abs(self, z) -> float:
        """``max_i |z_i|`` for an (n,) vector z (an image A u, weights v)."""
        return float(np.max(np.abs(z)))

    def scale_rows(self, v, Y):
        """``v[:, None] ∘ Y`` (n, j) for v (n,) and an image Y = A U (n, j)."""
        return v[:, None] * Y

    def zspace(self, cols: int, in_memory):
        """The subspace solver's z-space workspace for images of ``cols`` directions
        (:mod:`theory.subspace`): ``in_memory(n)`` here, the blocks' on an engine."""
        return in_memory(self.shape[0])

    def split_positive(self, v):
        """``(v₊, N)``: ``v₊ = max(v, 0)`` (n,) and ``N = Σ_{v_i < 0} v_i a_i a_iᵀ`` (d, d), None
        when v ≥ 0: Algorithm 1 samples ``Aᵀ diag(v₊) A`` and adds the negative rows exactly."""
        neg = np.flatnonzero(v < 0)
        N = weighted_gram(self.take_rows(neg), v[neg]) if neg.size else None
        return np.maximum(v, 0.0), N

    def columns(self, *vectors):
        """(n, j) vectors side by side, as :meth:`rmatvec` takes them."""
        return np.stack(vectors, axis=1)

    def ratio_range(self, v, ref, floor: float) -> tuple[float, float]:
        """``(max, min)`` of ``max(v, floor) / max(ref, floor)`` (the leverage scores' drift test)."""
        return ratio_range(v, ref, floor)

    # -- the sketches' work on the rows (theory.sketch), where the rows live ----------------------
    # (here for A in memory; an engine's rows override them with per-block kernels)

    def countsketch(self, v, s: int, rng: np.random.Generator) -> np.ndarray:
        """``S diag(√v) A`` (s, d) for a CountSketch S: one pass."""
        return countsketch(self.array(), v, s, rng)

    def gaussian_sketch(self, v, s: int, rng: np.random.Generator) -> np.ndarray:
        """``S diag(√v) A`` (s, d) for a Gaussian S, entries N(0, 1/s): one pass."""
        return gaussian_sketch(self.array(), v, s, rng)

    def leverage_scores(self, v, rng: np.random.Generator):
        """ℓ (n,) with ``v_i ℓ_i ≈ τ_i`` (:func:`theory.linalg.approximate_leverage_scores`): two
        passes."""
        return approximate_leverage_scores(self.array(), v, rng)

    def sample_gram(self, v, ell, s: int, rng: np.random.Generator) -> tuple[np.ndarray, int]:
        """``(Σ_sampled c_i v_i a_i a_iᵀ / (s p_i), distinct rows read)`` (d, d) for s i.i.d. draws
        with ``p ∝ v ∘ ℓ`` (``1/n`` for ``ell`` None): a row-sampled Hessian, O(s d²), no pass."""
        n = self.shape[0]
        p = np.full(n, 1.0 / n) if ell is None else probabilities(v * ell)
        idx, scale = sample_rows(p, s, s, rng)
        return weighted_gram(self.take_rows(idx), v[idx] * scale), idx.size

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


def split_rows(A, block_rows: int = DEFAULT_BLOCK_ROWS) -> list[np.ndarray]:
    """A's row blocks (m_k, d), in order, for an engine to hold where they are: slices of
    ``block_rows`` rows of an ndarray or a ``numpy.memmap`` (views: a memmap is read where a
    kernel uses the block), or the blocks of a sequence of (m_k, d) arrays. Every block is checked
    once (dtype, width, finiteness; the message names its rows). A ``dask.array`` is refused: it
    goes to :class:`theory.dask_engine.DaskEngine`."""
    if block_rows < 1:
        raise ValueError(f"block_rows must be ≥ 1; got {block_rows}.")
    if hasattr(A, "chunks") and hasattr(A, "compute"):
        raise TypeError(
            "A is a dask array: pulling its chunks into this process is what a cluster is "
            "for avoiding. Use theory.dask_engine.DaskEngine.from_dask_array(client, A, b, w) "
            "and theory.distributed.EngineRegression (docs/solver.md, 'On a cluster')."
        )
    if isinstance(A, np.ndarray):
        blocks = [A[i : i + block_rows] for i in range(0, A.shape[0], block_rows)]
    elif isinstance(A, Sequence) and len(A) > 0:
        blocks = list(A)
    else:
        raise ValueError(
            "A must be a 2-D array, a numpy.memmap or a non-empty sequence of (m_k, d) row blocks."
        )
    d, start = np.shape(blocks[0])[-1], 0
    for k, blk in enumerate(blocks):
        m = np.shape(blk)[0]
        blocks[k] = as_float64(f"A[{start}:{start + m}]", blk, ndim=2, shape=(m, d))
        start += m
    return blocks


def as_rows(A) -> RowMatrix:
    """A as a :class:`RowMatrix`: a (validated) ndarray, a ``numpy.memmap`` included and not
    copied, becomes :class:`DenseRows`; a RowMatrix is kept. Row blocks go to an engine
    (:func:`split_rows`, :class:`theory.chunked.ChunkedSoftmaxRegression`)."""
    return A if isinstance(A, RowMatrix) else DenseRows(A)


def _counted(name: str, passes: int = 0):
    """A :class:`CountedRows` method: the inner rows' ``name``, counting ``passes`` passes."""

    def method(self, *args, **kwargs):
        self.passes += passes
        return getattr(self.inner, name)(*args, **kwargs)

    method.__name__ = method.__qualname__ = name
    return method


class CountedRows(RowMatrix):
    """A view of a RowMatrix that counts full passes over its rows in ``passes``: one per
    ``matvec``, ``rmatvec``, ``weighted_gram``, ``gram_and_rmatvec``, ``blocks()`` sweep and sketch
    projection, two per ``leverage_scores``; ``take_rows`` and ``sample_gram`` read only the rows
    drawn and count none. A solver makes one for its own solve (its counter is the solver's, so the
    shared A stays free of state)."""

    def __init__(self, A: RowMatrix):
        self.inner = A
        self.shape = A.shape
        self.in_memory = A.in_memory
        self.passes = 0

    def blocks(self):
        self.passes += 1
        yield from self.inner.blocks()

    matvec = _counted("matvec", 1)
    rmatvec = _counted("rmatvec", 1)
    weighted_gram = _counted("weighted_gram", 1)
    gram_and_rmatvec = _counted("gram_and_rmatvec", 1)
    image_norm = _counted("image_norm", 1)
    frobenius = _counted("frobenius", 1)
    countsketch = _counted("countsketch", 1)
    gaussian_sketch = _counted("gaussian_sketch", 1)
    leverage_scores = _counted("leverage_scores", 2)
    take_rows = _counted("take_rows")
    sample_gram = _counted("sample_gram")
    zero_image = _counted("zero_image")
    array = _counted("array")
    amax_abs = _counted("amax_abs")
    scale_rows = _counted("scale_rows")
    split_positive = _counted("split_positive")
    zspace = _counted("zspace")
    columns = _counted("columns")
    ratio_range = _counted("ratio_range")
