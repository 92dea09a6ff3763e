"""The InfoNCE losses against hand computations on tiny tensors, and the log K bound."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from infoprompt.losses import HeadMI, RepresentationMI, info_nce, sample_context, theta_of


def nce_by_hand(pos: list[float], neg: list[list[float]]) -> float:
    """mean_b [log(exp(s⁺_b) + Σ_k exp(s⁻_bk)) − s⁺_b] with Python floats."""
    terms = [
        math.log(math.exp(p) + sum(math.exp(s) for s in n)) - p
        for p, n in zip(pos, neg, strict=True)
    ]
    return sum(terms) / len(terms)


def bilinear(p: list[float], w: list[list[float]], x: list[float]) -> float:
    """pᵀ W x with Python floats."""
    return sum(p[i] * w[i][j] * x[j] for i in range(len(p)) for j in range(len(x)))


def test_info_nce_matches_hand_computation():
    pos, neg = [1.0, -0.5], [[0.0, 2.0, -1.0], [0.5, 0.5, 3.0]]
    got = info_nce(torch.tensor(pos), torch.tensor(neg))
    assert got.item() == pytest.approx(nce_by_hand(pos, neg), rel=1e-6)


def test_equal_scores_give_log_k():
    k = 32
    assert info_nce(torch.zeros(3), torch.zeros(3, k - 1)).item() == pytest.approx(math.log(k))


def test_head_loss_matches_hand_computation():
    """Eq. 4: positive l(P, θ) = Pᵀ W1 θ, negatives l(P_k, θ) = P_kᵀ W1 θ (prompts contrasted)."""
    w = [[0.5, -1.0], [2.0, 0.25]]
    p, theta = [[1.0, 2.0], [-1.0, 0.5]], [[0.3, -0.2], [1.0, 1.0]]
    negs = [[[1.0, 0.0], [0.0, 1.0], [-1.0, 1.0]], [[2.0, 0.0], [0.5, -0.5], [0.0, 0.0]]]
    loss = HeadMI(2)
    with torch.no_grad():
        loss.W1.copy_(torch.tensor(w))
    got = loss(torch.tensor(p), torch.tensor(theta), torch.tensor(negs)).item()
    pos = [bilinear(p[b], w, theta[b]) for b in range(2)]
    neg = [[bilinear(x, w, theta[b]) for x in negs[b]] for b in range(2)]
    assert got == pytest.approx(nce_by_hand(pos, neg), rel=1e-6)


def test_head_loss_gradient_in_p_is_that_of_eq_4():
    """∂NCE_head/∂P_b = −(1 − s₁) W1 θ_b / B with s₁ the positive's softmax weight, for a
    non-symmetric W1; the swapped score Pᵀ W1 e_k would add Σ_k s_k W1 e_k and fail."""
    torch.manual_seed(0)
    b, d, k = 3, 4, 6
    loss = HeadMI(d)
    with torch.no_grad():
        loss.W1.copy_(torch.randn(d, d))
    assert not torch.allclose(loss.W1, loss.W1.T)
    p = torch.randn(b, d, dtype=torch.float32, requires_grad=True)
    theta, negs = torch.randn(b, d), torch.randn(b, k - 1, d)
    loss(p, theta, negs).backward()
    w1 = loss.W1.detach().double()
    w_theta = theta.double() @ w1.T  # (B, D): W1 θ_b
    scores = torch.cat(
        [
            (p.detach().double() * w_theta).sum(-1, keepdim=True),
            torch.einsum("bkd,bd->bk", negs.double(), w_theta),
        ],
        dim=1,
    )
    s1 = scores.softmax(-1)[:, :1]  # (B, 1)
    expected = -(1 - s1) * w_theta / b
    assert torch.allclose(p.grad.double(), expected, atol=1e-6)


def test_representation_loss_with_prompt_negatives_is_in_batch_infonce():
    """negatives='prompts': z_b's candidates are every P_j of the batch, the positive P_b."""
    torch.manual_seed(0)
    b, d = 4, 3
    loss = RepresentationMI(d, 7, negatives="prompts")
    with torch.no_grad():
        loss.W2.copy_(torch.randn(d, d))
    p, z = torch.randn(b, d), torch.randn(b, d)
    torch.manual_seed(1)
    got = loss(p, z, None).item()
    torch.manual_seed(1)
    eps = torch.randn(b, d)
    with torch.no_grad():
        zs = loss.f_mu(z) + torch.nn.functional.softplus(loss.f_sigma(z)) * eps
    w = loss.W2.tolist()
    pos = [bilinear(p[i].tolist(), w, zs[i].tolist()) for i in range(b)]
    neg = [
        [bilinear(p[j].tolist(), w, zs[i].tolist()) for j in range(b) if j != i] for i in range(b)
    ]
    assert got == pytest.approx(nce_by_hand(pos, neg), rel=1e-5)


