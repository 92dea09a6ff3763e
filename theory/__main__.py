"""``python -m theory solve``: solve one generated instance, compare, and plot the convergence.

Prints each iterate as it happens, then a summary of the chosen method and of the comparisons
``--compare`` asks for (iterations, time, final max|g|, ||x − x*|| against the reference x*), and
writes a plot of the error against iteration and time (log scale). The defaults finish in a few
seconds::

    python -m theory solve --regime sparse --n 16384 --d 64 --plot convergence.png

``--compare``: ``all`` computes the reference x* (exact Newton to its rounding floor) and solves
with exact Newton and scipy's trust-krylov beside the method; ``reference`` only x*; ``none``
nothing but the method; a comma-separated list of methods those peers and x*. The default,
``auto``, is ``all`` while A has at most :data:`COMPARE_AUTO_MAX_ND` entries and ``none`` above:
the reference and the peers cost several times the default method's solve (docs/solver.md,
"Instances and the command line"), which a small instance pays in a second and a large one should
not pay unasked.

Exit status: 0 when the chosen method converged (max|g| ≤ tol), 1 when it stopped without
converging (its message says why), 2 for bad input, which is refused before any work starts (a
tolerance that is not a positive finite number, ``--eps`` outside (0, 1), a sketch the backend
cannot run or whose size has no rule, a plot path that cannot be written, an instance larger than
the free memory, a ``--device`` this torch cannot use, a Dask scheduler that does not answer
within :data:`CONNECT_TIMEOUT_S` s), 130 on Ctrl-C (one line). ``--threads`` sets the BLAS threads
(threadpoolctl; default: the physical cores, and one per worker of a thread pool) and is printed,
since the times depend on it.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import sys

import numpy as np

from theory.blocks import BLOCK_FAMILIES, FAMILIES, check_family
from theory.engine import BlocksUnrecoverable, TorchEngine
from theory.instances import Instance, make_instance
from theory.sketch import SKETCHES
from theory.solve import DEFAULT_METHOD, DEFAULT_SKETCH, METHODS, SOLVERS, check_options, solve
from theory.validation import check_size

PEERS = (
    "newton",
    "scipy-trust-krylov",
)  # --compare all: exact Newton and scipy's best hessp method
COMPARE = ("auto", "all", "reference", "none")
COMPARE_AUTO_MAX_ND = 1 << 22  # n·d ≤ 4 M (A ≤ 32 MiB): the reference and peers take seconds
BACKENDS = ("numpy", "torch", "dask")
CONNECT_TIMEOUT_S = 5  # a Dask scheduler that does not answer by then is refused


class OneLineParser(argparse.ArgumentParser):
    """argparse, whose errors are one line (``error: …``) instead of the usage and the error."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (--help for the options)\n")


