# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 04 · InfoPrompt's losses: InfoNCE as a mutual-information bound, then on real sentences
#
# InfoPrompt (Wu et al. 2023, section 3) maximises two mutual informations with InfoNCE
# (Oord et al. 2018). With a positive score $s^+$ and $K-1$ negative scores $s^-_k$,
#
# $$\mathrm{NCE} = \mathbb{E}\Big[\log\big(e^{s^+} + \textstyle\sum_k e^{s^-_k}\big) - s^+\Big],
# \qquad I \;\ge\; \log K - \mathrm{NCE} \;\le\; \log K .$$
#
# 1. the bound on correlated Gaussians, whose MI is known, as $K$ grows;
# 2. the head and representation losses of `infoprompt/losses.py` on a few sentences with the
#    packaged MiniLM;
# 3. a short InfoPrompt-versus-WARP run on a tiny inline dataset.

# %% tags=["parameters"]
DIM, RHO, N_SAMPLES, SEED = 4, 0.9, 512, 0
K_LIST = [2, 4, 16, 64, 256, 1024]
CRITIC_K, CRITIC_STEPS = [2, 16, 256], 150
LOSS_STEPS, RUN_STEPS, EVERY = 12, 24, 4

# %%
import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch
from scipy.stats import multivariate_normal

from infoprompt import figures
from infoprompt.config import RunConfig, default_model
from infoprompt.data import Example
from infoprompt.losses import info_nce
from infoprompt.model import load_backbone

torch.set_num_threads(1)  # a shared CPU: more threads stall
torch.manual_seed(SEED)

# %% [markdown]
# ## 1 · InfoNCE on correlated Gaussians
#
# $x \sim N(0, I_d)$, $y = \rho x + \sqrt{1-\rho^2}\,\varepsilon$: each coordinate pair has
# correlation $\rho$, so $I(x; y) = -\tfrac d2 \log(1-\rho^2)$. The optimal critic is the
# log density ratio
#
# $$f^*(x, y) = \log\frac{p(y\mid x)}{p(y)} = -\frac{\|y-\rho x\|^2}{2(1-\rho^2)} + \frac{\|y\|^2}2
#   - \frac d2\log(1-\rho^2).$$


# %%
def sample(n, d=DIM, rho=RHO):
    x = torch.randn(n, d)
    return x, rho * x + math.sqrt(1 - rho**2) * torch.randn(n, d)


def f_star(x, y, rho=RHO):
    """log p(y|x) − log p(y) for x (..., d), y (..., d)."""
    d = x.shape[-1]
    return (
        -((y - rho * x) ** 2).sum(-1) / (2 * (1 - rho**2))
        + (y**2).sum(-1) / 2
        - d / 2 * math.log(1 - rho**2)
    )


true_mi = -DIM / 2 * math.log(1 - RHO**2)
x, y = sample(5)
cov = np.block([[np.eye(DIM), RHO * np.eye(DIM)], [RHO * np.eye(DIM), np.eye(DIM)]])
joint = multivariate_normal(np.zeros(2 * DIM), cov).logpdf(torch.cat([x, y], 1).numpy())
indep = multivariate_normal(np.zeros(DIM), np.eye(DIM))
ratio = joint - indep.logpdf(x.numpy()) - indep.logpdf(y.numpy())
np.testing.assert_allclose(f_star(x, y).numpy(), ratio, rtol=1e-5)  # against scipy's densities
print(f"I(x; y) = {true_mi:.3f} nats; f* matches scipy's log density ratio")


# %% [markdown]
# The bound for $K$ candidates: the positive $y_i$ and $K-1$ independent $y$'s, scored with a
# critic $f$; `info_nce` of `infoprompt/losses.py` gives NCE. With the optimal critic the bound
# rises towards $I$ as $K$ grows but never passes $\log K$.


# %%
def nce_bound(critic, k, n=N_SAMPLES):
    """log K − NCE for n anchors, each with K − 1 fresh negatives."""
    x, y = sample(n)
    _, y_neg = sample(n * (k - 1))
    neg = critic(x[:, None], y_neg.view(n, k - 1, DIM))  # (n, K − 1)
    return math.log(k) - info_nce(critic(x, y), neg).item()


optimal = [nce_bound(f_star, k) for k in K_LIST]
assert all(b <= math.log(k) + 1e-6 for b, k in zip(optimal, K_LIST))
print({k: round(b, 3) for k, b in zip(K_LIST, optimal)})


# %% [markdown]
# A learnt critic, the bilinear score $x^\top W y$ of InfoPrompt's losses (there $P^\top W_1
# \theta$ and $P^\top W_2 z$), trained by Adam to minimise NCE at each $K$. Expanded,
# $f^* = \frac{\rho\, x^\top y}{1-\rho^2} - \frac{\rho^2\|y\|^2}{2(1-\rho^2)} + c(x)$: $c(x)$ is the
# same for the $K$ candidates of one anchor and cancels, but the $\|y\|^2$ term does not, so the
# bilinear critic falls short of $f^*$ at large $K$, where the negatives of large norm matter.
# Adding the one missing term, $x^\top W y + c\|y\|^2$, lets the trained critic reach $f^*$.


