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

import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from theory.blocks import Block, GeneratedBlock, block_bounds, check_family
from theory.engine import BlocksLost, BlocksUnrecoverable, Engine, add_up, run_blocks
from theory.validation import check_size

REBUILD_TIMEOUT_S = 30  # a lost worker's blocks rebuilt within this, or a one-line error

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

    remote = True

    def __init__(self, client, actors, groups, bounds, makers=None, addresses=None):
        super().__init__()
        self.client, self.actors, self.groups, self.bounds = client, actors, groups, bounds
        self.makers, self.addresses = makers, addresses

    @classmethod
    def _built(cls, client, makers: dict, bounds, family=None):
        """One :class:`WorkerBlocks` actor per worker of ``makers`` ({address: [(block index,
        maker)]}), with as many threads as the worker has."""
        groups = [[k for k, _ in items] for items in makers.values()]
        made = [[m for _, m in items] for items in makers.values()]
        futures = [_actor(client, m, addr) for addr, m in zip(makers, made)]
        eng = cls(client, [f.result() for f in futures], groups, bounds, made, list(makers))
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
        results, lost = [], []
        for g, p in enumerate(pending):
            try:
                results.append(p.result())
            except OSError:  # the actor's worker is gone (a kernel's own error passes through)
                lost.append(g)
        if lost:
            raise BlocksLost(self._rebuild(lost))
        if reduce:
            return results
        out = [None] * len(self.bounds)
        for group, res in zip(self.groups, results):
            for k, r in zip(group, res):
                out[k] = r
        return out

    def _rebuild(self, lost: list[int]) -> str:
        """New actors for the groups ``lost``, on live workers (the least loaded first), built
        from the same makers (blocks re-drawn from the seed, or chunks recomputed from the
        persisted array's lineage) and given the engine's set-up calls again; a one-line
        :class:`~theory.engine.BlocksUnrecoverable` naming the worker when that fails within
        :data:`REBUILD_TIMEOUT_S`. Returns what happened, for :class:`~theory.engine.BlocksLost`."""
        dead = {self.addresses[g] for g in lost}
        names = ", ".join(sorted(dead))
        deadline = time.monotonic() + REBUILD_TIMEOUT_S
        while not (live := [w for w in _workers(self.client, True) if w not in dead]):
            if time.monotonic() > deadline:
                raise BlocksUnrecoverable(
                    f"lost Dask worker {names}, and no worker is left for its blocks"
                )
            time.sleep(0.1)
        load = {w: 0 for w in live}
        for g, addr in enumerate(self.addresses):
            if g not in lost and addr in load:
                load[addr] += len(self.groups[g])
        for g in lost:
            target = min(load, key=lambda addr: load[addr])
            try:
                fut = _actor(self.client, self.makers[g], target)
                actor = fut.result(timeout=max(1.0, deadline - time.monotonic()))
                for kernel, args in self.setup_calls:
                    actor.run([[(kernel, args)]] * len(self.groups[g]), [], False).result()
            except Exception as e:  # noqa: BLE001 - any failure to rebuild ends the solve, in one line
                why = str(e).splitlines()[0] if str(e) else type(e).__name__
                raise BlocksUnrecoverable(
                    f"lost Dask worker {self.addresses[g]}; its blocks (rows "
                    f"{self.bounds[self.groups[g][0]][0]}–{self.bounds[self.groups[g][-1]][1]}) "
                    f"could not be rebuilt from their source: {why}"
                ) from None
            self.actors[g], self.addresses[g], self._futures[g] = actor, target, fut
            load[target] += len(self.groups[g])
        where = ", ".join(sorted({self.addresses[g] for g in lost}))
        return f"lost Dask worker {names}; its blocks were rebuilt on {where}"

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
        self._pool: ThreadPoolExecutor | None = None

    def run(self, calls, freed, reduce: bool = False):
        """Block k runs ``calls[k]`` (:meth:`theory.blocks.Block.run`); their results (a list),
        or with ``reduce`` their sum."""
        if self._threads > 1 and self._pool is None:
            self._pool = ThreadPoolExecutor(self._threads)
        out = run_blocks(self.blocks, calls, freed, self._pool)
        return add_up(out) if reduce else out


def _actor(client, makers, addr):
    """A future of a :class:`WorkerBlocks` actor of ``makers`` on worker ``addr``."""
    threads = client.nthreads().get(addr, 1)
    return client.submit(
        WorkerBlocks, makers, threads, actor=True, workers=[addr], allow_other_workers=False,
        pure=False,
    )  # fmt: skip


def _make(maker) -> Block:
    kind, *args = maker
    if kind == "generate":
        return GeneratedBlock(*args)
    A, b, w, start = args
    return Block(np.asarray(A, dtype=np.float64), np.asarray(b, float), np.asarray(w, float), start)


def _workers(client, allow_none: bool = False) -> list[str]:
    workers = sorted(client.scheduler_info()["workers"])
    if not workers and not allow_none:
        raise ValueError("the Dask cluster has no workers.")
    return workers
