"""The sketched methods on engines (theory.engine): the same solver classes as in memory, every
O(n) vector on the blocks, only O(d²)-sized results reaching the driver."""

import functools

import numpy as np
import pytest

from theory.blocks import Block, block_rows
from theory.distributed import EngineRegression
from theory.engine import LocalEngine, TorchEngine, _size
from theory.objective import SoftmaxRegression
from theory.rows import CountedRows
from theory.sketch import make_sketch
from theory.solve import solve

SKETCHED = ("sketched-subspace-newton", "sketched-newton-cg", "sketched-newton")
FAMILIES = ("quadratic", "sparse", "coherent")
N = N_ROWS = 12000
D = 12
TOL = 1e-13


@functools.cache
def in_memory(family: str, n: int = N, d: int = D) -> SoftmaxRegression:
    """The problem of ``LocalEngine.generate(family, n, d, 0, …)``, built in memory."""
    A, b, w = block_rows(family, n, d, 0, 0, n)
    return SoftmaxRegression(A, b / b.sum(), w)


@functools.cache
def reference(family: str, n: int = N, d: int = D) -> np.ndarray:
    res = solve(in_memory(family, n, d), method="newton", tol=1e-14)
    assert res.success
    return res.x


def close_to_reference(res, family, n=N, d=D) -> bool:
    x_ref = reference(family, n, d)
    return res.success and np.linalg.norm(res.x - x_ref) <= 1e-10 * np.linalg.norm(x_ref)


@pytest.fixture(scope="module")
def engines():
    made = {f: LocalEngine.generate(f, N, D, 0, blocks=3, workers=2) for f in FAMILIES}
    yield made
    for eng in made.values():
        eng.close()


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("method", SKETCHED)
def test_sketched_methods_on_an_engine_reach_newtons_minimiser(engines, method, family):
    res = solve(EngineRegression(engines[family]), method=method, tol=TOL)
    assert close_to_reference(res, family), (res, res.x - reference(family))


@pytest.mark.parametrize("sketch", ("leverage", "uniform", "countsketch", "gaussian"))
def test_every_engine_sketch_drives_algorithm_1(engines, sketch):
    res = solve(
        EngineRegression(engines["quadratic"]), method="sketched-newton", sketch=sketch, tol=TOL
    )
    assert close_to_reference(res, "quadratic")


def _v_at(eng, family, x):
    """B's diagonal v at x on the engine (a BlockVector) and in memory."""
    prob, eprob = in_memory(family), EngineRegression(eng)
    z, zm = eprob.rows.matvec(x), prob.rows.matvec(x)
    v = eprob.loss_z.derivatives(z, eprob.loss_z.softmax(z).f)[1].diag
    return v, prob.loss_z.derivatives(zm, prob.loss_z.softmax(zm).f)[1].diag


@pytest.mark.parametrize("sketch", ("leverage", "uniform", "countsketch", "gaussian"))
def test_engine_sketches_approximate_the_weighted_gram_and_repeat_for_a_seed(engines, sketch):
    """H̃ from the blocks is within 30% of Aᵀ diag(v₊) A (spectrally) at s = 2000 (in memory: 11-18%
    over five seeds, as on the engine), and the same seed and blocking give the same H̃ bitwise."""
    v, v_mem = _v_at(engines["quadratic"], "quadratic", reference("quadratic"))
    rows = EngineRegression(engines["quadratic"]).rows
    v_plus, _ = rows.split_positive(v)
    Hs = [
        make_sketch(sketch).gram(rows, v_plus, 2000, np.random.default_rng(3)).H for _ in range(2)
    ]
    assert np.array_equal(Hs[0], Hs[1])
    L = np.linalg.cholesky(in_memory("quadratic").rows.weighted_gram(np.maximum(v_mem, 0.0)))
    M = np.linalg.solve(L, np.linalg.solve(L, Hs[0]).T)
    assert np.max(np.abs(np.linalg.eigvalsh(M) - 1.0)) < 0.3


