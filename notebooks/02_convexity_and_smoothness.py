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
# **What this notebook teaches.** Why the regulariser $L_{reg}$ is what makes the objective of
# appendix C convex, how much of it is needed, and how smooth the Hessian is. The paper states both
# constants only as $\exp(O(R^2 + \log n))$. Because $f = \mathrm{softmax}(Ax)$ always lies on the
# simplex, much smaller constants hold that depend on $b$ alone (derivation: `theory/bounds.py`):
#
# $$\|B_{exp} + B_{cent}\| \le M(b) = \tfrac14 + \tfrac{8}{27} + \tfrac12 + \tfrac52\|b\|_\infty + \tfrac12|\langle b,1\rangle|,$$
# $$\nabla^2 L \succeq l I,\quad l = (\min w^2 - M)\,\sigma_{\min}(A)^2 \quad\text{(Lemma C.15)}, \qquad
#   \|\nabla^2L(x) - \nabla^2L(y)\| \le L_H\|x-y\|,\quad L_H = \tfrac12\|A\|^3 (31 + 3\|b\|_2 + 10\|b\|_\infty + 3|\langle b, 1\rangle|) \quad\text{(Lemma C.16)}.$$
#
# You will see $B_{exp}$'s negative eigenvalue, the bound $M(b)$ against measured norms and against
# the paper's order of magnitude, the landscape of $L$ without and with the regulariser, and both
# lemmas checked on samples.
#
# **What it assumes.** Notebook 01 (the objects $f$, $J$, $B_{exp}$, $B_{cent}$ and the Hessian
# $A^\top B A$); positive (semi)definiteness and eigenvalues.

# %% tags=["parameters"]
N, D, SAMPLES, SEED = 6, 2, 150, 0

# %%
import matplotlib.pyplot as plt
import numpy as np
from threadpoolctl import threadpool_limits

from theory import SoftmaxRegression, appendix, bounds

threadpool_limits(1)  # one BLAS thread: on a small shared machine more threads stall (10× measured)
rng = np.random.default_rng(SEED)

# %% [markdown]
# ## $B_{exp}$ is indefinite: $L_{exp}$ alone is not convex
# At $z = (1, 0, 0)$ with $b = e_2$, build $B_{exp}$ (DLS23's matrix, notebook 01) in a few lines and
# look at its eigenvalues; the library's `appendix.B_exp` must agree.

# %%
z0, b0 = np.array([1.0, 0.0, 0.0]), np.array([0.0, 1.0, 0.0])
f0 = np.exp(z0) / np.exp(z0).sum()
q0 = (2 * f0 - b0) * f0
B0 = (3 * f0 - 2 * b0) @ f0 * np.outer(f0, f0) - (f0 - b0) @ f0 * np.diag(f0) + np.diag(q0) - np.outer(q0, f0) - np.outer(f0, q0)
assert np.allclose(B0, appendix.B_exp(f0, b0))
eig0 = np.linalg.eigvalsh(B0)
assert eig0[0] < -0.1 and eig0[-1] > 0.1  # one negative and one positive eigenvalue: indefinite
print("eigenvalues of B_exp at z = (1, 0, 0), b = e2:", np.round(eig0, 4))

# %% [markdown]
# ## The bound $M(b)$ against the measured $\max_x \|B_{exp} + B_{cent}\|$ and the paper's order
# For each $R$: $A = R A_0$ with $\|A_0\| = 1$ (so $\|A\| = R$), and `SAMPLES` points $x$ drawn in the
# unit ball ($x = g/\max(1, \|g\|)$, $g$ Gaussian of scale $R$, so many lie on the sphere). The measured
# maximum is a lower estimate of $\sup_x \|B\|$; $M(b)$ must lie above it for every $R$. The paper's
# $\exp(O(R^2 + \log n))$, read with unit constants as $n e^{R^2}$, grows by 28 decades over this
# range, so it gets its own panel.

