"""MI-term activity (infoprompt.activity), the critics' own rate, the saturated control and the
commit a run records."""

from __future__ import annotations

import re

import pytest
import torch

import infoprompt.activity as activity
from infoprompt.config import ConfigError, RunConfig
from infoprompt.loop import make_optimizer
from infoprompt.model import PromptModel, load_backbone
from infoprompt.runs import source_commit
from infoprompt.tasks import TASKS
from infoprompt.train import train

FAST = {"shots": 8, "epochs": 2, "batch_size": 4, "eval_batch_size": 8, "max_len": 32}


def test_shares_are_each_terms_gradient_norm_over_their_sum():
    # three terms of one parameter vector; each gradient by its own autograd call as reference
    p = torch.tensor([1.0, -2.0, 0.5], requires_grad=True)
    terms = {"pred": (p**2).sum(), "rep": 0.1 * (p**3).sum(), "head": 0.05 * p.sin().sum()}
    refs = {
        k: torch.autograd.grad(t, p, retain_graph=True)[0].norm().item() for k, t in terms.items()
    }
    mi = activity.mi_gradients(terms, [p])
    sum(terms.values()).backward()
    shares = activity.shares(mi, [p])
    total = sum(refs.values())
    assert shares == pytest.approx({k: v / total for k, v in refs.items()}, rel=1e-6)


def test_summary_counts_live_steps_and_epochs():
    rec = [
        {"step": 1, "share": {"pred": 0.7, "rep": 0.3}, "value": {"rep": 3.0}},
        {"step": 5, "share": {"pred": 0.995, "rep": 0.005}, "value": {"rep": 0.5}},
        {"step": 9, "share": {"pred": 0.98, "rep": 0.02}, "value": {"rep": 0.01}},
        {"step": 13, "share": {"pred": 1.0, "rep": 0.0}, "value": {"rep": 0.0}},
    ]
    s = activity.summary(rec, steps_per_epoch=4)
    assert s["measured_steps"] == 4 and "head" not in s
    assert s["rep"]["live_fraction"] == 0.5
    assert s["rep"]["peak_share"] == 0.3 and s["rep"]["peak_share_epoch"] == 0.25
    assert s["rep"]["last_live_epoch"] == 9 / 4
    assert (s["rep"]["peak_value"], s["rep"]["final_value"]) == (3.0, 0.0)


def test_saturated_needs_both_scores_below_the_floor():
    assert activity.saturated(0.001, 0.004)
    assert not activity.saturated(0.001, 0.5) and not activity.saturated(0.5, 0.001)


def run_config(tmp_path, model, data_dir, **kw):
    return RunConfig(
        **{"task": "sst2", "data_dir": data_dir, "out": str(tmp_path / "run"), "model": model}
        | FAST
        | kw
    )


def test_a_run_records_mi_activity_and_measuring_changes_nothing(
    tmp_path, tiny_bert, sst2_dir, monkeypatch
):
    monkeypatch.setattr(activity, "EVERY", 1)  # every step measured
    measured = train(run_config(tmp_path / "a", tiny_bert, sst2_dir), progress=False)
    act = measured["mi_activity"]
    assert act["measured_steps"] == 4 and set(act) >= {"rep", "head"}
    for point in measured["curve"]:
        assert set(point["share"]) == {"pred", "rep", "head"}
        assert sum(point["share"].values()) == pytest.approx(1.0)
    monkeypatch.setattr(activity, "EVERY", 10**9)
    plain = train(run_config(tmp_path / "b", tiny_bert, sst2_dir), progress=False)
    assert plain["mi_activity"]["measured_steps"] == 1  # step 0 only
    assert plain["test"] == measured["test"]
    assert [p["train"] for p in plain["curve"]] == [p["train"] for p in measured["curve"]]


def test_a_method_without_mi_terms_records_no_activity(tmp_path, tiny_bert, sst2_dir):
    r = train(run_config(tmp_path, tiny_bert, sst2_dir, method="beta0gamma0"), progress=False)
    assert "mi_activity" not in r and all("share" not in p for p in r["curve"])


def test_critic_lr_gives_the_critics_their_own_group(tiny_bert, sst2_dir, tmp_path):
    config = run_config(tmp_path, tiny_bert, sst2_dir, lr=1e-3, critic_lr=0.05)
    tokenizer, encoder = load_backbone(tiny_bert)
    model = PromptModel(config, TASKS["sst2"], tokenizer, encoder)
    opt, _ = make_optimizer(model, config, total_steps=4)
    rest, critics = opt.param_groups
    assert (rest["lr"], critics["lr"]) == (1e-3, 0.05)
    assert {id(p) for p in critics["params"]} == {id(p) for p in model.critics().values()}
    names = set(model.critics())
    assert names == {
        "rep_mi.W2",
        "rep_mi.f_mu.weight",
        "rep_mi.f_mu.bias",
        "rep_mi.f_sigma.weight",
        "rep_mi.f_sigma.bias",
        "head_mi.W1",
    }
    default = run_config(tmp_path, tiny_bert, sst2_dir, lr=1e-3)
    assert len(make_optimizer(model, default, total_steps=4)[0].param_groups) == 1
    with pytest.raises(ConfigError, match="critic_lr does not apply to method 'warp'"):
        run_config(tmp_path, tiny_bert, sst2_dir, method="warp", critic_lr=0.05)
    with pytest.raises(ConfigError, match="critic_lr must be > 0"):
        run_config(tmp_path, tiny_bert, sst2_dir, critic_lr=0.0)


def test_source_commit_names_a_commit_or_nothing():
    commit = source_commit()
    assert commit is None or re.fullmatch(r"[0-9a-f]{40}(\+dirty)?", commit)