def test_negative_rows_are_added_exactly_from_per_block_grams(engines):
    """``split_positive`` of a vector of both signs (here A x): max(v, 0) stays on the blocks, and
    the Gram of the rows with v < 0, summed over blocks, is the one in memory (an independent
    product, and the in-memory row protocol's)."""
    from theory.rows import as_rows

    x = np.random.default_rng(0).standard_normal(D)
    rows = EngineRegression(engines["sparse"]).rows
    v_plus, N = rows.split_positive(rows.matvec(x))
    A = block_rows("sparse", N_ROWS, D, 0, 0, N_ROWS)[0]
    v = A @ x
    neg = v < 0
    assert np.allclose(N, (A[neg].T * v[neg]) @ A[neg], rtol=1e-12, atol=0)
    mem_plus, mem_N = as_rows(A).split_positive(v)
    assert np.array_equal(mem_plus, np.maximum(v, 0.0))
    assert np.allclose(N, mem_N, rtol=1e-12, atol=0)
    assert np.allclose(rows.rmatvec(v_plus), A.T @ np.maximum(v, 0.0), rtol=1e-12, atol=0)


def test_one_block_engine_takes_the_in_memory_iterations():
    """d = 12: the policy builds the exact Hessian (cheaper than a sketch), so nothing is random and
    one block differs from memory only by rounding."""
    for family in FAMILIES:
        with LocalEngine.generate(family, N, D, 0, blocks=1) as eng:
            res = solve(EngineRegression(eng), tol=TOL)
        mem = solve(in_memory(family), tol=TOL)
        assert res.nit == mem.nit and res.npass == mem.npass
        assert np.allclose(res.x, mem.x, rtol=1e-10, atol=0)


def test_the_same_seed_and_blocking_give_the_same_iterates(engines):
    prob = EngineRegression(engines["sparse"])
    runs = [solve(prob, method="sketched-newton", seed=5, tol=TOL) for _ in range(2)]
    assert np.array_equal(runs[0].x, runs[1].x) and runs[0].nit == runs[1].nit


def test_torch_engine_runs_the_sketched_methods_and_sketches():
    pytest.importorskip("torch")
    with TorchEngine.generate("coherent", N, D, 0, blocks=3, device="cpu") as eng:
        prob = EngineRegression(eng)
        for method in SKETCHED:
            assert close_to_reference(solve(prob, method=method, tol=TOL), "coherent"), method
    with TorchEngine.generate("quadratic", N, D, 0, blocks=3, device="cpu") as eng:
        for sketch in ("uniform", "countsketch", "gaussian"):  # uniform misses coherent rows
            res = solve(EngineRegression(eng), method="sketched-newton", sketch=sketch, tol=TOL)
            assert close_to_reference(res, "quadratic"), sketch


def _recorded(eng):
    """Every round's results, kept as the engine returns them to the driver."""
    seen, run = [], eng._run

    def recording(*args):
        out = run(*args)
        seen.append(out)
        return out

    eng._run = recording
    return seen


def _arrays(obj):
    if isinstance(obj, np.ndarray):
        yield obj
    elif isinstance(obj, list | tuple):
        for o in obj:
            yield from _arrays(o)


@pytest.mark.parametrize("method", SKETCHED)
def test_no_round_returns_an_O_n_array(method):
    """At d = 96 the subspace solver builds the range-corrected sketch (leverage scores, sampling,
    the negative rows); every result the driver receives has at most 2 d² numbers, the largest
    round does not grow when n grows 4× at fixed blocks, and the bytes received per iteration
    stay within 2× (they vary with the builds per iteration; an O(n) result would make them 4×)."""
    d, largest, per_iteration = 96, [], []
    for n in (8192, 32768):
        with LocalEngine.generate("sparse", n, d, 0, blocks=3) as eng:
            seen = _recorded(eng)
            res = solve(EngineRegression(eng), method=method, tol=1e-10)
        assert res.success and np.all(res.history["sketch_size"] < n)
        sizes = [a.size for out in seen for a in _arrays(out)]
        assert max(sizes) <= 2 * d * d
        largest.append(max(_size(out) for out in seen))
        per_iteration.append(eng.bytes_in / res.nit)
    assert largest[1] == largest[0]
    assert per_iteration[1] < 2 * per_iteration[0]


def test_subspace_solver_with_a_sketched_preconditioner_on_an_engine():
    d = 96
    with LocalEngine.generate("coherent", 8192, d, 0, blocks=3, workers=2) as eng:
        res = solve(EngineRegression(eng), tol=TOL)
    assert np.any((res.history["sketch_size"] > 0) & (res.history["sketch_size"] < 8192))
    assert close_to_reference(res, "coherent", 8192, d)


@pytest.mark.parametrize("sketch", ("srtt", "leverage-exact"))
def test_sketches_that_need_all_of_A_are_refused_on_an_engine(engines, sketch):
    with pytest.raises(ValueError, match=sketch):
        solve(EngineRegression(engines["sparse"]), method="sketched-newton", sketch=sketch)


