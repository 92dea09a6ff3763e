"""The loss and gradient in passes over A: each operation's time over one ``A @ x``, in one run.

    python -m benchmarks.passes                    # the three shapes of docs/solver.md
    python -m benchmarks.passes --quick            # small shapes, seconds
    python -m benchmarks.passes --chunk-kib 64,256,1024    # the sweep's chunk size
    python -m benchmarks.passes --hessian          # the exact Hessian's price (the cost model's)

One BLAS thread (threads are not what is measured), float64, the best of ``--repeats`` interleaved
calls. Columns: the time of one pass (``A @ x``), then in passes: ``prob.loss`` (z, then ℓ),
the gradient formed row by row (z = A x, then ``Aᵀ r``: two passes, what every solver did before
:mod:`theory.sweep`), ``prob.gradient`` and ``prob.loss_and_gradient`` (one sweep, the online
normaliser), and ``Aᵀ r`` alone (the second pass of the row-by-row gradient).

``--hessian`` prices the exact Hessian as :mod:`theory.preconditioner` does, in its unit of one
gradient evaluation row by row (``A x``, r, ``Aᵀ r``: about one subspace iteration), for A of
``--mib`` MiB at each d of ``--d``, beside the cost model's price.
"""

from __future__ import annotations

import argparse

import numpy as np
from threadpoolctl import threadpool_limits

import theory.sweep
from benchmarks._common import best_times, machine, markdown_table
from theory.instances import make_instance
from theory.preconditioner import hessian_price

SHAPES = ((262144, 64), (65536, 256), (1048576, 32))
QUICK = ((32768, 64), (8192, 256))


def measure(n: int, d: int, repeats: int) -> dict[str, float]:
    """Seconds of each operation at a point of the sparse family (n, d), x with ‖A x‖∞ = 3."""
    prob = make_instance("sparse", n, d, seed=0).prob
    x = np.random.default_rng(1).standard_normal(d)
    x *= 3.0 / np.max(np.abs(prob.A @ x))
    r = prob.row_by_row_point
    res = prob.residual(x)
    ops = {
        "pass": lambda: prob.A @ x,
        "loss": lambda: prob.loss(x),
        "row by row": lambda: r(x),
        "gradient": lambda: prob.gradient(x),
        "loss+gradient": lambda: prob.loss_and_gradient(x),
        "Aᵀ r": lambda: prob.A.T @ res,
    }
    return best_times(ops, repeats)


def hessian_unit(n: int, d: int, repeats: int) -> tuple[float, float]:
    """Seconds of ``(one gradient row by row, the exact Hessian Aᵀ B A)`` at a point of the sparse
    family: z = A x, r and ``Aᵀ r``, what an iteration of the subspace solver pays."""
    prob = make_instance("sparse", n, d, seed=0).prob
    x = np.random.default_rng(1).standard_normal(d)
    x *= 3.0 / np.max(np.abs(prob.A @ x))
    z = prob.A @ x
    parts = prob.loss_z.derivatives(z, prob.loss_z.softmax(z).f)[1]
    rows = prob.rows
    t = best_times(
        {
            "unit": lambda: prob.row_by_row_point(x),
            "hessian": lambda: parts.hessian(rows),
        },
        repeats,
    )
    return t["unit"], t["hessian"]


def hessian_table(mibs: list[int], ds: list[int], repeats: int) -> None:
    """Print the exact Hessian's price in the cost model's unit, measured and modelled."""
    header = ["A (MiB)", "n", "d", "gradient (ms)", "Hessian (ms)", "measured", "model"]
    rows = []
    for mib in mibs:
        for d in ds:
            n = (mib << 20) // (8 * d)
            unit, hess = hessian_unit(n, d, repeats)
            rows.append(
                [str(mib), str(n), str(d), f"{1e3 * unit:.1f}", f"{1e3 * hess:.1f}"]
                + [f"{hess / unit:.1f}", f"{hessian_price(d):.1f}"]
            )
            print(rows[-1], flush=True)
    print()
    print(markdown_table(header, rows))


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small shapes (seconds)")
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--chunk-kib", default=None, help="comma-separated chunk sizes of the sweep")
    ap.add_argument("--hessian", action="store_true", help="the exact Hessian's price instead")
    ap.add_argument("--mib", default="8,32,128", help="with --hessian: sizes of A in MiB")
    ap.add_argument("--d", default="16,32,64,128,256,512,1024", help="with --hessian: widths")
    args = ap.parse_args(argv)
    if args.hessian:
        print(f"# {machine()}; one BLAS thread; best of {args.repeats}\n")
        with threadpool_limits(1):
            hessian_table(
                [int(m) for m in args.mib.split(",")],
                [int(d) for d in args.d.split(",")],
                args.repeats,
            )
        return
    shapes = QUICK if args.quick else SHAPES
    chunks = [None] if args.chunk_kib is None else [int(c) for c in args.chunk_kib.split(",")]
    print(f"# {machine()}; one BLAS thread; best of {args.repeats}\n")
    header = [
        "n × d",
        "chunk",
        "1 pass (ms)",
        "loss",
        "row by row",
        "gradient",
        "loss+grad",
        "Aᵀ r",
    ]
    rows = []
    with threadpool_limits(1):
        for n, d in shapes:
            for kib in chunks:
                if kib is not None:
                    theory.sweep.CHUNK_BYTES = kib << 10
                t = measure(n, d, args.repeats)
                p = t["pass"]
                rows.append(
                    [f"{n}×{d}", f"{theory.sweep.chunk_rows(d)} rows", f"{1e3 * p:.1f}"]
                    + [
                        f"{t[k] / p:.2f}"
                        for k in ("loss", "row by row", "gradient", "loss+gradient", "Aᵀ r")
                    ]
                )
                print(rows[-1], flush=True)
    print()
    print(markdown_table(header, rows))


if __name__ == "__main__":
    main()
