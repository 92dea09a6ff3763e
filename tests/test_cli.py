"""The command line: train (several seeds), report, predict, and error messages."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from helpers import train_args

from infoprompt.__main__ import main
from infoprompt.checkpoint import read_checkpoint
from infoprompt.predict import parse_text
from infoprompt.report import tables


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
    args = train_args(tiny_bert, sst2_dir, out, "--precision", "bf16", "--threads", "1")
    cmd = [sys.executable, "-m", "infoprompt", *args]
    first = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=Path.cwd())
    assert first.returncode == 0, first.stderr
    assert "step 4/4" in first.stdout and (out / "seed13" / "results.json").exists()
    assert first.stdout.count("threads: 1 per process") == 1
    assert "%|" not in first.stderr and "Loading" not in first.stderr  # --no-progress: no bar
    tensors, _ = read_checkpoint(out / "seed13" / "last.safetensors")
    assert all(v.dtype == torch.float32 for k, v in tensors.items() if k.startswith("param/"))
    again = subprocess.run(cmd + ["--resume"], capture_output=True, text=True, env=env)
    assert again.returncode == 0 and "step 4/4" not in again.stdout and "test final" in again.stdout


def _run(seed, acc, method="warp", path="a", **config):
    config = {
        "shots": 64,
        "method": method,
        "seed": seed,
        "lr": 1e-3,
        "epochs": 30,
        "data_dir": "SST-2",
    } | config
    test = {"final": {"accuracy": acc}, "selected": {"accuracy": acc - 0.1}}
    return {
        "config": config,
        "task": "sst2",
        "main_metric": "accuracy",
        "test": test,
        "path": f"{path}{seed}{method}",
    }


def test_report_mean_and_std():
    text = tables([_run(1, 0.80), _run(2, 0.90), _run(1, 0.70, "finetune", lr=2e-5)])
    final, selected = text.split("test.selected")
    assert "| warp [lr=0.001] | 85.0 ± 7.1 (2) |" in final
    assert "| finetune [lr=2e-05] | 70.0 (1) |" in final
    assert "| warp [lr=0.001] | 75.0 ± 7.1 (2) |" in selected
    assert final.index("warp") < final.index("finetune")  # registry order


def test_report_never_averages_other_settings_or_a_seed_twice():
    runs = [_run(1, 0.8), _run(2, 0.9), _run(3, 0.5, epochs=4), _run(1, 0.1, path="b")]
    text = tables(runs)
    assert "| warp [epochs=30] | 85.0 ± 7.1 (2) |" in text
    assert "| warp [epochs=4] | 50.0 (1) |" in text
    assert "b1warp: seed 1 counted already" in text


def test_parse_text_pairs_and_entity_tags():
    from infoprompt.tasks import TASKS

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


def varied_sst2(folder):
    """An SST-2 folder whose sentences have 1 to 24 words, so that two processes' batches have
    different lengths (and dropout draws a different number of random values on each)."""
    folder.mkdir(parents=True, exist_ok=True)
    words = "a gem of a film warm and funny bright moving work dull mess boring long flat".split()
    rows = [(" ".join(words[j % len(words)] for j in range(i + 1)), i % 2) for i in range(24)]
    for name in ("train.tsv", "dev.tsv"):
        lines = ["sentence\tlabel"] + [f"{s}\t{y}" for s, y in rows]
        (folder / name).write_text("\n".join(lines) + "\n")
    return str(folder)


STOP_AFTER_FIRST_CHECKPOINT = """
import sys
import infoprompt.train as t
validate = t.TrainLoop._validate
def stop(self):
    validate(self)
    raise KeyboardInterrupt  # on every process, right after the first checkpoint
