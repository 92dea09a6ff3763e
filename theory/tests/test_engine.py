"""Engines (theory.engine, theory.dask_engine): every backend reaches the in-memory minimiser, and
no round brings an O(n) vector to the driver."""

from __future__ import annotations

import gc
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from theory import SoftmaxRegression, solve
from theory.blocks import Block, block_rows
from theory.distributed import EngineRegression
from theory.engine import LocalEngine, TorchEngine
from theory.instances import make_instance

N, D, SEED = 12000, 12, 5
FAMILIES = ("quadratic", "sparse", "peaked", "coherent")
DETERMINISTIC = ("newton", "scipy-trust-exact")
TOL = {
    "quadratic": 1e-9,
    "sparse": 1e-9,
    "peaked": 1e-8,
    "coherent": 1e-7,
}  # the floors: ≈ 1e-9, 1e-8


def in_memory(family, n=N, d=D, seed=SEED) -> SoftmaxRegression:
    """The family's instance with A on the driver (the reference): ``make_instance``'s, drawn by
    the same generator as every engine's."""
    return make_instance(family, n, d, seed).prob


def assert_same_minimiser(res, ref):
    """Same iterations, the same final loss to 1e-12 and the same x to 1e-10 (relative)."""
    assert res.success, res.message
    assert res.nit == ref.nit
    assert res.fun == pytest.approx(ref.fun, rel=1e-12, abs=0)
    assert np.linalg.norm(res.x - ref.x) <= 1e-10 * np.linalg.norm(ref.x)


@pytest.mark.parametrize("family", FAMILIES)
def test_every_backend_draws_the_same_problem_as_make_instance(family):
    """One generator: A and w bit for bit on any blocking; b up to the rounding of its global
    sum (added up per block)."""
    ref = in_memory(family)
    with LocalEngine.generate(family, N, D, SEED, blocks=3) as eng:
        A = np.concatenate([blk.A for blk in eng.blocks])
        b = np.concatenate([blk.b for blk in eng.blocks])
        w = np.concatenate([blk.w for blk in eng.blocks])
    np.testing.assert_array_equal(A, ref.A)
    np.testing.assert_array_equal(w, ref.w)
    np.testing.assert_allclose(b, ref.b, rtol=1e-14, atol=0)


def test_a_thread_pool_gives_each_worker_one_blas_thread_during_a_round():
    threadpoolctl = pytest.importorskip("threadpoolctl")

    class Probe(Block):
        def blas_threads(self):  # every BLAS library loaded (numpy's, scipy's, …)
            return {
                i["num_threads"] for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"
            }

    A, b, w = block_rows("sparse", 4000, 4, 0, 0, 4000)
    blocks: list[Any] = [
        Probe(A[i : i + 1000], b[i : i + 1000], w[i : i + 1000], i) for i in range(0, 4000, 1000)
    ]
    with threadpoolctl.threadpool_limits(2, user_api="blas"):
        with LocalEngine(blocks, workers=2) as eng:
            assert eng.map(Probe.blas_threads) == [{1}] * 4
        with LocalEngine(blocks, workers=2, blas_threads=2) as eng:
            assert eng.map(Probe.blas_threads) == [{2}] * 4
        assert blocks[0].blas_threads() == {2}  # as it was, between and after the rounds


@pytest.fixture(scope="module")
def refs():
    return {
        (fam, m): solve(in_memory(fam), method=m, tol=TOL[fam])
        for fam in FAMILIES
        for m in DETERMINISTIC
    }


def test_a_family_drawn_in_blocks_does_not_depend_on_the_blocking():
    whole = block_rows("sparse", 5000, 4, 1, 0, 5000)
    parts = [
        block_rows("sparse", 5000, 4, 1, i, j) for i, j in [(0, 1000), (1000, 3333), (3333, 5000)]
    ]
    for k in range(3):
        np.testing.assert_array_equal(np.concatenate([p[k] for p in parts]), whole[k])
    assert whole[1].sum() == 4  # the four support rows, wherever the block edges fall


def test_one_block_is_the_in_memory_solver_bit_for_bit():
    ref = in_memory("sparse")
    eng = LocalEngine.from_arrays(ref.A, ref.b, ref.w, blocks=1)
    for method in ("newton", "gradient-descent"):
        a, b = (
            solve(ref, method=method, tol=1e-9),
            solve(EngineRegression(eng), method=method, tol=1e-9),
        )
        assert a.nit == b.nit
        np.testing.assert_array_equal(a.x, b.x)


