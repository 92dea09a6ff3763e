"""Whether the MI terms are live: each loss term's share of the gradient on the prompt generator.

L = L_pred + β NCE_rep + γ NCE_head (paper eq. 11). A term can only change what the prompts
learn through its gradient on the prompt generator's parameters θ_g, so at a measured step

    share_k = ‖∇_θg t_k‖ / Σ_j ‖∇_θg t_j‖,   t = (L_pred, β NCE_rep, γ NCE_head),

the norms taken over all of θ_g before clipping. A term is *live* at a step where its share
exceeds ``LIVE_SHARE``. The step measures ∇ of the MI terms with ``torch.autograd.grad`` (one
extra backward pass each) and takes ∇L_pred as the full gradient minus them, so it costs two
backward passes more; it runs on one step in ``EVERY`` and never changes the update.

``summary`` turns the measured steps into results.json's ``mi_activity``; ``saturated`` says
when the critics' control (``train.critic_gap``) can no longer tell anything.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

EVERY = 4  # measure one training step in this many
LIVE_SHARE = 0.01  # a term with a larger share of the generator's gradient is live
MI_TERMS = ("rep", "head")
SATURATED = 0.01  # nats: below it with true and shuffled P, the critics' control tells nothing


def saturated(true: float, shuffled: float) -> bool:
    """The critics' control (NCE with the true P against each P replaced by another example's)
    is saturated when both values are below ``SATURATED``: the contrast is won with and without
    the right prompt, so "ignores P" and "negatives too easy" cannot be told apart."""
    return true < SATURATED and shuffled < SATURATED


def mi_gradients(terms: dict[str, torch.Tensor], params: list[torch.Tensor]) -> dict:
    """∇_params of each MI term in ``terms`` (name → scalar with graph), flattened; the graph is
    kept for the training step's backward."""
    grads = {}
    for k in MI_TERMS:
        if k in terms and terms[k].requires_grad:
            g = torch.autograd.grad(terms[k], params, retain_graph=True, allow_unused=True)
            grads[k] = _flat(g, params)
    return grads


def shares(mi_grads: dict[str, torch.Tensor], params: list[torch.Tensor]) -> dict[str, float]:
    """Each term's share of the summed gradient norms, after the backward of the full loss has
    filled ``params``' .grad (∇L_pred = ∇L − Σ ∇MI)."""
    total = _flat([p.grad for p in params], params)
    pred = total - sum(mi_grads.values(), torch.zeros_like(total))
    norms = {"pred": pred.norm().item(), **{k: g.norm().item() for k, g in mi_grads.items()}}
    s = sum(norms.values())
    return {k: (v / s if s > 0 else 0.0) for k, v in norms.items()}


def _flat(grads: Sequence[torch.Tensor | None], params: Sequence[torch.Tensor]) -> torch.Tensor:
    return torch.cat(
        [
            (g if g is not None else torch.zeros_like(p)).detach().float().reshape(-1)
            for g, p in zip(grads, params)
        ]
    )


def mean_shares(records: list[dict]) -> dict[str, float]:
    """Mean share per term over ``records`` (the measured steps since the last validation)."""
    keys = sorted({k for r in records for k in r["share"]})
    return {k: sum(r["share"].get(k, 0.0) for r in records) / len(records) for k in keys}


def summary(records: list[dict], steps_per_epoch: int) -> dict:
    """results.json's ``mi_activity`` from the measured steps (each ``{"step", "share",
    "value"}``): per MI term the fraction of measured steps in which it is live, its peak share
    (and the epoch), its mean share, the last epoch in which it was live, its peak and final
    value (the unweighted loss, nats)."""
    out: dict = {"every": EVERY, "live_share": LIVE_SHARE, "measured_steps": len(records)}
    for k in MI_TERMS:
        rows = [r for r in records if k in r["share"]]
        if not rows:
            continue
        live = [r["step"] for r in rows if r["share"][k] > LIVE_SHARE]
        peak = max(rows, key=lambda r: r["share"][k])
        values = [r["value"][k] for r in rows if math.isfinite(r["value"][k])]
        out[k] = {
            "live_fraction": len(live) / len(rows),
            "peak_share": peak["share"][k],
            "peak_share_epoch": peak["step"] / steps_per_epoch,
            "mean_share": sum(r["share"][k] for r in rows) / len(rows),
            "last_live_epoch": live[-1] / steps_per_epoch if live else None,
            "peak_value": max(values) if values else None,
            "final_value": rows[-1]["value"][k],
        }
    return out