# %%
def trained_bound(k, norm_term=False, steps=CRITIC_STEPS):
    """log K − NCE of x^T W y (+ c ||y||^2 if norm_term), W and c trained by Adam."""
    w, c = torch.zeros(DIM, DIM, requires_grad=True), torch.zeros((), requires_grad=True)
    critic = lambda a, b: ((a @ w) * b).sum(-1) + norm_term * c * (b**2).sum(-1)
    opt = torch.optim.Adam([w, c], lr=0.05)
    for _ in range(steps):
        x, y = sample(128)
        _, y_neg = sample(128 * (k - 1))
        loss = info_nce(critic(x, y), critic(x[:, None], y_neg.view(128, k - 1, DIM)))
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        return nce_bound(critic, k)


trained = [trained_bound(k) for k in CRITIC_K]
trained_norm = [trained_bound(k, norm_term=True) for k in CRITIC_K]
fig, ax = plt.subplots(figsize=(5.5, 3.5))
ax.semilogx(K_LIST, [true_mi] * len(K_LIST), "k-", label="true I = −(d/2) log(1−ρ²)")
ax.semilogx(K_LIST, np.log(K_LIST), "k:", label="log K (ceiling)")
ax.semilogx(K_LIST, optimal, "o-", label="log K − NCE, optimal critic f*")
ax.semilogx(CRITIC_K, trained, "s--", label="log K − NCE, trained xᵀWy")
ax.semilogx(CRITIC_K, trained_norm, "^--", label="log K − NCE, trained xᵀWy + c‖y‖²")
ax.set_xlabel("K (candidates)")
ax.set_ylabel("nats")
ax.set_ylim(0, true_mi * 1.3)
ax.legend(fontsize=7)
fig.tight_layout()
print("bilinear:", np.round(trained, 3), " with c‖y‖²:", np.round(trained_norm, 3))

# %% [markdown]
# ## 2 · The head and representation losses on real sentences (packaged MiniLM)
#
# `figures.build` makes the trainer's `PromptModel` (InfoPrompt: prompts generated from the
# prompt-free pass, $p_i = W_{up,i} W_{down,i} P'$) on a few inline sentences, with SST-2's template
# `<P> <A> <P> It was <MASK> . <P>`. $W_1 = W_2 = 0$ at the start, so both losses equal $\log K$.

# %%
POS = [
    "a gorgeous , witty , seductive movie .",
    "one of the most moving films of the year .",
    "the performances are uniformly excellent .",
    "a warm , funny and wise little film .",
    "it is a delight from start to finish .",
    "beautifully shot and superbly acted .",
    "an engrossing and thoughtful drama .",
    "the best comedy i have seen in ages .",
]
NEG = [
    "too long , too loud and never funny .",
    "a dull , lifeless mess of a movie .",
    "the plot makes no sense at all .",
    "badly written and woodenly acted .",
    "i was bored from the first scene .",
    "a tedious and forgettable sequel .",
    "the jokes fall flat every time .",
    "an ugly , pointless waste of time .",
]
train_ex = [Example(s, label=1) for s in POS[:6]] + [Example(s, label=0) for s in NEG[:6]]
dev_ex = [Example(s, label=1) for s in POS[6:]] + [Example(s, label=0) for s in NEG[6:]]
backbone = load_backbone(default_model())
config = RunConfig(task="sst2", data_dir="(inline)", out="(in memory)", shots=0, seed=SEED)
setup = figures.build(config, train_ex, dev_ex, backbone)
batch = figures.collate(setup.train_set, list(range(8)), setup.pad, "cpu")
torch.manual_seed(SEED)
with torch.no_grad():
    out = setup.model(**batch)
K = config.n_negatives
print({k: round(out[k].item(), 4) for k in ("pred", "rep", "head")}, f"log K = {math.log(K):.4f}")
assert np.allclose([out["rep"].item(), out["head"].item()], math.log(K))

# %% [markdown]
# The representation loss by hand: $z = \mu + \sigma\odot\varepsilon$ from the prompted mask state
# $Z$, negatives $z'_k$ from the prompt-free $Z'$, score $P^\top W_2 z$, then
# $\mathrm{logsumexp} - s^+$. With random $W_2$ (so that the check is not trivial), the same noise
# gives the module's value.

