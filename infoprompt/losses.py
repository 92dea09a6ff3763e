"""The two InfoNCE losses of InfoPrompt (Wu et al. 2023, arXiv 2306.04933, section 3).

Conventions: B examples, D hidden size, K candidates per InfoNCE term (one positive and K − 1
negatives; the paper's K = 32). Every score is computed in float32.

InfoNCE (Oord et al. 2018) with a positive score s⁺ (B,) and negative scores s⁻ (B, K − 1):

    NCE = mean_b [ log( exp(s⁺_b) + Σ_k exp(s⁻_bk) ) − s⁺_b ]   ≥ 0,
    I ≥ log K − NCE   (so the bound is at most log K).

P, the prompt side of both mutual informations, is the mean of the example's n_p prompt vectors,
P = (1/n_p) Σ_i p_i (B, D): one vector per example, in the space of the token embeddings.

- Head loss, −I(P; θ | X) (paper section 3, eq. 4–5): the score of a prompt against the head is
  l(P, θ) = Pᵀ W1 θ. The positive is the example's own prompt P scored against θ_X; the K − 1
  negatives are other *prompts* P_k scored against the same θ_X, l(P_k, θ_X) = P_kᵀ W1 θ_X, where
  P_k are input-embedding rows of tokens drawn uniformly, with replacement, from the example's own
  text (its context: no special, pad, mask or prompt slot). So
  NCE_head = logsumexp(Pᵀ W1 θ, P_1ᵀ W1 θ, …) − Pᵀ W1 θ and ∂NCE_head/∂P = −(1 − s₁) W1 θ, s₁ the
  positive's softmax weight. θ_X, the head "encoded from X", the paper leaves open; ``theta_of``
  offers two definitions (``RunConfig.theta``): ``"expected"`` (default)
  θ_X = Σ_c softmax(h(Z))_c w_c, the class rows of the head weighted by the predicted
  distribution (usable at any time, differentiable); ``"label"`` θ_X = w_y, the row of the gold
  class (a training-time signal).
- Representation loss, −I(P; Z | X) (paper section 3, "representation loss"): score Pᵀ W2 z.
  The positive is z = μ + σ ⊙ ε with μ = f_μ(Z), σ = softplus(f_σ(Z)), ε ~ N(0, I)
  (reparameterised). Negatives, ``RepresentationMI(negatives=...)``:
  ``"plain"`` (the paper's, the default): K − 1 draws z'_k = μ' + σ' ⊙ ε_k with μ' = f_μ(Z'),
  σ' = softplus(f_σ(Z')), Z' the mask state of the prompt-free pass (cached once per example; see
  ````session.PlainCache``). A critic can win this contrast by detecting *whether* a prompt was
  inserted, without reading which one; ``"prompts"``: the other examples' prompts P_j of the batch
  scored against the same z, P_jᵀ W2 z (B − 1 negatives, in-batch InfoNCE), so the bound depends
  on P's content. The design note says "K negatives"; here the positive is counted among the K
  candidates, so both bounds read log K − NCE.

W1 and W2 start at zero, so each loss starts at exactly log K (the bound at 0) and both receive a
non-zero gradient from the first step.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def info_nce(pos: torch.Tensor, neg: torch.Tensor) -> torch.Tensor:
    """NCE = mean_b [logsumexp(s⁺_b, s⁻_b1, …) − s⁺_b]; pos (B,), neg (B, K − 1) → scalar."""
    scores = torch.cat([pos[:, None], neg], dim=1)  # (B, K)
    return (torch.logsumexp(scores, dim=1) - pos).mean()


def theta_of(
    mode: str, weight: torch.Tensor, logits: torch.Tensor, labels: torch.Tensor
) -> torch.Tensor:
    """θ_X (B, D) from the head's class rows ``weight`` (C, D): expected row or gold row."""
    if mode == "expected":
        return logits.float().softmax(-1) @ weight.float()  # (B, D)
    if mode == "label":
        return weight.float()[labels]  # (B, D)
    raise ValueError(f"unknown theta {mode!r}; use 'expected' or 'label'")


