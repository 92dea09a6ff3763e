"""One place that builds a run's pipeline: data → backbone → template → splits → model → cache.

``build_session(config)`` is what ``train``, ``predict``, ``figures`` and
``benchmarks/train_step.py`` call; it returns the ``Session`` whole. Order: read the training
file → draw the training and the validation examples from it (``sampling.draw``, balanced by
default) → load the encoder (or copy a
pristine one passed in, so that several runs share one load) → template (IDPG's prompts all go
before the input) → encode both splits → build the model → run the frozen prompt-free pass once
per example for the methods that read P' or Z' (``Method.uses_cache``) and calibrate a generator.

The reported set (GLUE dev; SemEval's test file) is *not* read here: ``Session.reported()`` reads,
encodes and caches it on first call, which the trainer makes only after training ends (or at
every validation with ``--test-curve``, labelled so). Nothing is selected on it.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from infoprompt.backbone import load_backbone
from infoprompt.config import RunConfig
from infoprompt.data import Example
from infoprompt.model import PromptModel
from infoprompt.prompts import GeneratedPrompts
from infoprompt.readers import check_reported, load_split, reported_split
from infoprompt.sampling import draw
from infoprompt.tasks import Encoded, TaskSpec, Template

Log = Callable[[str], None]
Bar = Callable[[list[list[int]]], Iterable[list[int]]]
CACHING = "caching the prompt-free pass"
Examples = tuple[TaskSpec, Sequence[Example], Sequence[Example]]


@dataclass
class PlainCache:
    """P' and Z' of the prompt-free pass for every example of a split."""

    pooled: torch.Tensor  # (N, D)
    z: torch.Tensor  # (N, D)


@dataclass(frozen=True)
class Split:
    encoded: list[Encoded]
    labels: list[int]
    cache: PlainCache | None = None

    @property
    def truncated(self) -> int:
        return sum(e.truncated for e in self.encoded)


@dataclass(frozen=True)
class Session:
    """Everything a run needs, built whole by ``build_session``; ``reported()`` reads the
    reported set on demand (its one mutable part, a cache)."""

    config: RunConfig
    spec: TaskSpec
    tokenizer: Any
    template: Template
    model: PromptModel
    accelerator: Any
    train_set: Split
    val_set: Split
    log: Log = print
    progress: bool = False
    _reported: list[Split] = field(default_factory=list, repr=False)

    @property
    def pad(self) -> int:
        return int(self.tokenizer.pad_token_id)

    def split(self, examples: Sequence[Example], cache: bool | None = None) -> Split:
        """Encoded examples, with P' and Z' cached where the method needs them (``cache``: force
        it on or off)."""
        bar = batch_bar(CACHING if self.progress else None, self.accelerator)
        c = self.config
        return encode_split(
            c, self.template, self.model, self.accelerator, examples, cache, self.pad, bar
        )

    def reported(self) -> Split:
        """The reported set, read from disk on first call only."""
        if not self._reported:
            c = self.config
            name = reported_split(c.task)
            _, examples = load_split(
                c.task, c.data_dir, name, labels=self.spec.labels, tsv=c.tsv_format()
            )
            self._reported.append(self.split(examples))
            cut = self._reported[0].truncated
            self.log(
                f"reported set ({name}): {len(examples)} examples, {cut} truncated to max_len "
                f"{c.max_len}"
            )
        return self._reported[0]


def encode_split(
    config: RunConfig,
    template: Template,
    model: PromptModel,
    accelerator: Any,
    examples: Sequence[Example],
    cache: bool | None,
    pad: int,
    bar: Bar = iter,
) -> Split:
    """``examples`` encoded by ``template``; P' and Z' cached when ``cache`` (None: when the
    method reads them, ``Method.uses_cache``) and there are examples."""
    encoded = [template.encode(e) for e in examples]
    split = Split(encoded, [e.label for e in examples])
    if cache is None:
        cache = config.method_spec.uses_cache
    if not (cache and examples):
        return split
    plain = plain_cache(model, accelerator, split, config.eval_batch_size, pad, bar)
    return Split(encoded, split.labels, plain)


def make_template(config: RunConfig, spec: TaskSpec, tokenizer: Any) -> Template:
    """The task's template laid out for the method (``Method.template_text``), bound to the
    tokenizer, n_p and max_len."""
    m = config.method_spec
    return Template(m.template_text(spec.template), tokenizer, m.n_prompts(config), config.max_len)


def mixed_precision(config: RunConfig) -> str:
    """Accelerate's setting: bf16 autocast if asked, or on CUDA with 'auto'; else none."""
    bf16 = config.precision == "bf16" or (config.precision == "auto" and torch.cuda.is_available())
    return "bf16" if bf16 else "no"


