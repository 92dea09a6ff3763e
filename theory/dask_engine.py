r"""The engine on a ``dask.distributed`` cluster: one actor per row block, its state on its worker.

Each block is a :class:`~theory.blocks.Block` living as a Dask *actor* on one worker: its rows of
A, b, w and the solver's O(n) vectors (z, f, r, q, v) stay in that worker's memory between
rounds, and a round is one ``run`` message per block, answered with O(d) or O(d²) numbers
(:mod:`theory.engine`). Actors are Dask's means for state that lives on a worker and changes
(https://distributed.dask.org/en/stable/actors.html); their calls go from the client straight to
the worker, and each worker runs its actors' calls one at a time, in order.

    from dask.distributed import Client
    client = Client("tcp://scheduler:8786")              # or Client(LocalCluster(...))
    eng = DaskEngine.from_dask_array(client, A, b, w)    # A: a dask.array (n, d), row chunks
    eng = DaskEngine.generate(client, "sparse", n, d, seed=0, blocks=8)   # drawn on the workers
    res = solve(EngineRegression(eng), method="newton")

``from_dask_array`` persists A's row chunks (one column chunk) and builds each block's actor on
the worker that holds its chunk; ``generate`` draws every block on its worker
(:func:`theory.blocks.block_rows`), so A is never on the driver. Blocks go round-robin over the
workers.
"""

from __future__ import annotations

import numpy as np

from theory.blocks import Block, GeneratedBlock, block_bounds
from theory.engine import Engine
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
kernel page-faults anew; keeping freed memory took the default solver on sparse 4194304×64 from
370 to 269 ms an iteration (docs/solver.md, "On a cluster"). One BLAS thread: one worker process
per core."""


def local_cluster(workers: int):
    """A ``LocalCluster`` of ``workers`` processes, one thread each, with :data:`WORKER_ENV`."""
    import dask
    from dask.distributed import LocalCluster

    with dask.config.set({"distributed.nanny.pre-spawn-environ": WORKER_ENV}):
        return LocalCluster(
            n_workers=workers, threads_per_worker=1, dashboard_address=None, memory_limit=None
        )


class DaskEngine(Engine):
    """Blocks as Dask actors (module docstring). ``close()`` releases them."""

    def __init__(self, client, actors, bounds):
        super().__init__()
        self.client, self.actors, self.bounds = client, actors, bounds

    @classmethod
    def generate(
        cls, client, family: str, n: int, d: int, seed: int = 0, blocks: int | None = None
    ):
        """``blocks`` blocks (default: one per worker thread) drawn on the workers."""
        check_size(n, d)
        workers = _workers(client)
        blocks = blocks or sum(client.nthreads().values())
        bounds = block_bounds(n, blocks)
        futures = [
            client.submit(
                GeneratedBlock,
                family,
                n,
                d,
                seed,
                i,
                j,
                actor=True,
                workers=[workers[k % len(workers)]],
                allow_other_workers=False,
            )
            for k, (i, j) in enumerate(bounds)
        ]
        eng = cls(client, [f.result() for f in futures], bounds)
        eng._futures = futures
        eng._check(normalise=True)
        return eng

    @classmethod
    def from_dask_array(cls, client, A, b, w):
        """A (n, d) as a ``dask.array`` chunked along rows (columns are rechunked to one chunk),
        b (n,) and w (n,) as dask arrays or numpy arrays (rechunked like A's rows), or w a scalar.
        The chunks are persisted and each block's actor built where its chunk is."""
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
        futures = []
        for k, (i, _) in enumerate(bounds):
            where = list(client.who_has(parts[0][k]).get(parts[0][k].key, ())) or None
            futures.append(
                client.submit(
                    _ActorBlock,
                    parts[0][k],
                    parts[1][k],
                    parts[2][k],
                    i,
                    actor=True,
                    workers=where,
                )
            )
        eng = cls(client, [f.result() for f in futures], bounds)
        eng._futures = futures
        eng._check()
        return eng

    def _run(self, calls, freed):
        pending = [actor.run(calls[k], freed) for k, actor in enumerate(self.actors)]
        return [p.result() for p in pending]

    def close(self):
        self.actors, self._futures = [], []


class _ActorBlock(Block):
    """A Block built from materialised chunks on the worker (an actor needs a class)."""

    def __init__(self, A, b, w, start):
        super().__init__(
            np.asarray(A, dtype=np.float64), np.asarray(b, float), np.asarray(w, float), start
        )


def _workers(client) -> list[str]:
    workers = sorted(client.scheduler_info()["workers"])
    if not workers:
        raise ValueError("the Dask cluster has no workers.")
    return workers
