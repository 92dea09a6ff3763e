"""Predictions of a trained run on new text: ``python -m infoprompt predict --run DIR "text" ...``.

The run folder's ``best.safetensors`` holds the trainable parameters, the config and the label
names; the encoder is loaded again from ``config.model``. Text formats: one sentence; for pair
tasks ``"sentence 1 ||| sentence 2"``; for span tasks the mentions tagged as in SemEval,
``"the <e1>cup</e1> holds <e2>tea</e2>"``.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from infoprompt.checkpoint import load_params, read_checkpoint
from infoprompt.config import ConfigError, RunConfig
from infoprompt.data import TASKS, DataError, Example, TaskSpec
from infoprompt.model import PromptModel, load_backbone
from infoprompt.train import (
    BEST,
    Split,
    build_cache,
    make_template,
    mixed_precision,
    predict_split,
)

PAIR_SEP = " ||| "
_TAG = re.compile(r"</?e[12]>")


def parse_text(text: str, spec: TaskSpec) -> Example:
    """An Example from one command-line text (formats in the module docstring)."""
    text_b = None
    if spec.pair:
        text, sep, text_b = text.partition(PAIR_SEP)
        if not sep:
            raise DataError(
                f"task {spec.name!r} takes pairs: write 'sentence 1{PAIR_SEP}sentence 2'"
            )
    plain, spans = _untag(text)
    return Example(plain.strip(), text_b.strip() if text_b else None, spans=spans)


def _untag(text: str) -> tuple[str, tuple[tuple[int, int], ...]]:
    """Remove <e1>..</e1>, <e2>..</e2>; return the text and the spans of e1, e2 (if tagged)."""
    out, opened, spans, pos = "", {}, {}, 0
    for m in _TAG.finditer(text):
        out += text[pos : m.start()]
        pos, tag = m.end(), m.group()
        name = tag.strip("</>")
        if tag.startswith("</"):
            spans[name] = (opened.get(name, 0), len(out))
        else:
            opened[name] = len(out)
    return out + text[pos:], tuple(spans[k] for k in ("e1", "e2") if k in spans)


def load_run(run_dir: str | Path):
    """(config, spec, tokenizer, model) of a finished run, with its best parameters loaded."""
    path = Path(run_dir) / BEST
    if not path.is_file():
        raise ConfigError(
            f"{path} not found; pass --run the folder of one run (one seed), e.g. runs/sst2/seed1"
        )
    tensors, meta = read_checkpoint(path)
    config = RunConfig.from_dict(meta["config"])
    spec = dataclasses.replace(TASKS[config.task], labels=tuple(meta["labels"]))
    tokenizer, encoder = load_backbone(config.model)
    model = PromptModel(config, spec, tokenizer, encoder)
    load_params(model, tensors)
    return config, spec, tokenizer, model


def predict(run_dir: str | Path, texts: list[str]) -> list[dict]:
    """For each text: the predicted label and the probability of every label."""
    from accelerate import Accelerator

    config, spec, tokenizer, model = load_run(run_dir)
    accelerator = Accelerator(mixed_precision=mixed_precision(config))
    model.to(accelerator.device)
    template = make_template(config, spec, tokenizer)
    examples = [parse_text(t, spec) for t in texts]
    split = Split([template.encode(e) for e in examples], [0] * len(examples))
    pad = tokenizer.pad_token_id
    if model.generates_prompts:
        split.cache = build_cache(model, split, config.eval_batch_size, pad, accelerator)
    probs = predict_split(model, split, config, pad, accelerator)  # (N, C)
    return [
        {
            "text": t,
            "label": spec.labels[int(p.argmax())],
            "probs": dict(zip(spec.labels, p.tolist(), strict=True)),
        }
        for t, p in zip(texts, probs, strict=True)
    ]
