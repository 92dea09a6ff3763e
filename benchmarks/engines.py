"""Engines timed against each other, in one run: seconds per iteration and bytes moved per iteration.

    python -m benchmarks.engines                  # the sizes of docs/solver.md, "On a cluster"
    python -m benchmarks.engines --quick          # small sizes, a minute
    python -m benchmarks.engines --methods newton,sketched-subspace-newton

Tables (markdown), each comparison within one run so that the machine's speed cancels:

1. **Thread pool**: ``LocalEngine`` with 2 workers against 1, with default settings (one worker
   keeps the process's BLAS threads; a pool gives each worker one BLAS thread), and 2 workers
   that each keep 2 BLAS threads, on sparse 1048576×64 and 131072×256 in the same 4 blocks; and
   scipy's fastest anchor on the in-memory problem with 2 BLAS threads, to ``max|g| ≤ tol``.
2. **Dask**: a ``LocalCluster`` of 2 worker processes (1 thread each) holding sparse 4194304×64
   (2 GiB, drawn on the workers), against the in-process engine with 2 workers; with the bytes
   every iteration moved (results and arguments, the engine's count).
3. **torch on CPU** against numpy at the same thread count (1 and 2).
5. **Rounds** an iteration of each method on a one-worker ``LocalEngine`` (65536×64, 2 blocks, four
   families), with its iterations and final loss (``--parts rounds``).
4. **Constants** of docs/solver.md's cost model: one core's pass and syrk rates, a round trip.

Times are the best of ``--repeats`` solves from x0 = 0; per iteration = time / nit. The engines
run the same iterations (same nit: the block sums only round differently).
"""

from __future__ import annotations

import argparse
import gc
import time

import numpy as np
from threadpoolctl import threadpool_limits

from benchmarks._common import best_times, machine, markdown_table
from theory import solve
from theory.blocks import Block, block_rows
from theory.distributed import EngineRegression
from theory.engine import LocalEngine, TorchEngine
from theory.instances import make_instance
from theory.linalg import weighted_gram
from theory.solve import METHODS

FAMILY, SEED, TOL = "sparse", 0, 1e-8
SCIPY = ("scipy-trust-exact", "scipy-trust-krylov", "scipy-newton-cg", "scipy-l-bfgs-b")


def timed(prob, method: str, repeats: int) -> tuple[float, int, object]:
    """Best wall time of ``repeats`` solves, its iterations, the last result."""
    best, res = float("inf"), None
    for _ in range(repeats):
        gc.collect()
        t0 = time.perf_counter()
        res = solve(prob, method=method, tol=TOL, max_iter=200)
        best = min(best, time.perf_counter() - t0)
    return best, res.nit, res


def per_iteration(t: float, nit: int) -> str:
    return f"{1e3 * t / max(nit, 1):.1f}"


def thread_pool(sizes, methods, repeats, anchors: bool = True) -> str:
    """The thread-pool table; with ``anchors``, scipy's fastest method beside it."""
    rows = []
    for n, d in sizes:
        mem = make_instance(FAMILY, n, d, SEED).prob
        A, b, w = mem.A, mem.b, mem.w
        with threadpool_limits(2):
            scipy_best = min(
                (
                    timed(mem, m, repeats)[:2] + (m,)
                    for m in (SCIPY if anchors else ())
                    if solve(mem, method=m, tol=TOL, max_iter=200).success
                ),
                default=(float("nan"), 0, "none converged"),
            )
        for method in methods:
            # default settings: one worker keeps BLAS's threads, a pool gives each one; the same
            # 4 blocks everywhere, so the sketches (drawn per block) and the iterations are equal
            t = {}
            for key, workers, blas in ((1, 1, None), (2, 2, None), ("2, 2 BLAS", 2, 2)):
                with LocalEngine.from_arrays(
                    A, b, w, blocks=4, workers=workers, blas_threads=blas
                ) as eng:
                    t[key] = timed(EngineRegression(eng), method, repeats)[:2]
            row = [
                f"{n}×{d}",
                method,
                f"{t[1][1]} / {t[2][1]}",
                per_iteration(*t[1]),
                per_iteration(*t[2]),
                f"{t[1][0] / t[2][0]:.2f}×",
                f"{t[1][0] / t['2, 2 BLAS'][0]:.2f}×",
            ]
            if anchors:
                row += [
                    f"{scipy_best[2]} {scipy_best[0]:.2f} s ({scipy_best[1]} it)",
                    f"{scipy_best[0] / t[2][0]:.2f}×",
                ]
            rows.append(row)
        del A, mem
    return markdown_table(
        [
            "A",
            "method",
            "nit (1 / 2 workers)",
            "ms/it, 1 worker",
            "ms/it, 2 workers",
            "speed-up",
            "speed-up if each worker kept 2 BLAS threads",
        ]
        + (["scipy's best, 2 BLAS threads", "2 workers vs scipy"] if anchors else []),
        rows,
    )


