"""The row-chunked path (a one-worker engine over views of a memmap, or over a list of blocks)
gives the in-memory answers."""

import numpy as np
import pytest

from theory.chunked import ChunkedSoftmaxRegression
from theory.instances import make_instance
from theory.rows import split_rows
from theory.solve import solve

N, D, BLOCK = 6000, 6, 1000


@pytest.fixture(scope="module")
def dense():
    return make_instance("coherent", N, D, seed=0).prob


@pytest.fixture
def on_disk(dense, tmp_path):
    mm = np.lib.format.open_memmap(tmp_path / "A.npy", mode="w+", dtype=np.float64, shape=(N, D))
    mm[:] = dense.A
    mm.flush()
    A = np.load(tmp_path / "A.npy", mmap_mode="r")
    return ChunkedSoftmaxRegression(A, dense.b, dense.w, block_rows=BLOCK)


def test_memmap_derivatives_equal_the_in_memory_ones(dense, on_disk):
    x = np.random.default_rng(0).standard_normal(D) * 0.01
    v = np.ones(D)
    assert np.isclose(on_disk.loss(x), dense.loss(x), rtol=1e-13)
    np.testing.assert_allclose(on_disk.gradient(x), dense.gradient(x), rtol=1e-11, atol=1e-12)
    np.testing.assert_allclose(on_disk.hessp(x, v), dense.hessp(x, v), rtol=1e-11)
    np.testing.assert_allclose(on_disk.hessian(x), dense.hessian(x), rtol=1e-11)


@pytest.mark.parametrize(
    "method", ["sketched-subspace-newton", "sketched-newton-cg", "sketched-newton", "newton"]
)
def test_solvers_on_a_memmap_reach_the_in_memory_minimiser(dense, on_disk, method):
    ref = solve(dense, method=method, seed=0, tol=1e-9)
    res = solve(on_disk, method=method, seed=0, tol=1e-9)
    assert res.success
    np.testing.assert_allclose(res.x, ref.x, rtol=1e-7, atol=1e-10)


def test_a_sequence_of_blocks_gives_the_in_memory_derivatives(dense):
    blocks = [dense.A[i : i + 700] for i in range(0, N, 700)]
    prob = ChunkedSoftmaxRegression(blocks, dense.b, dense.w)
    assert len(prob.engine.bounds) == len(blocks) and prob.engine.bounds[1] == (700, 1400)
    x = np.random.default_rng(1).standard_normal(D) * 0.01
    np.testing.assert_allclose(prob.gradient(x), dense.gradient(x), rtol=1e-11, atol=1e-12)


def test_the_blocks_are_views_of_the_memmap_not_copies(on_disk):
    blocks = on_disk.engine.blocks
    assert [blk.m for blk in blocks] == [BLOCK] * (N // BLOCK)
    root = blocks[0].A
    while isinstance(root.base, np.ndarray):  # up to the memmap of the whole file
        root = root.base
    assert isinstance(root, np.memmap) and root.shape == (N, D)
    assert all(np.shares_memory(blk.A, root) for blk in blocks)


def test_srtt_refuses_a_chunked_matrix_before_any_work(on_disk):
    with pytest.raises(ValueError, match="needs A in memory"):
        solve(on_disk, method="sketched-newton", sketch="srtt")


def test_non_finite_block_is_rejected_with_its_rows(dense):
    bad = dense.A.copy()
    bad[2500, 1] = np.nan
    with pytest.raises(ValueError, match=r"A\[2000:3000\] has 1 non-finite"):
        split_rows(bad, block_rows=BLOCK)


def test_a_dask_array_is_sent_to_the_dask_engine(dense):
    da = pytest.importorskip("dask.array")
    A = da.from_array(dense.A, chunks=(BLOCK, D))
    with pytest.raises(TypeError, match="DaskEngine.from_dask_array"):
        ChunkedSoftmaxRegression(A, dense.b, dense.w)


def test_counted_rows_count_their_passes(dense):
    from theory.rows import CountedRows, as_rows

    rng = np.random.default_rng(3)
    x, r, v = rng.standard_normal(D), rng.standard_normal(N), rng.standard_normal(N)
    idx = np.array([1, 999, 1000, 5998])
    counted = CountedRows(as_rows(dense.A))
    np.testing.assert_array_equal(counted.take_rows(idx), dense.A[idx])
    counted.matvec(x), counted.rmatvec(r), counted.weighted_gram(v)
    assert counted.passes == 3
    assert sum(1 for _ in counted.blocks()) == 1 and counted.passes == 4


def test_no_module_but_the_row_protocol_switches_on_the_type_of_a():
    import re
    from pathlib import Path

    import theory

    pattern = re.compile(r"isinstance\((A|prob\.A|self\.A|source)\b|hasattr\(A\b")
    offenders = [
        path.name
        for path in Path(theory.__file__).parent.glob("*.py")
        if path.name != "rows.py" and pattern.search(path.read_text())
    ]
    assert offenders == []
