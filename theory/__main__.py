"""``python -m theory solve``: solve one generated instance, compare, and plot the convergence.

Prints each iterate as it happens, then a side-by-side summary of the chosen method, exact Newton
and scipy's trust-krylov (iterations, time, final max|g|, ||x − x*||), and writes a plot of the
error against iteration and time (log scale). The defaults finish in a few seconds::

    python -m theory solve --regime sparse --n 16384 --d 64 --plot convergence.png

With no options it solves that instance and writes ``convergence.png`` (``--plot ''`` for none).
Exit status: 0 when the chosen method converged (max|g| ≤ tol), 1 when it stopped without
converging (its message says why), 2 for bad input, which is refused before any work starts (a
tolerance that is not a positive finite number, ``--eps`` outside (0, 1), a plot path that cannot
be written, an instance larger than the free memory). ``--threads`` sets the BLAS threads
(threadpoolctl; default: the physical cores) and is printed, since the times depend on it.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import sys

import numpy as np

from theory.blocks import BLOCK_FAMILIES
from theory.instances import FAMILIES, Instance, make_instance
from theory.sketch import SKETCHES
from theory.solve import DEFAULT_METHOD, DEFAULT_SKETCH, METHODS, SOLVERS, solve

ANCHORS = ("newton", "scipy-trust-krylov")
BACKENDS = ("numpy", "torch", "dask")


def parse_args(argv):
    fmt = argparse.ArgumentDefaultsHelpFormatter
    parser = argparse.ArgumentParser(
        prog="python -m theory", description=__doc__.split("\n")[0], formatter_class=fmt
    )
    parser.add_argument("--version", action="version", version=f"theory {version()}")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser(
        "solve", help="solve a generated instance and compare with the anchors", formatter_class=fmt
    )
    p.add_argument("--n", type=int, default=16384, help="rows of A")
    p.add_argument("--d", type=int, default=64, help="columns of A")
    p.add_argument("--regime", choices=list(FAMILIES), default="sparse", help="instance family")
    p.add_argument("--method", choices=METHODS, default=DEFAULT_METHOD, help="solver")
    p.add_argument(
        "--sketch",
        choices=list(SKETCHES),
        default=DEFAULT_SKETCH,
        help="the sketched methods' sketch",
    )
    p.add_argument(
        "--eps",
        type=fraction,
        default=None,
        help="sketch accuracy in (0, 1): sample size from the sketch's rule s(d, eps, 0.1) "
        "(default: the method's own size; 'uniform' has no rule)",
    )
    p.add_argument("--tol", type=positive_float, default=1e-8, help="stop at max|g| <= tol")
    p.add_argument("--max-iter", type=positive_int, default=100, help="iterations at most")
    p.add_argument("--seed", type=int, default=0, help="seed of the instance and the sketches")
    p.add_argument(
        "--threads", type=positive_int, default=None, help="BLAS threads; None = the physical cores"
    )
    p.add_argument(
        "--backend",
        choices=BACKENDS,
        default="numpy",
        help="where A lives: numpy (in process; with --workers > 1 a thread pool over row "
        "blocks), torch (tensors on --device) or dask (a cluster: --scheduler, else a local one "
        "of --workers processes); other than numpy with one worker, A is drawn block by block "
        "where it lives (--regime quadratic, sparse or coherent)",
    )
    p.add_argument(
        "--workers", type=positive_int, default=1, help="threads (numpy) or worker processes (dask)"
    )
    p.add_argument("--blocks", type=positive_int, default=None, help="row blocks; default: workers")
    p.add_argument("--device", default=None, help="torch device (default: cuda when present)")
    p.add_argument("--scheduler", default=None, help="address of a running Dask scheduler")
    p.add_argument(
        "--plot",
        metavar="FILE",
        default="convergence.png",
        help="write the convergence plot here ('' for none)",
    )
    args = parser.parse_args(argv)
    if on_engine(args) and args.regime not in BLOCK_FAMILIES:
        parser.error(
            f"--backend {args.backend} draws A block by block where it lives; --regime must be "
            f"one of {', '.join(BLOCK_FAMILIES)}, not {args.regime}"
        )
    if args.scheduler and args.backend != "dask":
        parser.error("--scheduler applies to --backend dask only")
    if args.device and args.backend != "torch":
        parser.error("--device applies to --backend torch only")
    if args.eps is not None and not method_options(args.method, args.sketch, args.eps):
        parser.error(f"--eps applies to the sketched methods only, not to {args.method}")
    return args


def version() -> str:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as package_version

    try:
        return package_version("infoprompt")
    except PackageNotFoundError:
        return "unknown (not installed; pip install -e .)"


def positive_float(text: str) -> float:
    """A finite number > 0 (argparse type)."""
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not (math.isfinite(v) and v > 0):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text}")
    return v


def fraction(text: str) -> float:
    """A number in the open interval (0, 1) (argparse type)."""
    v = positive_float(text)
    if v >= 1:
        raise argparse.ArgumentTypeError(f"must lie in (0, 1), got {text}")
    return v


def positive_int(text: str) -> int:
    """An integer >= 1 (argparse type)."""
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {text}")
    return v


def check_plot_path(path: str) -> None:
    """ValueError unless ``path`` can be written: its folder exists and is writable, and it is
    not a folder itself."""
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise ValueError(f"--plot {path!r} is a folder; give a file name such as conv.png")
    if not os.path.isdir(folder):
        raise ValueError(f"--plot {path!r}: the folder {folder!r} does not exist; create it first")
    if not os.access(folder, os.W_OK):
        raise ValueError(f"--plot {path!r}: cannot write in {folder!r}; choose another path")


def check_memory(n: int, d: int) -> None:
    """ValueError, before anything is allocated, if the instance's A (n × d float64) and the
    solvers' copies (about three times A) exceed the free memory."""
    need = 3 * 8 * n * d
    try:
        free = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return
    if need > free:
        raise ValueError(
            f"an instance of {n} × {d} needs about {need / 2**30:.1f} GiB (A in float64 and the "
            f"solvers' copies) but {free / 2**30:.1f} GiB are free; choose a smaller --n or --d"
        )


