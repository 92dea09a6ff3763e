"""The bridge to Theorem 3.1 (``infoprompt.theorem``, ``python -m infoprompt theory``) on tiny runs:
the float64 eq. 11 equals the trainer's forward, Hessian-vector products equal differences of
gradients, Lanczos finds extreme eigenvalues, the convex instances reproduce the trainer's losses,
and the command writes instances that load back into the theory."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import write_sst2

from infoprompt import curvature, theorem
from infoprompt.__main__ import main
from infoprompt.config import RunConfig
from infoprompt.train import train
from theory import GroupedSoftmaxRegression, solve

FAST = {"shots": 8, "epochs": 2, "batch_size": 4, "eval_batch_size": 8, "max_len": 32}


@pytest.fixture(scope="module")
def runs(tmp_path_factory, tiny_bert):
    """Two finished tiny runs (infoprompt with K = 4, beta0gamma0) and their data folder."""
    root = tmp_path_factory.mktemp("theorem")
    data = write_sst2(root / "SST-2")
    out = {}
    for method, kw in (("infoprompt", {"n_negatives": 4}), ("beta0gamma0", {})):
        config = RunConfig(task="sst2", data_dir=data, out=str(root / method), model=tiny_bert,
                           method=method, **FAST, **kw)  # fmt: skip
        train(config, progress=False)
        out[method] = root / method
    return out


@pytest.fixture(scope="module")
def session(runs):
    return theorem.load_trained(runs["infoprompt"])


def test_float64_eq11_is_the_trainers_loss(session):
    """eq11_sum (the bridge's own forward) equals PromptModel.forward's loss × B with the same
    seed: in float32 on the model itself to rounding, and in float64 on the double copy."""
    m = session.model
    f = curvature.Eq11(session, size=4)
    gen = list(m.prompts.parameters())
    for i, b in enumerate(theorem.batches(session, 4)):
        torch.manual_seed(i)
        with torch.no_grad():
            ref = float(m(**b)["loss"]) * len(b["labels"])
            ours32 = float(curvature.eq11_sum(m, b, gen, i, float64=False))
            ours64 = float(curvature.eq11_sum(f.m, f.batches[i], f.params(f.x0), i))
        assert ours32 == pytest.approx(ref, rel=1e-6)
        assert ours64 == pytest.approx(ref, rel=1e-4)


def test_hvp_is_the_derivative_of_the_gradient(session):
    f = curvature.Eq11(session, size=4)
    v = torch.randn(f.x0.numel(), dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    h = 1e-4 / float(v.norm())
    fd = (f.gradient(f.x0 + h * v) - f.gradient(f.x0 - h * v)) / (2 * h)
    hv = f.hvp(v)
    assert float((hv - fd).norm() / hv.norm()) <= 1e-5
    assert float(v @ hv) == pytest.approx(float(v @ fd), rel=1e-5)


def test_lanczos_brackets_and_finds_the_extreme_eigenvalues():
    rng = np.random.default_rng(0)
    Q, _ = np.linalg.qr(rng.standard_normal((80, 80)))
    lam = np.r_[-3.0, np.linspace(-1, 1, 78), 5.0]
    H = torch.as_tensor(Q @ np.diag(lam) @ Q.T)
    theta, res = curvature.lanczos(lambda v: H @ v, 80, 25)
    assert lam[0] <= theta[0] and theta[-1] <= lam[-1]  # Ritz values lie inside the spectrum
    assert theta[0] == pytest.approx(-3.0, abs=1e-6) and theta[-1] == pytest.approx(5.0, abs=1e-6)
    assert res[0] <= 1e-5 and res[-1] <= 1e-5
    full, _ = curvature.lanczos(lambda v: H @ v, 80, 80)
    assert full[0] == pytest.approx(-3.0, abs=1e-10)


def test_convex_instances_reproduce_the_trainers_losses(session):
    q, sums = theorem.trained_quantities(session, seed=0, size=4)
    m = session.model
    A, b, g, x = theorem.pred_instance(q, m.head)
    prob = GroupedSoftmaxRegression(A, b, 0.0, g, exp_weight=0.0)
    assert prob.loss(x) == pytest.approx(sums["pred"], rel=1e-5)
    A, b, g, x, residual = theorem.head_instance(q, m.head_mi.W1, m.head.weight)
    prob = GroupedSoftmaxRegression(A, b, 0.0, g, exp_weight=0.0)
    assert prob.n_groups == 8 and prob.n == 8 * 4  # one group of K = 4 candidates per example
    assert prob.loss(x) == pytest.approx(sums["head"], rel=1e-5)
    assert residual <= 1e-5  # θ_X lies in the span of the head's rows (float32 rounding aside)


def test_the_theorem_variant_meets_lemma_C15_and_the_trained_one_does_not(session):
    q, _ = theorem.trained_quantities(session, seed=0, size=4)
    A, b, g, x = theorem.pred_instance(q, session.model.head)
    probs = theorem.variants(A, b, g, lam=0.01)
    found = {k: theorem.analyse(p, x, k) for k, p in probs.items()}
    assert not found["trained"]["conditions"]["regulariser_dominates"]["holds"]
    assert found["theorem"]["conditions"]["regulariser_dominates"]["holds"]
    for k in ("ridge", "theorem"):
        opt = found[k]["optimum"]
        assert opt["success"] and opt["newton_agrees"] <= 1e-6
        assert found[k]["gap"]["loss"] >= -1e-9  # x* minimises: the trained point is not below
        x_star = solve(probs[k], method="newton", tol=1e-10).x
        assert found[k]["gap"]["distance"] == pytest.approx(np.linalg.norm(x - x_star), rel=1e-6)
        assert found[k]["gap"]["loss"] == pytest.approx(
            probs[k].loss(x) - probs[k].loss(x_star), rel=1e-6, abs=1e-9
        )


def test_command_writes_instances_that_load_back(runs, tmp_path, capsys):
    out = tmp_path / "instances"
    code = main(["theory", str(runs["infoprompt"]), "--out", str(out), "--lanczos-steps", "4"])
    assert code == 0
    text = capsys.readouterr().out
    assert "regulariser_dominates" in text and "Hessian of eq. 11" in text
    report = json.loads((out / "report.json").read_text())
    assert set(report["instances"]) == {
        f"{s}/{v}" for s in ("pred", "head") for v in ("trained", "ridge", "theorem")
    }
    h = report["hessian"]
    assert h["params"] == 2 * 4 * 64 * 32  # W_down, W_up: n_p = 4, bottleneck 64, hidden 32
    assert h["lambda_min"] <= h["lambda_max"] and h["steps"] == 4
    for name, inst in report["instances"].items():
        z = np.load(out / f"{name.replace('/', '_')}.npz")
        prob = GroupedSoftmaxRegression(z["A"], z["b"], z["w"], z["groups"], float(z["exp_weight"]))
        assert prob.loss(z["x_trained"]) == pytest.approx(inst["L_trained"], rel=1e-12)


def test_a_method_without_head_loss_has_only_the_prediction_instances(runs, capsys):
    report = theorem.run(runs["beta0gamma0"], hessian=False)
    assert set(report["instances"]) == {"pred/trained", "pred/ridge", "pred/theorem"}
    assert report["trainer_sums"]["head"] is None


def test_bad_input_is_refused_before_work(tmp_path, capsys):
    assert main(["theory", str(tmp_path)]) == 2
    assert "last.safetensors not found" in capsys.readouterr().err


def test_compare_solvers_times_the_default_against_scipy():
    from theory import grouped

    rng = np.random.default_rng(0)
    prob = grouped.multinomial_logistic(
        rng.standard_normal((40, 3)), rng.integers(0, 3, 40), 3, 1.0
    )
    out = theorem.compare_solvers(prob, repeats=1)
    assert set(out["methods"]) == {"sketched-subspace-newton", *theorem.SCIPY}
    rows = out["methods"]
    assert rows["sketched-subspace-newton"]["success"] and out["best_scipy"] is not None
    assert rows[out["best_scipy"]]["success"]
    losses = [r["loss"] for r in rows.values() if r["success"]]
    assert max(losses) - min(losses) <= 1e-9 * max(1.0, abs(min(losses)))
    assert out["best_scipy"] in theorem.SCIPY and out["ratio"] > 0