# %%
m = setup.model
with torch.no_grad():
    m.rep_mi.W2.normal_(0, 0.05)
    prompts = m.make_prompts(8, batch["pooled"])  # (B, n_p, D)
    z = m.encode(
        batch["input_ids"], batch["attention_mask"], batch["mask_pos"], prompts, batch["prompt_pos"]
    )
    p = prompts.mean(1)  # (B, D)
    torch.manual_seed(1)
    module = m.rep_mi(p, z, batch["z_plain"])
    torch.manual_seed(1)
    mu, sigma = m.rep_mi.f_mu(z), torch.nn.functional.softplus(m.rep_mi.f_sigma(z))
    pos = mu + sigma * torch.randn_like(mu)  # (B, D)
    mu0, sigma0 = (
        m.rep_mi.f_mu(batch["z_plain"]),
        torch.nn.functional.softplus(m.rep_mi.f_sigma(batch["z_plain"])),
    )
    neg = mu0[:, None] + sigma0[:, None] * torch.randn(8, K - 1, z.shape[1])  # (B, K − 1, D)
    s_pos = torch.einsum("bd,de,be->b", p, m.rep_mi.W2, pos)
    s_neg = torch.einsum("bd,de,bke->bk", p, m.rep_mi.W2, neg)
    by_hand = (torch.logsumexp(torch.cat([s_pos[:, None], s_neg], 1), 1) - s_pos).mean()
    m.rep_mi.W2.zero_()
torch.testing.assert_close(by_hand, module)
print(f"NCE_rep by hand {by_hand:.4f} = module {module:.4f}")

# %% [markdown]
# The head loss by hand (eq. 4–5): the score of a *prompt* against the head is
# $l(P, \theta) = P^\top W_1 \theta$. The positive is the example's own $P$ against $\theta_X$ (here the
# head's class rows weighted by the predicted distribution); the $K - 1$ negatives are other prompts
# $P_k$ (embeddings of tokens from the example's text) against the same $\theta_X$. Its gradient in
# $P$ is $-(1 - s_1) W_1 \theta_X$, $s_1$ the positive's softmax weight.

# %%
with torch.no_grad():
    m.head_mi.W1.normal_(0, 0.05)
logits = m.head(z).float()
theta = logits.softmax(-1) @ m.head.weight  # (B, D): θ_X
torch.manual_seed(2)
negatives = m._negatives(batch["input_ids"])  # (B, K − 1, D): the prompts P_k
p_var = p.clone().requires_grad_(True)
module = m.head_mi(p_var, theta.detach(), negatives)
module.backward()
w_theta = theta.detach() @ m.head_mi.W1.detach().T  # (B, D): W1 θ_X
scores = torch.cat([(p * w_theta).sum(-1, keepdim=True), torch.einsum("bkd,bd->bk", negatives, w_theta)], 1)
by_hand = (torch.logsumexp(scores, 1) - scores[:, 0]).mean()
s1 = scores.softmax(1)[:, :1]
torch.testing.assert_close(by_hand, module.detach())
torch.testing.assert_close(p_var.grad, -(1 - s1) * w_theta / len(p), atol=1e-6, rtol=1e-4)
with torch.no_grad():
    m.head_mi.W1.zero_()
print(f"NCE_head by hand {by_hand:.4f} = module {module:.4f}; its gradient in P is −(1 − s₁) W1 θ / B")

# %% [markdown]
# A few training steps (L = L_pred + 0.1 NCE_rep + 0.05 NCE_head): the losses on the 12
# training sentences after each step.

# %%
history = []


def record(step):
    with torch.no_grad():
        b = figures.collate(setup.train_set, list(range(12)), setup.pad, "cpu")
        o = setup.model(**b)
    history.append([o[k].item() for k in ("pred", "rep", "head")])


record(0)
figures.run_steps(setup, LOSS_STEPS, record)
h = np.array(history)
fig, ax = plt.subplots(figsize=(5.5, 3.2))
for col, name in enumerate(("L_pred", "NCE_rep", "NCE_head")):
    ax.plot(h[:, col], "o-", ms=3, label=name)
ax.axhline(math.log(K), c="gray", ls=":", label="log K")
ax.set_xlabel("step")
ax.legend(fontsize=8)
fig.tight_layout()

# %% [markdown]
# ## 3 · InfoPrompt versus WARP on the tiny dataset
#
# The same 12 training and 4 dev sentences; dev accuracy every few steps (4 dev sentences: a
# smoke test, not a benchmark; `python -m infoprompt figures curves` runs the real comparison).

# %%
curves = {}
for method in ("infoprompt", "warp"):
    s = figures.build(figures.method_config(config, method), train_ex, dev_ex, backbone)
    curves[method] = figures.learning_curve(s, RUN_STEPS, EVERY)
fig, ax = plt.subplots(figsize=(5.5, 3.2))
for name, c in curves.items():
    ax.plot(*np.array(c).T, "o-", ms=3, label=name)
ax.set_xlabel("step")
ax.set_ylabel("dev accuracy (4 sentences)")
ax.legend()
fig.tight_layout()
print({k: [round(a, 2) for _, a in c] for k, c in curves.items()})