t.TrainLoop._validate = stop
from infoprompt.__main__ import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.slow
def test_two_process_resume_restores_each_process_rng(tmp_path, tiny_bert):
    """Item 3: an interrupted and resumed 2-process run equals the uninterrupted one. The method
    trains the encoder (dropout draws from torch's RNG), and the two processes' batches differ in
    length, so the processes' RNG states differ: the checkpoint holds one per process and each
    process restores its own (a single copy restored on every process changes rank 1's draws)."""
    data = varied_sst2(tmp_path / "SST-2")
    env = dict(os.environ, HF_HUB_OFFLINE="1", ACCELERATE_USE_CPU="1", OMP_NUM_THREADS="1")
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2"]
    stop = tmp_path / "stop.py"
    stop.write_text(STOP_AFTER_FIRST_CHECKPOINT)

    def launch(out, *extra, script=("-m", "infoprompt")):
        args = train_args(tiny_bert, data, out, "--method", "lora", "--epochs", "3", *extra)
        cmd = [*torchrun, *script, *args]
        return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)

    full = launch(tmp_path / "full")
    assert full.returncode == 0, full.stderr[-2000:]
    cut = launch(tmp_path / "cut", script=(str(stop),))
    assert cut.returncode != 0 and "run the same command with --resume" in cut.stderr
    tensors, meta = read_checkpoint(tmp_path / "cut" / "seed13" / "last.safetensors")
    assert meta["world"] == 2 and meta["state"]["step"] == 1
    assert not torch.equal(tensors["rng/0/torch"], tensors["rng/1/torch"])  # rank 1's own state
    resumed = launch(tmp_path / "cut", "--resume")
    assert resumed.returncode == 0, resumed.stderr[-2000:]

    a, _ = read_checkpoint(tmp_path / "full" / "seed13" / "last.safetensors")
    b, _ = read_checkpoint(tmp_path / "cut" / "seed13" / "last.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a if not k.startswith("rng/")), "parameters"
    assert all(torch.equal(a[k], b[k]) for k in a if k.startswith("rng/")), "RNG states"
    ra, rb = (
        json.loads((tmp_path / r / "seed13" / "results.json").read_text()) for r in ("full", "cut")
    )
    assert [p["train"] for p in ra["curve"]] == [p["train"] for p in rb["curve"]]
    assert ra["test"] == rb["test"]


# --- issue 15: errors before work, one line each; Ctrl-C; threads; progress; help; version ------


def test_header_only_training_file_with_all_shots(tmp_path, tiny_bert, capsys):
    data = tmp_path / "SST-2"
    data.mkdir()
    (data / "train.tsv").write_text("sentence\tlabel\n")
    (data / "dev.tsv").write_text("sentence\tlabel\nok\t1\n")
    assert main(train_args(tiny_bert, str(data), tmp_path / "o", "--shots", "0")) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "only a header" in err


def test_bad_value_names_its_flag(tmp_path, tiny_bert, sst2_dir, capsys):
    assert main(train_args(tiny_bert, sst2_dir, tmp_path / "o", "--seed", "-1")) == 2
    err = capsys.readouterr().err
    assert "--seed: seed must be an integer >= 0, got -1" in err and err.count("\n") == 1


def test_out_that_is_a_file_is_refused_before_any_work(tmp_path, tiny_bert, sst2_dir, capsys):
    (tmp_path / "o").write_text("")
    assert main(train_args(tiny_bert, sst2_dir, tmp_path / "o")) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: out ") and ("is a file" in err or "cannot write in" in err)
    assert (tmp_path / "o").is_file()  # nothing made, nothing trained


def test_unknown_model_fails_at_once_offline_by_default(tmp_path, sst2_dir):
    """Without HF_HUB_OFFLINE in the environment the command line sets it: no network retries,
    one line naming the variable (checked before the data is read)."""
    env = {
        k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    }
    args = train_args("no-such-org/no-such-model", sst2_dir, tmp_path / "o")
    start = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "infoprompt", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 2 and time.monotonic() - start < 30
    assert done.stderr.startswith("error: could not load model 'no-such-org/no-such-model'")
    assert "HF_HUB_OFFLINE=1" in done.stderr and done.stderr.count("\n") == 1
    assert "data:" not in done.stdout


def test_ctrl_c_prints_how_to_continue(tmp_path, tiny_bert, sst2_dir, capsys, monkeypatch):
    import infoprompt.train as train_mod

    step = train_mod.TrainLoop.step
    calls = []

    def interrupt_second(self, idx):
        calls.append(1)
        if len(calls) == 3:  # after the first validation (2 steps per epoch) and its checkpoint
            raise KeyboardInterrupt
        return step(self, idx)

    monkeypatch.setattr(train_mod.TrainLoop, "step", interrupt_second)
    args = train_args(tiny_bert, sst2_dir, tmp_path / "o")
    assert main(args) == 130
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and "run the same command with --resume" in lines[0]
    again = lines[0].split("python -m infoprompt ", 1)[1].split()
    assert again == [*args, "--resume"]
    monkeypatch.setattr(train_mod.TrainLoop, "step", step)
    assert main(again) == 0
    results = json.loads((tmp_path / "o" / "seed13" / "results.json").read_text())
    assert results["finished"] and [p["step"] for p in results["curve"]] == [2, 4]


def test_threads_flag_and_default(monkeypatch, capsys):
    from threadpoolctl import threadpool_info

    from infoprompt._cli import default_threads, set_threads

    before = torch.get_num_threads()
    try:
        assert set_threads(1) == 1 and torch.get_num_threads() == 1
        assert all(p["num_threads"] == 1 for p in threadpool_info())
        assert (
            capsys.readouterr().out
            == "threads: 1 per process (torch intra-op and BLAS; --threads to change)\n"
        )
    finally:
        torch.set_num_threads(before)
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert default_threads() == 3
    monkeypatch.delenv("OMP_NUM_THREADS")
    one = default_threads()
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "64")
    assert one >= 1 and default_threads() == 1  # never more threads than cores, at least one


