"""Actors against futures for an engine's round, on a LocalCluster of 2 workers (one thread each).

    python -m benchmarks.futures [--n 262144] [--d 64] [--blocks 4,16] [--repeats 50]

The Dask engine (:mod:`theory.dask_engine`) keeps one actor per worker, holding that worker's
blocks (:class:`theory.blocks.Block`) and the solver's O(n) vectors beside them; a round is one
actor call per worker. The alternative is futures: each block a persisted future (the same
``Block``, made by a task on the worker that keeps it), a round one task per block through the
scheduler, and a vector kept between rounds a task result (a new key per block and round). This
prototype of the futures round is not part of the package; it times, per round (median of
``repeats``):

* **empty**: a kernel that does nothing (the latency floor);
* **sweep**: the loss and gradient at x in one read of each block (:meth:`Block.sweep`), O(d)
  numbers back per block;
* **kept vector**: ``z = A x`` kept beside the blocks, then ``max |z|`` back, as two rounds of
  futures (the second reads the first's results) against the actor's deferred kernel plus one
  round.

for ``blocks`` blocks in all (a worker holds half). Both sides run the same Block methods.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from benchmarks._common import machine, markdown_table
from theory.blocks import Block, GeneratedBlock, block_bounds


def _median(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


# -- what a futures engine would run on the workers (module-level: Dask pickles them by name) ----


def _noop(block: Block) -> None:
    return None


def _sweep(block: Block, x: np.ndarray):
    return block.sweep(x)


def _matvec(block: Block, x: np.ndarray) -> np.ndarray:
    return block.A @ x


def _amax(z: np.ndarray) -> float:
    return float(np.max(np.abs(z)))


def _actor_times(eng, x, repeats: int) -> dict[str, float]:
    def kept():
        z = eng.new()
        eng.later(Block.matvec, z.key, x)
        eng.map(Block.amax, z.key, True)

    rounds = {
        "empty": lambda: eng.map(Block.free, []),
        "sweep": lambda: eng.map(Block.sweep, x),
        "kept vector": kept,
    }
    return {k: _median(f, repeats) for k, f in rounds.items()}


def _futures_times(client, futs, x, repeats: int) -> dict[str, float]:
    def kept():
        z = client.map(_matvec, futs, x=x, pure=False)
        client.gather(client.map(_amax, z, pure=False))

    rounds = {
        "empty": lambda: client.gather(client.map(_noop, futs, pure=False)),
        "sweep": lambda: client.gather(client.map(_sweep, futs, x=x, pure=False)),
        "kept vector": kept,
    }
    return {k: _median(f, repeats) for k, f in rounds.items()}


def table(n: int, d: int, blocks_list, repeats: int) -> str:
    from dask.distributed import Client

    from theory.dask_engine import DaskEngine, local_cluster

    x = np.random.default_rng(0).standard_normal(d) * 0.01
    rows = []
    with local_cluster(2) as cluster, Client(cluster) as client:
        workers = list(client.scheduler_info()["workers"])
        for blocks in blocks_list:
            with DaskEngine.generate(client, "sparse", n, d, 0, blocks=blocks) as eng:
                actor = _actor_times(eng, x, repeats)
            futs = [  # each block drawn by a task on the worker that keeps it (half on each)
                client.submit(
                    GeneratedBlock,
                    "sparse",
                    n,
                    d,
                    0,
                    i,
                    j,
                    workers=[workers[k * 2 // blocks]],
                    pure=False,
                )
                for k, (i, j) in enumerate(block_bounds(n, blocks))
            ]
            client.gather(futs)
            fut = _futures_times(client, futs, x, repeats)
            client.cancel(futs)
            for k, a in actor.items():
                f = fut[k]
                rows.append([str(blocks), k, f"{1e3 * a:.2f}", f"{1e3 * f:.2f}", f"{f / a:.2f}"])
    head = ["blocks", "round", "ms, actors", "ms, futures", "futures / actors"]
    return markdown_table(head, rows)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=1 << 18)
    p.add_argument("--d", type=int, default=64)
    p.add_argument("--blocks", default="4,16", help="comma-separated block counts")
    p.add_argument("--repeats", type=int, default=50)
    args = p.parse_args(argv)
    print(machine(), flush=True)
    blocks = [int(b) for b in args.blocks.split(",")]
    print(f"\n### A round on a LocalCluster of 2 workers ({args.n}×{args.d})\n")
    print(table(args.n, args.d, blocks, args.repeats), flush=True)


if __name__ == "__main__":
    main()
