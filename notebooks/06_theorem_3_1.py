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
# # 06 · Theorem 3.1 against the trainer: what the guarantee covers, measured
#
# **What this notebook teaches.** The paper's Theorem 3.1 says that, given the loss $L$ of eq. 11
# and the conditions of its appendices C and D, "a gradient-descent type greedy algorithm finds the
# optimal solution". The appendix proves it (Theorem D.1) for *one* softmax regression
# $\ell(Ax)$ in $x$. You will (1) meet the grouped softmax regression — the softmax taken within
# groups of rows — that turns the convex pieces of eq. 11 into the appendix's objects, and check it
# against the one-group objective and against scikit-learn; (2) train a tiny InfoPrompt run and
# write its two convex subproblems as theory instances — $L_{pred}$ in the head $\theta$ and the
# head loss in $W_1$ — and read Theorem D.1's conditions on them; (3) measure the curvature of
# eq. 11 in the prompt generator's parameters, where the theorem does not reach.
#
# **What it assumes.** Notebooks 01–03 (the objective, Lemmas C.15–C.16's explicit constants,
# Algorithm 1) and 04 (the InfoNCE losses as softmax regressions).
#
# **The choices made here** (the paper leaves them open): the head loss is a function of $W_1$ for
# fixed prompts $P$ and $\theta_X$; since every $\theta_X$ lies in the span of the head's class rows
# (an orthonormal basis $V$), the loss depends on $W_1$ only through $u = \mathrm{vec}(W_1 V)$,
# which is the instance's variable. The numbers of the real SST-2-64 runs are in `docs/theory.md`,
# "Theorem 3.1 against the trainer"; this notebook runs the same code on a tiny random model.

# %% tags=["parameters"]
SEED = 0
EPOCHS = 2  # of the tiny run: 8 training sentences, batch 4
LANCZOS_STEPS = 4

# %%
import contextlib
import io
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from transformers import AutoTokenizer, BertConfig, BertModel

from infoprompt import theorem
from infoprompt.backbone import resolve
from infoprompt.config import RunConfig, default_model
from infoprompt.train import train
from theory import GroupedSoftmaxRegression, SoftmaxRegression, grouped, solve

torch.manual_seed(SEED)
rng = np.random.default_rng(SEED)

# %% [markdown]
# ## 1 · The grouped softmax regression
#
# Rows are partitioned into groups $g$; the softmax $f_g$ is taken within each group, and
# $L = \sum_g (e\,L_{exp,g} + L_{cent,g}) + L_{reg}$ (Defs. C.6–C.8 per group; $e$ = `exp_weight`).
# The Hessian in $z = Ax$ is block-diagonal, each block a diagonal plus rank ≤ 2, so
# $\nabla^2 L = A^\top B A$ costs one weighted Gram. With one group it *is* `SoftmaxRegression`:

# %%
A, b = rng.standard_normal((30, 4)), rng.dirichlet(np.ones(30))
x = rng.standard_normal(4)
one = GroupedSoftmaxRegression(A, b, 0.5, np.zeros(30, dtype=int))
single = SoftmaxRegression(A, b, 0.5)
print("one group vs single:", abs(one.loss(x) - single.loss(x)),
      np.abs(one.hessian(x) - single.hessian(x)).max())  # fmt: skip
assert np.allclose(one.hessian(x), single.hessian(x), rtol=1e-12, atol=1e-12)

# %% [markdown]
# **Multinomial logistic regression** is the grouped case with $e = 0$: one group of $C$ rows per
# example, rows $e_k \otimes X_i$, $b$ the one-hot labels; a ridge $\tfrac12\lambda\|W\|^2$ is $d$
# more rows $\sqrt\lambda\, e_j$ in singleton groups with $b = 0$ (a singleton's softmax is 1: it
# adds only $\tfrac12 w^2 z^2$). The default solver against scikit-learn's `LogisticRegression`
# with the same L2 (its objective is $\tfrac12\|W\|^2 + C_{sk}\sum_i \mathrm{CE}_i$, so
# $C_{sk} = 1/\lambda$):

# %%
N, p, C, lam = 90, 4, 3, 0.5
y = rng.integers(0, C, N)
X = rng.standard_normal((C, p))[y] * 1.5 + rng.standard_normal((N, p))
prob = grouped.multinomial_logistic(X, y, C, ridge=lam)
res = solve(prob, tol=1e-12)
ref = LogisticRegression(C=1 / lam, fit_intercept=False, tol=1e-14, max_iter=100_000,
                         solver="newton-cholesky").fit(X, y)  # fmt: skip
err = np.max(np.abs(res.x.reshape(C, p) - ref.coef_)) / np.max(np.abs(ref.coef_))
print(prob, f"{res.nit} iterations; relative difference to scikit-learn's coefficients {err:.1e}")
assert err <= 1e-6

# %% [markdown]
# ## 2 · A tiny InfoPrompt run, and its convex subproblems
#
# A random two-layer BERT (hidden 32) with the packaged MiniLM tokenizer, eight training
# sentences, two epochs: nothing is downloaded and nothing learns much, but every piece of the
# bridge runs as it does on the real runs.