def _scaled(v, c):
    """c v for v on an engine (a fresh BlockVector)."""
    out = v.engine.new()
    for blk in v.engine.blocks:
        blk.vec[out.key] = c * blk.vec[v.key]
    return out


def test_engine_leverage_scores_bound_the_exact_ones_and_are_reused_while_v_drifts_little(engines):
    """The scores kept on the blocks give ``p ∝ v ∘ ℓ`` with ``τ_i ≤ β d p_i`` (β of the in-memory
    scores), and the drift rule reuses them as in memory."""
    from theory.sketch import APPROX_LEVERAGE_BETA, ApproximateLeverage, exact_leverage_scores

    eng, rng = engines["coherent"], np.random.default_rng(0)
    rows = EngineRegression(eng).rows
    v = rows.split_positive(rows.matvec(np.ones(D)))[0]  # max(A 1, 0): weights of both sizes, zeros
    sketch = ApproximateLeverage(drift=2.0)
    assert sketch.gram(rows, v, 200, rng).recomputed
    ell_key = sketch._ell.key  # type: ignore[union-attr]  # a BlockVector on an engine
    ell = np.concatenate([blk.vec[ell_key] for blk in eng.blocks])
    v_mem = np.concatenate([blk.vec[v.key] for blk in eng.blocks])
    A = block_rows("coherent", N_ROWS, D, 0, 0, N_ROWS)[0]
    p = v_mem * ell / np.sum(v_mem * ell)
    tau = exact_leverage_scores(A, v_mem)
    assert np.max(tau[v_mem > 0] / (D * p[v_mem > 0])) <= APPROX_LEVERAGE_BETA
    assert not sketch.gram(rows, _scaled(v, 1.5), 200, rng).recomputed
    assert sketch.gram(rows, _scaled(v, 3.0), 200, rng).recomputed
    every = ApproximateLeverage(drift=None)
    assert every.gram(rows, v, 200, rng).recomputed and every.gram(rows, v, 200, rng).recomputed


def test_a_solve_leaves_no_vectors_on_the_blocks():
    import gc

    with LocalEngine.generate("coherent", 8192, 96, 0, blocks=3) as eng:
        for method in SKETCHED:
            assert solve(EngineRegression(eng), method=method, tol=1e-10).success
            gc.collect()
            eng.map(Block.info)  # the frees travel with the next round
            assert all(not blk.vec for blk in eng.blocks), method


@pytest.mark.parametrize("sketch, passes", [("countsketch", 1), ("gaussian", 1), ("uniform", 0)])
def test_a_sketchs_passes_are_counted_in_memory_and_on_an_engine(engines, sketch, passes):
    """The solver's CountedRows counts what a sketch reads of A the same on both sides: a
    projection one pass, row sampling none (it reads only the rows drawn); leverage scores two
    more when computed, none when reused."""
    v, v_mem = _v_at(engines["quadratic"], "quadratic", reference("quadratic"))
    sides = [
        (CountedRows(EngineRegression(engines["quadratic"]).rows), v),
        (CountedRows(in_memory("quadratic").rows), v_mem),
    ]
    for rows, vec in sides:
        v_plus, _ = rows.split_positive(vec)
        make_sketch(sketch).gram(rows, v_plus, 500, np.random.default_rng(0))
        assert rows.passes == passes, type(rows.inner).__name__
        leverage = make_sketch("leverage")
        rows.passes = 0
        assert leverage.gram(rows, v_plus, 500, np.random.default_rng(0)).recomputed
        assert rows.passes == 2
        assert not leverage.gram(rows, v_plus, 500, np.random.default_rng(1)).recomputed
        assert rows.passes == 2


def test_the_exact_hessian_is_one_round_on_an_engine(engines):
    """``Aᵀ diag(v) A`` and ``Aᵀ [f, q]`` come back together: one round, one read of A, and the
    in-memory Hessian to rounding."""
    eng = engines["coherent"]
    prob, ref = EngineRegression(eng), in_memory("coherent")
    x = 0.5 * reference("coherent")
    parts = prob.hessian_parts(x)
    rows = CountedRows(prob.rows)
    before = eng.rounds
    H = parts.hessian(rows)
    assert eng.rounds - before == 1 and rows.passes == 1
    expected = ref.hessian(x)
    np.testing.assert_allclose(H, expected, rtol=0, atol=1e-12 * np.abs(expected).max())
