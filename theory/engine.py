r"""Engines: A in row blocks where it lives, the solver's O(n) vectors beside it, only sums moving.

An engine holds a list of :class:`~theory.blocks.Block` and runs one kernel on every block per
*round* (:meth:`Engine.map`); the driver (the solver) holds O(d²) state and merges the per-block
results. A vector of length n exists only as its blocks' pieces, named by a
:class:`BlockVector` handle on the driver. So one round moves O(d) or O(d²) numbers per block,
never O(n): the pattern of dask-glm and of Spark MLlib's tree aggregation. Three places to run:

* :class:`LocalEngine` — numpy blocks in this process, a thread pool of ``workers`` threads
  (numpy releases the GIL in BLAS and ufuncs); the blocks may be views of a ``numpy.memmap`` or
  any sequence of (m_k, d) arrays, read where the kernel runs.
* :class:`TorchEngine` — torch tensors on any device (float64 by default; CUDA when present).
* :class:`theory.dask_engine.DaskEngine` — one Dask actor per worker of a ``dask.distributed``
  cluster, holding that worker's blocks: their rows and vectors stay in its memory, and a sum is
  added up there before it travels.

:class:`theory.distributed.EngineRegression` puts an engine behind the problem interface that
:func:`theory.solve.solve` takes. ``bytes_in`` / ``bytes_out`` count what every round moved
(results and arguments: their arrays' buffers, strings' characters and 8 bytes a number).
"""

from __future__ import annotations

import contextlib
import itertools
import weakref
from abc import ABC, abstractmethod
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from theory.blocks import (
    PEAK_LOGIT,
    Block,
    GeneratedBlock,
    block_bounds,
    block_rows,
    check_family,
    planted_direction,
)
from theory.validation import as_float64, check_size

Kernel = Callable[..., object]  # a method of Block, e.g. ``Block.sweep``; its name travels


class BlocksLost(RuntimeError):
    """Some blocks were lost with their worker and have been rebuilt from their source (their
    data as it was; their vectors gone): the solver repeats the interrupted iteration from its
    iterate (:meth:`theory.solver.Solver.solve`)."""


class BlocksUnrecoverable(RuntimeError):
    """Blocks were lost and cannot be rebuilt (their source is gone, no worker is left, or too
    many were lost in one solve): one line naming the worker."""


class BlocksLostWarning(UserWarning):
    """A solve repeated an iteration after its engine lost and rebuilt blocks (the message names
    the worker)."""


class BlockVector:
    """A vector of length n (or an (n, j) matrix) held by an engine as per-block pieces under
    ``key``. Freed on the blocks when the handle is garbage collected (sent with the next round).
    ``sums`` carries scalars computed with it (the softmax's Σ f², …)."""

    __slots__ = ("engine", "key", "sums", "__weakref__")

    def __init__(self, engine: Engine, key: str, sums: dict | None = None):
        self.engine, self.key, self.sums = engine, key, sums or {}
        weakref.finalize(self, engine._release, key)

    @property
    def shape(self) -> tuple[int]:
        return (self.engine.shape[0],)

    def __repr__(self) -> str:
        return f"BlockVector({self.key!r}, n={self.engine.shape[0]})"


