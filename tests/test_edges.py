"""The edges a user meets first: each refused or explained before work, in one line."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import helpers
import pytest

import infoprompt.session as session_mod
from infoprompt.__main__ import main, train_parser
from infoprompt.backbone import PACKAGED, identity, packaged_path, portable
from infoprompt.config import RunConfig
from infoprompt.figures_cli import parser as figures_parser
from infoprompt.report import find_results, tables

README = Path(__file__).resolve().parents[1] / "README.md"
TRAINER_DOC = Path(__file__).resolve().parents[1] / "docs" / "trainer.md"


def train_args(model, data_dir, out, *extra):
    return helpers.train_args(model, data_dir, out, *extra, epochs=1)


def no_encoder(*args, **kwargs):
    raise AssertionError("the encoder was loaded")


def test_unwritable_out_is_refused_before_the_encoder_loads(
    tiny_bert, sst2_dir, capsys, monkeypatch
):
    monkeypatch.setattr(session_mod, "load_backbone", no_encoder)
    start = time.monotonic()
    assert main(train_args(tiny_bert, sst2_dir, "/proc/x")) == 2
    assert time.monotonic() - start < 10
    err = capsys.readouterr().err
    assert err == (
        "error: out '/proc/x/seed13': cannot create the folder or write in it (No such file or "
        "directory); choose another folder\n"
    )


def test_every_seed_folder_is_made_before_the_first_seed_trains(
    tmp_path, tiny_bert, sst2_dir, monkeypatch
):
    monkeypatch.setattr(session_mod, "load_backbone", no_encoder)
    with pytest.raises(AssertionError, match="the encoder was loaded"):
        main(train_args(tiny_bert, sst2_dir, tmp_path / "o", "--seeds", "1,2"))
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["seed1", "seed2"]
    assert list((tmp_path / "o" / "seed2").iterdir()) == []  # the probe file is gone


def test_shots_0_says_what_it_does_with_validation_and_shows_caching(
    tmp_path, tiny_bert, sst2_dir, capsys
):
    config = RunConfig(task="sst2", data_dir=sst2_dir, model=tiny_bert, shots=0, max_len=32)
    session = session_mod.build_session(config, progress=True)
    out, err = capsys.readouterr()
    assert out.splitlines()[0] == (
        "data: 24 training and 0 validation examples (--shots 0: every example of the training "
        "file trains but no validation split (--val-shots defaults to --shots, 0), so "
        "test.selected is the final epoch; pass --val-shots N to hold out N examples); loading the "
        "encoder"
    )
    assert "caching the prompt-free pass" in err  # the bar, on stderr
    assert len(session.train_set.labels) == 24 and session.val_set.labels == []
    held = RunConfig(**config.to_dict() | {"val_shots": 4})
    session_mod.build_session(held, log=print)
    line = capsys.readouterr().out.splitlines()[0]
    assert line.startswith("data: 20 training and 4 validation examples (--shots 0: every")
    assert "but 4 validation examples held out first (balanced, seed 13)" in line


def test_ctrl_c_before_any_checkpoint_does_not_suggest_resume(
    tmp_path, tiny_bert, sst2_dir, capsys, monkeypatch
):
    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(session_mod, "load_backbone", interrupt)  # "caching ..." and Ctrl-C
    assert main(train_args(tiny_bert, sst2_dir, tmp_path / "o")) == 130
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert lines == [
        "interrupted before the first checkpoint; nothing was saved, so run the same command "
        "again to start over"
    ]


def _finished(config: dict, acc: float = 0.5) -> dict:
    test = {"final": {"accuracy": acc}, "selected": {"accuracy": acc}}
    return {
        "config": config,
        "task": "sst2",
        "main_metric": "accuracy",
        "finished": True,
        "test": test,
    }


def test_report_names_and_skips_foreign_or_damaged_results(tmp_path):
    ours = {"method": "warp", "seed": 1, "shots": 64, "data_dir": "SST-2", "lr": 1e-3}
    files = {
        "ok": _finished(ours, 0.75),
        "foreign": {"finished": True, "test": {"accuracy": 0.9}, "model": "bert"},
        "no-shots": _finished({k: v for k, v in ours.items() if k != "shots"}),
        "no-selected": _finished(ours) | {"test": {"final": {"accuracy": 0.5}}},
        "truncated": None,
    }
    for name, obj in files.items():
        (tmp_path / name).mkdir()
        text = json.dumps(obj)[:-10] if obj is None or name == "truncated" else json.dumps(obj)
        (tmp_path / name / "results.json").write_text(text)
    warnings: list[str] = []
    runs = find_results([tmp_path], warn=warnings.append)
    assert [Path(r["path"]).parent.name for r in runs] == ["ok"]
    found = {Path(w.split()[1]).parent.name: w.split(": ", 1)[1] for w in warnings}
    assert found == {
        "foreign": "not a trainer's results file (no 'config')",
        "no-shots": "not a trainer's results file (missing 'shots')",
        "no-selected": "not a trainer's results file ('test' lacks the 'final' and 'selected' "
        "scores)",
        "truncated": "not a readable results file (Expecting value: line 1 column 1 (char 0))",
    }
    assert "| warp | 75.0 (1) |" in tables(runs)  # one seed: its value, no "± 0.0"


def test_report_command_warns_and_goes_on(tmp_path, capsys):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "results.json").write_text('{"finished": true, "test": {}}')
    assert main(["report", str(tmp_path)]) == 0
    out, err = capsys.readouterr()
    assert out.strip() == "no finished runs found"
    assert (
        err == f"warning: skipped {tmp_path / 'x' / 'results.json'}: not a trainer's results "
        "file (no 'config')\n"
    )


def test_one_spelling_of_every_flag_in_usage_help_and_docs():
    texts = {"train": train_parser().format_help()}
    sub = figures_parser()._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    texts |= {f"figures {k}": p.format_help() for k, p in sub.items()}
    for name, text in texts.items():
        assert not re.findall(r"--[a-z]+_[a-z_]+", text), name
    assert "--data-dir DATA_DIR" in texts["train"] and "--lr-grid" in texts["train"]
    for doc in (README, TRAINER_DOC):
        assert not re.findall(r"--[a-z]+_[a-z_]+", doc.read_text()), doc.name
    with pytest.raises(SystemExit):
        train_parser().parse_args_into_dataclasses(["--task", "sst2", "--data_dir", "x"])


def test_results_name_the_encoder_portably(tmp_path, tiny_bert):
    assert RunConfig(task="sst2", data_dir=".").model == PACKAGED
    assert portable(packaged_path()) == PACKAGED and portable(tiny_bert) == tiny_bert
    assert portable("FacebookAI/roberta-large") == "FacebookAI/roberta-large"
    first = identity(tiny_bert)
    assert first["name"] == tiny_bert and re.fullmatch(r"[0-9a-f]{64}", str(first["sha256"]))
    copy = tmp_path / "copy"
    copy.mkdir()
    for f in Path(tiny_bert).iterdir():
        (copy / f.name).write_bytes(f.read_bytes())
    assert identity(str(copy))["sha256"] == first["sha256"]  # content, not place
    (copy / "config.json").write_text((copy / "config.json").read_text() + " ")
    identity.cache_clear()
    assert identity(str(copy))["sha256"] != first["sha256"]


@pytest.mark.parametrize(
    "extra, rates",
    [
        (["--lr", "0.003"], [0.003]),
        (["--method", "probe-pooled"], [1e-2]),  # the method's own default (methods.py)
        (["--lr", "0.003", "--critic-lr", "0.02"], [0.003, 0.02]),  # prompts, critics
    ],
)
def test_lr_from_the_command_line_reaches_the_optimizer(
    tmp_path, tiny_bert, sst2_dir, monkeypatch, extra, rates
):
    import torch

    seen: list[list[float]] = []
    adamw = torch.optim.AdamW

    def recording(groups, lr, **kw):
        opt = adamw(groups, lr=lr, **kw)
        seen.append([g["lr"] for g in opt.param_groups])
        return opt

    monkeypatch.setattr(torch.optim, "AdamW", recording)
    assert main(train_args(tiny_bert, sst2_dir, tmp_path / "o", *extra)) == 0
    assert seen == [rates]  # one run, one optimizer, the rates asked for


def test_resume_compares_the_encoder_by_name_and_lists_only_real_differences():
    from infoprompt.runs import differences

    base = RunConfig(task="sst2", data_dir=".", out="o").to_dict()
    old = base | {"model": packaged_path()}  # a run saved before encoders had portable names
    assert differences(old, base) == []
    warp = RunConfig(task="sst2", data_dir=".", out="o", method="warp", epochs=3).to_dict()
    assert differences(base, warp) == ["epochs", "method"]  # not beta, gamma, theta, ...
    more = RunConfig(task="sst2", data_dir=".", out="o", method="warp", n_prompts=2).to_dict()
    assert differences(base, more) == ["method", "n_prompts"]  # both read n_prompts
