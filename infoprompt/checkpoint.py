"""Checkpoints (safetensors) and results files, each written atomically (temp file + os.replace).

A checkpoint holds the trainable parameters only (never the frozen encoder) under ``param/<name>``,
the run's config and label names as JSON metadata and, for resuming, the AdamW moments
(``optim/<i>/<key>``), the torch RNG states (``rng/...``; the only generator training draws from)
and a JSON ``state`` (step, scheduler, learning curve, best so far). Safetensors holds no pickled
code, so loading a checkpoint runs nothing.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save as save_bytes

from infoprompt.config import ConfigError


def atomic_write(path: str | Path, data: bytes) -> None:
    """Write ``data`` to a temp file beside ``path``, then rename it over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: str | Path, obj) -> None:
    atomic_write(path, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode())


def save_checkpoint(path, params: dict, info: dict, optimizer=None, state: dict | None = None):
    """Trainable ``params`` and ``info`` (JSON values: the config, the label names); with
    ``optimizer`` and ``state`` also what resuming needs."""
    tensors = {f"param/{n}": p.detach().cpu().contiguous() for n, p in params.items()}
    meta = {k: json.dumps(v) for k, v in info.items()}
    if optimizer is not None:
        sd = optimizer.state_dict()
        for i, st in sd["state"].items():
            tensors.update({f"optim/{i}/{k}": torch.as_tensor(v).cpu() for k, v in st.items()})
        tensors["rng/torch"] = torch.get_rng_state()
        for i, s in enumerate(torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []):
            tensors[f"rng/cuda/{i}"] = s
        meta["param_groups"] = json.dumps(sd["param_groups"])
        meta["state"] = json.dumps(state)
    atomic_write(path, save_bytes(tensors, metadata=meta))


def read_checkpoint(path) -> tuple[dict[str, torch.Tensor], dict]:
    """(tensors, metadata with its JSON values decoded) of a checkpoint file."""
    with safe_open(str(path), framework="pt") as f:
        meta = {k: json.loads(v) for k, v in (f.metadata() or {}).items()}
        tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (safe_open has no iter)
    return tensors, meta


def load_params(model: torch.nn.Module, tensors: dict[str, torch.Tensor]) -> None:
    """Copy the ``param/`` tensors into the model's trainable parameters (names must match)."""
    params = dict(model.named_parameters())
    saved = {k.removeprefix("param/"): v for k, v in tensors.items() if k.startswith("param/")}
    missing = [n for n, p in params.items() if p.requires_grad and n not in saved]
    unknown = [n for n in saved if n not in params]
    if missing or unknown:
        raise ConfigError(
            f"checkpoint does not match the model: missing {missing[:5]}, unknown {unknown[:5]}; "
            "was it written by a run with another method, model or n_prompts?"
        )
    with torch.no_grad():
        for n, v in saved.items():
            params[n].copy_(v)


def restore_training(tensors: dict, meta: dict, optimizer, scheduler) -> dict:
    """Load optimizer, scheduler and RNG states from a checkpoint; return its JSON ``state``."""
    state: dict[int, dict] = {}
    for key, v in tensors.items():
        if key.startswith("optim/"):
            _, i, k = key.split("/", 2)
            state.setdefault(int(i), {})[k] = v
    optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})
    scheduler.load_state_dict(meta["state"]["scheduler"])
    torch.set_rng_state(tensors["rng/torch"])
    cuda = [tensors[k] for k in sorted(tensors) if k.startswith("rng/cuda/")]
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda)
    return meta["state"]