@pytest.mark.parametrize("family", FAMILIES)
def test_thread_pool_with_two_workers_reaches_the_same_minimiser(family, refs):
    with LocalEngine.generate(family, N, D, SEED, blocks=4, workers=2) as eng:
        prob = EngineRegression(eng)
        for method in DETERMINISTIC:
            assert_same_minimiser(solve(prob, method=method, tol=TOL[family]), refs[family, method])


@pytest.mark.parametrize("family", FAMILIES)
def test_torch_on_cpu_reaches_the_same_minimiser(family, refs):
    pytest.importorskip("torch")
    eng = TorchEngine.generate(family, N, D, SEED, blocks=3, device="cpu")
    prob = EngineRegression(eng)
    for method in DETERMINISTIC:
        assert_same_minimiser(solve(prob, method=method, tol=TOL[family]), refs[family, method])


def test_engine_derivatives_match_the_in_memory_ones():
    ref = in_memory("coherent")
    prob = EngineRegression(LocalEngine.from_arrays(ref.A, ref.b, ref.w, blocks=5, workers=2))
    rng = np.random.default_rng(0)
    x, v = 0.05 * rng.standard_normal(D), rng.standard_normal(D)
    assert prob.loss(x) == pytest.approx(ref.loss(x), rel=1e-13)
    assert prob.loss_parts(x) == pytest.approx(ref.loss_parts(x), rel=1e-12)
    np.testing.assert_allclose(prob.gradient(x), ref.gradient(x), rtol=1e-11, atol=1e-13)
    H = ref.hessian(x)
    np.testing.assert_allclose(prob.hessian(x), H, rtol=0, atol=1e-11 * np.abs(H).max())
    # an engine takes ∇²L v in one sweep, the rank-2 term applied in d-space (its terms cancel on
    # this family): H's rounding times v, as for the Hessian just above
    scale = np.abs(H).max() * np.abs(v).sum()
    np.testing.assert_allclose(prob.hessp(x, v), ref.hessp(x, v), rtol=0, atol=1e-11 * scale)


def test_gradient_descent_and_lbfgs_converge_on_an_engine():
    # Not bit-identical to the in-memory solve (the block sums round differently, and these two
    # methods reach the loss's rounding floor where such bits decide the path): same minimiser.
    ref = solve(in_memory("sparse"), method="newton", tol=1e-9)
    prob = EngineRegression(LocalEngine.generate("sparse", N, D, SEED, blocks=4, workers=2))
    for method in ("gradient-descent", "scipy-l-bfgs-b"):
        res = solve(prob, method=method, tol=1e-8, max_iter=2000)
        assert res.success, (method, res.message)
        assert np.linalg.norm(res.x - ref.x) <= 1e-6 * np.linalg.norm(ref.x)


def test_vectors_are_freed_on_the_blocks_after_a_solve():
    eng = LocalEngine.generate("sparse", N, D, SEED, blocks=2)
    solve(EngineRegression(eng), method="newton", tol=1e-9)
    gc.collect()
    eng.map(Block.info)  # the frees travel with the next round
    assert all(len(blk.vec) == 0 for blk in eng.blocks)


def test_bytes_moved_per_iteration_do_not_grow_with_n():
    per_iteration = []
    for n in (8192, 32768):
        eng = LocalEngine.generate("sparse", n, D, SEED, blocks=4)
        start = eng.bytes_in + eng.bytes_out
        res = solve(EngineRegression(eng), method="newton", tol=1e-9)
        per_iteration.append((eng.bytes_in + eng.bytes_out - start) / (res.nit + 1))
    assert per_iteration[1] <= 1.05 * per_iteration[0]
    assert per_iteration[0] <= 4 * 4 * (D * D + D) * 8  # blocks × (d² + d) floats, a few times


def test_bad_input_is_refused_naming_the_problem():
    with pytest.raises(ValueError, match="workers must be"):
        LocalEngine.generate("sparse", 100, 2, blocks=2, workers=0)
    with pytest.raises(ValueError, match="blocks must lie"):
        LocalEngine.generate("sparse", 100, 2, blocks=101)
    with pytest.raises(ValueError, match="cannot be drawn block by block"):
        LocalEngine.generate("theorem", 100, 2)
    A = np.ones((10, 2))
    bad = [(A, np.ones(10), 1.0), (np.full((5, 3), 1.0), np.ones(5), 1.0)]
    with pytest.raises(ValueError, match="block at row 10 is 5×3"):
        LocalEngine.from_blocks(bad)
    A[3, 1] = np.inf
    with pytest.raises(ValueError, match="non-finite"):
        LocalEngine.from_arrays(A, np.ones(10), 1.0)
    with pytest.raises(TypeError, match="takes an engine"):
        EngineRegression(np.ones((3, 2)))  # type: ignore[arg-type]  # the wrong input, on purpose
    prob = EngineRegression(LocalEngine.generate("sparse", 100, 2))
    assert not hasattr(prob, "B")  # the n×n B is the in-memory extension's, not the base contract


