"""``python -m theory solve``: solve one generated instance, compare, and plot the convergence.

Prints each iterate as it happens, then a side-by-side summary of the chosen method, exact Newton
and scipy's trust-krylov (iterations, time, final max|g|, ||x − x*||), and writes a plot of the
error against iteration and time (log scale). The defaults finish in a few seconds::

    python -m theory solve --regime sparse --n 16384 --d 64 --plot convergence.png

With no options it solves that instance and writes ``convergence.png`` (``--plot ''`` for none).
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

from theory.instances import FAMILIES, make_instance
from theory.sketch import SKETCHES
from theory.solve import DEFAULT_METHOD, DEFAULT_SKETCH, METHODS, SOLVERS, solve

ANCHORS = ("newton", "scipy-trust-krylov")


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m theory", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("solve", help="solve a generated instance and compare with the anchors")
    p.add_argument("--n", type=int, default=16384, help="rows of A (default 16384)")
    p.add_argument("--d", type=int, default=64, help="columns of A (default 64)")
    p.add_argument("--regime", choices=list(FAMILIES), default="sparse", help="instance family")
    p.add_argument("--method", choices=METHODS, default=DEFAULT_METHOD)
    p.add_argument("--sketch", choices=list(SKETCHES), default=DEFAULT_SKETCH)
    p.add_argument(
        "--eps",
        type=float,
        default=None,
        help="sketch accuracy: sample size from the sketch's rule s(d, eps, 0.1) "
        "(default: the method's own size; 'uniform' has no rule)",
    )
    p.add_argument("--tol", type=float, default=1e-8, help="stop at max|g| <= tol")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--plot",
        metavar="FILE",
        default="convergence.png",
        help="write the convergence plot here (default: convergence.png; '' for none)",
    )
    return parser.parse_args(argv)


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


def plot(results, path: str, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_it, ax_t) = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
    for r in results:
        err = np.maximum(r.history["error"], 1e-17)
        ax_it.semilogy(np.arange(err.size), err, marker="o", ms=3, label=r.method)
        ax_t.semilogy(r.history["time"], err, marker="o", ms=3, label=r.method)
    ax_it.set(xlabel="iteration", ylabel="‖x − x*‖", title=title)
    ax_t.set(xlabel="time (s)", ylabel="‖x − x*‖")
    ax_it.legend()
    tmp = f"{path}.tmp.png"  # written whole, then renamed: never a half-written plot
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    os.replace(tmp, path)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        inst = make_instance(args.regime, args.n, args.d, seed=args.seed)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"{inst.name}: computing the reference x* ...", flush=True)
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
        plot(results, args.plot, inst.name)
        print(f"\nwrote {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