def read_examples(config: RunConfig) -> Examples:
    """(spec, training examples, validation examples), both drawn from the training file; the
    reported file is only checked for errors here (``readers.check_reported``)."""
    spec, pool = load_split(config.task, config.data_dir, "train", tsv=config.tsv_format())
    check_reported(config.task, config.data_dir, spec.labels, config.tsv_format())
    assert config.val_shots is not None  # filled by RunConfig
    train, val = draw(
        pool,
        config.shots,
        config.val_shots,
        config.seed,
        len(spec.labels),
        sampling=config.sampling,
        label_names=spec.labels,
    )
    return spec, train, val


_ACCELERATORS: dict[str, Any] = {}


def accelerator_for(config: RunConfig) -> Any:
    """The process's one Accelerate ``Accelerator`` (per mixed-precision setting), made before
    anything asks which process this is (a ``PartialState`` made first would see one process
    under torchrun). Runs after the first reuse it; ``fit`` frees its references after a run."""
    from accelerate import Accelerator

    precision = mixed_precision(config)
    if precision not in _ACCELERATORS:
        _ACCELERATORS[precision] = Accelerator(mixed_precision=precision)
    return _ACCELERATORS[precision]


def describe_draw(config: RunConfig, n_train: int, n_val: int) -> str:
    """The log line of the draws; with ``shots=0`` it says what that means for validation."""
    line = f"data: {n_train} training and {n_val} validation examples "
    if config.shots:
        return line + f"({config.sampling} draw, seed {config.seed}); loading the encoder"
    if n_val:
        how = f"{n_val} validation examples held out first ({config.sampling}, seed {config.seed})"
    else:
        how = (
            "no validation split (--val-shots defaults to --shots, 0), so test.selected is the "
            "final epoch; pass --val-shots N to hold out N examples"
        )
    return (
        line
        + f"(--shots 0: every example of the training file trains but {how}); "
        + ("loading the encoder")
    )


def build_session(
    config: RunConfig,
    backbone: tuple[Any, Any] | None = None,
    examples: Examples | None = None,
    log: Log = print,
    accelerator: Any = None,
    progress: bool = False,
    cache_all: bool = False,
) -> Session:
    """The pipeline of the module docstring. ``backbone``: a (tokenizer, encoder) to copy instead
    of loading one; ``examples``: (spec, train, val) instead of ``read_examples(config)``;
    ``progress``: a bar while caching; ``cache_all``: cache P' and Z' for every method (the
    figures read Z' of all)."""
    accelerator = accelerator or accelerator_for(config)
    spec, train, val = examples or read_examples(config)
    log(describe_draw(config, len(train), len(val)))
    if val and (absent := sorted({e.label for e in train} - {e.label for e in val})):
        log(
            f"data: validation has no example of {[spec.labels[c] for c in absent]} (one example "
            "in the training file: it trains)"
        )
    tokenizer, encoder = backbone or load_backbone(config.model)
    if backbone is not None:
        encoder = copy.deepcopy(encoder)
    template = make_template(config, spec, tokenizer)
    torch.manual_seed(config.seed)
    model = PromptModel(config, spec, tokenizer, encoder).to(accelerator.device)
    cache = True if cache_all else None
    if cache_all or config.method_spec.uses_cache:
        log("caching the prompt-free pass (P', Z') once per example")
    pad = int(tokenizer.pad_token_id)
    bar = batch_bar(CACHING if progress else None, accelerator)
    train_set, val_set = (
        encode_split(config, template, model, accelerator, part, cache, pad, bar)
        for part in (train, val)
    )
    if model.generates_prompts and train:
        assert train_set.cache is not None and isinstance(model.prompts, GeneratedPrompts)
        model.prompts.calibrate_(train_set.cache.pooled, model.embed.weight.std().item())
    cut = train_set.truncated + val_set.truncated
    log(
        f"{cut} of {len(train) + len(val)} training and validation inputs truncated to max_len "
        f"{config.max_len}"
    )
    return Session(
        config, spec, tokenizer, template, model, accelerator, train_set, val_set, log, progress
    )