def test_a_memmap_streams_from_disk_through_the_thread_pool(tmp_path: Path):
    ref = in_memory("quadratic", n=6000)
    path = tmp_path / "A.f64"
    mm = np.memmap(path, dtype=np.float64, mode="w+", shape=ref.A.shape)
    mm[:] = ref.A
    mm.flush()
    A = np.memmap(path, dtype=np.float64, mode="r", shape=ref.A.shape)
    eng = LocalEngine.from_arrays(A, ref.b, ref.w, block_rows=1000, workers=2)
    assert np.shares_memory(eng.blocks[1].A, A)  # views of the file, not copies
    assert_same_minimiser(
        solve(EngineRegression(eng), method="newton"), solve(ref, method="newton")
    )


# -- Dask ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def client():
    distributed = pytest.importorskip("dask.distributed")
    from theory.dask_engine import local_cluster

    with local_cluster(2) as cluster, distributed.Client(cluster) as c:
        yield c


def _loopback_bytes() -> int | None:
    """Bytes received on the loopback interface so far (Linux), or None."""
    try:
        lines = Path("/proc/net/dev").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        name, _, rest = line.partition(":")
        if name.strip() == "lo":
            return int(rest.split()[0])
    return None


@pytest.mark.parametrize("family", FAMILIES)
def test_local_cluster_with_a_drawn_on_the_workers(client, family, refs):
    from theory.dask_engine import DaskEngine

    eng = DaskEngine.generate(client, family, N, D, SEED, blocks=4)
    assert eng.bytes_out < 4096  # what built A: the family's name, sizes and seed, per block
    prob = EngineRegression(eng)
    for method in DETERMINISTIC:
        assert_same_minimiser(solve(prob, method=method, tol=TOL[family]), refs[family, method])
    eng.close()


def test_a_cluster_round_never_sends_an_o_n_vector_to_the_driver(client):
    """Counted twice, independently: by the engine (the bytes of every result and argument) and
    by the kernel (the bytes through the loopback interface that the worker processes use)."""
    from theory.dask_engine import DaskEngine

    n, blocks = 1 << 17, 4
    eng = DaskEngine.generate(client, "sparse", n, D, SEED, blocks=blocks)
    lo0, b0 = _loopback_bytes(), eng.bytes_in + eng.bytes_out
    res = solve(EngineRegression(eng), method="newton", tol=1e-9)
    lo1, counted = _loopback_bytes(), eng.bytes_in + eng.bytes_out - b0
    iters = res.nit + 1
    assert counted / iters <= 4 * blocks * (D * D + D) * 8
    if lo0 is not None and lo1 is not None:
        # one z (8n bytes) per iteration would be 1 MiB; all of a Newton iteration's messages,
        # with their headers, are a few tens of KiB.
        assert (lo1 - lo0) / iters < 8 * n / 4
    eng.close()


def test_dask_array_a_on_the_cluster(client):
    da = pytest.importorskip("dask.array")
    from theory.dask_engine import DaskEngine

    ref = in_memory("quadratic")
    A = da.from_array(ref.A, chunks=(3000, D))
    eng = DaskEngine.from_dask_array(client, A, ref.b, ref.w)
    assert len(eng.bounds) == 4
    assert_same_minimiser(
        solve(EngineRegression(eng), method="newton"), solve(ref, method="newton")
    )
    eng.close()


def test_a_sum_travels_once_per_worker_not_once_per_block(client):
    """4 blocks on 2 workers: a Hessian (a Gram and a range, both sums) brings two partial sums
    to the driver, added up on each worker first (the first level of a tree reduction)."""
    from theory.dask_engine import DaskEngine

    d = 32
    eng = DaskEngine.generate(client, "sparse", N, d, SEED, blocks=4)
    assert sorted(len(g) for g in eng.groups) == [2, 2]
    prob = EngineRegression(eng)
    x = np.zeros(d)
    z = prob.rows.matvec(x)
    parts = prob.loss_z.derivatives(z, prob.loss_z.softmax(z).f)[1]
    before = eng.bytes_in
    H = prob.rows.weighted_gram(parts.diag)
    received = eng.bytes_in - before
    assert 2 * d * d * 8 <= received < 3 * d * d * 8  # two (d, d) partial sums, not four
    ref = in_memory("sparse", d=d)
    expected = ref.rows.weighted_gram(ref.hessian_parts(x).diag)
    np.testing.assert_allclose(H, expected, rtol=0, atol=1e-12 * np.abs(expected).max())
    eng.close()