def set_threads(threads: int | None) -> int:
    """Limit BLAS to ``threads`` (default: the physical cores, at least 1); print and return it."""
    from threadpoolctl import threadpool_limits

    if threads is None:
        try:
            import psutil

            threads = psutil.cpu_count(logical=False) or os.cpu_count() or 1
        except ImportError:
            threads = os.cpu_count() or 1
    threadpool_limits(limits=threads)
    print(f"threads: {threads} (BLAS; --threads to change)", flush=True)
    return threads


def method_options(method: str, sketch: str, eps: float | None) -> dict:
    if not SOLVERS[method].sketched:
        return {}
    return {"sketch": sketch, **({"eps": eps} if eps is not None else {})}


def summary_table(results) -> str:
    """Markdown table: one row per result."""
    rows = [
        "| method | iterations | time (s) | final ‖g‖∞ | ‖x − x*‖ |",
        "|---|---:|---:|---:|---:|",
    ]
    for r in results:
        h = r.history
        rows.append(
            f"| {r.method} | {r.nit} | {h['time'][-1]:.3f} | {h['grad_inf'][-1]:.2e} | "
            f"{h['error'][-1]:.2e} |" + ("" if r.success else f" ({r.message})")
        )
    return "\n".join(rows)


def plot(results, path: str, title: str, tol: float) -> None:
    """Left: ‖x_k − x*‖ against the iteration, x* the reference minimiser; right: max|g| against
    time, with the stopping tolerance marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_it, ax_t) = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
    for r in results:
        err = np.maximum(r.history["error"], 1e-17)
        ax_it.semilogy(np.arange(err.size), err, marker="o", ms=3, label=r.method)
        ax_t.semilogy(r.history["time"], r.history["grad_inf"], marker="o", ms=3, label=r.method)
    ax_it.set(xlabel="iteration", ylabel="‖x − x*‖", title=title)
    ax_it.text(0.02, 0.02, "x*: exact Newton to its rounding floor", transform=ax_it.transAxes,
               fontsize=8)  # fmt: skip
    ax_t.axhline(tol, color="gray", ls="--", lw=1, label=f"tol = {tol:g}")
    ax_t.set(xlabel="time (s)", ylabel="max |∇L(x)|")
    ax_it.legend()
    ax_t.legend(fontsize=8)
    tmp = f"{path}.tmp.png"  # written whole, then renamed: never a half-written plot
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    os.replace(tmp, path)


def on_engine(args) -> bool:
    """Whether the instance lives on an engine (anything but numpy with one worker)."""
    return args.backend != "numpy" or args.workers > 1


def engine_instance(args, stack: contextlib.ExitStack) -> Instance:
    """The instance drawn block by block on the chosen engine (closed by ``stack``)."""
    from theory.distributed import EngineRegression
    from theory.engine import LocalEngine, TorchEngine

    blocks, where = args.blocks or args.workers, ""
    size = (args.regime, args.n, args.d, args.seed)
    if args.backend == "numpy":
        eng = LocalEngine.generate(*size, blocks=blocks, workers=args.workers)
    elif args.backend == "torch":
        eng = TorchEngine.generate(*size, blocks=blocks, workers=args.workers, device=args.device)
        where = f", device {eng.blocks[0].A.device}"
    else:
        from dask.distributed import Client

        from theory.dask_engine import DaskEngine, local_cluster

        if args.scheduler:
            client = stack.enter_context(Client(args.scheduler))
        else:
            cluster = stack.enter_context(local_cluster(args.workers))
            client = stack.enter_context(Client(cluster))
        eng = DaskEngine.generate(client, *size, blocks=args.blocks)
        where = f", scheduler {client.scheduler.address}"
    stack.enter_context(eng)
    print(f"engine: {eng!r}{where}", flush=True)
    return Instance(args.regime, args.seed, EngineRegression(eng), np.zeros(args.d))


def main(argv=None) -> int:
    args = parse_args(argv)
    with contextlib.ExitStack() as stack:
        try:
            if args.plot:
                check_plot_path(args.plot)
            if not (args.backend == "dask" and args.scheduler):
                check_memory(args.n, args.d)
            set_threads(args.threads)
            if on_engine(args):
                inst = engine_instance(args, stack)
            else:
                inst = make_instance(args.regime, args.n, args.d, seed=args.seed)
        except ValueError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        return run(args, inst)


def run(args, inst: Instance) -> int:
    """Solve with the chosen method and the anchors, print the table, plot; the exit status."""
    print(
        f"{inst.name}: computing the reference x* (exact Newton to its rounding floor) ...",
        flush=True,
    )
    x_star = inst.x_star
    results = []
    for method in dict.fromkeys((args.method, *ANCHORS)):
        try:
            res = solve(
                inst.prob,
                method=method,
                tol=args.tol,
                seed=args.seed,
                x0=inst.x0,
                x_star=x_star,
                max_iter=args.max_iter,
                verbose=True,
                **method_options(method, args.sketch, args.eps),
            )
        except ValueError as e:  # bad combinations are refused before any work
            print(f"error: {e}", file=sys.stderr)
            return 2
        results.append(res)
    print()
    print(summary_table(results))
    if args.plot:
        plot(results, args.plot, inst.name, args.tol)
        print(f"\nwrote {args.plot}")
    if not results[0].success:
        print(f"\n{args.method} did not converge: {results[0].message}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