def test_evaluation_bars_and_no_progress(tmp_path, tiny_bert, sst2_dir, capsys):
    from infoprompt.config import RunConfig
    from infoprompt.train import train

    fast = {"shots": 8, "epochs": 1, "batch_size": 4, "max_len": 32}
    config = RunConfig(
        task="sst2", data_dir=sst2_dir, out=str(tmp_path / "a"), model=tiny_bert, **fast
    )
    train(config, progress=True)
    err = capsys.readouterr().err
    assert all(name in err for name in ("training", "validation", "critics", "reported set"))
    train(RunConfig(**config.to_dict() | {"out": str(tmp_path / "b")}), progress=False)
    assert capsys.readouterr().err == ""


def test_help_lists_defaults_and_valid_values_and_version(capsys):
    from infoprompt.__main__ import train_parser
    from infoprompt.figures_cli import parser as figures_parser

    text = train_parser().format_help()
    assert "--shots SHOTS" in text and "(default: 64)" in text and "(required)" in text
    assert "one of infoprompt, gamma0" in text and "sst2, rte, mrpc" in text
    assert "--threads" in text
    sub = next(a for a in figures_parser()._actions if a.choices)
    for name, q in sub.choices.items():
        missing = [a.dest for a in q._actions if not a.help]
        assert not missing, f"figures {name}: options without help: {missing}"
        assert "(required)" in q.format_help()
        if any(a.dest == "shots" for a in q._actions):
            assert "(default: 64)" in q.format_help()
    figures_args = figures_parser().parse_args(["cmi", "--data-dir", "d", "--out", "o.png"])
    assert figures_args.threads is None  # the trainer's default (default_threads), not 1
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    from importlib.metadata import version

    assert capsys.readouterr().out.strip() == f"infoprompt {version('infoprompt')}"


def test_report_errors_and_damaged_files(tmp_path, capsys):
    assert main(["report", str(tmp_path / "nonexistent")]) == 2
    assert "is not a folder" in capsys.readouterr().err
    good = _run(1, 0.8) | {"finished": True}
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "results.json").write_text(json.dumps(good))
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "results.json").write_text('{"config": {"seed"')  # truncated
    assert main(["report", str(tmp_path)]) == 0
    out = capsys.readouterr()
    assert "warning: skipped" in out.err and str(tmp_path / "b" / "results.json") in out.err
    assert "| warp" in out.out


def test_sigint_during_training_exits_130_with_one_line(tmp_path, tiny_bert, sst2_dir):
    """A real Ctrl-C (SIGINT) to ``python -m infoprompt train``: exit status 130 and one line
    saying how to continue, no traceback."""
    import signal

    args = train_args(tiny_bert, sst2_dir, tmp_path / "o", "--epochs", "400")
    env = dict(os.environ, HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1")
    p = subprocess.Popen(
        [sys.executable, "-m", "infoprompt", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # as from a terminal
    )
    try:
        for line in p.stdout:
            if line.startswith("step 4/"):  # training, past its second checkpoint
                break
        p.send_signal(signal.SIGINT)
        _, err = p.communicate(timeout=120)
    finally:
        p.kill()
    lines = [line for line in err.splitlines() if line.strip()]
    assert p.returncode == 130 and len(lines) == 1, err[-2000:]
    assert "run the same command with --resume" in lines[0] and "Traceback" not in err