def test_a_worker_with_two_threads_runs_its_blocks_on_both(refs):
    distributed = pytest.importorskip("dask.distributed")
    import dask

    from theory.dask_engine import WORKER_ENV, DaskEngine

    with dask.config.set({"distributed.nanny.pre-spawn-environ": WORKER_ENV}):
        cluster = distributed.LocalCluster(
            n_workers=1, threads_per_worker=2, dashboard_address=None, memory_limit=None
        )
    with cluster, distributed.Client(cluster) as c:
        eng = DaskEngine.generate(c, "sparse", N, D, SEED)  # default: one block per thread
        assert [len(g) for g in eng.groups] == [2]
        res = solve(EngineRegression(eng), method="newton", tol=TOL["sparse"])
        assert_same_minimiser(res, refs["sparse", "newton"])
        names = c.run(lambda: [t.name for t in __import__("threading").enumerate()])
        eng.close()
    (names,) = names.values()
    assert sum(n.startswith("ThreadPoolExecutor") for n in names) >= 2  # the actor's pool of two


# -- a lost worker --------------------------------------------------------------------------------


def _killer(client, address, at_iterate: int):
    """A solve callback that kills the worker process at ``address`` (SIGKILL, as a machine that
    goes away) when iterate ``at_iterate`` is recorded: mid-solve, at a fixed point of it."""
    import os
    import signal

    pids = client.run(os.getpid)
    seen: list[dict] = []

    def callback(x, row):
        if len(seen) == at_iterate:
            os.kill(pids[address], signal.SIGKILL)
        seen.append(row)

    return callback


@pytest.mark.parametrize("method", ["newton", "sketched-subspace-newton"])
def test_a_worker_killed_mid_solve_its_blocks_are_redrawn_and_the_solve_ends_at_the_minimiser(
    method,
):
    distributed = pytest.importorskip("dask.distributed")
    import time

    from theory.dask_engine import DaskEngine, local_cluster
    from theory.engine import BlocksLostWarning

    ref = solve(in_memory("peaked"), method=method, tol=TOL["peaked"])  # peaked: b planted after
    with local_cluster(2) as cluster, distributed.Client(cluster) as c:  # the draw: replayed too
        eng = DaskEngine.generate(c, "peaked", N, D, SEED, blocks=4)
        victim = eng.addresses[0]
        t0 = time.perf_counter()
        with pytest.warns(BlocksLostWarning, match=f"lost Dask worker {victim}"):
            res = solve(
                EngineRegression(eng), method=method, tol=TOL["peaked"],
                callback=_killer(c, victim, at_iterate=2),
            )  # fmt: skip
        assert time.perf_counter() - t0 < 60
        assert victim not in eng.addresses
    assert res.success, res.message
    assert res.fun == pytest.approx(ref.fun, rel=1e-12, abs=0)
    assert np.linalg.norm(res.x - ref.x) <= 1e-7 * np.linalg.norm(ref.x)
    if method == "newton":  # memoryless: the repeated iteration is the same iteration
        assert res.nit == ref.nit


def test_a_lost_worker_whose_data_cannot_be_rebuilt_is_one_line_naming_it_within_30_s():
    """A from scattered chunks (no lineage): the worker that held them takes them along."""
    distributed = pytest.importorskip("dask.distributed")
    import time

    import dask
    import dask.array as da

    from theory.dask_engine import DaskEngine, local_cluster
    from theory.engine import BlocksUnrecoverable

    ref = in_memory("sparse")
    m = N // 4
    with local_cluster(2) as cluster, distributed.Client(cluster) as c:
        workers = sorted(c.scheduler_info()["workers"])
        chunks = [
            c.scatter(ref.A[i * m : (i + 1) * m], workers=[workers[i // 2]]) for i in range(4)
        ]
        A = da.concatenate([da.from_delayed(dask.delayed(f), (m, D), float) for f in chunks])
        eng = DaskEngine.from_dask_array(c, A, ref.b, ref.w)
        del chunks
        victim = eng.addresses[0]
        t0 = time.perf_counter()
        with pytest.raises(BlocksUnrecoverable) as err:
            solve(EngineRegression(eng), method="newton", callback=_killer(c, victim, 0))
        assert time.perf_counter() - t0 < 30
    message = str(err.value)
    assert f"lost Dask worker {victim}" in message and "could not be rebuilt" in message
    assert "\n" not in message
