r"""The engine on a ``dask.distributed`` cluster: one actor per worker, holding that worker's blocks.

Each worker's row blocks (:class:`~theory.blocks.Block`) live in one Dask *actor*
(:class:`WorkerBlocks`): their rows of A, b, w and the solver's O(n) vectors (z, f, r, q, v, the
subspace images) stay in that worker's memory between rounds, and a round is one ``run`` message
per worker, answered with O(d) or O(d²) numbers per block — or, for a sum (gradient, Hessian,
sketch), one partial sum per worker, added up there (the first level of a tree reduction;
:mod:`theory.engine`). Actors are Dask's means for state that lives on a worker and changes
(https://distributed.dask.org/en/stable/actors.html); their calls go from the client straight to
the worker, one at a time, and the actor runs its blocks on as many threads as the worker has.

    from dask.distributed import Client
    client = Client("tcp://scheduler:8786")              # or Client(local_cluster(2))
    eng = DaskEngine.from_dask_array(client, A, b, w)    # A: a dask.array (n, d), row chunks
    eng = DaskEngine.generate(client, "sparse", n, d, seed=0, blocks=8)   # drawn on the workers
    res = solve(EngineRegression(eng), method="newton")

``from_dask_array`` persists A's row chunks (one column chunk) and builds each worker's actor from
the chunks it holds; ``generate`` draws every block on its worker
(:func:`theory.blocks.block_rows`), so A is never on the driver, a contiguous run of blocks per
worker.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np

from theory.blocks import Block, GeneratedBlock, block_bounds, check_family
from theory.engine import Engine, add_up
from theory.validation import check_size

WORKER_ENV = {
    "MALLOC_TRIM_THRESHOLD_": 1 << 30,
    "MALLOC_MMAP_THRESHOLD_": 1 << 30,
    "OMP_NUM_THREADS": 1,
    "MKL_NUM_THREADS": 1,
    "OPENBLAS_NUM_THREADS": 1,
}
"""The environment for solver workers (Dask's ``distributed.nanny.pre-spawn-environ``; the
command line and the benchmarks set it for the clusters they start). Dask's default trims freed
memory back to the OS at 64 KiB (``MALLOC_TRIM_THRESHOLD_``), so every (m_k,) temporary of a
kernel page-faults anew (what that costs: docs/solver.md, "On a cluster"). One BLAS thread per
thread: the parallelism is the workers' and their threads' over the blocks."""


def local_cluster(workers: int):
    """A ``LocalCluster`` of ``workers`` processes, one thread each, with :data:`WORKER_ENV`."""
    import dask
    from dask.distributed import LocalCluster

    with dask.config.set({"distributed.nanny.pre-spawn-environ": WORKER_ENV}):
        return LocalCluster(
            n_workers=workers, threads_per_worker=1, dashboard_address=None, memory_limit=None
        )


class DaskEngine(Engine):
    """Blocks grouped by worker, one Dask actor per worker (module docstring). ``close()``
    releases them."""

    def __init__(self, client, actors, groups, bounds):
        super().__init__()
        self.client, self.actors, self.groups, self.bounds = client, actors, groups, bounds

    @classmethod
    def _built(cls, client, makers: dict, bounds, family=None):
        """One :class:`WorkerBlocks` actor per worker of ``makers`` ({address: [(block index,
        maker)]}), with as many threads as the worker has."""
        nthreads = client.nthreads()
        futures, groups = [], []
        for addr, items in makers.items():
            groups.append([k for k, _ in items])
            futures.append(
                client.submit(
                    WorkerBlocks, [m for _, m in items], nthreads.get(addr, 1), actor=True,
                    workers=[addr], allow_other_workers=False,
                )
            )  # fmt: skip
        eng = cls(client, [f.result() for f in futures], groups, bounds)
        eng._futures = futures
        if family is None:
            eng._check()
        else:
            eng.finish_family(*family)
        return eng

    @classmethod
    def generate(
        cls, client, family: str, n: int, d: int, seed: int = 0, blocks: int | None = None
    ):
        """``blocks`` blocks (default: one per worker thread) drawn on the workers, each worker
        a contiguous run of blocks."""
        check_size(n, d)
        check_family(family, n, d, engine=True)
        workers = _workers(client)
        blocks = blocks or sum(client.nthreads().values())
        bounds = block_bounds(n, blocks)
        makers: dict[str, list] = {}
        for k, (i, j) in enumerate(bounds):
            where = workers[k * len(workers) // len(bounds)]
            makers.setdefault(where, []).append((k, ("generate", family, n, d, seed, i, j)))
        return cls._built(client, makers, bounds, family=(family, n, d, seed))

    @classmethod
    def from_dask_array(cls, client, A, b, w):
        """A (n, d) as a ``dask.array`` chunked along rows (columns are rechunked to one chunk),
        b (n,) and w (n,) as dask arrays or numpy arrays (rechunked like A's rows), or w a scalar.
        The chunks are persisted; each worker's actor is built from the chunks it holds."""
        import dask.array as da

        if A.ndim != 2:
            raise ValueError(f"A must be 2-D; got shape {A.shape}.")
        n = A.shape[0]
        A = A.rechunk({1: -1})
        rows = A.chunks[0]
        b = da.asarray(b).rechunk((rows,))
        w = (
            da.full(n, float(w), chunks=(rows,))
            if np.ndim(w) == 0
            else da.asarray(w).rechunk((rows,))
        )
        if b.shape != (n,) or w.shape != (n,):
            raise ValueError(f"b and w must have shape ({n},); got {b.shape} and {w.shape}.")
        A, b, w = client.persist([A, b, w])
        parts = [client.compute(x.to_delayed().ravel().tolist()) for x in (A, b, w)]
        ends = np.cumsum(rows).tolist()
        bounds = list(zip([0, *ends[:-1]], ends))
        holders = client.who_has(parts[0])
        workers = _workers(client)
        makers: dict[str, list] = {}
        for k, (i, _) in enumerate(bounds):
            where = sorted(holders.get(parts[0][k].key, ())) or [workers[k % len(workers)]]
            makers.setdefault(where[0], []).append(
                (k, ("chunks", parts[0][k], parts[1][k], parts[2][k], i))
            )
        return cls._built(client, makers, bounds)

    def _run(self, calls, freed, reduce=False):
        pending = [
            actor.run([calls[k] for k in group], freed, reduce)
            for actor, group in zip(self.actors, self.groups)
        ]
        results = [p.result() for p in pending]
        if reduce:
            return results
        out = [None] * len(self.bounds)
        for group, res in zip(self.groups, results):
            for k, r in zip(group, res):
                out[k] = r
        return out

    def close(self):
        self.actors, self._futures = [], []


class WorkerBlocks:
    """The blocks of one worker, as one actor: one message a round for all of them, run on
    ``threads`` threads (numpy releases the GIL in the kernels' BLAS calls), and, for a sum, added
    up on the worker so that one partial sum travels instead of one result per block. ``makers``:
    ``("generate", family, n, d, seed, start, stop)`` (drawn here) or ``("chunks", A, b, w,
    start)`` (materialised chunks)."""

    def __init__(self, makers, threads: int = 1):
        self.blocks = [_make(m) for m in makers]
        self._threads = threads if len(self.blocks) > 1 else 1
        self._pool = None

    def run(self, calls, freed, reduce: bool = False):
        """Block k runs ``calls[k]`` (:meth:`theory.blocks.Block.run`); their results (a list),
        or with ``reduce`` their sum."""
        one = lambda k: self.blocks[k].run(calls[k], freed)  # noqa: E731
        idx = range(len(self.blocks))
        if self._threads > 1:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self._threads)
            out = list(self._pool.map(one, idx))
        else:
            out = [one(k) for k in idx]
        return add_up(out) if reduce else out


def _make(maker) -> Block:
    kind, *args = maker
    if kind == "generate":
        return GeneratedBlock(*args)
    A, b, w, start = args
    return Block(np.asarray(A, dtype=np.float64), np.asarray(b, float), np.asarray(w, float), start)


def _workers(client) -> list[str]:
    workers = sorted(client.scheduler_info()["workers"])
    if not workers:
        raise ValueError("the Dask cluster has no workers.")
    return workers
