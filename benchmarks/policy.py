"""The preconditioner policy's assumptions, measured (:mod:`theory.preconditioner`).

    python -m benchmarks.policy --after-builds      # ‖g‖ an iteration after each kind of build,
                                                    # on held-out instances (seeds 1-3, other sizes)
    python -m benchmarks.policy --price             # the exact Hessian's time in iterations of the
                                                    # default under P = I, over n and d
    python -m benchmarks.policy --variants --seed 0 # the default under policy variants, in one run
    python -m benchmarks.policy --variants --big    # the same on 2097152×64 and 4194304×64
    python -m benchmarks.policy --variants --sizes 16384x64,65536x64   # sparse, coherent, peaked

``--variants`` times ``sketched-subspace-newton`` on the sizes of ``benchmarks/solvers.py`` (with
``--big``, sparse and peaked 2097152×64, sparse and coherent 4194304×64 instead) under:
``current`` (the package as it is: the chord method's prediction after an exact build with A of
32 MiB or more, 0.3 and the rates seen after any other build); ``one prior`` (0.3 before any
build, then the rates seen after the builds so far, whatever the kind and size); ``chord in the
cache too`` (the chord prediction for every exact build);
``iteration price`` (the exact Hessian priced by ``--price``'s fit, 0.4 + d/16 iterations with A
in 16 MiB, else 0.4 + d/40); ``cache price`` (both kinds' prices × 2.3 for A under 32 MiB, the
exact Hessian's in-cache ratio to d/22 at d = 64). ``--names`` picks some. Best of 5 (2 above 4 M entries), the
variants alternating; prints each variant's time over ``current`` and its iterations.
"""

from __future__ import annotations

import argparse
import itertools
import math
import time

import numpy as np
from threadpoolctl import threadpool_limits

import theory.preconditioner as pc
import theory.subspace as sub
from benchmarks._common import best_times, machine, markdown_table
from theory.instances import make_instance
from theory.solve import solve

DEFAULT = "sketched-subspace-newton"
SIZES = [
    ((16384, 64), ("quadratic", "sparse", "peaked", "coherent")),
    ((131072, 256), ("quadratic", "sparse", "peaked", "coherent")),
    ((1048576, 64), ("sparse", "coherent")),
    ((65536, 1024), ("wide",)),
]
BIG = [((2097152, 64), ("sparse", "peaked")), ((4194304, 64), ("sparse", "coherent"))]
HELD_OUT = [
    ("sparse", 262144, 64, 1),
    ("coherent", 262144, 64, 1),
    ("peaked", 262144, 64, 1),
    ("sparse", 65536, 128, 2),
    ("coherent", 65536, 128, 2),
    ("peaked", 65536, 32, 3),
]
CURRENT_COSTS, CURRENT_CHORD = pc.build_costs, sub.uses_chord


def iteration_price(n: int, d: int, s: int, extra: float = 0.0) -> tuple[float, float]:
    """``build_costs`` with the exact Hessian at ``--price``'s fit, in iterations."""
    exact = 0.4 + d / (16.0 if 8 * n * d <= 16 << 20 else 40.0)
    return exact, pc.LEVERAGE_GRADS + extra + exact * (s + 3 * d) / n


def cache_price(n: int, d: int, s: int, extra: float = 0.0) -> tuple[float, float]:
    """``build_costs`` × 2.3 for A under 32 MiB (both kinds, so the kind chosen is the same): the
    exact Hessian in the cache at d = 64, 6.6–6.8 gradients against d/22 = 2.9 (docs/solver.md)."""
    exact, sketch = CURRENT_COSTS(n, d, s, extra)
    f = 2.3 if 8 * n * d < sub.CHORD_MIN_BYTES else 1.0
    return f * exact, f * sketch


VARIANTS = {  # (build_costs, where the chord method predicts a fresh P's contraction)
    "current": (CURRENT_COSTS, CURRENT_CHORD),
    "one prior": (CURRENT_COSTS, lambda policy, n, d: False),
    "chord in the cache too": (CURRENT_COSTS, lambda policy, n, d: policy.exact),
    "iteration price": (iteration_price, CURRENT_CHORD),
    "cache price": (cache_price, CURRENT_CHORD),
}


def use(variant: str) -> None:
    pc.build_costs, sub.uses_chord = VARIANTS[variant]


def variants(seed: int, sizes, names: list[str]) -> None:
    """Each variant's time over ``current``, and its iterations, per instance."""
    names = ["current", *(k for k in names if k != "current")]
    rows, logs = [], dict.fromkeys(names, 0.0)
    for (n, d), families in sizes:
        for family in families:
            prob = make_instance(family, n, d, seed=seed).prob
            nit: dict[str, int] = {}

            def run(name, prob=prob, nit=nit):
                use(name)
                nit[name] = solve(prob, method=DEFAULT, tol=1e-8).nit

            t = best_times({k: (lambda k=k: run(k)) for k in names}, 5 if n * d <= 1 << 22 else 2)
            use("current")
            for k in names:
                logs[k] += math.log(t[k] / t["current"])
            rows.append(
                [f"{family} {n}×{d}", f"{1e3 * t['current']:.0f} ({nit['current']})"]
                + [f"{t[k] / t['current']:.2f} ({nit[k]})" for k in names[1:]]
            )
            print(rows[-1], flush=True)
    count = sum(len(f) for _, f in sizes)
    rows.append(["geometric mean", "1"] + [f"{math.exp(logs[k] / count):.3f}" for k in names[1:]])
    print(markdown_table(["instance", "current ms (nit)", *names[1:]], rows))