def parse_args(argv):
    fmt = argparse.ArgumentDefaultsHelpFormatter
    parser = OneLineParser(
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
    p.add_argument(
        "--sketch-size",
        type=positive_int,
        default=None,
        help="rows of the sketch (≥ d; default: the method's own size)",
    )
    p.add_argument(
        "--compare",
        type=compare_list,
        default="auto",
        help="what to solve beside --method: all (the reference x*, newton, scipy-trust-krylov), "
        "reference (x* only), none, or comma-separated methods (with x*); auto = all while "
        f"n·d ≤ {COMPARE_AUTO_MAX_ND}, else none",
    )
    p.add_argument("--tol", type=positive_float, default=1e-8, help="stop at max|g| <= tol")
    p.add_argument("--max-iter", type=positive_int, default=100, help="iterations at most")
    p.add_argument("--seed", type=int, default=0, help="seed of the instance and the sketches")
    p.add_argument(
        "--threads",
        type=positive_int,
        default=None,
        help="BLAS threads (of each worker of a thread pool); None = the physical cores, one per "
        "worker with --workers > 1",
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
    if args.backend == "torch":
        args.device = torch_device(parser, args.device)
    for flag, value in (("--eps", args.eps), ("--sketch-size", args.sketch_size)):
        if value is not None and not SOLVERS[args.method].sketched:
            parser.error(f"{flag} applies to the sketched methods only, not to {args.method}")
    return args


def torch_device(parser, device: str | None) -> str:
    """The torch device to use (default: cuda when present, else cpu); a one-line argparse error
    when torch is missing, the name is not a device, or CUDA is asked of a build without it."""
    try:
        import torch
    except ImportError:
        parser.error("--backend torch needs torch (pip install 'infoprompt[autodiff]')")
    name = device or TorchEngine.default_device()
    try:
        dev = torch.device(name)
    except RuntimeError as e:
        parser.error(f"--device {name!r} is not a torch device ({str(e).splitlines()[0]})")
    if dev.type == "cuda" and not torch.cuda.is_available():
        parser.error(
            f"--device {name}: this torch ({torch.__version__}) sees no CUDA device; use --device cpu"
        )
    return name


def compare_list(text: str) -> str | tuple[str, ...]:
    """``--compare``: one of :data:`COMPARE`, or comma-separated methods (argparse type)."""
    if text in COMPARE:
        return text
    names = tuple(m.strip() for m in text.split(",") if m.strip())
    bad = [m for m in names if m not in METHODS]
    if bad or not names:
        raise argparse.ArgumentTypeError(
            f"{text!r}: give one of {', '.join(COMPARE)} or methods among {', '.join(METHODS)}"
        )
    return names


def comparisons(args) -> tuple[bool, tuple[str, ...]]:
    """``(reference, peers)``: whether x* is computed, and the methods solved beside --method."""
    choice = args.compare
    if choice == "auto":
        choice = "all" if args.n * args.d <= COMPARE_AUTO_MAX_ND else "none"
    if choice == "none":
        return False, ()
    if choice == "reference":
        return True, ()
    peers = PEERS if choice == "all" else choice
    return True, tuple(m for m in dict.fromkeys(peers) if m != args.method)


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
    """ValueError unless ``path`` can be written, found by creating it (and removing it again
    when it did not exist): permissions and special file systems (/proc) answer only then."""
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise ValueError(f"--plot {path!r} is a folder; give a file name such as conv.png")
    if not os.path.isdir(folder):
        raise ValueError(f"--plot {path!r}: the folder {folder!r} does not exist; create it first")
    existed = os.path.exists(path)
    try:
        with open(path, "ab"):
            pass
        if not existed:
            os.remove(path)
    except OSError as e:
        raise ValueError(
            f"--plot {path!r} cannot be written ({e.strerror}); choose another path"
        ) from None


def check_request(args) -> None:
    """Every check of the command line that needs no work: the size, the family on this backend,
    and the options of the method and of its peers (sketch, sketch size, eps) for a problem of d
    columns where A will live; ValueError naming the flag."""
    check_size(args.n, args.d)
    check_family(args.regime, args.n, args.d, engine=on_engine(args))
    rows = "engine" if on_engine(args) else "memory"
    for method in (args.method, *comparisons(args)[1]):
        sketch = args.sketch if SOLVERS[method].sketched else None
        try:
            check_options(
                method, sketch, args.tol, args.seed, args.max_iter, method_options(method, args),
                d=args.d, rows=rows,
            )  # fmt: skip
        except ValueError as e:
            raise ValueError(f"{e}".replace("sketch_size", "--sketch-size")) from None


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


def set_threads(threads: int | None, workers: int = 1) -> int:
    """Limit BLAS to ``threads`` (default: the physical cores, at least 1; with a thread pool of
    ``workers`` > 1, one per worker and on the driver); print and return it."""
    from threadpoolctl import threadpool_limits

    if workers > 1:
        threads = threads or 1
        threadpool_limits(limits=threads)
        print(f"threads: {workers} workers × {threads} BLAS (--threads to change)", flush=True)
        return threads
    if threads is None:
        try:
            import psutil

            threads = psutil.cpu_count(logical=False) or os.cpu_count() or 1
        except ImportError:
            threads = os.cpu_count() or 1
    threadpool_limits(limits=threads)
    print(f"threads: {threads} (BLAS; --threads to change)", flush=True)
    return threads


def method_options(method: str, args) -> dict:
    """The solver options the flags give ``method`` (sketch options to the sketched methods)."""
    if not SOLVERS[method].sketched:
        return {}
    given = {"eps": args.eps, "sketch_size": args.sketch_size}
    return {k: v for k, v in given.items() if v is not None}


def summary_table(results) -> str:
    """Markdown table: one row per result (``‖x − x*‖`` when a reference was computed)."""
    rows = [
        "| method | iterations | time (s) | final L | final ‖g‖∞ | ‖x − x*‖ |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        h = r.history
        err = f"{h['error'][-1]:.2e}" if "error" in h else "—"
        rows.append(
            f"| {r.method} | {r.nit} | {h['time'][-1]:.3f} | {r.fun:.12g} | "
            f"{h['grad_inf'][-1]:.2e} | {err} |" + ("" if r.success else f" ({r.message})")
        )
    return "\n".join(rows)


def plot(results, path: str, title: str, tol: float) -> None:
    """Left: ‖x_k − x*‖ against the iteration, x* the reference minimiser (max|g| without one);
    right: max|g| against time, with the stopping tolerance marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_it, ax_t) = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
    with_ref = all("error" in r.history for r in results)
    for r in results:
        y = np.maximum(r.history["error"], 1e-17) if with_ref else r.history["grad_inf"]
        ax_it.semilogy(np.arange(y.size), y, marker="o", ms=3, label=r.method)
        ax_t.semilogy(r.history["time"], r.history["grad_inf"], marker="o", ms=3, label=r.method)
    ax_it.set(xlabel="iteration", ylabel="‖x − x*‖" if with_ref else "max |∇L(x)|")
    fig.suptitle(title, fontsize=10)
    if with_ref:
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
    """The instance drawn block by block on the chosen engine (closed by ``stack``): the same A,
    b, w as in memory for the same seed."""
    from theory.distributed import EngineRegression
    from theory.engine import LocalEngine, TorchEngine

    blocks = args.blocks or args.workers
    size = (args.regime, args.n, args.d, args.seed)
    if args.backend == "numpy":
        eng = LocalEngine.generate(
            *size, blocks=blocks, workers=args.workers, blas_threads=args.threads or 1
        )
        backend = f"numpy, {args.workers} threads"
    elif args.backend == "torch":
        eng = TorchEngine.generate(*size, blocks=blocks, workers=args.workers, device=args.device)
        backend = f"torch on {eng.blocks[0].A.device}"
    else:
        client, backend = dask_client(args, stack)
        from theory.dask_engine import DaskEngine

        eng = DaskEngine.generate(client, *size, blocks=args.blocks)
    stack.enter_context(eng)
    print(f"engine: {eng!r} ({backend})", flush=True)
    prob = EngineRegression(eng)  # Instance's in-memory helpers (A, b, w) are never called on it
    return Instance(args.regime, args.seed, prob, np.zeros(args.d), backend=backend)  # type: ignore[arg-type]


def dask_client(args, stack: contextlib.ExitStack):
    """A client of ``--scheduler`` (ValueError, one line, when it does not answer within
    :data:`CONNECT_TIMEOUT_S` s) or of a new LocalCluster of ``--workers`` processes."""
    import logging

    from dask.distributed import Client

    from theory.dask_engine import local_cluster

    logging.getLogger("distributed").setLevel(logging.CRITICAL)  # a lost worker is ours to report
    if not args.scheduler:
        cluster = stack.enter_context(local_cluster(args.workers))
        return stack.enter_context(Client(cluster)), f"dask, a LocalCluster of {args.workers}"
    try:
        client = Client(args.scheduler, timeout=f"{CONNECT_TIMEOUT_S}s")
    except (OSError, TimeoutError) as e:
        raise ValueError(
            f"no Dask scheduler answered at {args.scheduler} within {CONNECT_TIMEOUT_S} s "
            f"({type(e).__name__}); start one with `dask scheduler`, or omit --scheduler"
        ) from None
    return stack.enter_context(client), f"dask at {args.scheduler}"


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        with contextlib.ExitStack() as stack:
            try:
                check_request(args)
                if args.plot:
                    check_plot_path(args.plot)
                if not (args.backend == "dask" and args.scheduler):
                    check_memory(args.n, args.d)
                set_threads(args.threads, args.workers if args.backend == "numpy" else 1)
                if on_engine(args):
                    inst = engine_instance(args, stack)
                else:
                    inst = make_instance(args.regime, args.n, args.d, seed=args.seed)
            except ValueError as e:
                print(f"error: {e}", file=sys.stderr)
                return 2
            try:
                return run(args, inst)
            except BlocksUnrecoverable as e:
                print(f"error: {e}", file=sys.stderr)
                return 1
    except KeyboardInterrupt:
        print("interrupted (Ctrl-C): stopped; no plot written", file=sys.stderr)
        return 130


def run(args, inst: Instance) -> int:
    """Solve with the chosen method and the comparisons, print the table, plot; the exit status."""
    reference, peers = comparisons(args)
    x_star = None
    if reference:
        print(
            f"{inst.name}: computing the reference x* (exact Newton to its rounding floor) ...",
            flush=True,
        )
        x_star = inst.x_star
    else:
        print(f"{inst.name}: no comparisons (--compare {args.compare})", flush=True)
    results = []
    for method in (args.method, *peers):
        res = solve(
            inst.prob,
            method=method,
            sketch=args.sketch if SOLVERS[method].sketched else None,
            tol=args.tol,
            seed=args.seed,
            x0=inst.x0,
            x_star=x_star,
            max_iter=args.max_iter,
            verbose=True,
            **method_options(method, args),
        )
        results.append(res)
    print(f"\n{inst.name}\n")
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
