"""The per-row code written once for numpy and torch (theory.loss, theory.sweep, theory.linalg):
the same inputs as numpy arrays and as torch tensors give the same numbers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from theory.linalg import countsketch, gaussian_sketch, ratio_range, row_norms2, sample_rows
from theory.loss import HessianParts, SoftmaxLoss
from theory.sweep import finish, point_sums, sweep

N, D = 3000, 6


@pytest.fixture
def arrays():
    rng = np.random.default_rng(0)
    A = rng.standard_normal((N, D)) * (1 + rng.pareto(1.5, N))[:, None]
    b = rng.dirichlet(np.ones(N))
    w = np.sqrt(rng.uniform(0, 1e-3, N))
    v = rng.uniform(0.1, 1.0, N)
    z = A @ (0.2 * rng.standard_normal(D))
    return A, b, w, v, z


def t(a):
    return torch.as_tensor(a, dtype=torch.float64)


def host(a):
    return a.numpy() if isinstance(a, torch.Tensor) else np.asarray(a)


def test_the_z_space_loss_is_the_same_on_both(arrays):
    A, b, w, v, z = arrays
    out = {}
    for name, conv in (("numpy", np.asarray), ("torch", t)):
        loss = SoftmaxLoss(conv(b), conv(w))
        zz = conv(z)
        sm = loss.softmax(zz)
        r, q, vv, ff = loss.vectors(zz, sm.f)
        out[name] = (sm.lse, loss.sums(zz, sm.f, sm.lse, full=True), host(r), host(q), host(vv), ff)
    (lse, sums, r, q, vv, ff), (lse_t, sums_t, r_t, q_t, vv_t, ff_t) = out["numpy"], out["torch"]
    assert lse_t == pytest.approx(lse, rel=1e-14)
    assert sums_t == pytest.approx(sums, rel=1e-12, abs=1e-15)
    for a, a_t in ((r, r_t), (q, q_t), (vv, vv_t)):
        np.testing.assert_allclose(a_t, a, rtol=1e-12, atol=1e-18)
    assert ff_t == pytest.approx(ff, rel=1e-12)


def test_the_sweep_is_the_same_on_both(arrays):
    A, b, w, _, z = arrays
    x = np.linalg.lstsq(A, z, rcond=None)[0]
    ref = finish(sweep(A, b, w * w, x, rows=700))
    got = finish(sweep(t(A), t(b), t(w * w), t(x), rows=700))
    assert got.loss == pytest.approx(ref.loss, rel=1e-13)
    np.testing.assert_allclose(got.grad, ref.grad, rtol=1e-12, atol=1e-15)


def test_a_points_sums_are_the_same_on_both(arrays):
    _, b, w, _, z = arrays
    p, u = point_sums(z, b, w * w)
    p_t, u_t = point_sums(t(z), t(b), t(w * w))
    assert p_t.m == p.m
    np.testing.assert_allclose(p_t.sums, p.sums, rtol=1e-12)
    np.testing.assert_allclose(host(u_t), u, rtol=1e-14)


def test_the_subspace_model_is_the_same_on_both(arrays):
    A, b, w, v, z = arrays
    rng = np.random.default_rng(1)
    Z, r, f, q = rng.standard_normal((N, 3)), *rng.standard_normal((3, N))
    ref = HessianParts(diag=v, f=f, q=q, kappa=0.7)
    got = HessianParts(diag=t(v), f=t(f), q=t(q), kappa=0.7)
    for a, a_t in zip(ref.subspace_sums(Z, r), got.subspace_sums(t(Z), t(r)), strict=True):
        np.testing.assert_allclose(host(a_t), a, rtol=1e-12)


def test_the_sketches_per_row_work_is_the_same_on_both(arrays):
    A, _, _, v, _ = arrays
    for project in (countsketch, gaussian_sketch):
        ref = project(A, v, 12, np.random.default_rng(5))
        got = project(t(A), t(v), 12, np.random.default_rng(5))
        np.testing.assert_allclose(got, ref, rtol=1e-11, atol=1e-12 * np.abs(ref).max())
    Omega = np.random.default_rng(6).standard_normal((D, 4))
    ell, ell_t = row_norms2(A, Omega, 512), host(row_norms2(t(A), t(Omega), 512))
    np.testing.assert_allclose(ell_t, ell, rtol=1e-5)  # float32 products: BLAS rounding differs
    assert ratio_range(t(v), t(v[::-1].copy()), 0.2) == ratio_range(v, v[::-1].copy(), 0.2)


def test_row_sampling_reweights_to_an_unbiased_sum():
    """E[Σ scale_i x_i] = Σ_i x_i: the reweighting c_i / (s p_i) of sample_rows."""
    rng = np.random.default_rng(7)
    p = rng.dirichlet(np.ones(50))
    x = rng.standard_normal(50)
    est = [
        float(scale @ x[idx]) for idx, scale in (sample_rows(p, 40, 40, rng) for _ in range(4000))
    ]
    assert np.mean(est) == pytest.approx(x.sum(), abs=4 * np.std(est) / np.sqrt(len(est)))
