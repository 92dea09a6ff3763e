"""The command line: train (several seeds), report, predict, and error messages."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from infoprompt.__main__ import main
from infoprompt.checkpoint import read_checkpoint
from infoprompt.predict import parse_text
from infoprompt.report import tables


def train_args(model, data_dir, out, *extra):
    return [
        "train",
        "--task",
        "sst2",
        "--data-dir",
        data_dir,
        "--model",
        model,
        "--shots",
        "8",
        "--epochs",
        "2",
        "--batch-size",
        "4",
        "--max-len",
        "32",
        "--out",
        str(out),
        "--no-progress",
        *extra,
    ]


def test_train_report_predict(tmp_path, tiny_bert, sst2_dir, capsys):
    out = tmp_path / "runs" / "sst2-infoprompt"
    assert main(train_args(tiny_bert, sst2_dir, out, "--seeds", "1,2", "--n-prompts", "2")) == 0
    for seed in (1, 2):
        results = json.loads((out / f"seed{seed}" / "results.json").read_text())
        assert results["config"]["seed"] == seed and results["config"]["n_prompts"] == 2
    assert "seed 2: test final" in capsys.readouterr().out

    assert main(["report", str(tmp_path / "runs")]) == 0
    table = capsys.readouterr().out
    assert "### 8 training examples: test.final" in table and "| infoprompt | " in table
    assert "### 8 training examples: test.selected" in table
    assert "SST-2 (acc)" in table and "± " in table and "(2) |" in table

    assert main(["predict", "--run", str(out / "seed1"), "a gem of a film", "a dull mess"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2 and lines[0].split("\t")[0] in ("negative", "positive")
    assert "positive=" in lines[0] and lines[1].endswith("a dull mess")


@pytest.mark.parametrize(
    "change, message",
    [
        (["--method", "magic"], "unknown method 'magic'"),
        (["--seeds", "1,x"], "--seeds must be comma-separated integers"),
        (["--shots", "100"], "100 shots requested but only 24 examples"),
    ],
)
def test_errors_are_one_line_messages(tmp_path, tiny_bert, sst2_dir, capsys, change, message):
    assert main(train_args(tiny_bert, sst2_dir, tmp_path / "o", *change)) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err


def test_missing_data_dir_is_reported_before_any_training(tmp_path, tiny_bert, capsys):
    assert main(train_args(tiny_bert, str(tmp_path / "nowhere"), tmp_path / "o")) == 2
    assert "is not a folder" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_predict_needs_a_run_folder(tmp_path, capsys):
    assert main(["predict", "--run", str(tmp_path), "text"]) == 2
    assert "best.safetensors not found" in capsys.readouterr().err


def test_module_entry_point_with_bf16_autocast(tmp_path, tiny_bert, sst2_dir):
    """``python -m infoprompt train`` as a user runs it (bf16 autocast, here on the CPU: trainable
    parameters stay float32), then ``--resume`` on the finished run."""
    out = tmp_path / "o"
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    args = train_args(tiny_bert, sst2_dir, out, "--precision", "bf16")
    cmd = [sys.executable, "-m", "infoprompt", *args]
    first = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=Path.cwd())
    assert first.returncode == 0, first.stderr
    assert "step 4/4" in first.stdout and (out / "seed13" / "results.json").exists()
    tensors, _ = read_checkpoint(out / "seed13" / "last.safetensors")
    assert all(v.dtype == torch.float32 for k, v in tensors.items() if k.startswith("param/"))
    again = subprocess.run(cmd + ["--resume"], capture_output=True, text=True, env=env)
    assert again.returncode == 0 and "step 4/4" not in again.stdout and "test final" in again.stdout


def _run(seed, acc, method="warp", path="a", **config):
    config = {"shots": 64, "method": method, "seed": seed, "lr": 1e-3, "epochs": 30,
              "data_dir": "SST-2"} | config  # fmt: skip
    test = {"final": {"accuracy": acc}, "selected": {"accuracy": acc - 0.1}}
    return {"config": config, "task": "sst2", "main_metric": "accuracy", "test": test,
            "path": f"{path}{seed}{method}"}  # fmt: skip


def test_report_mean_and_std():
    text = tables([_run(1, 0.80), _run(2, 0.90), _run(1, 0.70, "finetune", lr=2e-5)])
    final, selected = text.split("test.selected")
    assert "| warp [lr=0.001] | 85.0 ± 7.1 (2) |" in final
    assert "| finetune [lr=2e-05] | 70.0 ± 0.0 (1) |" in final
    assert "| warp [lr=0.001] | 75.0 ± 7.1 (2) |" in selected
    assert final.index("warp") < final.index("finetune")  # registry order


def test_report_never_averages_other_settings_or_a_seed_twice():
    runs = [_run(1, 0.8), _run(2, 0.9), _run(3, 0.5, epochs=4), _run(1, 0.1, path="b")]
    text = tables(runs)
    assert "| warp [epochs=30] | 85.0 ± 7.1 (2) |" in text
    assert "| warp [epochs=4] | 50.0 ± 0.0 (1) |" in text
    assert "b1warp: seed 1 counted already" in text


def test_parse_text_pairs_and_entity_tags():
    from infoprompt.data import TASKS

    assert parse_text("A dog ran. ||| An animal ran.", TASKS["rte"]).text_b == "An animal ran."
    ex = parse_text("the <e1>cup</e1> holds <e2>tea</e2>", TASKS["semeval"])
    assert ex.text_a == "the cup holds tea"
    assert [ex.text_a[a:b] for a, b in ex.spans] == ["cup", "tea"]


@pytest.mark.slow
def test_two_processes_share_each_global_batch(tmp_path, tiny_bert, sst2_dir):
    """The Accelerate path with two CPU processes (gloo; ``torchrun`` is what ``accelerate
    launch`` runs): a global batch of 2 × 4 examples halves the steps per epoch."""
    out = tmp_path / "o"
    env = dict(os.environ, HF_HUB_OFFLINE="1", ACCELERATE_USE_CPU="1", OMP_NUM_THREADS="1")
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2"]
    cmd = [*torchrun, "-m", "infoprompt", *train_args(tiny_bert, sst2_dir, out)]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    results = json.loads((out / "seed13" / "results.json").read_text())
    assert [p["step"] for p in results["curve"]] == [1, 2]  # 8 examples, 8 per global step
    assert done.stdout.count("seed 13: test final") == 1  # only the main process reports
