"""Where Theorem 3.1 stops: the curvature of eq. 11 in the prompt generator's parameters.

The Hessian of ``(1/N) Σ_i [CE_i + β NCE_rep,i + γ NCE_head,i]`` (paper eq. 11) over a run's
training draw, in the prompt generator's parameters (W_down, W_up; the head, critics and encoder
fixed), in float64 on CPU, by Hessian-vector products (double backward; the random draws of the
InfoNCE terms fixed by a seed per batch) and Lanczos with full reorthogonalisation. Ritz values
lie inside the spectrum, so a negative one proves negative curvature: eq. 11 is not convex in the
prompt generator. ``infoprompt.theorem`` (``python -m infoprompt theory``) reports it.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

from infoprompt.session import Session, collate

if TYPE_CHECKING:
    from infoprompt.model import PromptModel

NOISE = 1e-8  # a Ritz value below −1e-8 λ_max is negative beyond the HVPs' float64 rounding


def batches(session: Session, size: int) -> list[dict[str, torch.Tensor]]:
    """The training draw in order, as collated batches of ``size`` (labels, cache included)."""
    split, device = session.train_set, session.accelerator.device
    n = len(split.labels)
    return [collate(split, list(range(s, min(s + size, n))), session.pad, device)
            for s in range(0, n, size)]  # fmt: skip


def eq11_sum(
    m: PromptModel,
    b: dict[str, torch.Tensor],
    params: Sequence[torch.Tensor],
    seed: int,
    float64: bool = True,
) -> torch.Tensor:
    """Σ over the batch of CE + β NCE_rep + γ NCE_head with the generator's parameters ``params``
    = (W_down, W_up); the random draws are those ``model.forward`` makes after
    ``torch.manual_seed(seed)``, drawn in float32 in the same order, then cast."""
    with sdpa_kernel(SDPBackend.MATH):  # the fused attention kernels have no double backward
        return _eq11_sum(m, b, params, seed, float64)


def _eq11_sum(
    m: PromptModel,
    b: dict[str, torch.Tensor],
    params: Sequence[torch.Tensor],
    seed: int,
    float64: bool,
) -> torch.Tensor:
    cast = (lambda t: t.double()) if float64 else (lambda t: t.float())
    torch.manual_seed(seed)
    W_down, W_up = params
    h = torch.einsum("nrd,bd->bnr", W_down, cast(b["pooled"]))
    prompts = torch.einsum("ndr,bnr->bnd", W_up, h)  # (B, n_p, D)
    z = m.encode(b["input_ids"], b["attention_mask"], b["mask_pos"], prompts, b["prompt_pos"])
    logits = F.linear(z, m.head.weight, m.head.bias)
    total = F.cross_entropy(logits, b["labels"], reduction="sum")
    p = prompts.mean(1)  # (B, D)
    if m.rep_mi is not None:
        r = m.rep_mi
        mu, sigma = r.f_mu(z), F.softplus(r.f_sigma(z))
        pos = mu + sigma * cast(torch.randn(mu.shape))
        pw = p @ r.W2
        if r.negatives == "plain":
            zp = cast(b["z_plain"])
            mu2, sig2 = r.f_mu(zp), F.softplus(r.f_sigma(zp))
            eps = cast(torch.randn(mu.shape[0], r.n_negatives, mu.shape[1]))
            neg = mu2[:, None] + sig2[:, None] * eps
            s = torch.cat([(pw * pos).sum(-1)[:, None], (pw[:, None] * neg).sum(-1)], 1)
            total = total + m.beta * (torch.logsumexp(s, 1) - s[:, 0]).sum()
        elif len(p) > 1:
            scores = pw @ pos.T
            target = torch.arange(len(p))
            total = total + m.beta * F.cross_entropy(scores.T, target, reduction="sum")
    if m.head_mi is not None:
        if m.theta == "expected":
            theta = logits.softmax(-1) @ m.head.weight
        else:
            theta = m.head.weight[b["labels"]]
        wt = theta @ m.head_mi.W1.T
        neg = cast(m._negatives(b["input_ids"]))
        s = torch.cat([(p * wt).sum(-1)[:, None], (neg * wt[:, None]).sum(-1)], 1)
        total = total + m.gamma * (torch.logsumexp(s, 1) - s[:, 0]).sum()
    return total


class Eq11:
    """eq. 11 averaged over the training draw, as a function of the generator's parameters
    (float64 copy of the model): value, gradient and Hessian-vector products (double backward)."""

    def __init__(self, session: Session, size: int = 16, seed: int = 0) -> None:
        self.m = copy.deepcopy(session.model).double().requires_grad_(False)
        self.batches = batches(session, size)
        self.N, self.seed = len(session.train_set.labels), seed
        prompts = self.m.prompts
        assert prompts is not None  # load_trained refuses a method without prompts
        self.x0 = torch.cat([p.detach().reshape(-1) for p in prompts.parameters()])
        self.shapes = [p.shape for p in prompts.parameters()]
        self.hvps = 0

    def params(self, x: torch.Tensor) -> list[torch.Tensor]:
        out: list[torch.Tensor] = []
        i = 0
        for s in self.shapes:
            out.append(x[i : i + s.numel()].view(s))
            i += s.numel()
        return out

    def value(self, x: torch.Tensor | None = None) -> float:
        x = self.x0 if x is None else x
        with torch.no_grad():
            return sum(float(eq11_sum(self.m, b, self.params(x), self.seed * 1000 + i))
                       for i, b in enumerate(self.batches)) / self.N  # fmt: skip

    def gradient(self, x: torch.Tensor | None = None) -> torch.Tensor:
        x = (self.x0 if x is None else x).clone().requires_grad_(True)
        g = torch.zeros_like(x)
        for i, b in enumerate(self.batches):
            g += torch.autograd.grad(eq11_sum(self.m, b, self.params(x), self.seed * 1000 + i), x)[
                0
            ]
        return g / self.N

    def hvp(self, v: torch.Tensor) -> torch.Tensor:
        """``∇²L(x0) v`` (n_params,), one double backward per batch."""
        self.hvps += 1
        x = self.x0.clone().requires_grad_(True)
        out = torch.zeros_like(x)
        for i, b in enumerate(self.batches):
            (g,) = torch.autograd.grad(
                eq11_sum(self.m, b, self.params(x), self.seed * 1000 + i), x, create_graph=True
            )
            out += torch.autograd.grad(g @ v, x)[0]
        return out / self.N


def lanczos(
    matvec: Callable[[torch.Tensor], torch.Tensor], n: int, steps: int, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Ritz values (ascending) of ``steps`` Lanczos steps with full reorthogonalisation from a
    random start, and the residual norm ``||H y − θ y||`` of each Ritz pair (β_m |e_mᵀ s|)."""
    gen = torch.Generator().manual_seed(seed)
    Q = torch.zeros(steps + 1, n, dtype=torch.float64)
    Q[0] = torch.randn(n, generator=gen, dtype=torch.float64)
    Q[0] /= Q[0].norm()
    alpha: list[float] = []
    beta: list[float] = []
    for j in range(steps):
        w = matvec(Q[j])
        alpha.append(float(w @ Q[j]))
        for _ in range(2):  # full reorthogonalisation, twice ("twice is enough")
            w = w - Q[: j + 1].T @ (Q[: j + 1] @ w)
        beta.append(float(w.norm()))
        if beta[-1] < 1e-12 * max(1.0, abs(alpha[-1])):
            break
        Q[j + 1] = w / beta[-1]
    k = len(alpha)
    T = np.diag(alpha) + np.diag(beta[: k - 1], 1) + np.diag(beta[: k - 1], -1)
    theta, S = np.linalg.eigh(T)
    return theta, np.abs(beta[k - 1] * S[-1])


def hessian_extremes(
    session: Session, steps: int = 20, size: int = 16, seed: int = 0
) -> dict[str, Any]:
    f = Eq11(session, size, seed)
    prompts = session.model.prompts
    assert prompts is not None  # Eq11 has checked it
    t0 = time.perf_counter()
    theta, res = lanczos(f.hvp, f.x0.numel(), steps, seed)
    return {"params": f.x0.numel(), "names": [n for n, _ in prompts.named_parameters()],
            "loss": f.value(), "grad_norm": float(f.gradient().norm()), "steps": len(theta),
            "hvps": f.hvps, "seconds": time.perf_counter() - t0, "lambda_min": float(theta[0]),
            "lambda_max": float(theta[-1]), "residual_min": float(res[0]), "residual_max": float(res[-1]),
            "ritz": theta.tolist(), "negative_curvature": bool(theta[0] < -NOISE * abs(theta[-1]))}  # fmt: skip