def after_builds() -> None:
    """‖g‖∞'s ratio an iteration in the (up to) three iterations after each build, the kind forced
    (price 0: a build pays whenever P = I or the last P contracts more slowly than the prior) and
    the one prior 0.3 for either kind (``one prior``), so that the builds' places do not depend on
    the rates this measures."""
    rows = []
    build = sub.SubspaceNewtonSolver.build_preconditioner
    g: list[float] = []
    built: list[int] = []  # a build when len(g) = L is in iteration L: ‖g‖ goes g[L−1] → g[L]

    def counted(self, *a, **k):
        built.append(len(g))
        return build(self, *a, **k)

    sub.SubspaceNewtonSolver.build_preconditioner = counted
    use("one prior")
    try:
        for exact in (True, False):
            pc.build_costs = (lambda *a, **k: (0.0, 1e9)) if exact else (lambda *a, **k: (1e9, 0.0))
            ratios: list[float] = []
            for family, n, d, seed in HELD_OUT:
                g.clear()
                built.clear()
                prob = make_instance(family, n, d, seed=seed).prob
                solve(prob, tol=1e-8, callback=lambda x, row: g.append(row["grad_inf"]))
                for b, nxt in itertools.pairwise([*built, len(g)]):
                    ratios += [g[i] / g[i - 1] for i in range(b, min(b + 3, nxt, len(g)))]
            q = np.quantile(ratios, [0.1, 0.5, 0.9])
            rows.append(
                ["exact" if exact else "sketch", str(len(ratios))] + [f"{v:.3f}" for v in q]
            )
    finally:
        sub.SubspaceNewtonSolver.build_preconditioner = build
        use("current")
    print(markdown_table(["kind", "iterations after a build", "10 %", "median", "90 %"], rows))


def price(mibs: list[int], ds: list[int]) -> None:
    """The exact Hessian's time over one iteration of the default under P = I (sparse, seed 1)."""
    rows = []
    for mib in mibs:
        for d in ds:
            n = (mib << 20) // (8 * d)
            prob = make_instance("sparse", n, d, seed=1).prob
            z = prob.rows.matvec(np.zeros(d))
            parts = prob.loss_z.derivatives(z, prob.loss_z.softmax(z).f)[1]
            res = []
            t = best_times(
                {
                    "hessian": lambda parts=parts, prob=prob: parts.hessian(prob.rows),
                    "solve": lambda prob=prob, res=res: res.append(
                        solve(prob, tol=1e-8, max_iter=8, rebuild_after=10**6)
                    ),
                },
                3,
            )
            it = t["solve"] / res[-1].nit
            model = pc.hessian_price(d)
            rows.append([str(mib), str(d), f"{t['hessian'] / it:.2f}", f"{model:.2f}"])
            print(rows[-1], flush=True)
    print(markdown_table(["A (MiB)", "d", "measured (iterations)", "model d/22"], rows))


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--variants", action="store_true")
    ap.add_argument("--seed", type=int, default=0, help="with --variants")
    ap.add_argument("--big", action="store_true", help="with --variants: 2M and 4M rows instead")
    ap.add_argument(
        "--sizes", help="with --variants: NxD,... instead (sparse, coherent and peaked each)"
    )
    ap.add_argument(
        "--names", default=",".join(VARIANTS), help="with --variants: which, comma-separated"
    )
    ap.add_argument("--after-builds", action="store_true")
    ap.add_argument("--price", action="store_true")
    ap.add_argument("--mib", default="2,8,32,128", help="with --price")
    ap.add_argument("--d", default="16,64,256,1024", help="with --price")
    args = ap.parse_args(argv)
    if not (args.variants or args.after_builds or args.price):
        ap.error("choose --variants, --after-builds or --price")
    names = args.names.split(",")
    sizes = BIG if args.big else SIZES
    if args.sizes:
        try:
            shapes = [tuple(int(v) for v in size.split("x")) for size in args.sizes.split(",")]
        except ValueError:
            ap.error(f"--sizes: expected NxD,..., got {args.sizes!r}")
        if any(len(shape) != 2 or min(shape) < 1 for shape in shapes):
            ap.error(f"--sizes: expected NxD,... with N, D ≥ 1, got {args.sizes!r}")
        sizes = [(shape, ("sparse", "coherent", "peaked")) for shape in shapes]
    if unknown := set(names) - set(VARIANTS):
        ap.error(f"--names: unknown {sorted(unknown)}; choose from {list(VARIANTS)}")
    print(f"# {machine()}; one BLAS thread; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    with threadpool_limits(1):
        if args.after_builds:
            after_builds()
        if args.price:
            price([int(v) for v in args.mib.split(",")], [int(v) for v in args.d.split(",")])
        if args.variants:
            variants(args.seed, sizes, names)


if __name__ == "__main__":
    main()
