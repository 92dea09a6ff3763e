"""Fig. 1: the CMI of prompts and the mask representation given the input, per dev example.

Conventions: N examples, D hidden size, n_p prompts, K InfoNCE candidates.

CMI I(P; Z | X) of prompts and the mask representation given the input, per dev example.
Estimator: an InfoNCE lower bound over prompts, Î_x = log K − NCE_x ≤ log K, with the bilinear
critic s(P, z) = Pᵀ W z of the paper's losses (P the mean prompt vector). For an input x the mask
state z = Z(x, P_x) is shown with K candidate prompts: P_x and K − 1 sets of random vocabulary
embeddings; NCE_x = logsumexp_k s(P_k, z) − s(P_x, z). X is the same inside each term (the
conditioning). W is trained once, on random prompt sets over the training inputs
(``fit_critic``), and is the same for every kind of prompt; the bound is read on dev inputs
against held-out random sets. It says how well the prompt can be read back from Z given X.
``--unit-prompts``: the critic sees P / ‖P‖, a control for the norm of the prompts.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from infoprompt.config import RunConfig
from infoprompt.data import Example
from infoprompt.figures import build, method_config, run_steps
from infoprompt.session import Session, Split, collate

# Handcrafted prompts (Fig. 1): four words each, written for SST-2 and for MRPC (their
# input embeddings take the n_p = 4 prompt slots, in order).
HANDCRAFTED = {"handcrafted (SST-2)": "the sentiment is :", "handcrafted (MRPC)": "do they agree ?"}


@torch.no_grad()
def prompts_and_states(
    setup: Session, split: Split, prompts: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """P = mean prompt vector (N, D) and Z = prompted mask state (N, D) of every example, with the
    model's own prompts or, if given, the fixed ``prompts`` (n_p, D) for every example."""
    m, size = setup.model.train(False), setup.config.eval_batch_size
    ps, zs = [], []
    for i in range(0, len(split.encoded), size):
        idx = list(range(i, min(i + size, len(split.encoded))))
        b = collate(split, idx, setup.pad, setup.accelerator.device)
        if prompts is None:
            pr = m.make_prompts(len(idx), b.get("pooled"))  # (B, n_p, D)
        else:
            pr = prompts.expand(len(idx), -1, -1)
        assert pr is not None  # Fig. 1 compares methods with prompts
        ps.append(pr.float().mean(1).cpu())
        z = m.encode(b["input_ids"], b["attention_mask"], b["mask_pos"], pr, b["prompt_pos"])
        zs.append(z.float().cpu())
    return torch.cat(ps), torch.cat(zs)


def random_prompts(embeddings: torch.Tensor, n_sets: int, n_p: int, seed: int) -> torch.Tensor:
    """``n_sets`` sets of n_p vocabulary embeddings drawn uniformly (n_sets, n_p, D)."""
    gen = torch.Generator().manual_seed(seed)
    rows = torch.randint(len(embeddings), (n_sets, n_p), generator=gen)
    return embeddings[rows].detach().float()


def reference_states(setup: Session, split: Split, prompt_sets: torch.Tensor) -> torch.Tensor:
    """Z(x, r_s): the mask state of every example under each prompt set r_s
    (prompt_sets (S, n_p, D)) → (N, S, D)."""
    return torch.stack([prompts_and_states(setup, split, r)[1] for r in prompt_sets], 1)