# %%
work = Path(tempfile.mkdtemp())
tokenizer = AutoTokenizer.from_pretrained(resolve(default_model()))  # the packaged folder
config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2,
                    num_attention_heads=2, intermediate_size=64)  # fmt: skip
BertModel(config).save_pretrained(work / "tiny-bert")
tokenizer.save_pretrained(work / "tiny-bert")
pos = ["a gem of a film", "warm and funny", "a great joy to watch", "bright , moving work"]
neg = ["a dull mess", "boring and long", "the worst film this year", "flat , lifeless acting"]
(work / "SST-2").mkdir()
for name, n in (("train.tsv", 24), ("dev.tsv", 8)):
    rows = [f"{s}\t1" for s in pos] + [f"{s}\t0" for s in neg]
    (work / "SST-2" / name).write_text("sentence\tlabel\n" + "\n".join(rows * (n // 8)) + "\n")
run = RunConfig(task="sst2", data_dir=str(work / "SST-2"), out=str(work / "run"),
                model=str(work / "tiny-bert"), method="infoprompt", shots=8, epochs=EPOCHS,
                batch_size=4, max_len=32, n_negatives=8, seed=13)  # fmt: skip
with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
    warnings.simplefilter("ignore")
    train(run, progress=False)

# %% [markdown]
# `theorem.run` is what `python -m infoprompt theory RUN_DIR` calls. It loads the final
# checkpoint, recomputes the trained representations, and builds, for (a) $L_{pred}$ in the head
# and (b) the head loss in $W_1$, three instances each: **trained** (the objective as training
# has it: no regulariser), **ridge** (plus $\tfrac12\lambda N\|x\|^2$, λ = the run's weight decay)
# and **theorem** (rows $[A; I]$ with $w^2 = 101\,M$ on every row, the smallest regulariser under
# which Lemma C.15's sandwich holds). For each: sizes, $R$, Theorem D.1's conditions, the optimum
# (default solver, checked by exact Newton) and the trained point's gap.

# %%
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    report = theorem.run(run.out, steps=LANCZOS_STEPS, seed=SEED)
print(theorem.format_report(report))

# %% [markdown]
# **Reading the tables.** The *trained* instances have $w = 0$: Lemma C.15 fails (`min w² = 0`),
# and when the trained head separates the training examples the loss has no minimiser at all —
# $L(t\,x_{tr}) \to 0$ as $t \to \infty$, and a solver stops only because the gradient falls below
# its tolerance while $\|x\|$ grows. The *theorem* instances meet the regulariser condition by
# construction, and their optimum is pulled towards 0: the trained point is far from it next to its
# norm (on the real SST-2-64 runs, 490–720 times ‖x*‖). So the theorem guarantees the optimum of a
# problem that training does not solve; on the problem training does solve, its conditions fail.

# %%
for key in ("pred/trained", "pred/theorem"):
    c = report["instances"][key]["conditions"]["regulariser_dominates"]
    print(f"{key:14s} 101 M = {c['lhs']:.3g}, min w² = {c['rhs']:.3g}, holds: {c['holds']}")
for key in ("pred/theorem", "head/theorem"):
    g = report["instances"][key]["gap"]
    print(f"{key:14s} ||x_tr − x*|| / ||x*|| = {g['relative_distance']:.3g}")
assert not report["instances"]["pred/trained"]["conditions"]["regulariser_dominates"]["holds"]
assert report["instances"]["pred/theorem"]["conditions"]["regulariser_dominates"]["holds"]

# %% [markdown]
# ## 3 · Where the theorem stops: eq. 11 in the prompt generator
#
# Prompt tuning trains the generator ($W_{down}, W_{up}$) through the frozen encoder. Lanczos on
# Hessian-vector products (double backward, float64) of eq. 11 averaged over the training draw
# gives Ritz values, which lie inside the Hessian's spectrum: a negative one *proves* a direction
# of negative curvature, so eq. 11 is not convex there and no part of appendix C applies. On this
# random tiny model the answer can go either way; on the real SST-2-64 runs it is in
# `docs/theory.md`.

# %%
h = report["hessian"]
print(f"{h['params']} generator parameters, {h['steps']} Lanczos steps: "
      f"λ_min ≤ {h['lambda_min']:.3g}, λ_max ≥ {h['lambda_max']:.3g}, "
      f"negative curvature found: {h['negative_curvature']}")  # fmt: skip
assert h["lambda_min"] <= h["lambda_max"]

# %% [markdown]
# **What Theorem 3.1 covers, in this trainer.** The convex subproblems of eq. 11 with everything
# else fixed: the head $\theta$ for frozen representations, and $W_1$ for fixed prompts — and only
# with a regulariser the trainer does not have, of a size that moves the optimum far from what
# training finds. **What it does not cover:** the prompt generator, which is what prompt tuning
# trains; the joint problem; AdamW's decoupled weight decay, which is no term of the loss.
