"""Solvers for softmax regression, timed to ``max|g| ≤ 1e-8`` from x0 = 0, in one run.

    python benchmarks/solvers.py --quick        # CI-sized: n ≤ 32768 (about a minute)
    python benchmarks/solvers.py                # the sizes of docs/solver.md (several minutes)
    python benchmarks/solvers.py --theorem      # Theorem D.1 measured: contraction vs 0.4
    python benchmarks/solvers.py --seeds 1,2,3  # the default vs scipy's best on other seeds
    python benchmarks/solvers.py --against ../old-tree [--methods newton,...] [--size 16384x64]
                                                # this tree against another checkout, in one run

``--against TREE`` runs the table's solves in two worker processes, one importing ``theory`` from
this checkout and one from TREE (for example ``git worktree add ../old-tree <commit>``), asking both
for each (instance, method) in turn, twice, in the order old, new, new, old, so that load changes
hit both alike; it prints new/old time ratios and both iteration counts.

Prints markdown tables: time and iterations per method and family, as ratios to the fastest scipy
method that converged (so noise on a shared machine cancels within a row); a per-iteration
breakdown (gradient, leverage scores, sampled build, solve) and sampled vs exact Hessian builds;
and the machine and versions. Each solve is repeated (at most 25 times) while the repeats take
under two seconds in all; the fastest run counts.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import sys
import time
import warnings

import numpy as np
import scipy

from theory.bounds import B_norm_bound
from theory.instances import make_instance
from theory.linalg import approximate_leverage_scores
from theory.preconditioner import range_corrected
from theory.sketch import ApproximateLeverage, exact_leverage_scores
from theory.solve import DEFAULT_METHOD, SCIPY_METHODS, solve

TOL = 1e-8
SKETCHED = [("sketched-newton", s) for s in ("leverage", "uniform", "countsketch", "srtt")]
METHODS = [
    (DEFAULT_METHOD, "leverage"),
    ("sketched-newton-cg", "leverage"),
    *SKETCHED,
    ("newton", None),
    *[(m, None) for m in SCIPY_METHODS],
    ("gradient-descent", None),
]
MAX_ITER = {"gradient-descent": 200, "scipy-l-bfgs-b": 500, "sketched-newton": 100}  # others: 200
MIXING_SKETCH_MAX_ND = 2**24  # srtt (O(n d log n), an n×d copy) only up to n·d = 16M
SIZES = {
    "quick": [
        ((16384, 64), ("quadratic", "sparse", "peaked", "coherent")),
        ((16384, 1024), ("wide",)),
    ],
    "full": [
        ((16384, 64), ("quadratic", "sparse", "peaked", "coherent")),
        ((131072, 256), ("quadratic", "sparse", "peaked", "coherent")),
        ((1048576, 64), ("sparse", "coherent")),
        ((65536, 1024), ("wide",)),
    ],
}


def machine() -> str:
    cpu = (
        next(
            (ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if "model name" in ln),
            platform.processor(),
        )
        if os.path.exists("/proc/cpuinfo")
        else platform.processor()
    )
    threads = os.environ.get("OPENBLAS_NUM_THREADS", "unset")
    return (
        f"{cpu}, {os.cpu_count()} CPUs, python {platform.python_version()}, numpy "
        f"{np.__version__}, scipy {scipy.__version__}, OPENBLAS_NUM_THREADS={threads}"
    )


def timed_solve(prob, method, sketch, budget: float = 2.0, max_runs: int = 25):
    """The fastest of up to ``max_runs`` runs, repeated while their total stays under ``budget`` s
    (a solve of a few milliseconds is timed 25 times; one over two seconds, once)."""
    kw = {"sketch": sketch} if sketch else {}
    best, spent = None, 0.0
    for _ in range(max_runs):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            t0 = time.perf_counter()
            res = solve(prob, method=method, tol=TOL, max_iter=MAX_ITER.get(method, 200), **kw)
            t = time.perf_counter() - t0
        if best is None or t < best[0]:
            best = (t, res)
        spent += t
        if spent >= budget:
            break
    return best


def label(method, sketch) -> str:
    return f"{method} ({sketch})" if method == "sketched-newton" else method


def pass_times(prob) -> dict[str, float]:
    """Seconds of one pass ``A @ x`` and of one ``prob.gradient(x)`` (best of 7, one call each
    in turn), at a point with ``‖A x‖∞ = 3``."""
    x = np.random.default_rng(1).standard_normal(prob.d)
    x *= 3.0 / np.max(np.abs(prob.A @ x))
    ops = {"pass": lambda: prob.A @ x, "gradient": lambda: prob.gradient(x)}
    best = dict.fromkeys(ops, math.inf)
    for _ in range(8):  # the first round warms up
        for k, op in ops.items():
            t0 = time.perf_counter()
            op()
            best[k] = min(best[k], time.perf_counter() - t0)
    return best


def benchmark_family(family, n, d, seed=0, methods=METHODS):
    """Rows ``(label, time, nit, converged)`` for every method on one instance, and a last row
    ``("passes", one pass, one gradient, True)`` in seconds (:func:`floor_table`)."""
    prob = make_instance(family, n, d, seed=seed).prob
    rows = []
    for method, sketch in methods:
        if sketch == "srtt" and n * d > MIXING_SKETCH_MAX_ND:
            continue
        t, res = timed_solve(prob, method, sketch)
        rows.append((label(method, sketch), t, res.nit, res.success))
    t = pass_times(prob)
    rows.append(("passes", t["pass"], t["gradient"], True))
    return rows


def floor_table(results) -> str:
    """Markdown, per instance: one pass ``A @ x`` (ms), one gradient and the default's solve in
    passes, and the floor: exact Newton's iterations × one gradient (what a method that needed
    Newton's iterations and paid one gradient each would take), with the default over it."""
    lines = [
        "| instance | 1 pass (ms) | gradient (passes) | default (passes) | Newton nit × gradient "
        "(passes) | default / floor |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for (family, n, d), rows in results.items():
        by = {r[0]: r for r in rows}
        _, p, g, _ = by["passes"]
        floor = max(by["newton"][2], 1) * g
        t = by[DEFAULT_METHOD][1]
        lines.append(
            f"| {family} {n}×{d} | {1e3 * p:.2f} | {g / p:.2f} | {t / p:.1f} | {floor / p:.1f} "
            f"| {t / floor:.1f} |"
        )
    return "\n".join(lines)


def fastest_scipy(rows):
    """The row ``(label, time, nit, converged)`` of the fastest scipy method that converged, or None."""
    ok = [r for r in rows if r[0] in SCIPY_METHODS and r[3]]
    return min(ok, key=lambda r: r[1]) if ok else None


def ratio_table(results) -> str:
    """Markdown: one column per (family, size), cells ``ratio (iterations)``."""
    cols = list(results)
    header = "| method | " + " | ".join(f"{f} {n}×{d}" for f, n, d in cols) + " |"
    lines = [header, "|---|" + "---:|" * len(cols)]
    ref = {}
    for c in cols:
        best = fastest_scipy(results[c])
        ref[c] = best[1] if best else math.nan
    lines.append("| fastest scipy (s) | " + " | ".join(f"{ref[c]:.3f}" for c in cols) + " |")
    for name in dict.fromkeys(m for c in cols for m, *_ in results[c] if m != "passes"):
        cells = []
        for c in cols:
            row = next((r for r in results[c] if r[0] == name), None)
            if row is None:
                cells.append("—")
            else:
                _, t, nit, ok = row
                cells.append(f"{t / ref[c]:.2f} ({nit})" if ok else f">{t / ref[c]:.1f} (no conv.)")
        bold = "**" if name == DEFAULT_METHOD else ""
        lines.append(f"| {bold}{name}{bold} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def seeds_table(sizes, seeds) -> str:
    """The default against the fastest scipy method on other seeds than the main table's (is the
    main table's seed 0 typical?): one row per (family, size, seed)."""
    methods = [(DEFAULT_METHOD, "leverage"), *[(m, None) for m in SCIPY_METHODS]]
    lines = [
        "| instance | seed | fastest scipy | its time (s) | default / fastest scipy (iterations) |",
        "|---|---:|---|---:|---:|",
    ]
    for (n, d), families in sizes:
        for family in families:
            for seed in seeds:
                rows = benchmark_family(family, n, d, seed, methods)
                best, (_, t, nit, conv) = fastest_scipy(rows), rows[0]
                if best is None:
                    name, ref = "—", "—"
                    cell = f"{t:.3f} s ({nit}{'' if conv else ', no conv.'}); no scipy method converged"
                else:
                    name, ref = best[0], f"{best[1]:.3f}"
                    ratio = t / best[1]
                    cell = f"{ratio:.2f} ({nit})" if conv else f">{ratio:.1f} (no conv.)"
                lines.append(f"| {family} {n}×{d} | {seed} | {name} | {ref} | {cell} |")
                print(f"done {family} {n}×{d} seed {seed}", file=sys.stderr, flush=True)
    return "\n".join(lines)


def best_of(fn, repeat=3) -> float:
    ts = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return min(ts)


def breakdown(n, d) -> str:
    """Cost of each step at one size (sparse family at x*), in seconds and gradient evaluations."""
    inst = make_instance("sparse", n, d, seed=0)
    p, x = inst.prob, inst.x_star
    v = p.hessian_parts(x).diag
    rng = np.random.default_rng(0)
    s = 16 * d
    sk = ApproximateLeverage()
    sk.gram(p.A, np.maximum(v, 0), s, rng)  # warm: scores computed, reused below
    t_grad = best_of(lambda: p.gradient(x))
    costs = {
        "gradient ∇L (one sweep)": t_grad,
        "Hessian-vector product": best_of(lambda: p.hessp(x, np.ones(d))),
        "approximate leverage scores": best_of(
            lambda: approximate_leverage_scores(p.A, np.maximum(v, 0), rng)
        ),
        "exact Hessian build (syrk)": best_of(lambda: p.hessian(x)),
        f"sampled Hessian build, s = 16d = {s} (scores reused)": best_of(
            lambda: sk.gram(p.A, np.maximum(v, 0), s, rng)
        ),
        "subspace preconditioner, s = 64d, range-corrected (scores reused)": best_of(
            lambda: range_corrected(p.rows, p.hessian_parts(x), sk, 64 * d, rng)
        ),
    }
    if n * d <= MIXING_SKETCH_MAX_ND:
        costs["exact leverage scores (thin QR)"] = best_of(
            lambda: exact_leverage_scores(p.A, np.maximum(v, 0)), repeat=1
        )
    lines = [
        f"Costs at n = {n}, d = {d} (sparse family, at x*):",
        "",
        "| step | time (s) | gradient evaluations |",
        "|---|---:|---:|",
    ]
    lines += [f"| {k} | {t:.4f} | {t / t_grad:.2f} |" for k, t in costs.items()]
    sampled = costs[f"sampled Hessian build, s = 16d = {s} (scores reused)"]
    lines.append(f"\nsampled / exact build: {sampled / costs['exact Hessian build (syrk)']:.3f}")
    lines.append("\nPer-iteration means within solves (seconds):\n")
    lines.append(
        "| method | iterations | gradient | leverage | build | solve (subspace / CG / Cholesky) |"
    )
    lines.append("|---|---:|---:|---:|---:|---:|")
    for method in (DEFAULT_METHOD, "sketched-newton-cg", "sketched-newton", "newton"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            h = solve(p, method=method, tol=TOL).history
        m = {
            k: float(np.mean(np.nan_to_num(h[k][1:])))
            for k in ("t_grad", "t_leverage", "t_build", "t_solve")
        }
        lines.append(
            f"| {method} | {len(h['loss']) - 1} | {m['t_grad']:.4f} | "
            f"{m['t_leverage']:.4f} | {m['t_build']:.4f} | {m['t_solve']:.4f} |"
        )
    return "\n".join(lines)


def theorem_figures(n=4096, d=16, seeds=(0, 1, 2)) -> str:
    """Contraction ``||x_{t+1} − x*|| / ||x_t − x*||`` of full-step sketched Newton, vs the paper's 0.4."""
    lines = [
        "| instance | method | ε (rule) | s | ratios per iteration | max ratio | ‖B − W²‖ / min w² |",
        "|---|---|---:|---:|---|---:|---:|",
    ]
    for seed in seeds:
        inst = make_instance("theorem", n, d, seed=seed)
        p, xs = inst.prob, inst.x_star
        share = np.linalg.norm(p.B(xs) - np.diag(p.w2), 2) / p.w2.min() if n <= 4096 else math.nan
        for method, eps in (
            ("sketched-newton", 0.01),
            ("sketched-newton", 0.1),
            ("sketched-newton", 0.5),
            ("newton", None),
        ):
            kw = {"sketch": "leverage-exact", "eps": eps} if eps else {}
            res = solve(
                p,
                method=method,
                tol=1e-14,
                line_search=False,
                x0=inst.x0,
                x_star=xs,
                max_iter=8,
                **kw,
            )
            e = res.history["error"]
            keep = e[:-1] > 1e-12 * max(1.0, np.linalg.norm(xs))
            r = (e[1:] / e[:-1])[keep]
            s = int(np.nanmax(res.history["sketch_size"])) if eps else "—"
            lines.append(
                f"| theorem seed {seed} | {method} | {eps or '—'} | {s} | "
                f"{', '.join(f'{q:.1e}' for q in r[:5])} | {r.max():.2e} | {share:.1e} |"
            )
    lines.append("\nOutside the regime (x0 = 0, s = 16 d, leverage):\n")
    lines.append("| instance | method | step | converged | iterations | final ‖g‖∞ | message |")
    lines.append("|---|---|---|---|---:|---:|---|")
    for family, (nn, dd) in (
        ("sparse", (16384, 64)),
        ("peaked", (16384, 64)),
        ("coherent", (16384, 64)),
    ):
        p = make_instance(family, nn, dd, seed=0).prob
        M = B_norm_bound(p.b)
        for method in ("sketched-newton", "newton"):
            for ls in (False, True):
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    res = solve(p, method=method, line_search=ls, tol=TOL, max_iter=100)
                lines.append(
                    f"| {family} {nn}×{dd} (min w²/M = {p.w2.min() / M:.1e}) | {method} | "
                    f"{'Armijo' if ls else 'full'} | {res.success} | {res.nit} | "
                    f"{np.max(np.abs(res.jac)):.1e} | {res.message[:40]} |"
                )
    return "\n".join(lines)


WORKER = r"""
import json, sys, time, warnings
sys.path.insert(0, sys.argv[1])
import numpy as np
from theory import SoftmaxRegression
from theory.solve import solve
cache = {}
for line in sys.stdin:
    job = json.loads(line)
    key = job["arrays"]
    if key not in cache:
        cache.clear()
        cache[key] = SoftmaxRegression(*(np.load(f"{key}/{x}.npy") for x in "Abw"))
    kw = {"sketch": job["sketch"]} if job["sketch"] else {}
    best, spent = None, 0.0
    for _ in range(job["max_runs"]):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            t0 = time.perf_counter()
            res = solve(cache[key], method=job["method"], tol=job["tol"], max_iter=job["max_iter"], **kw)
            t = time.perf_counter() - t0
        best = t if best is None else min(best, t)
        spent += t
        if spent >= job["budget"]:
            break
    print(json.dumps({"t": best, "nit": int(res.nit), "ok": bool(res.success)}), flush=True)
"""


class Worker:
    """A process that imports ``theory`` from ``tree`` and times solves on request (:data:`WORKER`)."""

    def __init__(self, tree: str):
        import subprocess

        self.proc = subprocess.Popen(
            [sys.executable, "-c", WORKER, os.path.abspath(tree)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def time(self, arrays, method, sketch, budget):
        import json

        job = {
            "arrays": arrays,
            "method": method,
            "sketch": sketch,
            "tol": TOL,
            "max_iter": MAX_ITER.get(method, 200),
            "budget": budget,
            "max_runs": 25,
        }
        self.proc.stdin.write(json.dumps(job) + "\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())


def against_table(old_tree: str, sizes, methods, budget: float = 2.0) -> str:
    """New (this checkout) against ``old_tree`` in one run: per cell ``t_new / t_old`` (best of two
    interleaved rounds, each best of repeats within ``budget`` s) and ``nit new/old``. Both solve
    the same arrays, this checkout's ``make_instance``, saved once and loaded by each worker."""
    import tempfile

    import numpy as np

    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    old, new = Worker(old_tree), Worker(here)
    cols = [(f, n, d) for (n, d), fams in sizes for f in fams]
    cells = {}
    tmp = tempfile.TemporaryDirectory()
    for f, n, d in cols:
        p = make_instance(f, n, d, seed=0).prob
        arrays = os.path.join(tmp.name, f"{f}-{n}-{d}")
        os.makedirs(arrays)
        for name, x in zip("Abw", (p.A, p.b, p.w)):
            np.save(f"{arrays}/{name}.npy", x)
        del p
        for method, sketch in methods:
            if sketch == "srtt" and n * d > MIXING_SKETCH_MAX_ND:
                continue
            runs = {"old": [], "new": []}
            for who in ("old", "new", "new", "old"):
                runs[who].append(
                    (old if who == "old" else new).time(arrays, method, sketch, budget)
                )
            cells[(f, n, d, label(method, sketch))] = runs
            t_o, t_n = (min(r["t"] for r in runs[k]) for k in ("old", "new"))
            print(
                f"{f} {n}×{d} {label(method, sketch)}: new/old {t_n / t_o:.3f} "
                f"(nit {runs['new'][0]['nit']}/{runs['old'][0]['nit']})",
                file=sys.stderr,
                flush=True,
            )
    header = "| method | " + " | ".join(f"{f} {n}×{d}" for f, n, d in cols) + " |"
    lines = [header, "|---|" + "---:|" * len(cols)]
    for name in dict.fromkeys(k[3] for k in cells):
        row = []
        for f, n, d in cols:
            runs = cells.get((f, n, d, name))
            if runs is None:
                row.append("—")
                continue
            t_o, t_n = (min(r["t"] for r in runs[k]) for k in ("old", "new"))
            (o, nw) = runs["old"][0], runs["new"][0]
            conv = (
                ""
                if nw["ok"] and o["ok"]
                else f" ({'ok' if nw['ok'] else 'no'}/{'ok' if o['ok'] else 'no'})"
            )
            row.append(f"{t_n / t_o:.2f} ({nw['nit']}/{o['nit']}){conv}")
        lines.append(f"| {name} | " + " | ".join(row) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="CI-sized instances")
    ap.add_argument("--theorem", action="store_true", help="only the Theorem D.1 figures")
    ap.add_argument(
        "--seeds",
        default="",
        help="comma-separated seeds: only the default against the fastest scipy method, per seed",
    )
    ap.add_argument("--against", default="", help="another checkout to compare with, in one run")
    ap.add_argument(
        "--methods", default="", help="with --against: comma-separated labels (default: all)"
    )
    ap.add_argument("--size", default="", help="with --against: only this size, e.g. 16384x64")
    args = ap.parse_args(argv)
    print(f"machine: {machine()}\n")
    if args.against:
        picked = [m for m in METHODS if not args.methods or label(*m) in args.methods.split(",")]
        sizes = SIZES["quick" if args.quick else "full"]
        if args.size:
            sizes = [(nd, fams) for nd, fams in sizes if f"{nd[0]}x{nd[1]}" == args.size]
        print(against_table(args.against, sizes, picked))
        return 0
    if args.theorem:
        print(theorem_figures())
        return 0
    if args.seeds:
        seeds = [int(s) for s in args.seeds.split(",")]
        print(seeds_table(SIZES["quick" if args.quick else "full"], seeds))
        return 0
    results = {}
    for (n, d), families in SIZES["quick" if args.quick else "full"]:
        for family in families:
            results[(family, n, d)] = benchmark_family(family, n, d)
            print(f"done {family} {n}×{d}", file=sys.stderr, flush=True)
    print(
        f"Time to max|g| ≤ {TOL:g} from x0 = 0, as a ratio to the fastest converged scipy "
        f"method (iterations in brackets; the default method in bold):\n"
    )
    print(ratio_table(results))
    print()
    print(floor_table(results))
    print()
    print(breakdown(*((32768, 256) if args.quick else (131072, 256))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