def sample_context(context: torch.Tensor, n: int) -> torch.Tensor:
    """Positions (B, n) drawn uniformly with replacement where ``context`` (B, T) is True.

    A row without context tokens (an empty text) draws from all its positions instead.
    """
    weights = context.float()  # (B, T)
    empty = weights.sum(1, keepdim=True) == 0
    weights = torch.where(empty, torch.ones_like(weights), weights)
    return torch.multinomial(weights, n, replacement=True)  # (B, n)


class HeadMI(nn.Module):
    """−I(P; θ | X) as InfoNCE over prompts with the bilinear score Pᵀ W1 θ (paper eq. 4–5)."""

    def __init__(self, dim: int):
        super().__init__()
        self.W1 = nn.Parameter(torch.zeros(dim, dim))  # (D, D)

    def forward(
        self, p: torch.Tensor, theta: torch.Tensor, negatives: torch.Tensor
    ) -> torch.Tensor:
        """p (B, D), θ_X (B, D), negative prompts P_k (B, K − 1, D) → NCE_head.

        Scores l(P, θ) = Pᵀ W1 θ: the positive Pᵀ (W1 θ), the negatives P_kᵀ (W1 θ).
        """
        w_theta = theta.float() @ self.W1.T  # (B, D): W1 θ
        pos = (p.float() * w_theta).sum(-1)  # (B,)
        neg = (negatives.float() * w_theta.unsqueeze(1)).sum(-1)  # (B, K − 1)
        return info_nce(pos, neg)


class RepresentationMI(nn.Module):
    """−I(P; Z | X) as InfoNCE, score Pᵀ W2 z, z ~ N(f_μ(Z), f_σ(Z)) (paper section 3)."""

    def __init__(self, dim: int, n_negatives: int, negatives: str = "plain"):
        super().__init__()
        if negatives not in ("plain", "prompts"):
            raise ValueError(f"unknown negatives {negatives!r}; use 'plain' or 'prompts'")
        self.n_negatives, self.negatives = n_negatives, negatives  # K − 1
        self.W2 = nn.Parameter(torch.zeros(dim, dim))  # (D, D)
        self.f_mu = nn.Linear(dim, dim)
        self.f_sigma = nn.Linear(dim, dim)

    def sample(self, z: torch.Tensor, n: int | None = None) -> torch.Tensor:
        """μ + σ ⊙ ε from z (B, D): (B, D) if n is None, else n draws (B, n, D)."""
        mu, sigma = self.f_mu(z.float()), F.softplus(self.f_sigma(z.float()))  # (B, D)
        if n is None:
            return mu + sigma * torch.randn_like(mu)
        eps = torch.randn(mu.shape[0], n, mu.shape[1], device=mu.device)  # (B, n, D)
        return mu.unsqueeze(1) + sigma.unsqueeze(1) * eps

    def score(self, p: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Pᵀ W2 x for x (B, D) → (B,) or x (B, N, D) → (B, N)."""
        pw = p.float() @ self.W2  # (B, D)
        return (pw.unsqueeze(-2) * x).sum(-1) if x.dim() == 3 else (pw * x).sum(-1)

    def forward(self, p: torch.Tensor, z: torch.Tensor, z_plain: torch.Tensor) -> torch.Tensor:
        """p (B, D), mask state Z (B, D) of the prompted pass, Z' (B, D) of the plain pass → NCE."""
        positive = self.sample(z)  # (B, D)
        if self.negatives == "plain":
            negatives = self.sample(z_plain, self.n_negatives)  # (B, K − 1, D)
            return info_nce(self.score(p, positive), self.score(p, negatives))
        if len(p) < 2:  # no other prompt in the batch: nothing to contrast
            return positive.sum() * 0.0
        scores = (p.float() @ self.W2) @ positive.T  # (B_p, B_z): P_jᵀ W2 z_b at [j, b]
        return F.cross_entropy(scores.T, torch.arange(len(p), device=p.device))