def dask_cluster(n, d, methods, repeats) -> str:
    from dask.distributed import Client

    from theory.dask_engine import DaskEngine, local_cluster

    rows = []
    with threadpool_limits(1):
        local = {}
        with LocalEngine.generate(FAMILY, n, d, SEED, blocks=4, workers=2) as eng:
            for method in methods:
                local[method] = timed(EngineRegression(eng), method, repeats)[:2]
        del eng
        gc.collect()
        with local_cluster(2) as cluster, Client(cluster) as client:
            t0 = time.perf_counter()
            eng = DaskEngine.generate(client, FAMILY, n, d, SEED, blocks=4)
            drawn = time.perf_counter() - t0
            for method in methods:
                before = (eng.bytes_in, eng.bytes_out, eng.rounds)
                t, nit, _ = timed(EngineRegression(eng), method, repeats)
                moved = (eng.bytes_in - before[0] + eng.bytes_out - before[1]) / repeats
                rounds = (eng.rounds - before[2]) / repeats
                lt, lnit = local[method]
                rows.append(
                    [
                        f"{n}×{d}",
                        method,
                        f"{lnit} / {nit}",
                        per_iteration(lt, lnit),
                        per_iteration(t, nit),
                        f"{(t / nit) / (lt / lnit):.2f}×",
                        f"{moved / (nit + 1) / 1024:.1f} KiB",
                        f"{rounds / (nit + 1):.1f}",
                    ]
                )
            eng.close()
    table = markdown_table(
        [
            "A",
            "method",
            "nit (threads / dask)",
            "ms/it, 2 threads",
            "ms/it, 2 Dask workers",
            "dask / threads",
            "bytes per iteration",
            "rounds per iteration",
        ],
        rows,
    )
    return table + f"\n\nDrawing A on the workers took {drawn:.1f} s."


def gradient_rounds(n, d, repeats) -> str:
    """``loss_and_gradient`` on the in-process engine (2 threads) and a LocalCluster of 2 workers:
    the gradient formed row by row (z = A x, the softmax's two rounds, Aᵀ r) against one sweep
    (:mod:`theory.sweep`): rounds, bytes moved and seconds per call (best of ``repeats``)."""
    from dask.distributed import Client

    from theory.dask_engine import DaskEngine, local_cluster

    x = np.random.default_rng(1).standard_normal(d) * 0.01
    rows = []

    def measure(name, eng):
        prob = EngineRegression(eng)
        ways = {
            "row by row": lambda: prob.row_by_row_point(x),
            "one sweep": lambda: prob.loss_and_gradient(x),
        }
        for way, fn in ways.items():
            fn()
            before = (eng.rounds, eng.bytes_in + eng.bytes_out)
            best = min(_seconds(fn) for _ in range(repeats))
            r = (eng.rounds - before[0]) / repeats
            moved = (eng.bytes_in + eng.bytes_out - before[1]) / repeats
            rows.append([name, way, f"{r:.0f}", f"{moved / 1024:.1f} KiB", f"{1e3 * best:.1f}"])

    with threadpool_limits(1):
        with LocalEngine.generate(FAMILY, n, d, SEED, blocks=4, workers=2) as eng:
            measure("2 threads", eng)
        gc.collect()
        with local_cluster(2) as cluster, Client(cluster) as client:
            eng = DaskEngine.generate(client, FAMILY, n, d, SEED, blocks=4)
            measure("LocalCluster, 2 workers", eng)
            eng.close()
    header = ["engine", "loss and gradient", "rounds", "bytes per call", "ms per call"]
    return f"A: {FAMILY} {n}×{d}, 4 blocks\n\n" + markdown_table(header, rows)


