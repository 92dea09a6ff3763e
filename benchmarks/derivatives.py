"""Closed-form derivatives against torch.func and against the dense n×n B, as ratios in one run.

    python benchmarks/derivatives.py                 # (1024, 64), (16384, 256), (131072, 256)
    python benchmarks/derivatives.py --sizes 1024x64 --repeats 3

Columns (each a ratio of best-of-k times taken in the same run):
  hess/syrk   closed-form Hessian over its floor, one BLAS syrk Aᵀ A of A (n, d) (numpy's A.T @ A)
  hess/gemm   the same over one gemm Aᵀ A' of the same size (A' a copy of A)
  torch/hess  torch.func.hessian over the closed-form Hessian
  dense/hess  forming the dense B(x) and Aᵀ B A over the closed-form Hessian (n ≤ 4096 only)
  hessp/grad  closed-form Hessian-vector product over the closed-form gradient
  tgrad/grad  torch.func.grad over the closed-form gradient
"""

from __future__ import annotations

import argparse

import numpy as np

from benchmarks._common import best_times, machine, markdown_table
from theory import SoftmaxRegression
from theory.linalg import gram

DENSE_MAX_N = 4096


def instance(n: int, d: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((n, d)) / np.sqrt(d)
    return SoftmaxRegression(
        A, rng.dirichlet(np.ones(n)), rng.random(n) + 0.5
    ), rng.standard_normal(d)


def measure(n: int, d: int, repeats: int, autodiff_max_n: int) -> dict[str, float]:
    prob, x = instance(n, d)
    v = np.ones(d)
    A = prob.A
    A2 = A.copy()  # a second buffer, so numpy calls gemm, not syrk

    ops = {  # every call computes z = A x afresh (the objective caches nothing)
        "grad": lambda: prob.gradient(x),
        "hess": lambda: prob.hessian(x),
        "hessp": lambda: prob.hessp(x, v),
        "syrk": lambda: gram(A),
        "gemm": lambda: A.T @ A2,
    }
    if n <= DENSE_MAX_N:
        ops["dense"] = lambda: A.T @ prob.B(x) @ A
    if n <= autodiff_max_n:
        import torch

        from theory import autodiff

        At, bt, wt, xt = (torch.as_tensor(a) for a in (A, prob.b, prob.w, x))
        L = autodiff.loss_fn(At.numpy(), bt.numpy(), wt.numpy())
        ops["tgrad"] = lambda: torch.func.grad(L)(xt)
        ops["thess"] = lambda: torch.func.hessian(L)(xt)
    return best_times(ops, repeats)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--sizes", default="1024x64,16384x256,131072x256", help="n×d list, comma separated"
    )
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument(
        "--autodiff-max-n", type=int, default=131072, help="skip torch.func above this n"
    )
    args = parser.parse_args(argv)
    sizes = [tuple(int(v) for v in s.split("x")) for s in args.sizes.split(",")]

    def ratio(t, a, b):
        return f"{t[a] / t[b]:.2f}" if a in t and b in t else "–"

    rows = []
    for n, d in sizes:
        t = measure(n, d, args.repeats, args.autodiff_max_n)
        rows.append(
            [
                f"{n}×{d}",
                f"{t['hess'] * 1e3:.1f}",
                ratio(t, "hess", "syrk"),
                ratio(t, "hess", "gemm"),
                ratio(t, "thess", "hess"),
                ratio(t, "dense", "hess"),
                ratio(t, "hessp", "grad"),
                ratio(t, "tgrad", "grad"),
            ]
        )
        print(f"done {n}×{d}", flush=True)
    print(f"\nMachine: {machine()}; best of {args.repeats} interleaved repeats.\n")
    print(
        markdown_table(
            [
                "n×d",
                "hess ms",
                "hess/syrk",
                "hess/gemm",
                "torch/hess",
                "dense/hess",
                "hessp/grad",
                "tgrad/grad",
            ],
            rows,
        )
    )


if __name__ == "__main__":
    main()
