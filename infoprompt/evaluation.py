"""Scoring a session's model: class probabilities, the task's metrics, the critics' control.

Every function runs the model in eval mode, without gradient, batch by batch in order of length
(``session.by_length``), and returns results in example order.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import torch

from infoprompt.metrics import compute_all
from infoprompt.session import Session, Split, batch_bar, by_length, collate, unsort


@torch.no_grad()
def predict_split(session: Session, split: Split, desc: str | None = None) -> torch.Tensor:
    """Class probabilities (N, C) for every example of ``split``; ``desc``: show a bar so named."""
    model, acc = session.model, session.accelerator
    model.train(False)
    probs = []
    batches, order = by_length(split, session.config.eval_batch_size)
    with acc.autocast():
        for idx in batch_bar(desc, acc)(batches):
            b = collate(split, idx, session.pad, acc.device)
            b.pop("labels")
            probs.append(model(**b)["logits"].float().softmax(-1).cpu())
    return unsort(probs, order)


def evaluate(
    session: Session, split: Split, with_predictions: bool = False, desc: str | None = None
) -> Any:
    """The task's metrics (``spec.metrics``) of the model's predictions on ``split``; with
    ``with_predictions`` also the predicted class ids (N,); ``desc``: a progress bar's name."""
    pred = predict_split(session, split, desc).argmax(-1).tolist()
    metrics = compute_all(session.spec.metrics, split.labels, pred, session.spec.labels)
    return (metrics, pred) if with_predictions else metrics


@torch.no_grad()
def critic_gap(session: Session, split: Split, desc: str | None = None) -> dict[str, float]:
    """Mean NCE_rep and NCE_head on ``split`` with the true prompts and with each example's P
    replaced by another example's (rolled by one in the batch). A critic that reads P's content
    scores the true P better (lower NCE); equal values mean it ignores which prompt it sees.
    Runs on its own RNG stream, so training draws are unchanged. ``desc``: a progress bar's name."""
    model, acc = session.model, session.accelerator
    if (model.rep_mi is None and model.head_mi is None) or len(split.labels) < 2:
        return {}
    model.train(False)
    sums: dict[str, float] = defaultdict(float)
    batches, _ = by_length(split, max(2, session.config.eval_batch_size))
    batches = [b for b in batches if len(b) > 1]
    with torch.random.fork_rng(devices=[]), acc.autocast():
        for shuffled in (False, True):
            torch.manual_seed(0)
            name = desc and f"{desc} ({'shuffled' if shuffled else 'true'} P)"
            for idx in batch_bar(name, acc)(batches):
                out = model(
                    **collate(split, idx, session.pad, acc.device), shuffle_prompts=shuffled
                )
                for k in ("rep", "head"):
                    if k in out:
                        sums[f"{k}_shuffled" if shuffled else k] += out[k].item() / len(batches)
    return dict(sums)