# %%
b = rng.dirichlet(np.ones(N))
A0 = rng.standard_normal((N, D))
A0 /= np.linalg.norm(A0, 2)
Rs = np.array([0.5, 1, 2, 4, 8])
measured = []
for R in Rs:
    g = rng.standard_normal((SAMPLES, D)) * R
    xs = g / np.maximum(1, np.linalg.norm(g, axis=1))[:, None]
    fs = [appendix.softmax(R * A0 @ x) for x in xs]
    measured.append(max(np.linalg.norm(appendix.B_exp(f, b) + appendix.B_cent(f, b), 2) for f in fs))
measured = np.array(measured)
M = bounds.B_norm_bound(b)
assert measured.max() <= M
paper = np.array([bounds.paper_constant(R, N) for R in Rs])

fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.4))
ax1.plot(Rs, measured, "o-", label=r"measured $\max_x \|B_{exp} + B_{cent}\|$")
ax1.axhline(M, ls="--", c="C1", label=r"$M(b)$ (this project)")
ax1.set(xlabel=r"$R = \|A\|$", ylabel=r"spectral norm", ylim=(0, 1.15 * M),
        title=r"$M(b)$ holds for every $R$ (linear axis)")
ax1.legend(fontsize=8, loc="center right")
ax2.semilogy(Rs, paper, "s:", c="C2", label=r"$n\,e^{R^2}$ (paper's order)")
ax2.semilogy(Rs, [M] * len(Rs), "--", c="C1", label=r"$M(b)$")
ax2.semilogy(Rs, measured, "o-", c="C0", label="measured")
ax2.set(xlabel=r"$R = \|A\|$", ylabel="constant (log scale)", title="the paper's constant, for scale")
ax2.legend(fontsize=8)
fig.tight_layout()
plt.show()
print(f"M(b) = {M:.3f}; measured max = {measured.max():.3f}; paper's n e^(R²) at R = 8: {paper[-1]:.1e}")

# %% [markdown]
# **Reading.** The measured norms (left) stay between 0.2 and 0.6 for every $R$ while $M(b) \approx 2.6$
# sits above them: the bound holds and is loose by a factor of about five, but it does not grow with
# $R$ or $n$. The paper's constant (right) grows like $e^{R^2}$ and is $10^{28}$ times larger at
# $R = 8$; a condition such as $\min w^2 \ge 100 M$ in Theorem D.1 is therefore a modest requirement
# with $M(b)$ and an astronomically strong one with the paper's constant.

# %% [markdown]
# ## The landscape without and with the regulariser
# Lemma C.15 needs $\min w^2 > M(b)$ for its certificate $l > 0$. The three panels draw $L$ over
# $x \in [-4, 4]^2$ for one instance ($n = 6$, $d = 2$, $b = e_3$, a one-hot target), shade where the
# Hessian has a negative eigenvalue, and run Newton's method $x \leftarrow x - \nabla^2L^{-1}\nabla L$
# (full steps, no line search) from the same start:
#
# 1. $L_{exp} + L_{cent}$ alone ($w = 0$);
# 2. with $L_{reg}$ at $\min w^2 = 0.001\,M(b)$, far below the lemma's threshold;
# 3. with $L_{reg}$ at $\min w^2 = 1.2\,M(b)$, above it.

# %%
rng_l = np.random.default_rng(3)  # an instance where the non-convex region is large
A_l = rng_l.standard_normal((N, 2))
b_l = np.zeros(N)
b_l[rng_l.integers(N)] = 1.0
M_l = bounds.B_norm_bound(b_l)
grid = np.linspace(-4, 4, 61)
X1, X2 = np.meshgrid(grid, grid)
x_start = np.array([3.0, 3.0])


def newton_path(prob, x, steps=6):
    """Full Newton steps x ← x − (∇²L)⁻¹ ∇L, no line search."""
    path = [x]
    for _ in range(steps):
        x = x - np.linalg.solve(prob.hessian(x), prob.gradient(x))
        path.append(x)
    return np.array(path)


