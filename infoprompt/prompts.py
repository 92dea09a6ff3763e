"""The prompt modules a method trains: InfoPrompt's generator, IDPG's generator, WARP's vectors.

Conventions: B examples, D hidden size, n_p prompts, r the bottleneck. Each module returns prompts
(B, n_p, D) that ``PromptModel`` writes into the template's prompt slots.
"""

from __future__ import annotations

import torch
from torch import nn


class GeneratedPrompts(nn.Module):
    """Prompts computed from P' (B, D) → (B, n_p, D), with an output scale set on the training
    examples (``calibrate_``)."""

    def calibrate_(self, pooled: torch.Tensor, target_std: float) -> None:
        raise NotImplementedError


class PromptGenerator(GeneratedPrompts):
    """p_i = W_up_i W_down_i P' for i = 1..n_p; W_down_i (r, D), W_up_i (D, r), r = 64.

    Initialisation: W_down ~ N(0, 1/D), so W_down P' keeps P''s scale; W_up ~ N(0, 1/r), then
    ``calibrate_`` rescales W_up so that the prompts of the training examples have the standard
    deviation of the vocabulary embeddings (prompts start on the embeddings' scale).
    """

    def __init__(self, n_prompts: int, dim: int, bottleneck: int):
        super().__init__()
        self.W_down = nn.Parameter(torch.randn(n_prompts, bottleneck, dim) / dim**0.5)
        self.W_up = nn.Parameter(torch.randn(n_prompts, dim, bottleneck) / bottleneck**0.5)

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        """P' (B, D) → prompts (B, n_p, D)."""
        h = torch.einsum("nrd,bd->bnr", self.W_down, pooled.float())  # (B, n_p, r)
        return torch.einsum("ndr,bnr->bnd", self.W_up, h)  # (B, n_p, D)

    @torch.no_grad()
    def calibrate_(self, pooled: torch.Tensor, target_std: float) -> None:
        """Scale W_up so that std(prompts of ``pooled`` (N, D)) = target_std."""
        self.W_up.mul_(target_std / self(pooled).std().clamp(min=1e-12))


class StaticPrompts(nn.Module):
    """WARP's prompts: n_p vectors (n_p, D), initialised from random vocabulary embeddings."""

    def __init__(self, embeddings: torch.Tensor, n_prompts: int, skip: list[int]):
        super().__init__()
        allowed = torch.ones(embeddings.shape[0], dtype=torch.bool)
        allowed[skip] = False
        rows = torch.multinomial(allowed.float(), n_prompts, replacement=False)
        self.prompts = nn.Parameter(embeddings[rows].detach().float().clone())  # (n_p, D)

    def forward(self, batch_size: int) -> torch.Tensor:
        """The same n_p vectors for every row → (B, n_p, D)."""
        return self.prompts.unsqueeze(0).expand(batch_size, -1, -1)


class IdpgGenerator(GeneratedPrompts):
    """IDPG's generator: prompts = W_u tanh(W_d P' + b_d) + b_u, W_d (r, D), W_u (n_p D, r).

    ``calibrate_`` scales the output layer so that the prompts of the training examples start with
    the standard deviation of the vocabulary embeddings, as for ``PromptGenerator``.
    """

    def __init__(self, n_prompts: int, dim: int, bottleneck: int):
        super().__init__()
        self.n_prompts, self.dim = n_prompts, dim
        self.down = nn.Linear(dim, bottleneck)
        self.up = nn.Linear(bottleneck, n_prompts * dim)

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        """P' (B, D) → prompts (B, n_p, D)."""
        h = torch.tanh(self.down(pooled.float()))  # (B, r)
        return self.up(h).view(-1, self.n_prompts, self.dim)

    @torch.no_grad()
    def calibrate_(self, pooled: torch.Tensor, target_std: float) -> None:
        scale = target_std / self(pooled).std().clamp(min=1e-12)
        self.up.weight.mul_(scale)
        self.up.bias.mul_(scale)
