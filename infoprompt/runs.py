"""A run folder on disk: its file names, the configuration saved in it, and what may resume it.

``check_run_dir`` decides, before anything loads, whether a run folder is new (train), finished
(return its results), unfinished (``--resume`` continues it) or another run's (refuse, naming
the settings that differ). ``versions`` records what ran: library versions, the machine and the
git commit of the code.
"""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path
from typing import Any

import torch

from infoprompt.backbone import portable
from infoprompt.checkpoint import read_checkpoint
from infoprompt.config import RunConfig
from infoprompt.errors import ConfigError
from infoprompt.methods import METHOD_FIELDS

RESULTS, BEST, LAST = "results.json", "best.safetensors", "last.safetensors"


def versions() -> dict[str, Any]:
    import accelerate
    import peft
    import safetensors
    import transformers

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "peft": peft.__version__,
        "accelerate": accelerate.__version__,
        "safetensors": safetensors.__version__,
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "cpus": torch.get_num_threads(),
        "gpu": gpu,
        "commit": source_commit(),
    }


def source_commit() -> str | None:
    """The git commit of the code that runs (``+dirty`` with uncommitted changes to tracked
    files), or None outside a git checkout."""
    import subprocess

    here = Path(__file__).resolve().parent
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=10
        )
        if head.returncode != 0:
            return None
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=here,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return head.stdout.strip() + ("+dirty" if dirty else "")


def _saved_config(run_dir: Path) -> dict[str, Any] | None:
    """The config of the run on disk (results.json, else the last checkpoint), or None."""
    try:
        if (run_dir / RESULTS).exists():
            return dict(json.loads((run_dir / RESULTS).read_text())["config"])
        if (run_dir / LAST).exists():
            return dict(read_checkpoint(run_dir / LAST)[1]["config"])
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ConfigError(
            f"{run_dir} holds a damaged run ({e.__class__.__name__}: {e}); "
            "delete the folder or choose another --out"
        ) from None
    return None


def _same(field: str, saved: Any, asked: Any) -> bool:
    """Whether a saved field equals the asked one: ``out`` always does (it is the folder being
    resumed); ``model`` when both name the same encoder (``backbone.portable``: a run saved with
    the packaged folder's path and one asking for the package by name); ``data_dir`` and
    ``model`` also when both name the same existing folder."""
    if field == "out" or saved == asked:
        return True
    if field == "model" and isinstance(saved, str) and isinstance(asked, str):
        if portable(saved) == portable(asked):
            return True
    if field in ("data_dir", "model") and isinstance(saved, str) and isinstance(asked, str):
        try:
            return os.path.samefile(saved, asked)
        except OSError:
            return False
    return False


def differences(saved: dict[str, Any], asked: dict[str, Any]) -> list[str]:
    """The fields where ``saved`` and ``asked`` differ (``_same``). When the methods differ, a
    method-specific field that one of the two methods does not read (None on that side) is left
    out: the difference of methods already says it."""
    keys = sorted(set(saved) | set(asked))
    differ = [k for k in keys if not _same(k, saved.get(k), asked.get(k))]
    if "method" in differ:
        differ = [
            k
            for k in differ
            if k not in METHOD_FIELDS or (saved.get(k) is not None and asked.get(k) is not None)
        ]
    return differ


def check_run_dir(config: RunConfig, resume: bool) -> dict[str, Any] | None:
    """The finished results to return instead of training, or None (train or continue). Refuses
    to overwrite a run, and to resume one whose configuration differs from ``config`` in any
    field (``differences``): every field changes what the run computes, so none may change on
    resume. One exception: an lr search resumed with a grid that contains its saved grid is
    *widened* (None: its finished rates are reused, the new ones trained, the choice made again)."""
    assert config.out is not None
    run_dir = Path(config.out)
    saved = _saved_config(run_dir)
    if saved is None:
        return None
    if not resume:
        raise ConfigError(
            f"{run_dir} already holds a run; pass --resume to continue or reuse it, "
            "or choose another --out"
        )
    asked = config.to_dict()
    differ = differences(saved, asked)
    if differ == ["lr_grid"] and saved["lr_grid"] and set(saved["lr_grid"]) < set(asked["lr_grid"]):
        return None
    if differ:
        what = ", ".join(f"{k}: saved {saved.get(k)!r}, asked {asked.get(k)!r}" for k in differ)
        raise ConfigError(
            f"--resume: {run_dir} holds a run with another configuration ({what}); "
            "resume with the saved settings or choose another --out"
        )
    path = run_dir / RESULTS
    results: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
    return results if results.get("finished") else None
