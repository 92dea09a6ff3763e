# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 02 · Convexity and smoothness: Lemmas C.15 and C.16 with explicit constants
#
# The paper bounds the Hessian's curvature and its Lipschitz constant by $\exp(O(R^2 + \log n))$.
# Because $f = \mathrm{softmax}(Ax)$ always lies on the simplex, much smaller constants hold that
# depend on $b$ alone (derivation: `theory/bounds.py`):
#
# $$\|B_{exp} + B_{cent}\| \le M(b) = \tfrac14 + \tfrac{8}{27} + \tfrac12 + \tfrac52\|b\|_\infty + \tfrac12|\langle b,1\rangle|,$$
# $$\nabla^2 L \succeq l I,\quad l = (\min w^2 - M)\,\sigma_{\min}(A)^2, \qquad
#   \|\nabla^2L(x) - \nabla^2L(y)\| \le \tfrac12\|A\|^3 (31 + 3\|b\|_2 + 10\|b\|_\infty + 3|\langle b, 1\rangle|)\,\|x-y\|.$$

# %% tags=["parameters"]
N, D, SAMPLES, SEED = 6, 2, 150, 0

# %%
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from theory import SoftmaxRegression, appendix, bounds

rng = np.random.default_rng(SEED)

# %% [markdown]
# ## $B_{exp}$ is indefinite: $L_{exp}$ alone is not convex

# %%
z, b1 = np.array([1.0, 0.0, 0.0]), np.array([0.0, 1.0, 0.0])
print("eigenvalues of B_exp at z = (1,0,0), b = e2:", np.round(np.linalg.eigvalsh(appendix.B_exp(appendix.softmax(z), b1)), 4))

# %% [markdown]
# ## The bound $M(b)$ against the measured $\max_x \|B_{exp} + B_{cent}\|$, as $R$ grows

# %%
b = rng.dirichlet(np.ones(N))
A0 = rng.standard_normal((N, D))
A0 /= np.linalg.norm(A0, 2)
Rs = [0.5, 1, 2, 4, 8]
measured = []
for R in Rs:
    xs = rng.standard_normal((SAMPLES, D)) * R
    measured.append(max(np.linalg.norm(appendix.B_exp(f, b) + appendix.B_cent(f, b), 2)
                        for f in (appendix.softmax(R * A0 @ x / max(1, np.linalg.norm(x))) for x in xs)))
M = bounds.B_norm_bound(b)
assert max(measured) <= M
fig, ax = plt.subplots(figsize=(5, 3))
ax.semilogy(Rs, measured, "o-", label="measured max ‖B‖")
ax.semilogy(Rs, [M] * len(Rs), "--", label="M(b), this project")
ax.semilogy(Rs, [bounds.paper_constant(R, N) for R in Rs], ":", label="n e^{R²} (paper's order)")
ax.set_xlabel("R = ‖A‖"); ax.legend(); fig.tight_layout()
print(f"M(b) = {M:.3f}; measured max = {max(measured):.3f}")

# %% [markdown]
# ## Lemma C.15: $\lambda_{\min}(\nabla^2 L) \ge l$ whenever $\min w^2 > M$

# %%
A = rng.standard_normal((N, D))
for scale in [1.01, 2, 10]:
    w = np.full(N, np.sqrt(scale * M))
    prob = SoftmaxRegression(A, b, w)
    l = bounds.strong_convexity(A, b, w)
    lam = min(np.linalg.eigvalsh(prob.hessian(x))[0] for x in rng.standard_normal((SAMPLES, D)) * 3)
    assert lam >= l * (1 - 1e-9)
    print(f"min w² = {scale:5.2f} M:  l = {l:8.3f}  ≤  measured min λ = {lam:8.3f}  (l / λ = {l / lam:.2f})")

# %% [markdown]
# ## Lemma C.16: measured Hessian Lipschitz ratio against $L_H$

# %%
prob = SoftmaxRegression(A, b, rng.random(N))
ratios = []
for _ in range(SAMPLES):
    x = rng.standard_normal(D) * 2
    y = x + rng.standard_normal(D) * 10 ** rng.uniform(-3, 0)
    ratios.append(np.linalg.norm(prob.hessian(x) - prob.hessian(y), 2) / np.linalg.norm(x - y))
L_H = bounds.hessian_lipschitz(A, b)
assert max(ratios) <= L_H
print(f"max measured ‖ΔH‖/‖Δx‖ = {max(ratios):.3g};  L_H = {L_H:.3g};  ratio = {max(ratios) / L_H:.4f}")

# %% [markdown]
# ## Which conditions of Theorem D.1 hold?

# %%
strong = SoftmaxRegression(A / 10, b, np.full(N, np.sqrt(150 * M)))
for c in bounds.theorem_conditions(strong, R=1.0).values():
    print(f"{c.name:24s} {c.statement:45s} {c.lhs:10.3g} vs {c.rhs:10.3g}  {'holds' if c.holds else 'FAILS'}")
