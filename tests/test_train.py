"""The training loop end to end on small TSV files: every method, the protocol (validation draw,
reported set read once training ends), caching, checkpoints, resuming, the learning-rate search,
and the errors that bad input must raise before any work starts."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
import torch

import infoprompt.loop as loop_mod
import infoprompt.session as session_mod
import infoprompt.train as train_mod
from infoprompt.checkpoint import (
    atomic_write,
    load_params,
    read_checkpoint,
    restore_training,
    save_checkpoint,
    write_json,
)
from infoprompt.config import ConfigError, RunConfig
from infoprompt.errors import DataError
from infoprompt.loop import epoch_batches, make_optimizer
from infoprompt.methods import METHODS
from infoprompt.model import PromptModel, load_backbone
from infoprompt.runs import BEST, LAST, RESULTS
from infoprompt.tasks import TASKS
from infoprompt.train import train

FAST = {"shots": 8, "epochs": 2, "batch_size": 4, "eval_batch_size": 8, "max_len": 32}


def run_config(tmp_path, model, data_dir, name="run", **kw):
    return RunConfig(
        **{"task": "sst2", "data_dir": data_dir, "out": str(tmp_path / name), "model": model}
        | FAST
        | kw
    )


@pytest.mark.parametrize(
    "method, extra, label",
    [(m, {}, m) for m in METHODS]
    + [
        ("infoprompt", {"gamma": 0.0}, "infoprompt (β=0.1, γ=0)"),
        ("infoprompt", {"theta": "label"}, "infoprompt"),
    ],
)
def test_every_method_runs_end_to_end(tmp_path, tiny_bert, sst2_dir, method, extra, label):
    config = run_config(tmp_path, tiny_bert, sst2_dir, method=method, **extra)
    results = train(config, progress=False)
    run = Path(config.out)
    assert json.loads((run / RESULTS).read_text()) == json.loads(json.dumps(results))
    assert results["finished"] and results["label"] == label
    assert results["config"] == config.to_dict()
    assert (results["n_train"], results["n_val"]) == (8, 8)
    assert [p["step"] for p in results["curve"]] == [2, 4]
    val = [p["val"]["accuracy"] for p in results["curve"]]
    first_best = [2, 4][val.index(max(val))]  # ties: the earliest validation
    assert results["best"]["val"]["accuracy"] == max(val) and results["best"]["step"] == first_best
    assert all(8 * v == round(8 * v) for v in val)  # 8 validation examples
    for which in ("final", "selected"):
        assert set(results["test"][which]) == {"accuracy"}
    assert results["test"]["n"] == 8 and results["test"]["selected_step"] == first_best
    parts = {"loss", "pred"} | {k for k, w in (("rep", config.beta), ("head", config.gamma)) if w}
    assert set(results["curve"][0]["train"]) == parts
    critic = results["curve"][0]["critic"]
    assert set(critic) == {k for p in parts - {"loss", "pred"} for k in (p, p + "_shuffled")}
    tensors, meta = read_checkpoint(run / LAST)
    assert meta["config"] == config.to_dict() and meta["labels"] == list(TASKS["sst2"].labels)
    in_encoder = [k for k in tensors if k.startswith("param/encoder.")]
    trained = METHODS[method].encoder
    assert bool(in_encoder) == (trained != "frozen")  # frozen weights are never saved
    if trained in ("lora", "adapter"):
        assert all(("lora_" in k) == (trained == "lora") for k in in_encoder)


def test_reported_set_is_read_only_after_training_ends(tmp_path, tiny_bert, sst2_dir, monkeypatch):
    reads, steps = [], []
    load_split = session_mod.load_split

    def counting(task, data_dir, split, **kw):
        reads.append((split, len(steps)))
        return load_split(task, data_dir, split, **kw)

    step = train_mod.TrainLoop.step
    monkeypatch.setattr(session_mod, "load_split", counting)
    monkeypatch.setattr(
        train_mod.TrainLoop, "step", lambda self, idx: steps.append(1) or step(self, idx)
    )
    results = train(run_config(tmp_path, tiny_bert, sst2_dir), progress=False)
    assert [s for s, _ in reads] == ["train", "dev"]
    assert reads[-1][1] == len(steps) == 4  # dev read once, after the last of the 4 steps
    assert "test_curve" not in results["curve"][0]


def test_test_curve_is_labelled_and_never_selects(tmp_path, tiny_bert, sst2_dir):
    results = train(run_config(tmp_path, tiny_bert, sst2_dir, test_curve=True), progress=False)
    assert all("accuracy" in p["test_curve"] for p in results["curve"])
    val = [p["val"]["accuracy"] for p in results["curve"]]
    assert results["best"]["step"] == results["curve"][val.index(max(val))]["step"]


def test_selected_is_the_best_validation_checkpoint(tmp_path, tiny_bert, sst2_dir):
    config = run_config(tmp_path, tiny_bert, sst2_dir, epochs=4, lr=0.05)
    results = train(config, progress=False)
    best = results["best"]
    assert results["test"]["selected_step"] == best["step"]
    tensors, _ = read_checkpoint(Path(config.out) / BEST)
    from infoprompt.evaluation import evaluate
    from infoprompt.session import build_session

    s = build_session(config, log=lambda line: None)
    load_params(s.model, tensors)
    assert evaluate(s, s.val_set) == best["val"]
    assert evaluate(s, s.reported()) == results["test"]["selected"]


def test_lr_grid_chooses_on_the_final_epochs_validation(tmp_path, tiny_bert, sst2_dir):
    config = run_config(tmp_path, tiny_bert, sst2_dir, lr_grid=[1e-4, 1e-2], epochs=2)
    results = train(config, progress=False)
    search = results["lr_search"]
    assert search["grid"] == [1e-4, 1e-2] and len(search["val"]) == 2
    best = max(search["val"])
    assert search["chosen"] == results["lr"] == [1e-4, 1e-2][search["val"].index(best)]
    assert results["config"]["lr_grid"] == [1e-4, 1e-2] and "final" in results["test"]
    for lr, val in zip(("0.0001", "0.01"), search["val"]):
        sub = json.loads((Path(config.out) / f"lr-{lr}" / RESULTS).read_text())
        assert "test" not in sub  # the search runs never read the reported set
        assert val == sub["curve"][-1]["val"]["accuracy"]  # the model test.final reports
    assert train(config, resume=True, progress=False) == results


def test_a_finished_lr_search_can_be_widened_without_retraining(tmp_path, tiny_bert, sst2_dir):
    import dataclasses

    config = run_config(tmp_path, tiny_bert, sst2_dir, lr_grid=[1e-4, 1e-2], epochs=1)
    first = train(config, progress=False)
    old = {lr: (Path(config.out) / f"lr-{lr}" / RESULTS).read_text() for lr in ("0.0001", "0.01")}
    wider = dataclasses.replace(config, lr_grid=[1e-4, 1e-2, 1e-1])
    results = train(wider, resume=True, progress=False)
    assert results["lr_search"]["grid"] == [1e-4, 1e-2, 1e-1]
    assert results["lr_search"]["val"][:2] == first["lr_search"]["val"]  # reused, not retrained
    for lr, text in old.items():
        assert (Path(config.out) / f"lr-{lr}" / RESULTS).read_text() == text
    with pytest.raises(ConfigError, match="another configuration"):  # narrowing is refused
        train(config, resume=True, progress=False)


def test_resume_refuses_other_settings(tmp_path, tiny_bert, sst2_dir):
    config = run_config(tmp_path, tiny_bert, sst2_dir, epochs=1)
    train(config, progress=False)
    other = run_config(tmp_path, tiny_bert, sst2_dir, epochs=3, method="warp")
    with pytest.raises(ConfigError) as refused:
        train(other, resume=True, progress=False)
    # only the settings that differ: not warp's "beta: saved 0.1, asked None" and the like
    assert "(epochs: saved 1, asked 3, method: saved 'infoprompt', asked 'warp');" in str(
        refused.value
    )


def test_pair_task_on_roberta(tmp_path, tiny_roberta, rte_dir):
    config = run_config(tmp_path, tiny_roberta, rte_dir, task="rte", epochs=1, val_shots=4)
    results = train(config, progress=False)
    assert results["finished"] and set(results["test"]["final"]) == {"accuracy"}


def test_eval_every_k_steps(tmp_path, tiny_bert, sst2_dir):
    results = train(run_config(tmp_path, tiny_bert, sst2_dir, eval_every=3), progress=False)
    assert [p["step"] for p in results["curve"]] == [3, 4]


def test_prompt_free_pass_runs_once_per_example(tmp_path, tiny_bert, sst2_dir, monkeypatch):
    rows = []
    plain_pass = PromptModel.plain_pass

    def counting(self, input_ids, *args):
        rows.append(len(input_ids))
        return plain_pass(self, input_ids, *args)

    monkeypatch.setattr(PromptModel, "plain_pass", counting)
    results = train(run_config(tmp_path, tiny_bert, sst2_dir, epochs=3), progress=False)
    n = results["n_train"] + results["n_val"] + results["test"]["n"]
    assert sum(rows) == n  # once per example, not once per step or epoch


def test_checkpoint_round_trips(tmp_path, tiny_bert, sst2_dir):
    config = run_config(tmp_path, tiny_bert, sst2_dir)
    train(config, progress=False)
    tensors, meta = read_checkpoint(Path(config.out) / LAST)
    tokenizer, encoder = load_backbone(tiny_bert)
    model = PromptModel(config, TASKS["sst2"], tokenizer, encoder)
    load_params(model, tensors)
    for name, p in model.trainable().items():
        assert torch.equal(p, tensors[f"param/{name}"]), name
    optimizer, scheduler = make_optimizer(model, config, total_steps=4)
    state = restore_training(tensors, meta, optimizer, scheduler)
    assert state["step"] == 4 and scheduler.last_epoch == 4
    save_checkpoint(tmp_path / "again.safetensors", model.trainable(), meta, optimizer, state)
    again, meta_again = read_checkpoint(tmp_path / "again.safetensors")
    assert again.keys() == tensors.keys() and meta_again == meta
    assert all(torch.equal(again[k], tensors[k]) for k in tensors)


@pytest.mark.parametrize("method", ["infoprompt", "finetune"])
def test_resume_equals_an_uninterrupted_run(tmp_path, tiny_bert, sst2_dir, monkeypatch, method):
    kw = {"method": method, "epochs": 3, "eval_every": 3}
    full = train(run_config(tmp_path, tiny_bert, sst2_dir, "full", **kw), progress=False)

    write_json = loop_mod.write_json

    def interrupt(path, obj):  # the process dies right after the first evaluation's files
        write_json(path, obj)
        raise KeyboardInterrupt

    monkeypatch.setattr(loop_mod, "write_json", interrupt)
    config = run_config(tmp_path, tiny_bert, sst2_dir, "cut", **kw)
    with pytest.raises(KeyboardInterrupt):
        train(config, progress=False)
    assert not json.loads((Path(config.out) / RESULTS).read_text())["finished"]
    monkeypatch.setattr(loop_mod, "write_json", write_json)
    torch.manual_seed(123)  # the global RNG state must come from the checkpoint
    resumed = train(config, resume=True, progress=False)

    a, _ = read_checkpoint(tmp_path / "full" / LAST)
    b, _ = read_checkpoint(tmp_path / "cut" / LAST)
    params = [k for k in a if k.startswith("param/")]
    assert params and all(torch.equal(a[k], b[k]) for k in params)
    assert [p["val"] for p in resumed["curve"]] == [p["val"] for p in full["curve"]]
    assert resumed["test"] == full["test"]
    assert [p["train"] for p in resumed["curve"]] == [p["train"] for p in full["curve"]]


def test_a_finished_run_is_neither_overwritten_nor_retrained(tmp_path, tiny_bert, sst2_dir):
    config = run_config(tmp_path, tiny_bert, sst2_dir, epochs=1)
    first = train(config, progress=False)
    with pytest.raises(ConfigError, match="already holds a run; pass --resume"):
        train(config, progress=False)
    assert train(config, resume=True, progress=False) == first


def test_epoch_batches_are_seeded_and_shared_across_processes():
    one = epoch_batches(10, 4, seed=1, epoch=0)
    assert one == epoch_batches(10, 4, seed=1, epoch=0) != epoch_batches(10, 4, seed=1, epoch=1)
    assert sorted(i for b in one for i in b) == list(range(10)) and len(one[-1]) == 2
    ranks = [epoch_batches(10, 2, seed=1, epoch=0, rank=r, world=2) for r in range(2)]
    assert all(len(b) == 2 for r in ranks for b in r) and len(ranks[0]) == 3
    assert {i for r in ranks for b in r for i in b} == set(range(10))


def test_atomic_write_leaves_no_temporary_file(tmp_path):
    atomic_write(tmp_path / "x.json", b"{}")
    atomic_write(tmp_path / "x.json", b"[]")
    assert [p.name for p in tmp_path.iterdir()] == ["x.json"]
    assert (tmp_path / "x.json").read_bytes() == b"[]"


# --- bad input stops with a message that names the problem ---------------------------------------


def _tsv(folder: Path, train: str, dev: str = "sentence\tlabel\nok\t1\n") -> str:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "train.tsv").write_text(train)
    (folder / "dev.tsv").write_text(dev)
    return str(folder)


def test_missing_file(tmp_path, tiny_bert):
    (tmp_path / "data").mkdir()
    config = run_config(tmp_path, tiny_bert, str(tmp_path / "data"))
    with pytest.raises(DataError, match=r"file not found: .*train\.tsv"):
        train(config, progress=False)


def test_malformed_row(tmp_path, tiny_bert):
    data = _tsv(tmp_path / "d", "sentence\tlabel\ngood\t1\nbad\t0\textra\n")
    with pytest.raises(DataError, match=r"train\.tsv, line 3: expected 2 tab-separated columns"):
        train(run_config(tmp_path, tiny_bert, data), progress=False)


def test_more_shots_than_examples(tmp_path, tiny_bert, sst2_dir):
    with pytest.raises(DataError, match="64 shots requested but only 24 examples"):
        train(run_config(tmp_path, tiny_bert, sst2_dir, shots=64), progress=False)


def test_a_class_with_no_example(tmp_path, tiny_bert):
    data = _tsv(tmp_path / "d", "sentence\tlabel\n" + "nice\t1\n" * 10)
    with pytest.raises(DataError, match=r"class id\(s\) \[0\] \['negative'\] have no example"):
        train(run_config(tmp_path, tiny_bert, data, shots=4), progress=False)


def test_model_path_that_does_not_exist(tmp_path, sst2_dir):
    config = run_config(tmp_path, str(tmp_path / "no-such-model"), sst2_dir)
    with pytest.raises(ConfigError, match="model path .*no-such-model.* does not exist"):
        train(config, progress=False)


def test_missing_data_dir(tmp_path, tiny_bert):
    config = run_config(tmp_path, tiny_bert, str(tmp_path / "nowhere"))
    with pytest.raises(ConfigError, match="data_dir .*nowhere.* is not a folder"):
        train(config, progress=False)


@pytest.mark.parametrize(
    "bad, message",
    [
        ({"task": "sst3"}, "unknown task 'sst3' \\(valid: sst2, rte"),
        ({"method": "magic"}, "unknown method 'magic' \\(valid: infoprompt"),
        ({"lr": -1.0}, "lr must be > 0, got -1.0"),
        ({"batch_size": 0}, "batch_size must be a positive integer, got 0"),
        ({"n_negatives": 1}, "n_negatives \\(K\\) must be >= 2"),
        ({"method": "warp", "beta": 0.1}, "beta does not apply to method 'warp'"),
        ({"method": "warp", "lora_r": 4}, "lora_r does not apply to method 'warp'"),
        ({"method": "finetune", "n_prompts": 4}, "n_prompts does not apply to method 'finetune'"),
        ({"method": "gamma0", "gamma": 0.05}, "gamma=0.05 conflicts with method 'gamma0'"),
        ({"label_column": "y"}, "label_column only apply to task 'tsv'"),
        ({"lr": 1e-3, "lr_grid": [1e-3]}, "either lr or lr_grid"),
        ({"sampling": "random"}, "unknown sampling 'random'"),
        ({"theta": "mean"}, "unknown theta 'mean'"),
        ({"warmup": 1.5}, "warmup must be a fraction"),
    ],
)
def test_bad_configuration_is_rejected_up_front(tmp_path, bad, message):
    with pytest.raises(ConfigError, match=message):
        RunConfig(**{"task": "sst2", "data_dir": ".", "out": str(tmp_path), "model": "x"} | bad)


def test_config_round_trips_and_rejects_unknown_keys(tmp_path):
    config = RunConfig(task="sst2", data_dir=".", out=str(tmp_path), model="x", method="warp")
    assert RunConfig.from_dict(config.to_dict()) == config
    assert (config.beta, config.gamma, config.lr, config.n_prompts) == (None, None, 1e-3, 4)
    with pytest.raises(ConfigError, match="unknown configuration keys \\['colour'\\]"):
        RunConfig.from_dict(config.to_dict() | {"colour": "red"})


# --- issue 15: per-process RNG states, damaged runs on resume, file permissions ------------------


def test_checkpoint_holds_one_rng_state_per_process(tmp_path, tiny_bert):
    from infoprompt.checkpoint import rng_state

    config = RunConfig(task="sst2", data_dir=".", out=str(tmp_path), model=tiny_bert, method="warp")
    tokenizer, encoder = load_backbone(tiny_bert)
    model = PromptModel(config, TASKS["sst2"], tokenizer, encoder)
    optimizer, scheduler = make_optimizer(model, config, total_steps=4)
    states = []
    for seed in (1, 2):  # two "processes" with different draws so far
        torch.manual_seed(seed)
        torch.rand(seed)
        states.append(rng_state())
    state = {"step": 0, "scheduler": scheduler.state_dict()}
    save_checkpoint(tmp_path / "c.safetensors", model.trainable(), {}, optimizer, state, states)
    tensors, meta = read_checkpoint(tmp_path / "c.safetensors")
    assert meta["world"] == 2 and {"rng/0/torch", "rng/1/torch"} <= tensors.keys()
    for rank in (0, 1):
        torch.manual_seed(99)
        restore_training(tensors, meta, optimizer, scheduler, rank=rank, world=2)
        assert rng_state() == states[rank]  # each process gets its own state back
    with pytest.raises(ConfigError, match="written by 2 process.*this run has 1; resume with 2"):
        restore_training(tensors, meta, optimizer, scheduler)
    # a checkpoint of the single-copy layout (rng/torch) still resumes on one process
    old = {
        ("rng/torch" if k == "rng/0/torch" else k): v
        for k, v in tensors.items()
        if not k.startswith("rng/1/")
    }
    torch.manual_seed(99)
    restore_training(old, {k: v for k, v in meta.items() if k != "world"}, optimizer, scheduler)
    assert rng_state() == states[0]


@pytest.mark.parametrize("damaged", [RESULTS, LAST])
def test_resume_of_a_truncated_file_is_a_one_line_error(tmp_path, tiny_bert, sst2_dir, damaged):
    config = run_config(tmp_path, tiny_bert, sst2_dir, epochs=1)
    train(config, progress=False)
    run = Path(config.out)
    if damaged == LAST:
        (run / RESULTS).unlink()  # the checkpoint is read when results.json is absent
    data = (run / damaged).read_bytes()
    (run / damaged).write_bytes(data[: len(data) // 2])
    with pytest.raises(ConfigError, match=f"{run} holds a damaged run .*delete the folder"):
        train(config, resume=True, progress=False)


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o027, 0o640), (0o077, 0o600)])
def test_files_are_written_with_the_users_umask(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        atomic_write(tmp_path / "r.json", b"{}")
        write_json(tmp_path / "s.json", {})
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "r.json").stat().st_mode) == mode
    assert stat.S_IMODE((tmp_path / "s.json").stat().st_mode) == mode