def _seconds(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def torch_cpu(n, d, methods, repeats) -> str:
    import torch

    rows = []
    p = make_instance(FAMILY, n, d, SEED).prob
    A, b, w = p.A, p.b, p.w
    for threads in (1, 2):
        torch.set_num_threads(threads)
        for method in methods:
            with threadpool_limits(1):
                with LocalEngine.from_arrays(A, b, w, blocks=threads, workers=threads) as eng:
                    tn, nn, _ = timed(EngineRegression(eng), method, repeats)
            with TorchEngine.from_arrays(A, b, w, blocks=1, device="cpu") as eng:
                tt, nt, _ = timed(EngineRegression(eng), method, repeats)
            rows.append(
                [
                    f"{n}×{d}",
                    method,
                    str(threads),
                    f"{nn} / {nt}",
                    per_iteration(tn, nn),
                    per_iteration(tt, nt),
                    f"{(tt / nt) / (tn / nn):.2f}×",
                ]
            )
    return markdown_table(
        [
            "A",
            "method",
            "threads",
            "nit (numpy / torch)",
            "ms/it numpy",
            "ms/it torch",
            "torch / numpy",
        ],
        rows,
    )


def constants() -> str:
    """The cost model's inputs (docs/solver.md, "Cost model"): one core's pass over A (A x and
    Aᵀ r, GB/s of A read), its syrk rate (GFLOP/s of Aᵀ diag(v) A, n d² flops), and the round
    trip of an empty round on a LocalCluster of 2 workers (one actor each) and of the thread
    pool."""
    from dask.distributed import Client

    from theory.dask_engine import DaskEngine, local_cluster

    n, d = 1 << 18, 64
    A, b, w = block_rows(FAMILY, n, d, SEED, 0, n)
    x, r, v = np.ones(d), np.ones(n), np.abs(np.sin(np.arange(n))) + 0.1
    with threadpool_limits(1):
        t = best_times(
            {"pass": lambda: (A @ x, A.T @ r), "gram": lambda: weighted_gram(A, v)}, repeats=5
        )
    rows = [
        ["one core: A x + Aᵀ r", f"{2 * A.nbytes / t['pass'] / 1e9:.2f} GB/s of A"],
        ["one core: Aᵀ diag(v) A", f"{n * d * d / t['gram'] / 1e9:.1f} GFLOP/s (n d² flops)"],
    ]
    with LocalEngine.generate(FAMILY, 4096, d, SEED, blocks=2, workers=2) as eng:
        rows.append(["thread pool, 2 blocks: an empty round", f"{1e6 * _round(eng):.0f} µs"])
    with local_cluster(2) as cluster, Client(cluster) as client:
        eng = DaskEngine.generate(client, FAMILY, 4096, d, SEED, blocks=2)
        rows.append(["LocalCluster, 2 actors: an empty round", f"{1e6 * _round(eng):.0f} µs"])
        eng.close()
    return markdown_table(["what", "measured"], rows)


def _round(eng, k: int = 200) -> float:
    """Median seconds of an empty round (a kernel that frees nothing)."""
    times = []
    for _ in range(k):
        t0 = time.perf_counter()
        eng.map(Block.free, [])
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def rounds_table(
    methods, n: int, families=("sparse", "coherent", "peaked", "quadratic"), swept: bool = False
) -> str:
    """Rounds an iteration of each method on a one-worker ``LocalEngine`` (n×64, 2 blocks), with
    the iterations and final loss: what a cluster pays in latency per iteration. ``swept``: the
    point and loss in one sweep at every size, as on a cluster (``EngineRegression.sweeps``)."""
    rows = []
    for family in families:
        with LocalEngine.generate(family, n, 64, SEED, blocks=2) as eng:
            prob = EngineRegression(eng)
            if swept:
                prob.sweeps = lambda: True  # type: ignore[method-assign]
            for method in methods:
                before = eng.rounds
                res = solve(prob, method=method, tol=TOL)
                per_it = (eng.rounds - before) / max(res.nit, 1)
                rows.append([family, method, str(res.nit), f"{per_it:.2f}", f"{res.fun:.12f}"])
    return markdown_table(["family", "method", "nit", "rounds / iteration", "loss"], rows)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="small sizes")
    p.add_argument("--methods", default="newton,sketched-subspace-newton", help="comma-separated")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument(
        "--parts", default="constants,threads,dask,gradient,rounds,torch", help="which tables"
    )
    p.add_argument("--no-scipy", action="store_true", help="threads: skip scipy's anchors")
    args = p.parse_args(argv)
    methods = args.methods.split(",")
    bad = [m for m in methods if m not in METHODS]
    if bad:
        p.error(f"unknown methods {', '.join(bad)}; valid: {', '.join(METHODS)}")
    sizes = [(65536, 32), (16384, 128)] if args.quick else [(1 << 20, 64), (1 << 17, 256)]
    big = (1 << 18, 64) if args.quick else (1 << 22, 64)
    print(machine(), flush=True)
    parts = args.parts.split(",")
    if "constants" in parts:
        print("\n### Constants of the cost model\n\n" + constants(), flush=True)
    if "threads" in parts:
        print(
            "\n### Thread pool: 2 workers against 1\n\n"
            + thread_pool(sizes, methods, args.repeats, anchors=not args.no_scipy),
            flush=True,
        )
    if "dask" in parts:
        print(
            "\n### LocalCluster of 2 workers against the in-process engine with 2 threads\n\n"
            + dask_cluster(*big, methods, args.repeats),
            flush=True,
        )
    if "gradient" in parts:
        print(
            "\n### The loss and gradient on an engine: row by row against one sweep\n\n"
            + gradient_rounds(*big, args.repeats),
            flush=True,
        )
    if "rounds" in parts:
        n = 1 << (12 if args.quick else 16)
        print(f"\n### Rounds an iteration ({n}×64, 2 blocks)\n\n" + rounds_table(methods, n))
    if "rounds-swept" in parts:
        n = 1 << (12 if args.quick else 16)
        head = (
            f"\n### Rounds an iteration with the sweep on, as on a cluster ({n}×64, 2 blocks)\n\n"
        )
        print(head + rounds_table(methods, n, swept=True))
    if "torch" in parts:
        print(
            "\n### torch (CPU) against numpy\n\n" + torch_cpu(*sizes[0], methods, args.repeats),
            flush=True,
        )


if __name__ == "__main__":
    main()