def where_it_went(path):
    moves = np.linalg.norm(np.diff(path, axis=0), axis=1)
    if moves[-1] < 1e-8:
        k = int(np.argmax(moves < 1e-8))  # the steps before the first that no longer moves x
        return f"converged to ({path[-1][0]:.2f}, {path[-1][1]:.2f}) in {k} steps"
    if np.linalg.norm(path[-1]) > 1e6:
        return f"step 1 lands at ‖x‖ = {np.linalg.norm(path[1]):.0e};\nthen ‖x‖ = {np.linalg.norm(path[-1]):.0e}"
    return "full steps cycle:\n" + " → ".join(f"({p[0]:.0f}, {p[1]:.0f})" for p in path[-3:])


cases = [(0.0, r"$L_{exp} + L_{cent}$ alone ($w = 0$)"),
         (1e-3, r"$+\,L_{reg}$, $\min w^2 = 0.001\,M(b)$"),
         (1.2, r"$+\,L_{reg}$, $\min w^2 = 1.2\,M(b)$")]
pts = np.stack([X1.ravel(), X2.ravel()], 1)
fig, axes = plt.subplots(1, 3, figsize=(12, 3.9))
nonconvex, paths, certificates = [], [], []
for ax, (scale, title) in zip(axes, cases):
    prob = SoftmaxRegression(A_l, b_l, np.full(N, np.sqrt(scale * M_l)))
    loss = np.array([prob.loss(p) for p in pts]).reshape(X1.shape)
    lam = np.array([np.linalg.eigvalsh(prob.hessian(p))[0] for p in pts]).reshape(X1.shape)
    nonconvex.append((lam < 0).mean())
    certificates.append(bounds.strong_convexity(A_l, b_l, prob.w))
    cs = ax.contour(X1, X2, loss, levels=15, cmap="viridis", linewidths=0.8)
    ax.clabel(cs, fontsize=6, fmt="%.3g")
    ax.contourf(X1, X2, lam < 0, levels=[0.5, 1.5], colors=["tab:red"], alpha=0.2)
    path = newton_path(prob, x_start)
    paths.append(path)
    ax.plot(path[:4, 0], path[:4, 1], "k.-", lw=1.2, ms=7, label="Newton iterates")  # clipped at the frame
    ax.text(0.03, 0.97, where_it_went(path), transform=ax.transAxes, va="top", fontsize=7,
            bbox=dict(fc="white", ec="none", alpha=0.85))
    ax.set(xlabel=r"$x_1$", ylabel=r"$x_2$", title=title, xlim=(-4, 4), ylim=(-4, 4))
    ax.title.set_fontsize(9)
axes[0].plot([], [], "s", c="tab:red", alpha=0.3, label=r"$\lambda_{\min}(\nabla^2 L) < 0$")
axes[0].legend(fontsize=7, loc="lower left")
fig.suptitle("contours of $L$; shaded: not convex there; black: full Newton steps from $(3, 3)$", fontsize=10)
fig.tight_layout()
plt.show()

assert nonconvex[0] > 0.5 and np.linalg.norm(paths[0][-1]) > 1e6  # w = 0: mostly non-convex; Newton runs off
assert 0 < nonconvex[1] < 0.05 and np.linalg.norm(paths[1][-1]) > 10  # a sliver; full steps do not converge
assert certificates[1] < 0 < certificates[2]  # Lemma C.15 certifies the third case only
assert nonconvex[2] == 0 and np.linalg.norm(paths[2][-1] - paths[2][-2]) < 1e-10  # convex; Newton converged
print("share of the box where ∇²L has a negative eigenvalue:", np.round(nonconvex, 4))
print("Lemma C.15's l for the three cases:", np.round(certificates, 3))