class Engine(ABC):
    """Row blocks and rounds over them (module docstring). Subclasses store the blocks and
    implement :meth:`_run`; everything else is here."""

    shape: tuple[int, int]
    bounds: list[tuple[int, int]]
    remote = False  # whether a round crosses a network (a Dask cluster's is)

    def __init__(self):
        self._keys = itertools.count()
        self._freed: list[str] = []
        self._later: list[tuple] = []
        self.setup_calls: list[tuple] = []  # (kernel, args) that made the blocks' data what it is
        self.rounds = 0
        self.bytes_in = 0  # results received by the driver
        self.bytes_out = 0  # arguments sent by the driver

    # -- rounds -------------------------------------------------------------------------------

    def map(self, kernel: Kernel, *args, per_block=None) -> list:
        """``[block.kernel(*args, *per_block[k]) for each block k]``, in block order, where the
        blocks live; ``kernel`` is a method of :class:`~theory.blocks.Block` (its name travels).
        Pending frees and deferred kernels (:meth:`later`) travel with the round."""
        return self._round(kernel, args, per_block, reduce=False)

    def sum(self, kernel: Kernel, *args, per_block=None):
        """The sum over blocks of a kernel's results (numbers or arrays). An engine may add up
        the blocks that live together before anything travels (one partial sum per Dask worker)."""
        return add_up(self._round(kernel, args, per_block, reduce=True))

    def _round(self, kernel: Kernel, args: tuple, per_block, reduce: bool) -> list:
        freed, self._freed = self._freed, []
        calls, self._later = [*self._later, (kernel.__name__, args, per_block)], []
        self.rounds += 1
        self.bytes_out += sum(_size(a) * len(self.bounds) + _size(p) for _, a, p in calls)
        out = self._run([self._for_block(calls, k) for k in range(len(self.bounds))], freed, reduce)
        self.bytes_in += _size(out)
        return out

    def later(self, kernel: Kernel, *args, per_block=None) -> None:
        """Run a kernel that returns nothing (it writes vectors on the blocks) with the next
        round, in order, instead of a round of its own: a round costs a message per block."""
        self._later.append((kernel.__name__, args, per_block))

    @staticmethod
    def _for_block(calls, k: int) -> list:
        """Block k's ``(kernel, args)`` list: the shared arguments, then its own."""
        return [(kern, (*a, *(() if p is None else p[k]))) for kern, a, p in calls]

    @abstractmethod
    def _run(self, calls: list[list], freed: list[str], reduce: bool = False) -> list:
        """On every block k: run ``calls[k]``, then free ``freed`` (:meth:`theory.blocks.Block.run`);
        the results in block order, or with ``reduce`` partial sums whose total is the answer."""

    def new(self, sums: dict | None = None) -> BlockVector:
        """A fresh handle (its pieces are written by the kernel the caller runs next)."""
        return BlockVector(self, f"v{next(self._keys)}", sums)

    def _release(self, key: str) -> None:
        self._freed.append(key)

    def close(self) -> None:
        """Release the blocks (in-process engines hold nothing to release)."""
        return None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- set-up checks --------------------------------------------------------------------------

    def finish_family(self, family: str, n: int, d: int, seed: int) -> None:
        """The global steps of a family drawn on the blocks (:func:`theory.blocks.block_rows`):
        the peaked family's b planted from ``c = PEAK_LOGIT / max_k ||A_k x♮||_∞``, then every
        block checked and b divided by its global sum."""
        if family == "peaked":
            x = planted_direction(n, d, seed)
            self.setup(Block.plant, x, PEAK_LOGIT / max(self.map(Block.plant_scale, x)))
        self._check(normalise=True)

    def setup(self, kernel: Kernel, *args) -> None:
        """Run a kernel that changes the blocks' data (not their vectors) on every block, and
        remember it: a block rebuilt from its source after a lost worker replays these."""
        self.map(kernel, *args)
        self.setup_calls.append((kernel.__name__, args))

    def _check(self, normalise: bool = False) -> None:
        """Validate every block once (dimensions, finiteness, w² ≥ 0 holds by construction); with
        ``normalise``, divide b by its global sum (b drawn on the workers)."""
        info = self.map(Block.info)
        d = info[0][1]
        for (start, stop), (m, dk, _, _, finite) in zip(self.bounds, info):
            if dk != d or m != stop - start:
                raise ValueError(f"block at row {start} is {m}×{dk}; expected {stop - start}×{d}.")
            if not finite:
                raise ValueError(f"block at row {start} holds a NaN or an infinity (A, b or w).")
        self.shape = (self.bounds[-1][1], d)
        check_size(*self.shape)
        total = sum(i[2] for i in info)
        if normalise:
            if not total > 0:
                raise ValueError("b sums to zero; nothing to normalise.")
            self.setup(Block.scale_b, 1.0 / total)
            total = 1.0
        self.s = float(total)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(shape={self.shape}, blocks={len(self.bounds)})"


