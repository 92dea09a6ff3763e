"""One place that builds a run's pipeline: data → backbone → template → splits → model → cache.

``build_session(config)`` is what ``train``, ``predict``, ``figures`` and
``benchmarks/train_step.py`` call. Order: read the training file → draw the training and the
validation examples from it (``data.draw``, balanced by default) → load the encoder (or copy a
pristine one passed in, so that several runs share one load) → template (IDPG's prompts all go
before the input) → encode both splits → build the model → run the frozen prompt-free pass once
per example for the methods that read P' or Z' (``Method.uses_cache``) and calibrate a generator.

The reported set (GLUE dev; SemEval's test file) is *not* read here: ``Session.reported()`` reads,
encodes and caches it on first call, which the trainer makes only after training ends (or at
every validation with ``--test-curve``, labelled so). Nothing is selected on it.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from infoprompt.config import RunConfig
from infoprompt.data import TaskSpec, check_reported, draw, load_split, reported_split
from infoprompt.methods import METHODS
from infoprompt.model import PromptModel, load_backbone
from infoprompt.templates import Encoded, Template


@dataclass
class PlainCache:
    """P' and Z' of the prompt-free pass for every example of a split."""

    pooled: torch.Tensor  # (N, D)
    z: torch.Tensor  # (N, D)


@dataclass
class Split:
    encoded: list[Encoded]
    labels: list[int]
    cache: PlainCache | None = None

    @property
    def truncated(self) -> int:
        return sum(e.truncated for e in self.encoded)


@dataclass
class Session:
    """Everything a run needs, built once; ``reported()`` reads the reported set on demand."""

    config: RunConfig
    spec: TaskSpec
    tokenizer: object
    template: Template
    model: PromptModel
    accelerator: object
    train_set: Split
    val_set: Split
    log: Callable[[str], None] = print
    _reported: Split | None = field(default=None, repr=False)

    @property
    def pad(self) -> int:
        return self.tokenizer.pad_token_id

    def split(self, examples) -> Split:
        """Encoded (and, where the method needs it, cached) examples."""
        s = Split([self.template.encode(e) for e in examples], [e.label for e in examples])
        if METHODS[self.config.method].uses_cache and examples:
            s.cache = build_cache(self, s)
        return s

    def reported(self) -> Split:
        """The reported set, read from disk on first call only."""
        if self._reported is None:
            c = self.config
            name = reported_split(c.task)
            _, examples = load_split(
                c.task, c.data_dir, name, labels=self.spec.labels, tsv=c.tsv_format()
            )
            self._reported = self.split(examples)
            self.log(f"reported set ({name}): {len(examples)} examples, "
                     f"{self._reported.truncated} truncated to max_len {c.max_len}")  # fmt: skip
        return self._reported


def idpg_template(template: str) -> str:
    """IDPG's layout: one prompt group before the input, the template's other groups removed."""
    return "<P> " + re.sub(r"\s*<P>\s*", " ", template).strip()


def make_template(config: RunConfig, spec: TaskSpec, tokenizer) -> Template:
    m = METHODS[config.method]
    n_p = config.n_prompts if m.prompts else 0
    text = idpg_template(spec.template) if m.prompts == "idpg" else spec.template
    return Template(text, tokenizer, n_p, config.max_len)


def mixed_precision(config: RunConfig) -> str:
    """Accelerate's setting: bf16 autocast if asked, or on CUDA with 'auto'; else none."""
    bf16 = config.precision == "bf16" or (config.precision == "auto" and torch.cuda.is_available())
    return "bf16" if bf16 else "no"


def read_examples(config: RunConfig):
    """(spec, training examples, validation examples), both drawn from the training file; the
    reported file is only checked for errors here (``data.check_reported``)."""
    spec, pool = load_split(config.task, config.data_dir, "train", tsv=config.tsv_format())
    check_reported(config.task, config.data_dir, spec.labels, config.tsv_format())
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


def make_accelerator(config: RunConfig):
    """Accelerate's ``Accelerator`` for ``config``: made before anything asks which process this
    is (a ``PartialState`` made first would see one process under torchrun)."""
    from accelerate import Accelerator

    return Accelerator(mixed_precision=mixed_precision(config))


def build_session(
    config: RunConfig, backbone=None, examples=None, log=print, accelerator=None
) -> Session:
    """The pipeline of the module docstring. ``backbone``: a (tokenizer, encoder) to copy instead
    of loading one; ``examples``: (spec, train, val) instead of ``read_examples(config)``."""
    accelerator = accelerator or make_accelerator(config)
    spec, train, val = examples or read_examples(config)
    log(f"data: {len(train)} training and {len(val)} validation examples ({config.sampling} "
        f"draw, seed {config.seed}); loading the encoder")  # fmt: skip
    if val and (absent := sorted({e.label for e in train} - {e.label for e in val})):
        log(f"data: validation has no example of {[spec.labels[c] for c in absent]} (one example "
            "in the training file: it trains)")  # fmt: skip
    tokenizer, encoder = backbone or load_backbone(config.model)
    if backbone is not None:
        encoder = copy.deepcopy(encoder)
    template = make_template(config, spec, tokenizer)
    torch.manual_seed(config.seed)
    model = PromptModel(config, spec, tokenizer, encoder).to(accelerator.device)
    session = Session(config, spec, tokenizer, template, model, accelerator, None, None, log)
    if METHODS[config.method].uses_cache:
        log("caching the prompt-free pass (P', Z') once per example")
    session.train_set, session.val_set = session.split(train), session.split(val)
    if model.generates_prompts and train:
        model.prompts.calibrate_(session.train_set.cache.pooled, model.embed.weight.std().item())
    cut = session.train_set.truncated + session.val_set.truncated
    log(f"{cut} of {len(train) + len(val)} training and validation inputs truncated to max_len "
        f"{config.max_len}")  # fmt: skip
    return session


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


def collate(split: Split, idx: list[int], pad_id: int, device, plain: bool = False) -> dict:
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
    model, acc = session.model, session.accelerator
    pooled, z = [], []
    model.train(False)
    batches, order = by_length(split, session.config.eval_batch_size)
    with acc.autocast():
        for idx in batches:
            b = collate(split, idx, session.pad, acc.device, plain=True)
            p, zz = model.plain_pass(b["input_ids"], b["attention_mask"], b["mask_pos"])
            pooled.append(p)
            z.append(zz)
    return PlainCache(unsort(pooled, order), unsort(z, order))