def test_representation_loss_matches_hand_computation():
    torch.manual_seed(0)
    b, d, k = 2, 3, 4
    loss = RepresentationMI(d, k - 1)
    with torch.no_grad():
        loss.W2.copy_(torch.randn(d, d))
    p, z, z_plain = torch.randn(b, d), torch.randn(b, d), torch.randn(b, d)
    torch.manual_seed(1)
    got = loss(p, z, z_plain).item()
    torch.manual_seed(1)  # the same draws, in the same order: ε (B, D), then ε_k (B, K − 1, D)
    eps, eps_k = torch.randn(b, d), torch.randn(b, k - 1, d)
    with torch.no_grad():
        mu, sigma = loss.f_mu(z), torch.nn.functional.softplus(loss.f_sigma(z))
        mu_n, sigma_n = loss.f_mu(z_plain), torch.nn.functional.softplus(loss.f_sigma(z_plain))
    w = loss.W2.tolist()
    pos = [bilinear(p[i].tolist(), w, (mu[i] + sigma[i] * eps[i]).tolist()) for i in range(b)]
    neg = [
        [
            bilinear(p[i].tolist(), w, (mu_n[i] + sigma_n[i] * eps_k[i, j]).tolist())
            for j in range(k - 1)
        ]
        for i in range(b)
    ]
    assert got == pytest.approx(nce_by_hand(pos, neg), rel=1e-5)


def test_losses_start_at_log_k_with_zero_bilinear_weights():
    torch.manual_seed(0)
    k, d = 32, 8
    rep, head = RepresentationMI(d, k - 1), HeadMI(d)
    p = torch.randn(4, d)
    assert rep(p, torch.randn(4, d), torch.randn(4, d)).item() == pytest.approx(math.log(k))
    assert head(p, torch.randn(4, d), torch.randn(4, k - 1, d)).item() == pytest.approx(math.log(k))


def test_representation_loss_gradient_reaches_p_z_and_the_heads():
    torch.manual_seed(0)
    rep = RepresentationMI(4, 7)
    with torch.no_grad():
        rep.W2.normal_()
    p, z = torch.randn(2, 4, requires_grad=True), torch.randn(2, 4, requires_grad=True)
    rep(p, z, torch.randn(2, 4)).backward()
    grads = [p.grad, z.grad, rep.W2.grad, rep.f_mu.weight.grad, rep.f_sigma.weight.grad]
    assert all(g is not None and g.abs().sum() > 0 for g in grads)


@settings(max_examples=50, deadline=None, derandomize=True)
@given(
    b=st.integers(1, 4),
    k=st.integers(2, 40),
    scale=st.floats(1e-3, 30.0),
    seed=st.integers(0, 2**16),
)
def test_bound_log_k_minus_nce_is_at_most_log_k(b, k, scale, seed):
    gen = torch.Generator().manual_seed(seed)
    d = 5
    head = HeadMI(d)
    with torch.no_grad():
        head.W1.copy_(scale * torch.randn(d, d, generator=gen))
    p, theta = torch.randn(b, d, generator=gen), torch.randn(b, d, generator=gen)
    nce = head(p, theta, torch.randn(b, k - 1, d, generator=gen)).item()
    assert nce >= 0
    assert math.log(k) - nce <= math.log(k)


def test_theta_expected_is_the_probability_weighted_class_rows():
    weight = torch.tensor([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]])  # (C, D)
    logits = torch.tensor([[0.0, 0.0, 0.0], [10.0, 0.0, -5.0]])
    probs = logits.softmax(-1)
    assert torch.allclose(theta_of("expected", weight, logits, None), probs @ weight)
    assert torch.equal(theta_of("label", weight, logits, torch.tensor([2, 1])), weight[[2, 1]])


def test_context_negatives_come_from_the_context_only():
    torch.manual_seed(0)
    context = torch.tensor([[False, True, True, False], [False, False, False, False]])
    pos = sample_context(context, 200)
    assert set(pos[0].tolist()) == {1, 2}
    assert set(pos[1].tolist()) <= {0, 1, 2, 3}  # an empty context draws from every position


def test_nce_rep_reaches_zero_where_the_conditional_mi_is_zero():
    """docs/paper-notes.md, "What the two InfoNCE terms estimate": with P = g(X) and Z = h(X)
    deterministic, I(P; Z | X) = 0, yet the critic drives NCE_rep to about 0, so InfoNCE's
    "bound" log K − NCE reaches log K: the loss bounds no conditional MI. It wins by telling Z
    from the prompt-free Z' of its negatives, and scores a shuffled P just as well."""
    torch.manual_seed(0)
    dim, batch, k = 8, 16, 32
    x = torch.randn(batch, dim)
    g, h = torch.nn.Linear(dim, dim), torch.nn.Linear(dim, dim)
    with torch.no_grad():
        p, z_plain = g(x), h(x)  # P = g(X), Z' = h(X)
        z = z_plain + 2.0  # the prompted pass moves Z: still a function of X alone
    mi = RepresentationMI(dim, k - 1)
    opt = torch.optim.Adam(mi.parameters(), lr=0.05)
    for _ in range(200):
        loss = mi(p, z, z_plain)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        true, shuffled = mi(p, z, z_plain).item(), mi(p.roll(1, 0), z, z_plain).item()
    assert true < 0.05 and math.log(k) - true > math.log(k) - 0.05  # "bound" ≈ log K > 0 = MI
    assert shuffled < 0.05  # the critic does not need P's content
