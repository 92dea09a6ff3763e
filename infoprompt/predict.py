"""Predictions of a trained run on new text: ``python -m infoprompt predict --run DIR "text" ...``.

The run folder's ``best.safetensors`` (the best-on-validation checkpoint; ``last.safetensors``
for a run without validation) holds the trainable parameters, the config and the label names;
the encoder is loaded again from ``config.model``. Text formats: one sentence; for pair tasks
``"sentence 1 ||| sentence 2"``; for span tasks the mentions tagged as in SemEval,
``"the <e1>cup</e1> holds <e2>tea</e2>"``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from infoprompt.checkpoint import load_params, read_checkpoint
from infoprompt.config import RunConfig
from infoprompt.data import Example
from infoprompt.errors import ConfigError, DataError
from infoprompt.evaluation import predict_split
from infoprompt.readers import task_spec
from infoprompt.runs import BEST, LAST
from infoprompt.session import Session, build_session
from infoprompt.tasks import TaskSpec

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
    out, pos = "", 0
    opened: dict[str, int] = {}
    spans: dict[str, tuple[int, int]] = {}
    for m in _TAG.finditer(text):
        out += text[pos : m.start()]
        pos, tag = m.end(), m.group()
        name = tag.strip("</>")
        if tag.startswith("</"):
            spans[name] = (opened.get(name, 0), len(out))
        else:
            opened[name] = len(out)
    return out + text[pos:], tuple(spans[k] for k in ("e1", "e2") if k in spans)


def load_run(run_dir: str | Path) -> Session:
    """The session of a finished run (no training data) with its selected parameters: the
    best-on-validation checkpoint, or the final one for a run without validation."""
    path = Path(run_dir) / BEST
    if not path.is_file():
        path = Path(run_dir) / LAST
    if not path.is_file():
        raise ConfigError(
            f"{Path(run_dir) / BEST} not found; pass --run the folder of one run (one seed), "
            "e.g. runs/sst2/seed13"
        )
    tensors, meta = read_checkpoint(path)
    config = RunConfig.from_dict(meta["config"])
    spec = task_spec(config.task, tuple(meta["labels"]), config.tsv_format())
    session = build_session(config, examples=(spec, [], []), log=lambda line: None)
    load_params(session.model, tensors)
    return session


def predict(run_dir: str | Path, texts: list[str]) -> list[dict[str, Any]]:
    """For each text: the predicted label and the probability of every label."""
    session = load_run(run_dir)
    spec = session.spec
    split = session.split([parse_text(t, spec) for t in texts])
    probs = predict_split(session, split)  # (N, C)
    return [
        {
            "text": t,
            "label": spec.labels[int(p.argmax())],
            "probs": dict(zip(spec.labels, p.tolist(), strict=True)),
        }
        for t, p in zip(texts, probs, strict=True)
    ]
