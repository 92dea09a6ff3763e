"""The figure functions' computations (``infoprompt.figures``) on tiny random encoders."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from infoprompt import fig_cmi, fig_landscape, figures, plots
from infoprompt.__main__ import main
from infoprompt.config import RunConfig
from infoprompt.data import Example
from infoprompt.evaluation import evaluate
from infoprompt.losses import info_nce
from infoprompt.model import load_backbone

POSITIVE = ["a gem of a film", "warm and funny", "a great joy to watch", "bright , moving work"]
NEGATIVE = ["a dull mess", "boring and long", "the worst film this year", "flat , lifeless acting"]
EXAMPLES = [Example(s, label=1) for s in POSITIVE] + [Example(s, label=0) for s in NEGATIVE]


@pytest.fixture(scope="module")
def backbone(tiny_bert):
    """(tokenizer, encoder) of the tiny random BERT of conftest.py."""
    return load_backbone(tiny_bert)


def tiny_setup(backbone, method="infoprompt", **kw):
    config = RunConfig(
        task="sst2", data_dir="-", out="-", model="-", method=method, batch_size=4, max_len=32, **kw
    )
    return figures.build(config, EXAMPLES, EXAMPLES[::2], backbone)


# --- Fig. 1 -----------------------------------------------------------------------------------


def test_nce_over_prompts_is_info_nce_with_prompts_as_candidates():
    torch.manual_seed(0)
    w, z = torch.randn(5, 5), torch.randn(3, 5)
    p_pos, p_neg = torch.randn(3, 5), torch.randn(3, 4, 5)
    pos = torch.stack([p_pos[n] @ w @ z[n] for n in range(3)])
    neg = torch.stack([torch.stack([p_neg[n, k] @ w @ z[n] for k in range(4)]) for n in range(3)])
    got = fig_cmi.nce_over_prompts(w, p_pos, p_neg, z)
    torch.testing.assert_close(got.mean(), info_nce(pos, neg))


def test_bound_is_zero_at_w_zero_and_at_most_log_k():
    torch.manual_seed(0)
    p, z, ref = torch.randn(6, 4), torch.randn(6, 4), torch.randn(7, 4)
    torch.testing.assert_close(fig_cmi.cmi_bound(torch.zeros(4, 4), p, z, ref), torch.zeros(6))
    assert (fig_cmi.cmi_bound(100 * torch.randn(4, 4), p, z, ref) <= math.log(8) + 1e-6).all()


def test_critic_reads_back_prompts_that_shape_z_and_not_unrelated_ones():
    """z = A p + noise: the trained critic identifies p (bound near log K); for z independent of
    p the held-out bound is negative (the bound holds in expectation only for a critic
    that is not overconfident; a held-out estimate can fall below 0)."""
    torch.manual_seed(0)
    sets, a = torch.randn(200, 8), torch.randn(8, 8)
    z = sets @ a.T + 0.1 * torch.randn(10, 200, 8)  # (N, S, D)
    w = fig_cmi.fit_critic(sets, z, k=8, steps=150, lr=0.05, wd=0.0)
    p_new, ref = torch.randn(10, 8), torch.randn(7, 8)
    informative = fig_cmi.cmi_bound(w, p_new, p_new @ a.T, ref).mean()
    unrelated = fig_cmi.cmi_bound(w, p_new, torch.randn(10, 8) @ a.T, ref).mean()
    assert informative > 0.7 * math.log(8) and unrelated < 0


def test_prompts_and_states_with_fixed_prompts_equal_a_warp_model_holding_them(backbone):
    s = tiny_setup(backbone, method="warp")
    vectors = fig_cmi.phrase_embeddings(backbone[0], s.model.embed.weight, "the film is", 4)
    p_fixed, z_fixed = fig_cmi.prompts_and_states(s, s.val_set, vectors)
    with torch.no_grad():
        s.model.prompts.prompts.copy_(vectors)
    p_own, z_own = fig_cmi.prompts_and_states(s, s.val_set)
    torch.testing.assert_close(z_fixed, z_own)
    torch.testing.assert_close(p_fixed, vectors.mean(0).expand_as(p_fixed))


# --- Fig. 2 -----------------------------------------------------------------------------------


def test_embedding_pcs_are_the_top_right_singular_vectors():
    torch.manual_seed(0)
    e = torch.randn(200, 6) * torch.tensor([5.0, 3.0, 1, 1, 1, 1])
    u, lam = fig_landscape.embedding_pcs(e)
    _, sv, vh = np.linalg.svd((e - e.mean(0)).numpy(), full_matrices=False)
    np.testing.assert_allclose(np.abs(u.numpy() @ vh[:2].T), np.eye(2), atol=1e-4)
    np.testing.assert_allclose(lam.numpy(), sv[:2] ** 2 / 200, rtol=1e-4)


def test_roughness_is_zero_for_a_plane_and_grows_with_bumps():
    a, b = np.meshgrid(np.linspace(-1, 1, 9), np.linspace(-1, 1, 9))
    assert fig_landscape.roughness(2 * a - b) == pytest.approx(0, abs=1e-12)
    assert fig_landscape.roughness(np.sin(8 * a)) > fig_landscape.roughness(np.sin(2 * a)) > 0


def test_point_losses_at_the_models_own_prompt_equal_the_training_loss(backbone):
    s = tiny_setup(backbone)
    batch = figures.collate(s.train_set, [0], s.pad, "cpu")
    with torch.no_grad():
        p1 = s.model.make_prompts(1, batch["pooled"])[0, 0]
        torch.manual_seed(0)
        out = s.model(**batch)
    pred, rep = fig_landscape.point_losses(s, batch, p1, seed=0)
    assert pred == pytest.approx(out["pred"].item(), rel=1e-5)
    assert rep == pytest.approx(out["rep"].item(), rel=1e-5)


def test_landscape_run_shapes_and_trajectory_ends_at_the_centre(backbone):
    config = RunConfig(task="sst2", data_dir="-", out="-", model="-", batch_size=4, max_len=32)
    r = fig_landscape.landscape_run(
        backbone, EXAMPLES, EXAMPLES[:2], config, steps=3, n_points=4, grid=3
    )
    assert r["traj"].shape == (4, 2) and np.allclose(r["traj"][-1], 0, atol=1e-6)
    assert r["pred"].shape == r["rep"].shape == (3, 3) and np.isfinite(r["pred"]).all()


# --- Fig. 3 -----------------------------------------------------------------------------------


def test_learning_curve_points(backbone):
    curve = figures.learning_curve(tiny_setup(backbone, method="warp"), steps=5, every=2)
    assert [t for t, _ in curve] == [0, 2, 4, 5]
    # each point is the dev accuracy of the model trained that far: 4 dev examples, so k / 4,
    # the first one of the untrained model, the last one of a model trained 5 steps anew
    assert all(4 * a == round(4 * a) for _, a in curve)
    fresh = tiny_setup(backbone, method="warp")
    assert curve[0][1] == evaluate(fresh, fresh.val_set)["accuracy"]
    figures.run_steps(fresh, 5)
    assert curve[-1][1] == evaluate(fresh, fresh.val_set)["accuracy"]


def test_curve_stats():
    stats = figures.curve_stats([(0, 0.5), (2, 0.7), (4, 0.9), (6, 0.8), (8, 0.9)])
    assert stats["best"] == 0.9 and stats["step_95"] == 4
    assert stats["late_std"] == pytest.approx(np.std([0.9, 0.8, 0.9]))


# --- command line -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "figure, extra",
    [
        ("cmi", ["--k", "4", "--sets", "6", "--critic-steps", "3"]),
        ("landscape", ["--grid", "3", "--points", "4"]),
    ],
)
def test_cli_writes_each_figure(tiny_bert, sst2_dir, tmp_path, figure, extra):
    out = tmp_path / f"{figure}.png"
    args = ["figures", figure, "--data-dir", sst2_dir, "--model", tiny_bert, "--out", str(out)]
    assert (
        main([*args, "--shots", "8", "--steps", "2", "--dev", "4", "--max-len", "32", *extra]) == 0
    )
    assert out.stat().st_size > 1000


def test_curves_figure_reads_test_curve_runs(tiny_bert, sst2_dir, tmp_path):
    from infoprompt.config import RunConfig
    from infoprompt.train import train

    for method in ("infoprompt", "warp"):
        config = RunConfig(
            task="sst2",
            data_dir=sst2_dir,
            out=str(tmp_path / "runs" / method),
            model=tiny_bert,
            method=method,
            shots=8,
            epochs=2,
            batch_size=4,
            max_len=32,
            test_curve=True,
        )
        train(config, progress=False)
    curves = figures.reported_curves([str(tmp_path / "runs")])
    assert set(curves) == {"infoprompt", "warp"} and [s for s, _ in curves["warp"][0]] == [2, 4]
    out = tmp_path / "curves.png"
    assert main(["figures", "curves", "--runs", str(tmp_path / "runs"), "--out", str(out)]) == 0
    assert out.stat().st_size > 1000
    val = figures.reported_curves([str(tmp_path / "runs")], split="validation")
    assert [s for s, _ in val["infoprompt"][0]] == [2, 4]
    assert [v for _, v in val["infoprompt"][0]] == [
        p["val"]["accuracy"]
        for p in json.loads((tmp_path / "runs/infoprompt/results.json").read_text())["curve"]
    ]
    args = ["figures", "curves", "--split", "validation", "--runs", str(tmp_path / "runs")]
    assert main([*args, "--out", str(out)]) == 0
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["figures", "curves", "--runs", str(empty), "--out", str(out)]) == 2


def test_curve_band_is_the_t_interval_from_three_runs():
    acc = np.array([[0.5, 0.6], [0.7, 0.6], [0.6, 0.9]])
    lo, hi = plots.curve_band(acc)
    half = 4.302652729911275 * acc.std(0, ddof=1) / np.sqrt(3)  # t_{0.975, 2}
    assert lo == pytest.approx(acc.mean(0) - half) and hi == pytest.approx(acc.mean(0) + half)
    assert [x.tolist() for x in plots.curve_band(acc[:2])] == [[0.5, 0.6], [0.7, 0.6]]
