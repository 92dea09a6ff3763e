"""One run's configuration: a frozen dataclass validated once, before anything loads.

``RunConfig(...)`` checks names and numbers in ``__post_init__`` and resolves its method once
(``config.method_spec``, an ``infoprompt.methods.Method``). Fields that only some methods read
(``methods.METHOD_FIELDS``: prompts, InfoNCE, LoRA) are ``None`` by default and filled from the
method (``Method.defaults``); giving one to a method that does not read it is an error naming it.
So the saved config always holds the values actually used, and ``None`` where a field does not
apply. The fields stay one flat record because results.json's ``config`` is read by the reports
and by ``--resume`` in this shape.

A config is built once per command: the seeds of ``train --seeds`` and the learning rates of
``--lr-grid`` are derived from it (``for_seed``, ``at_lr``) without validating again, since
nothing they change can make it invalid. ``check_paths()`` checks the data folder and the model
and creates the output folder with a probe file, so that a folder that cannot be written is
refused before the encoder loads. The command line is built from these fields by
``transformers.HfArgumentParser``.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from infoprompt.backbone import PACKAGED, check_available, default_model
from infoprompt.errors import ConfigError
from infoprompt.methods import METHOD_FIELDS, METHODS, Method, method_named
from infoprompt.tasks import TASKS
from infoprompt.tsv import TsvFormat

TSV = "tsv"
THETAS = ("expected", "label")
PRECISIONS = ("auto", "fp32", "bf16")
SAMPLINGS = ("balanced", "proportional")
TSV_FIELDS = ("text_columns", "label_column", "label_words", "template")

__all__ = ["METHOD_FIELDS", "ConfigError", "RunConfig", "check_writable", "default_model"]


def _help(text: str, **kw: Any) -> Any:
    return field(metadata={"help": text}, **kw)


@dataclass(frozen=True)
class RunConfig:
    """Everything one training run depends on (one task, one method, one seed)."""

    task: str = _help(f"task: one of {', '.join([*TASKS, TSV])} ('tsv': your own train/dev.tsv)")
    data_dir: str = _help("the task's data folder (see infoprompt.files for the files)")
    out: str | None = _help(
        "run folder: results.json, checkpoints (train requires it; None: a session in memory)",
        default=None,
    )
    model: str = _help(
        f"encoder: {PACKAGED!r} (the packaged all-MiniLM-L6-v2), a Hugging Face name or a "
        "local folder",
        default=PACKAGED,
    )
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
        "tsv: a template in the grammar of infoprompt.tasks (default: one per sentence/pair)",
        default=None,
    )

    def __post_init__(self) -> None:
        problems = _problems(self)
        if problems:
            raise ConfigError("invalid configuration: " + "; ".join(problems))
        m = METHODS[self.method]  # known: checked by _problems
        fill = dict(m.defaults(self.lora_r))
        if self.val_shots is None:
            fill["val_shots"] = self.shots
        if self.lr is None and not self.lr_grid:
            fill["lr"] = m.lr
        for name, value in fill.items():
            if getattr(self, name) is None:
                object.__setattr__(self, name, value)
        if self.task == TSV:  # an empty string also means "the default"
            object.__setattr__(self, "text_columns", self.text_columns or "sentence")
            object.__setattr__(self, "label_column", self.label_column or "label")
        object.__setattr__(self, "lr_grid", list(self.lr_grid))
        object.__setattr__(self, "_method", m)

    @property
    def method_spec(self) -> Method:
        """The method object, resolved once from ``method``."""
        return self._method  # type: ignore[attr-defined]

    def _derived(self, **changes: Any) -> RunConfig:
        """A copy with ``changes``, not validated again: only for changes that cannot make a
        valid config invalid (a seed already checked, an output folder, a rate of the grid)."""
        out = copy.copy(self)
        for name, value in changes.items():
            object.__setattr__(out, name, value)
        return out

    def for_seed(self, seed: int, out: str) -> RunConfig:
        """This configuration for ``seed`` (an integer >= 0), in run folder ``out``."""
        return self._derived(seed=seed, out=out)

    def at_lr(self, lr: float, out: str) -> RunConfig:
        """One learning rate of ``lr_grid`` as a run of its own, in run folder ``out``."""
        return self._derived(lr=lr, lr_grid=[], out=out)

    def with_method(self, method: str, **changes: Any) -> RunConfig:
        """A new configuration: this one's shared fields, ``method`` with its own defaults (its
        fields and learning rate), and ``changes``; validated like any new one."""
        kept = {k: v for k, v in self.to_dict().items() if k not in METHOD_FIELDS and k != "lr"}
        return RunConfig(**(kept | {"method": method} | changes))

    @property
    def loss_weights(self) -> tuple[float, float]:
        """(β, γ) as the loss uses them (0 for a method without InfoNCE)."""
        return self.method_spec.loss_weights(self)

    def tsv_format(self) -> TsvFormat | None:
        """The column layout of a 'tsv' task (None for the named tasks)."""
        if self.task != TSV:
            return None
        words = tuple(w.strip() for w in self.label_words.split(",")) if self.label_words else None
        assert self.text_columns is not None and self.label_column is not None
        return TsvFormat(
            text_columns=tuple(c.strip() for c in self.text_columns.split(",")),
            label_column=self.label_column,
            label_words=words,
            template=self.template,
        )

    def check_inputs(self) -> None:
        """ConfigError if the data folder or a local model folder is unusable (nothing loads)."""
        if not Path(self.data_dir).is_dir():
            raise ConfigError(
                f"data_dir {self.data_dir!r} is not a folder; pass the task's data folder, "
                "e.g. --data-dir ../shared/data/SST-2"
            )
        check_available(self.model)

    def prepare_out(self) -> None:
        """Create the output folder and write (and remove) a probe file in it: ConfigError if
        either fails, before anything loads."""
        if self.out is None:
            raise ConfigError("out: a training run needs a run folder; pass --out FOLDER")
        check_writable(self.out, "out")

    def check_paths(self) -> None:
        """``check_inputs``, then ``prepare_out``."""
        self.check_inputs()
        self.prepare_out()

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunConfig:
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
        return self.method_spec.label(self.beta, self.gamma)


def check_writable(out: str, name: str) -> None:
    """Create the folder ``out`` (and its parents) and write and remove a probe file in it;
    ConfigError naming ``name`` and the cause if either fails."""
    path = Path(out).expanduser()
    parent = path
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if parent.exists() and not parent.is_dir():
        raise ConfigError(f"{name} {out!r}: {str(parent)!r} is a file; pass a folder for the run")
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path, prefix=".probe-"):
            pass
    except OSError as e:
        reason = e.strerror or e.__class__.__name__
        raise ConfigError(
            f"{name} {out!r}: cannot create the folder or write in it ({reason}); "
            "choose another folder"
        ) from None


_POSITIVE_INTS = ("batch_size", "epochs", "max_len", "eval_batch_size")
_OPTIONAL_POSITIVE_INTS = ("n_prompts", "bottleneck", "lora_r", "lora_alpha")
_NON_NEGATIVE_INTS = ("shots", "eval_every", "seed")


def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: object) -> bool:
    return (
        isinstance(v, (int, float))
        and not isinstance(v, bool)
        and v == v
        and abs(v) != float("inf")
    )


def _problems(c: RunConfig) -> list[str]:
    """Every invalid value of ``c``, each phrased with its fix."""
    p: list[str] = []
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
    m = method_named(c.method)
    if m is not None:
        p += _misplaced(c, m)
    return p


def _misplaced(c: RunConfig, m: Method) -> list[str]:
    """Fields given that the method (or the task) does not read."""
    p: list[str] = []
    uses = m.reads()
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
