"""Fig. 2: loss landscapes of one prompt token over the token embeddings' top-2 principal axes.

Conventions: D hidden size, n_p prompts, G grid points per axis.

loss landscapes of one prompt token p₁ over the top-2 principal components u₁, u₂ of the
token embeddings: log10 L(c + a u₁ + b u₂), averaged over 20 held-out dev examples, with the
trajectory of p₁ (mean over the same examples) during training with γ = 0.05 and γ = 0.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from infoprompt.config import RunConfig
from infoprompt.data import Example
from infoprompt.figures import build, run_steps
from infoprompt.session import Session, Split, collate

# Fig. 2's arms: InfoPrompt, without the head loss, and without both MI losses (same rate)
LANDSCAPE_ARMS = {
    "β = 0.1, γ = 0.05": {},
    "β = 0.1, γ = 0": {"gamma": 0.0},
    "β = γ = 0": {"beta": 0.0, "gamma": 0.0},
}


def embedding_pcs(weight: torch.Tensor, n: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-n principal directions U (n, D) and variances λ (n,) of the embeddings (V, D):
    eigenvectors of C = (E − ē)ᵀ(E − ē) / V, largest eigenvalues first."""
    e = weight.detach().double()
    c = e - e.mean(0)
    vals, vecs = torch.linalg.eigh(c.T @ c / len(e))  # ascending
    return vecs[:, -n:].flip(1).T.float(), vals[-n:].flip(0).float()


@torch.no_grad()
def first_prompt(setup: Session, split: Split, idx: list[int]) -> torch.Tensor:
    """p₁, the first prompt vector, averaged over the examples ``idx`` of ``split`` (D,)."""
    b = collate(split, idx, setup.pad, setup.accelerator.device)
    prompts = setup.model.make_prompts(len(idx), b.get("pooled"))  # (B, n_p, D)
    assert prompts is not None  # the landscape's runs have prompts
    return prompts[:, 0].float().mean(0).cpu()


@torch.no_grad()
def point_losses(
    setup: Session, batch: dict, p1: torch.Tensor, seed: int = 0
) -> tuple[float, float]:
    """(L_pred, NCE_rep) of ``batch`` with prompt slot 1 of every example set to p1 (D,); the other
    slots keep the model's prompts. The noise of NCE_rep is drawn from ``seed``."""
    m = setup.model
    own = m.make_prompts(len(batch["input_ids"]), batch.get("pooled"))
    assert own is not None
    prompts = own.clone()  # (B, n_p, D)
    prompts[:, 0] = p1
    z = m.encode(
        batch["input_ids"], batch["attention_mask"], batch["mask_pos"], prompts, batch["prompt_pos"]
    )
    pred = F.cross_entropy(m.head(z).float(), batch["labels"]).item()
    torch.manual_seed(seed)
    rep = (
        m.rep_mi(prompts.float().mean(1), z, batch["z_plain"]).item() if m.rep_mi else float("nan")
    )
    return pred, rep


def loss_grid(
    setup: Session,
    split: Split,
    idx: list[int],
    center: torch.Tensor,
    u: torch.Tensor,
    coords: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """L_pred and NCE_rep (G, G), mean over the examples ``idx`` of ``split``, at
    p₁ = center + a u₁ + b u₂ with a = coords[j], b = coords[i]."""
    batch = collate(split, idx, setup.pad, setup.accelerator.device)
    setup.model.train(False)
    pred, rep = np.zeros((len(coords),) * 2), np.zeros((len(coords),) * 2)
    for i, b in enumerate(coords):
        for j, a in enumerate(coords):
            pred[i, j], rep[i, j] = point_losses(setup, batch, center + a * u[0] + b * u[1])
    return pred, rep


def log10(grid: np.ndarray) -> np.ndarray:
    """log10 of a loss grid (losses reach ~1e-7 once a term is solved; 1e-12 avoids log 0)."""
    return np.log10(grid + 1e-12)


def roughness(grid: np.ndarray) -> float:
    """Mean |discrete Laplacian| of a grid over its range (0 for a plane; larger = rougher):
    mean |g[i+1,j] + g[i−1,j] + g[i,j+1] + g[i,j−1] − 4 g[i,j]| / (max g − min g).
    The figure applies it to log10 of the losses, as drawn."""
    lap = grid[2:, 1:-1] + grid[:-2, 1:-1] + grid[1:-1, 2:] + grid[1:-1, :-2] - 4 * grid[1:-1, 1:-1]
    return float(np.abs(lap).mean() / max(np.ptp(grid), 1e-12))


def landscape_run(
    backbone: tuple[Any, Any],
    train_ex: list[Example],
    dev_ex: list[Example],
    config: RunConfig,
    steps: int,
    n_points: int,
    grid: int,
) -> dict[str, np.ndarray]:
    """Train ``config`` for ``steps`` steps recording p₁, the mean first prompt of the first
    ``n_points`` dev examples (held out: on the training examples every loss is ~0 after a few
    epochs); then the loss grids of the same examples around the last p₁ over the embeddings'
    top-2 PCs, over ±max(1.25 × the trajectory's extent, one standard deviation along PC 1)."""
    s = build(config, train_ex, dev_ex, backbone)
    idx = list(range(min(n_points, len(dev_ex))))
    path = [first_prompt(s, s.val_set, idx)]
    run_steps(s, steps, on_step=lambda _: path.append(first_prompt(s, s.val_set, idx)))
    u, lam = embedding_pcs(s.model.embed.weight)
    center = path[-1]
    traj = (torch.stack(path) - center) @ u.T  # (steps + 1, 2)
    span = max(1.25 * traj.abs().max().item(), lam[0].sqrt().item())
    coords = np.linspace(-span, span, grid)
    pred, rep = loss_grid(s, s.val_set, idx, center, u, coords)
    return {"coords": coords, "pred": pred, "rep": rep, "traj": traj.numpy()}
