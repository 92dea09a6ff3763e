"""Bit-identity and speed of the in-memory solvers across a change (the engine-sketched work).

    python benchmarks/engine_sketched_identity.py record OUT.pkl    # before the change
    python benchmarks/engine_sketched_identity.py check OUT.pkl     # after: every x, nit, npass equal
    python benchmarks/engine_sketched_identity.py time BASE_DIR     # default solver, sparse 131072×64:
                                                                     # BASE_DIR/theory against ./theory

``time`` runs the two trees alternately in fresh subprocesses (one BLAS thread), three times each
(each the best of five solves), and prints the ratio of the best times (this tree / the base).
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys

os.environ.setdefault("OMP_NUM_THREADS", "1")

METHODS = (
    "sketched-subspace-newton",
    "sketched-newton-cg",
    "sketched-newton",
    "newton",
    "gradient-descent",
    "scipy-trust-exact",
    "scipy-newton-cg",
    "scipy-l-bfgs-b",
)
SKETCHED = METHODS[:3]
FAMILIES = ("sparse", "peaked", "coherent")
VARIANTS = (
    {},
    {"sketch": "uniform"},
    {"sketch": "countsketch"},
    {"sketch": "gaussian", "sketch_size": 256},
    {"sketch": "srtt"},
    {"sketch": "leverage", "drift": None},
    {"sketch": "leverage-exact"},
)
REPEATS = 5  # solves per process (the best is its time); three processes per tree
SUBSPACE_VARIANTS = ({"rebuild_after": 0}, {"rebuild_after": 3, "sketch": "uniform"})


def cases():
    for family in FAMILIES:
        for method in METHODS:
            variants = VARIANTS if method in SKETCHED else ({},)
            if method in ("sketched-subspace-newton", "sketched-newton-cg"):
                variants = variants + SUBSPACE_VARIANTS
            for kw in variants:
                yield family, method, kw


def run_all() -> dict:
    import theory
    from theory.instances import make_instance

    print("theory from", theory.__file__, file=sys.stderr)
    from theory.solve import solve

    out = {}
    for family in FAMILIES:
        inst = make_instance(family, 16384, 32, seed=0)
        for fam, method, kw in cases():
            if fam != family:
                continue
            r = solve(inst.prob, method=method, x0=inst.x0, tol=1e-10, seed=1, **kw)
            key = (family, method, tuple(sorted(kw.items())))
            out[key] = (r.x.tobytes(), r.nit, r.npass, r.status)
    return out


def timed_once() -> float:
    import time

    from theory.instances import make_instance
    from theory.solve import solve

    inst = make_instance("sparse", 131072, 64, seed=0)
    solve(inst.prob, max_iter=2)  # warm the workspace pool as a repeated caller would
    best = float("inf")
    for _ in range(REPEATS):
        t0 = time.perf_counter()
        solve(inst.prob, tol=1e-10)
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    mode, arg = sys.argv[1], sys.argv[2]
    if mode == "record":
        with open(arg, "wb") as fh:
            pickle.dump(run_all(), fh)
    elif mode == "check":
        with open(arg, "rb") as fh:
            before = pickle.load(fh)
        after = run_all()
        bad = [k for k in before if before[k] != after.get(k)]
        for k in bad:
            print("DIFFERS", k, before[k][1:], after[k][1:])
        print(f"{len(before) - len(bad)}/{len(before)} cases bit-identical")
        sys.exit(1 if bad else 0)
    elif mode == "time":
        here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        best = {"base": float("inf"), "new": float("inf")}
        code = "import benchmarks_timing as t; print(t.timed_once())"
        for i in range(3):
            pair = (("base", arg), ("new", here))
            for name, root in pair if i % 2 == 0 else pair[::-1]:  # neither always goes first
                env = dict(os.environ, PYTHONPATH=f"{root}:{os.path.dirname(__file__)}")
                env["OMP_NUM_THREADS"] = env["OPENBLAS_NUM_THREADS"] = env["MKL_NUM_THREADS"] = "1"
                res = subprocess.run(
                    [
                        sys.executable,
                        "-c",
                        code.replace("benchmarks_timing", "engine_sketched_identity"),
                    ],
                    env=env,
                    cwd=root,
                    capture_output=True,
                    text=True,
                    check=True,
                )
                best[name] = min(best[name], float(res.stdout.split()[-1]))
                print(name, res.stdout.strip(), flush=True)
        print(
            f"best base {best['base']:.3f}s  new {best['new']:.3f}s  ratio {best['new'] / best['base']:.4f}"
        )


if __name__ == "__main__":
    main()