def batch_bar(desc: str | None, accelerator: Any) -> Bar:
    """A transient progress bar named ``desc`` over a list of batches (main process only), or
    none when ``desc`` is None."""
    if desc is None or not accelerator.is_main_process:
        return iter
    from tqdm.auto import tqdm

    return lambda items: tqdm(items, desc=desc, leave=False, unit="batch")


def by_length(split: Split, size: int) -> tuple[list[list[int]], torch.Tensor]:
    """Batches of examples of similar length (less padding), and the order (N,) they cover."""
    order = sorted(range(len(split.encoded)), key=lambda i: len(split.encoded[i].ids))
    return [order[i : i + size] for i in range(0, len(order), size)], torch.tensor(order)


def unsort(rows: list[torch.Tensor], order: torch.Tensor) -> torch.Tensor:
    """The concatenated ``rows`` (in ``order``) back in example order."""
    stacked = torch.cat(rows)
    out = torch.empty_like(stacked)
    out[order.to(stacked.device)] = stacked
    return out


def collate(
    split: Split, idx: list[int], pad_id: int, device: Any, plain: bool = False
) -> dict[str, torch.Tensor]:
    """Padded tensors for the examples ``idx``; ``plain`` gives the prompt-free sequences."""
    items = [split.encoded[i] for i in idx]
    seqs = [e.plain_ids if plain else e.ids for e in items]
    ids = torch.full((len(seqs), max(map(len, seqs))), pad_id, dtype=torch.long)  # (B, T)
    attention = torch.zeros_like(ids)  # (B, T)
    for row, seq in enumerate(seqs):
        ids[row, : len(seq)] = torch.tensor(seq)
        attention[row, : len(seq)] = 1
    mask_pos = [e.plain_mask_pos if plain else e.mask_pos for e in items]
    batch = {"input_ids": ids, "attention_mask": attention, "mask_pos": torch.tensor(mask_pos)}
    if not plain:
        if items[0].prompt_pos:
            batch["prompt_pos"] = torch.tensor([e.prompt_pos for e in items])  # (B, n_p)
        if split.cache is not None:
            batch["pooled"], batch["z_plain"] = split.cache.pooled[idx], split.cache.z[idx]
        batch["labels"] = torch.tensor([split.labels[i] for i in idx])
    return {k: v.to(device) for k, v in batch.items()}


def build_cache(session: Session, split: Split) -> PlainCache:
    """Run the frozen prompt-free pass once over ``split``: P' (N, D) and Z' (N, D)."""
    s = session
    return plain_cache(s.model, s.accelerator, split, s.config.eval_batch_size, s.pad)


def plain_cache(
    model: PromptModel,
    acc: Any,
    split: Split,
    batch_size: int,
    pad: int,
    bar: Bar = iter,
) -> PlainCache:
    """P' (N, D) and Z' (N, D) of the frozen prompt-free pass over ``split``, batch by batch
    through ``bar`` (a progress bar, or none)."""
    pooled, z = [], []
    model.train(False)
    batches, order = by_length(split, batch_size)
    with acc.autocast():
        for idx in bar(batches):
            b = collate(split, idx, pad, acc.device, plain=True)
            p, zz = model.plain_pass(b["input_ids"], b["attention_mask"], b["mask_pos"])
            pooled.append(p)
            z.append(zz)
    return PlainCache(unsort(pooled, order), unsort(z, order))
