"""Rank-deficient A (zero or duplicated columns): every method converges to tol, in about the
iterations of the full-rank problem, warning with the rank where it matters; and the same seed
gives bit-identical iterates, in one process and in two."""

import math
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

import theory
from theory import SoftmaxRegression
from theory.instances import make_instance
from theory.solve import METHODS, solve
from theory.solver import RankWarning

SKETCHED = ["sketched-subspace-newton", "sketched-newton-cg", "sketched-newton"]


def _tol(method):
    # scipy's Newton-CG stops CG at curvature pᵀHp ≤ 3 eps (absolute), i.e. at |g| ~ 1e-8 here;
    # trust-krylov stalls at max|g| = 1.0e-8 on sparse 2048×8, where ½ gᵀH⁻¹g is below ε L
    # (test_solve.py's test_every_method_reaches_tol_on_a_saturating_softmax).
    return 1e-7 if method in ("scipy-newton-cg", "scipy-trust-krylov") else 1e-8


def _variants(A):
    n = A.shape[0]
    return {
        "zero column": np.column_stack([A, np.zeros(n)]),
        "duplicated column": np.column_stack([A, A[:, 2]]),
        "both": np.column_stack([A[:, :3], np.zeros(n), A[:, 3:], A[:, 0]]),
    }


def _solve(prob, method, **kw):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = solve(prob, method=method, tol=_tol(method), max_iter=3000, **kw)
    return res, [w for w in caught if issubclass(w.category, RankWarning)]


@pytest.mark.parametrize(
    ("family", "n", "d", "methods"),
    [("sparse", 2048, 8, METHODS), ("coherent", 4096, 16, [*SKETCHED, "newton"])],
)
def test_every_method_converges_on_a_rank_deficient_a_in_about_the_full_rank_iterations(
    family, n, d, methods
):
    inst = make_instance(family, n, d, seed=0)
    p = inst.prob
    for method in methods:
        full, _ = _solve(p, method)
        for name, A in _variants(p.A).items():
            res, rank_warnings = _solve(SoftmaxRegression(A, p.b, p.w), method)
            where = f"{method}, {name}"
            assert res.success and np.max(np.abs(res.jac)) <= _tol(method), (where, res)
            if method != "gradient-descent":  # its count swings 20–810 between seeds at full rank
                assert res.nit <= math.ceil(1.5 * full.nit), (where, res.nit, full.nit)
            assert res.fun == pytest.approx(full.fun, rel=1e-12), where
            for w in rank_warnings:
                assert f"A has rank {d} < d = {A.shape[1]}" in str(w.message), where


@pytest.mark.parametrize("method", ["newton", "sketched-newton", "sketched-newton-cg"])
def test_a_singular_hessian_is_blamed_on_the_rank_of_a_and_x_stays_in_its_row_space(method):
    p = make_instance("sparse", 2048, 8, seed=0).prob
    A = _variants(p.A)["both"]
    res, rank_warnings = _solve(SoftmaxRegression(A, p.b, p.w), method)
    assert rank_warnings, method
    # the minimum-norm minimiser: no component along null(A) = span(e₃, e₀ − e₉)
    null = np.zeros((10, 2))
    null[3, 0], null[0, 1], null[9, 1] = 1.0, 1.0, -1.0
    assert np.max(np.abs(null.T @ res.x)) <= 1e-8 * np.linalg.norm(res.x)


@pytest.fixture(scope="module")
def coherent():
    return make_instance("coherent", 4096, 16, seed=0).prob


def _fingerprint(prob, method, seed):
    res = solve(prob, method=method, seed=seed, tol=1e-10, max_iter=60)
    return res.x.tobytes().hex(), res.nit, res.nhev, res.history["loss"].tobytes().hex()


@pytest.mark.parametrize("method", [m for m in METHODS if not m.startswith("scipy")])
def test_same_seed_gives_bit_identical_iterates_in_one_process(coherent, method):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a, b = (_fingerprint(coherent, method, 7) for _ in range(2))
    assert a == b


SCRIPT = """
import sys, warnings
from theory.instances import make_instance
from theory.solve import solve
warnings.simplefilter("ignore")
prob = make_instance("coherent", 4096, 16, seed=0).prob
for method in sys.argv[1:]:
    res = solve(prob, method=method, seed=7, tol=1e-10, max_iter=60)
    print(method, res.x.tobytes().hex(), res.nit, res.history["loss"].tobytes().hex())
"""


def test_same_seed_gives_bit_identical_iterates_in_two_processes():
    # every method, sketched-newton-cg included (its rebuild rule uses a cost model, no timings);
    # the second process runs while the first is busy, so the machine's load differs between them
    methods = [m for m in METHODS if not m.startswith("scipy")]
    cmd, root = [sys.executable, "-c", SCRIPT, *methods], Path(theory.__file__).parents[1]
    first = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, cwd=root)
    second = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, check=True, cwd=root).stdout
    assert first.communicate()[0] == second and len(second.splitlines()) == len(methods)


@pytest.mark.parametrize("method", [m for m in METHODS if not m.startswith("scipy")])
def test_no_decision_depends_on_the_clock(method, monkeypatch):
    # a clock that jumps by random amounts (a machine under any load) changes no iterate
    import time

    p = make_instance("sparse", 8192, 64, seed=0).prob
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = solve(p, method=method, seed=3, tol=1e-10, max_iter=40)
        jumps = np.random.default_rng(0)
        now = [0.0]

        def erratic():
            now[0] += float(jumps.exponential(1.0)) ** 3
            return now[0]

        monkeypatch.setattr(time, "perf_counter", erratic)
        res = solve(p, method=method, seed=3, tol=1e-10, max_iter=40)
    assert np.array_equal(res.x, ref.x) and res.nit == ref.nit and res.nhev == ref.nhev