def prompt_scores(w: torch.Tensor, p: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """Bilinear critic s(P, z) = Pᵀ W z of K candidate prompts p (N, K, D), z (N, D) → (N, K)."""
    return torch.einsum("nkd,de,ne->nk", p, w, z)


def nce_over_prompts(
    w: torch.Tensor, p_pos: torch.Tensor, p_neg: torch.Tensor, z: torch.Tensor
) -> torch.Tensor:
    """NCE_x = logsumexp_k s(P_k, z) − s(P_x, z) (N,): which of K prompts produced z = Z(x, P_x)?

    p_pos (N, D) the prompt used, p_neg (N, K − 1, D) other prompts, z (N, D).
    """
    s = prompt_scores(w, torch.cat([p_pos[:, None], p_neg], 1), z)  # (N, K)
    return torch.logsumexp(s, 1) - s[:, 0]


def fit_critic(
    p_sets: torch.Tensor,
    z: torch.Tensor,
    k: int,
    steps: int,
    lr: float = 1e-2,
    wd: float = 0.1,
    seed: int = 0,
) -> torch.Tensor:
    """W (D, D) of the critic, trained on random prompts only: for every input x and step, K of
    the S prompt sets are drawn, the first is the one whose Z(x, ·) is shown, and AdamW minimises
    the mean NCE_x. p_sets (S, D) mean prompt vectors, z (N, S, D) = Z(x_n, r_s). W = 0 at the
    start (the bound is 0 there)."""
    gen = torch.Generator().manual_seed(seed)
    w = torch.zeros(p_sets.shape[1], p_sets.shape[1], requires_grad=True)
    opt = torch.optim.AdamW([w], lr=lr, weight_decay=wd)
    n, s = z.shape[:2]
    for _ in range(steps):
        idx = torch.rand(n, s, generator=gen).argsort(1)[:, :k]  # (N, K) distinct sets per input
        zz = z[torch.arange(n), idx[:, 0]]  # (N, D)
        loss = nce_over_prompts(w, p_sets[idx[:, 0]], p_sets[idx[:, 1:]], zz).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return w.detach()


@torch.no_grad()
def cmi_bound(
    w: torch.Tensor, p: torch.Tensor, z: torch.Tensor, p_ref: torch.Tensor
) -> torch.Tensor:
    """Per-example lower bound Î_x = log K − NCE_x (N,) ≤ log K, negatives the K − 1 reference
    prompts p_ref (K − 1, D) (the same for every example), positive the prompt P_x (N, D)."""
    neg = p_ref.expand(len(p), -1, -1)  # (N, K − 1, D)
    return math.log(p_ref.shape[0] + 1) - nce_over_prompts(w, p, neg, z)


def phrase_embeddings(
    tokenizer: Any, embeddings: torch.Tensor, phrase: str, n: int
) -> torch.Tensor:
    """Input embeddings (n, D) of the first n tokens of ``phrase`` (repeated if it is shorter)."""
    ids = tokenizer(phrase, add_special_tokens=False)["input_ids"]
    return embeddings[[ids[i % len(ids)] for i in range(n)]].detach().float()


def cmi_distributions(
    backbone: tuple[Any, Any],
    train_ex: list[Example],
    dev_ex: list[Example],
    base: RunConfig,
    steps: int,
    k: int,
    unit: bool = False,
    **critic: Any,
) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """({prompt kind: per-dev-example CMI bound (N_dev,)}, {kind: mean ‖P‖}) for InfoPrompt and
    WARP trained ``steps`` steps, a random prompt set and the two handcrafted prompts (the last
    three untrained).

    The critic is trained on the training inputs under ``critic["sets"]`` random prompt sets; the
    bound is read on the dev inputs against K − 1 further random sets (never seen in training).
    ``unit``: the critic sees P / ‖P‖ (every candidate), so that a prompt of larger norm does not
    get a larger score for that reason alone (its effect on Z is kept).
    """
    scale = (lambda p: p / p.norm(dim=-1, keepdim=True)) if unit else (lambda p: p)
    emb = backbone[1].get_input_embeddings().weight
    n_sets, n_p = critic.pop("sets", 96), base.n_prompts
    assert n_p is not None  # the base is InfoPrompt's configuration
    critic["steps"] = critic.pop("critic_steps", 300)
    train_sets = random_prompts(emb, n_sets, n_p, base.seed + 1)  # (S, n_p, D)
    held_out = random_prompts(emb, k, n_p, base.seed + 2)  # K − 1 negatives + 1 'random' kind
    warp = build(method_config(base, "warp"), train_ex, dev_ex, backbone)
    w = fit_critic(
        scale(train_sets.mean(1)), reference_states(warp, warp.train_set, train_sets), k, **critic
    )
    fixed = {"random prompts": held_out[-1]}
    for name, phrase in HANDCRAFTED.items():
        fixed[name] = phrase_embeddings(backbone[0], emb, phrase, n_p)
    kinds = {name: prompts_and_states(warp, warp.val_set, v) for name, v in fixed.items()}
    for method in ("infoprompt", "warp"):
        s = (
            warp
            if method == "warp"
            else build(method_config(base, method), train_ex, dev_ex, backbone)
        )
        run_steps(s, steps)
        kinds[method] = prompts_and_states(s, s.val_set)
    order = ("infoprompt", "warp", "random prompts", *HANDCRAFTED)
    ref = scale(held_out[:-1].mean(1))  # (K − 1, D)
    bounds = {n: cmi_bound(w, scale(kinds[n][0]), kinds[n][1], ref).numpy() for n in order}
    norms = {n: kinds[n][0].norm(dim=1).mean().item() for n in order}
    norms["(reference sets)"] = held_out[:-1].mean(1).norm(dim=1).mean().item()
    return bounds, norms