# %% [markdown]
# **Reading.** Without the regulariser (left) the Hessian has a negative eigenvalue over most of the
# box (shaded), and $L$ has no minimiser at all: with a one-hot $b$, $L_{cent} = -\log f_3$ keeps
# decreasing as $f_3 \to 1$ at infinity, and the first Newton step from $(3, 3)$ lands $10^4$ away.
# A tiny regulariser (middle, $\min w^2 = 0.001\,M$) creates a minimiser and shrinks the non-convex
# region to a sliver (about 1 % of the box), although Lemma C.15's certificate $l$ is negative: the
# lemma's condition is sufficient, not necessary. Yet full Newton steps still fail there — they
# overshoot into the flat, almost linear parts of $L$ and cycle between two far points — so convexity
# alone is not what Algorithm 1 needs: a line search, or a regulariser that makes $L$ close to a
# quadratic. Above the threshold (right) the Hessian is positive definite everywhere, as the lemma
# guarantees, the contours are nearly the ellipses of the quadratic $L_{reg}$, and Newton converges in
# two steps.

# %% [markdown]
# ## Lemma C.15: $\lambda_{\min}(\nabla^2 L) \ge l$ whenever $\min w^2 > M$
# At three regularisation levels, compute $l$ in one line and the smallest eigenvalue of the Hessian
# over `SAMPLES` random points.

# %%
A = rng.standard_normal((N, D))
for scale in [1.01, 2, 10]:
    w = np.full(N, np.sqrt(scale * M))
    prob = SoftmaxRegression(A, b, w)
    l = (np.min(w**2) - M) * np.linalg.svd(A, compute_uv=False)[-1] ** 2
    assert np.isclose(l, bounds.strong_convexity(A, b, w))
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
L_B = 31 + 3 * np.linalg.norm(b) + 10 * np.abs(b).max() + 3 * abs(b.sum())
L_H = 0.5 * np.linalg.norm(A, 2) ** 3 * L_B
assert np.isclose(L_H, bounds.hessian_lipschitz(A, b))
assert max(ratios) <= L_H
print(f"max measured ‖ΔH‖/‖Δx‖ = {max(ratios):.3g};  L_H = {L_H:.3g};  ratio = {max(ratios) / L_H:.4f}")

# %% [markdown]
# ## Which conditions of Theorem D.1 hold?
# With $A$ scaled down and $\min w^2 = 150\,M$, the regulariser dominates; `theorem_conditions`
# prints each condition with its two sides.

# %%
strong = SoftmaxRegression(A / 10, b, np.full(N, np.sqrt(150 * M)))
conditions = bounds.theorem_conditions(strong, R=1.0)
for c in conditions.values():
    print(f"{c.name:24s} {c.statement:45s} {c.lhs:10.3g} vs {c.rhs:10.3g}  {'holds' if c.holds else 'FAILS'}")
assert all(c.holds for c in conditions.values())

# %% [markdown]
# ## Summary
#
# - $B_{exp}$ has negative eigenvalues, so $L_{exp}$ alone is not convex, and $L_{exp} + L_{cent}$
#   is not convex either over most of the landscape drawn above; Newton's method diverges there.
# - $M(b)$, which depends on $b$ only, bounded every measured $\|B_{exp} + B_{cent}\|$ by a factor of
#   about five; the paper's $\exp(O(R^2 + \log n))$ is larger by up to 28 decades.
# - With $\min w^2 > M(b)$ Lemma C.15's certificate $l$ held at every sample, and the landscape is
#   convex with a Newton method that converges in a few steps; far smaller $w$ already helps, but
#   without a guarantee. $L_H$ bounded every measured Hessian-Lipschitz ratio (loosely).
#
# ## Exercises
#
# 1. In the Lemma C.15 cell, try `scale = 0.5`: the certificate $l$ turns negative. Is the Hessian
#    still positive definite at the sampled points? What does that say about the lemma's condition?
# 2. In the landscape cell, raise the middle panel's $\min w^2$ from $0.001\,M$ until the shaded
#    region disappears. How far below $M(b)$ is that?
# 3. Replace $b = e_3$ by $b = (1/n)\mathbf 1$ in the landscape: does $L_{exp} + L_{cent}$ still have
#    a non-convex region, and does it have a minimiser?
