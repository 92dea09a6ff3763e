"""Checkpoints (safetensors) and results files, each written atomically (temp file + os.replace).

A checkpoint holds the trainable parameters only (never the frozen encoder) under ``param/<name>``,
the run's config and label names as JSON metadata and, for resuming, the AdamW moments
(``optim/<i>/<key>``), the torch RNG states of every process (``rng/<rank>/torch`` and
``rng/<rank>/cuda/<device>``, as each process sees them; torch's is the only generator training
draws from), the number of processes (``world``) and a JSON ``state`` (step, scheduler, learning
curve, best so far). Safetensors holds no pickled code, so loading a checkpoint runs nothing.
Files get the permissions of an ordinary file under the user's umask (``0o666 & ~umask``).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save as save_bytes

from infoprompt.errors import ConfigError


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write(path: str | Path, data: bytes) -> None:
    """Write ``data`` to a temp file beside ``path``, then rename it over ``path``; the file's
    mode is ``0o666 & ~umask`` (mkstemp's own 0600 would hide results from the user's group)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
            os.fchmod(f.fileno(), 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: str | Path, obj: Any) -> None:
    atomic_write(path, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode())


def rng_state() -> dict[str, bytes]:
    """This process's torch RNG states: the CPU generator's and, where CUDA is present, each
    visible device's (``torch.cuda.get_rng_state_all``), as bytes (picklable across processes)."""
    out = {"torch": torch.get_rng_state().numpy().tobytes()}
    for i, s in enumerate(torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []):
        out[f"cuda/{i}"] = s.numpy().tobytes()
    return out


def _as_tensor(b: bytes) -> torch.Tensor:
    return torch.frombuffer(bytearray(b), dtype=torch.uint8)


def save_checkpoint(
    path: str | Path,
    params: dict[str, torch.Tensor],
    info: dict[str, Any],
    optimizer: torch.optim.Optimizer | None = None,
    state: dict[str, Any] | None = None,
    rng: list[dict[str, bytes]] | None = None,
) -> None:
    """Trainable ``params`` and ``info`` (JSON values: the config, the label names); with
    ``optimizer`` and ``state`` also what resuming needs: ``rng`` holds one ``rng_state()`` per
    process, in rank order (gathered by the caller; default: this process's, as rank 0)."""
    tensors = {f"param/{n}": p.detach().cpu().contiguous() for n, p in params.items()}
    meta = {k: json.dumps(v) for k, v in info.items()}
    if optimizer is not None:
        sd = optimizer.state_dict()
        for i, st in sd["state"].items():
            tensors.update({f"optim/{i}/{k}": torch.as_tensor(v).cpu() for k, v in st.items()})
        rng = rng if rng is not None else [rng_state()]
        for rank, states in enumerate(rng):
            tensors.update({f"rng/{rank}/{k}": _as_tensor(v) for k, v in states.items()})
        meta["world"] = json.dumps(len(rng))
        meta["param_groups"] = json.dumps(sd["param_groups"])
        meta["state"] = json.dumps(state)
    atomic_write(path, save_bytes(tensors, metadata=meta))


def read_checkpoint(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """(tensors, metadata with its JSON values decoded) of a checkpoint file; a truncated or
    otherwise unreadable file is a ConfigError naming it."""
    from safetensors import SafetensorError

    try:
        with safe_open(str(path), framework="pt") as f:
            meta = {k: json.loads(v) for k, v in (f.metadata() or {}).items()}
            tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (no iter)
    except (SafetensorError, ValueError) as e:
        raise ConfigError(f"{path}: not a readable checkpoint ({e})") from None
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


def restore_training(
    tensors: dict[str, torch.Tensor],
    meta: dict[str, Any],
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    rank: int = 0,
    world: int = 1,
) -> dict[str, Any]:
    """Load optimizer, scheduler and this process's (``rank`` of ``world``) RNG states from a
    checkpoint; return its JSON ``state``. A checkpoint written by another number of processes
    is refused: its batches and schedule were cut for that number. (Files without ``world``
    hold one copy, ``rng/torch``, which every process restores.)"""
    saved_world = meta.get("world")
    if saved_world is not None and saved_world != world:
        raise ConfigError(
            f"--resume: the checkpoint was written by {saved_world} process(es), this run has "
            f"{world}; resume with {saved_world} (each process restores its own RNG state, and "
            "the batches and schedule depend on the number of processes)"
        )
    state: dict[int, dict] = {}
    for key, v in tensors.items():
        if key.startswith("optim/"):
            _, i, k = key.split("/", 2)
            state.setdefault(int(i), {})[k] = v
    optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})
    scheduler.load_state_dict(meta["state"]["scheduler"])
    prefix = f"rng/{rank}/" if f"rng/{rank}/torch" in tensors else "rng/"  # rng/torch: older files
    torch.set_rng_state(tensors[prefix + "torch"])
    cuda = {
        int(k.rsplit("/", 1)[1]): v for k, v in tensors.items() if k.startswith(prefix + "cuda/")
    }
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([cuda[i] for i in sorted(cuda)])
    return meta["state"]