class BlasThreads:
    """BLAS limited to ``threads`` threads while a round runs: threadpoolctl's controllers of the
    loaded BLAS libraries, set directly (``threadpool_limits`` rescans the libraries each time,
    too slow for a round; docs/solver.md, "Measured constants"). A BLAS's thread count is global
    to the process: W pool threads whose BLAS calls each start the BLAS's own threads oversubscribe
    the cores."""

    _libs: list | None = None  # the controllers, looked up once per process (a library scan)

    def __init__(self, threads: int):
        if BlasThreads._libs is None:
            from threadpoolctl import ThreadpoolController

            BlasThreads._libs = ThreadpoolController().select(user_api="blas").lib_controllers
        self.libs: list = BlasThreads._libs
        self.threads, self._old = threads, [0] * len(self.libs)

    def __enter__(self):
        self._old = [lib.get_num_threads() for lib in self.libs]
        for lib in self.libs:
            lib.set_num_threads(self.threads)
        return self

    def __exit__(self, *exc):
        for lib, old in zip(self.libs, self._old):
            lib.set_num_threads(old)


class LocalEngine(Engine):
    """Blocks in this process; a round runs them on a pool of ``workers`` threads (1: in order, on
    the calling thread), each with ``blas_threads`` BLAS threads during the round (default 1 when
    ``workers`` > 1: the parallelism is the pool's; None with one worker leaves BLAS as it is)."""

    def __init__(self, blocks: list[Block], workers: int = 1, blas_threads: int | None = None):
        super().__init__()
        if not isinstance(workers, int) or workers < 1:
            raise ValueError(f"workers must be an integer ≥ 1; got {workers!r}.")
        if blas_threads is not None and (not isinstance(blas_threads, int) or blas_threads < 1):
            raise ValueError(f"blas_threads must be an integer ≥ 1 or None; got {blas_threads!r}.")
        self.blocks = blocks
        self.bounds = [(b.start, b.start + b.m) for b in blocks]
        self.workers = workers
        self._pool = ThreadPoolExecutor(workers) if workers > 1 and len(blocks) > 1 else None
        if blas_threads is None and self._pool is not None:
            blas_threads = 1
        self._blas = BlasThreads(blas_threads) if blas_threads is not None else None

    @classmethod
    def from_arrays(cls, A, b, w, blocks: int | None = None, block_rows: int | None = None, **kw):
        """A (n, d) (an ndarray or a ``numpy.memmap``, not copied), b (n,), w (n,) or a scalar,
        split into ``blocks`` blocks (default: one per worker) or blocks of ``block_rows`` rows."""
        A = as_float64("A", A, ndim=2)  # a float64 memmap is kept, not copied
        n = A.shape[0]
        b = as_float64("b", b, ndim=1, shape=(n,))
        w = np.full(n, float(w)) if np.ndim(w) == 0 else as_float64("w", w, ndim=1, shape=(n,))
        if (w < 0).any():
            raise ValueError("w must be non-negative (it weights the regulariser).")
        if blocks is None and block_rows is None:
            blocks = kw.get("workers", 1)
        bounds = block_bounds(n, blocks, block_rows)
        made = [cls._block(A[i:j], b[i:j], w[i:j], i, kw) for i, j in bounds]
        return cls._built(made, kw)

    @classmethod
    def from_blocks(cls, parts, **kw):
        """A sequence of ``(A_k, b_k, w_k)`` triples (A_k may be a memmap slice), in row order."""
        made, start = [], 0
        for A_k, b_k, w_k in parts:
            m = A_k.shape[0]
            w_k = np.full(m, float(w_k)) if np.ndim(w_k) == 0 else w_k
            made.append(cls._block(A_k, np.asarray(b_k, float), np.asarray(w_k, float), start, kw))
            start += m
        if not made:
            raise ValueError("from_blocks needs at least one block.")
        return cls._built(made, kw)

    @classmethod
    def generate(cls, family: str, n: int, d: int, seed: int = 0, blocks: int = 1, **kw):
        """A family of :func:`theory.blocks.block_rows`, each block drawn by its own kernel: the
        same A, b, w as :func:`theory.instances.make_instance` for every blocking."""
        check_size(n, d)
        check_family(family, n, d, engine=True)
        made = [cls._generated(family, n, d, seed, i, j, kw) for i, j in block_bounds(n, blocks)]
        eng = cls(made, **_engine_kw(kw))
        eng.finish_family(family, n, d, seed)
        return eng

    @classmethod
    def _block(cls, A, b, w, start, kw) -> Block:
        return Block(A, b, w, start)

    @classmethod
    def _generated(cls, family, n, d, seed, i, j, kw) -> Block:
        return GeneratedBlock(family, n, d, seed, i, j)

    @classmethod
    def _built(cls, made, kw):
        eng = cls(made, **_engine_kw(kw))
        eng._check()
        return eng

    def _run(self, calls, freed, reduce=False):
        with self._blas or contextlib.nullcontext():
            return run_blocks(self.blocks, calls, freed, self._pool)

    def close(self):
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None


class TorchEngine(LocalEngine):
    """Blocks as torch tensors on ``device`` (default: CUDA when present, else CPU), float64.
    Rounds run in order on the calling thread (a GPU queues the kernels itself) unless
    ``workers`` > 1."""

    def __init__(self, blocks, workers: int = 1, device=None, blas_threads=None):
        super().__init__(blocks, workers, blas_threads)
        self.device = device

    @staticmethod
    def default_device() -> str:
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"

    @classmethod
    def _block(cls, A, b, w, start, kw):
        import torch

        dev = kw.get("device") or cls.default_device()
        t = lambda a: torch.as_tensor(np.ascontiguousarray(a), dtype=torch.float64, device=dev)
        return Block(t(A), t(b), t(w), start)

    @classmethod
    def _generated(cls, family, n, d, seed, i, j, kw):
        A, b, w = block_rows(family, n, d, seed, i, j)
        return cls._block(A, b, w, i, kw)


def run_blocks(blocks: list[Block], calls, freed, pool: ThreadPoolExecutor | None) -> list:
    """Block k runs ``calls[k]``, then frees ``freed`` (:meth:`theory.blocks.Block.run`), on
    ``pool`` when given, else in order on the calling thread; the results in block order."""

    def one(k):
        return blocks[k].run(calls[k], freed)

    idx = range(len(blocks))
    return [one(k) for k in idx] if pool is None else list(pool.map(one, idx))


def add_up(parts: list):
    """``parts[0] + parts[1] + …``, in order."""
    total = parts[0]
    for p in parts[1:]:
        total = total + p
    return total


def _engine_kw(kw: dict) -> dict:
    return {k: v for k, v in kw.items() if k in ("workers", "device", "blas_threads")}


def _size(obj) -> int:
    """Bytes of a round's arguments or results: arrays' (numpy or torch) buffers, strings'
    characters, 8 a number (counted by hand, not with ``dask.sizeof``: a round's count must cost
    little next to the round itself)."""
    if obj is None:
        return 0
    if hasattr(obj, "nbytes"):
        return int(obj.nbytes)
    if isinstance(obj, list | tuple):
        return sum(_size(o) for o in obj)
    if isinstance(obj, dict):
        return sum(_size(k) + _size(v) for k, v in obj.items())
    if isinstance(obj, str):
        return len(obj)
    return 8
