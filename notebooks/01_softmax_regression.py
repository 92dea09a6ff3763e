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
# # 01 · Softmax regression, line by line (appendix C)
#
# **What this notebook teaches.** The theory of InfoPrompt (arXiv 2306.04933, appendix C) studies one
# objective,
#
# $$L(x) = \underbrace{\tfrac12\|f(x) - b\|^2}_{L_{exp}} \; \underbrace{-\,\langle b, \log f(x)\rangle}_{L_{cent}}
#   + \underbrace{\tfrac12\|\mathrm{diag}(w) A x\|^2}_{L_{reg}}, \qquad f(x) = \mathrm{softmax}(Ax),$$
#
# and its first and second derivatives. You will compute each object of the appendix in a few lines
# of numpy, in the order and with the numbers the paper gives them (Definitions C.1–C.8, Lemmas
# C.9–C.14), then check it twice: against the library function `theory.appendix.*` and against an
# *independent* reference (torch autograd, central finite differences, sympy). Objects the paper does
# not contain — $c = f - b$, $\nabla L_{exp}$ and its Hessian matrix $B_{exp}$ — come from Deng, Li
# and Song 2023 ("DLS23", arXiv 2304.10411), and are labelled so. The table from each number to the
# function that computes it is in `docs/paper-notes.md` ("The paper's numbering").
#
# **What it assumes.** The chain rule for vector functions, the softmax, numpy. Shapes: $A$ is
# $n\times d$, $x \in \mathbb{R}^d$, $b, w \in \mathbb{R}^n$, $z = Ax$.

# %% tags=["parameters"]
N, D, SEED = 40, 3, 0  # small by default so that the notebook runs in CI in seconds

# %%
import time

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from theory import SoftmaxRegression, appendix, autodiff, symbolic

threadpool_limits(1)  # one BLAS thread: on a small shared machine more threads stall (10× measured)
torch.set_num_threads(1)
rng = np.random.default_rng(SEED)
A = rng.standard_normal((N, D))
b = rng.dirichlet(np.ones(N))
w = rng.random(N)
x = rng.standard_normal(D)


def central_difference(fun, x, h=1e-6):
    """d fun / dx by central differences, one column per coordinate: an independent reference."""
    cols = [(fun(x + h * e) - fun(x - h * e)) / (2 * h) for e in np.eye(len(x))]
    return np.stack(cols, axis=-1)


# %% [markdown]
# ## Definitions C.1–C.4: $u$, $v$, $\alpha$, $f$
# Def. C.1: $u(x) = \exp(Ax)$; Def. C.2 names the same vector $v(x) = \exp(Ax)$; Def. C.3:
# $\alpha(x) = \langle u(x), \mathbf 1_n\rangle$; Def. C.4: $f(x) = \alpha(x)^{-1} u(x)$, the
# softmax of $z = Ax$. In floating point $u$ overflows for $z > 709$, so the library computes $f$
# from $z - \max z$; the result is the same, and finite for any $z$.

# %%
z = A @ x
u = np.exp(z)
alpha = u.sum()
f = u / alpha

assert np.allclose(f, appendix.f(A, x), rtol=1e-14)  # the library (shifted by max z)
assert np.allclose(f, torch.softmax(torch.tensor(z), 0).numpy(), rtol=1e-14)  # torch
assert np.isclose(f.sum(), 1) and (f > 0).all()  # f lies on the simplex
big = np.array([1e4, 0.0, -1e4])
with np.errstate(over="ignore"):
    overflows = np.isinf(np.exp(big)).any()
assert overflows and np.allclose(appendix.softmax(big), [1, 0, 0])
print("naive exp overflows at z = 1e4:", overflows, "; the shifted softmax:", appendix.softmax(big))

# %% [markdown]
# ## Definitions C.6–C.8: the three losses
# $L_{exp} = \tfrac12\|f - b\|^2$, $L_{cent} = -\langle b, \log f\rangle$ with
# $\log f = z - \mathrm{logsumexp}(z)$ (never $\log$ of a softmax that may have underflowed to 0),
# $L_{reg} = \tfrac12 \sum_i w_i^2 z_i^2$.

# %%
log_f = z - (z.max() + np.log(np.exp(z - z.max()).sum()))
L_exp = 0.5 * np.sum((f - b) ** 2)
L_cent = -b @ log_f
L_reg = 0.5 * np.sum((w * z) ** 2)

mine = {"exp": L_exp, "cent": L_cent, "reg": L_reg}
library = {"exp": appendix.L_exp(A, x, b), "cent": appendix.L_cent(A, x, b), "reg": appendix.L_reg(A, x, w)}
for part in mine:
    assert np.isclose(mine[part], library[part], rtol=1e-13)
    assert np.isclose(mine[part], autodiff.loss(A, b, w, x, part=part), rtol=1e-13)  # torch
print({k: round(float(v), 6) for k, v in mine.items()})

# %% [markdown]
# ## Lemma C.9: first derivatives of $u$, $\alpha$, $f$
# $\dfrac{du}{dx_i} = u\circ A_{*,i}$, $\dfrac{d\alpha}{dx_i} = \langle u, A_{*,i}\rangle$ and, by the
# quotient rule, $\dfrac{df}{dx_i} = f\circ A_{*,i} - \langle f, A_{*,i}\rangle f$. All $d$ columns at
# once: $\dfrac{df}{dx} = J A$ with $J = \mathrm{diag} f - ff^\top$, the Jacobian of the softmax.

# %%
du = u[:, None] * A  # (n, d)
dalpha = A.T @ u  # (d,)
J = np.diag(f) - np.outer(f, f)  # (n, n)
df = J @ A  # (n, d)

assert np.allclose(du, appendix.du_dx(A, x)) and np.allclose(dalpha, appendix.dalpha_dx(A, x))
assert np.allclose(df, appendix.df_dx(A, x), rtol=1e-12, atol=1e-15)
assert np.allclose(df, autodiff.softmax_jacobian(A, x), rtol=1e-12, atol=1e-14)  # torch
assert np.allclose(du, central_difference(lambda y: np.exp(A @ y), x), rtol=1e-7)  # differences
eig_J = np.linalg.eigvalsh(J)
assert eig_J[0] > -1e-15 and eig_J[-1] <= 0.5
print(f"eigenvalues of J lie in [0, 1/2]: min {eig_J[0]:.1e}, max {eig_J[-1]:.3f}")

# %% [markdown]
# ## Lemma C.10: $\log f$ and $\nabla L_{cent}$
# Part 1: $\dfrac{d\log f}{dx_i} = A_{*,i} - \langle f, A_{*,i}\rangle \mathbf 1_n$ (each $\log f_j$ is
# $z_j$ minus the same logsumexp). Part 2: contracted with $b$,
# $\langle \tfrac{d\log f}{dx_i}, b\rangle = \langle A_{*,i}, b\rangle - s\,\langle f, A_{*,i}\rangle$,
# $s = \langle b, \mathbf 1\rangle$. Part 3: $\nabla L_{cent} = -$ part 2 $= A^\top(s f - b)$.

# %%
s = b.sum()
dlogf = A - (A.T @ f)[None, :]  # part 1, (n, d)
part2 = dlogf.T @ b  # (d,)
grad_cent = A.T @ (s * f - b)  # part 3

assert np.allclose(dlogf, appendix.dlogf_dx(A, x))
assert np.allclose(dlogf, central_difference(lambda y: appendix.log_softmax(A @ y), x), atol=1e-8)
assert np.allclose(grad_cent, -part2)
assert np.allclose(grad_cent, appendix.grad_L_cent(A, x, b))
assert np.allclose(grad_cent, autodiff.gradient(A, b, w, x, part="cent"), rtol=1e-10, atol=1e-13)
print("∇L_cent =", np.round(grad_cent, 5))

# %% [markdown]
# ## The other two gradients (not lemmas of the paper)
# $\nabla L_{exp} = A^\top J (f - b)$ is DLS23's (chain rule through $df/dx = JA$);
# $\nabla L_{reg} = A^\top (w^2\circ z)$ is the derivative of a quadratic.

# %%
grad_exp = A.T @ (J @ (f - b))
grad_reg = A.T @ (w**2 * z)

for part, mine_g, lib in [("exp", grad_exp, appendix.grad_L_exp(A, x, b)), ("reg", grad_reg, appendix.grad_L_reg(A, x, w))]:
    ref = autodiff.gradient(A, b, w, x, part=part)
    assert np.allclose(mine_g, lib) and np.allclose(mine_g, ref, rtol=1e-10, atol=1e-13), part
    print(f"∇L_{part}: max |mine − autograd| = {np.max(np.abs(mine_g - ref)):.1e}")

# %% [markdown]
# ## Lemma C.11: the Hessian of $\log f$
# Every $\log f_j = z_j - \mathrm{logsumexp}(z)$ has the same Hessian, $-A^\top J A$: the linear
# term has none, and the Hessian of logsumexp in $z$ is $J$. Reference: `torch.func.hessian` of
# $x \mapsto \log\mathrm{softmax}(Ax)_j$ for two rows $j$.

# %%
hess_logf = -A.T @ J @ A  # (d, d)
A_t, x_t = torch.tensor(A), torch.tensor(x)
for j in (0, N - 1):
    ref = torch.func.hessian(lambda y, j=j: torch.log_softmax(A_t @ y, 0)[j])(x_t).numpy()
    assert np.allclose(hess_logf, ref, rtol=1e-10, atol=1e-13)
assert np.allclose(hess_logf, -A.T @ appendix.softmax_jacobian(f) @ A)
print("∇² log f_j = −Aᵀ J A for every j")

# %% [markdown]
# ## Definition C.13 and Lemma C.14: $\nabla^2 L_{cent} = A^\top B_{cent} A$, $B_{cent} = s\,J$
# Since $L_{cent} = -\sum_j b_j \log f_j$, Lemma C.11 gives the Hessian at once.

# %%
B_cent = s * J
H_cent = A.T @ B_cent @ A
assert np.allclose(B_cent, appendix.B_cent(f, b))
assert np.allclose(H_cent, autodiff.hessian(A, b, w, x, part="cent"), rtol=1e-10, atol=1e-13)
assert np.allclose(B_cent, autodiff.z_hessian(b, z, "cent"), atol=1e-13)  # the z-space Hessian

# %% [markdown]
# ## $B_{exp}$ (DLS23, not in the paper): $\nabla^2 L_{exp} = A^\top B_{exp} A$
# $B_{exp} = \langle 3f-2b, f\rangle ff^\top - \langle f-b, f\rangle \mathrm{diag} f + \mathrm{diag}\, q - qf^\top - fq^\top$,
# $q = (2f - b)\circ f$. Two references: torch's Hessian in $z$, and sympy, which checks the closed
# forms *exactly*, as rational functions of $u_i = e^{z_i}$ (`symbolic.z_space_identities` returns
# one verdict per identity).

# %%
q = (2 * f - b) * f
B_exp = (3 * f - 2 * b) @ f * np.outer(f, f) - (f - b) @ f * np.diag(f) + np.diag(q) - np.outer(q, f) - np.outer(f, q)
assert np.allclose(B_exp, appendix.B_exp(f, b))
assert np.allclose(B_exp, autodiff.z_hessian(b, z, "exp"), atol=1e-12)
exact = symbolic.z_space_identities(3)
assert all(exact.values()), exact
print("sympy, exactly:", exact)

# %% [markdown]
# ## The structured Hessian
# Every $B$ is a diagonal plus a rank-2 term in $f$ and $q$, so
# $\nabla^2 L = A^\top \mathrm{diag}(v) A + \kappa g g^\top - h g^\top - g h^\top$ with $g = A^\top f$,
# $h = A^\top q$: one $O(nd^2)$ product and never an $n\times n$ matrix. `SoftmaxRegression` does this.

# %%
prob = SoftmaxRegression(A, b, w)
H = prob.hessian(x)
assert np.allclose(H, A.T @ (B_exp + B_cent + np.diag(w**2)) @ A, rtol=1e-10, atol=1e-12)
assert np.allclose(H, autodiff.hessian(A, b, w, x), rtol=1e-10, atol=1e-12)
v = rng.standard_normal(D)
assert np.allclose(prob.hessp(x, v), H @ v)
print("structured Hessian == Aᵀ (B_exp + B_cent + W²) A == autograd")

# %% [markdown]
# ## Timing: structured against dense $A^\top B A$ and against `torch.func.hessian`

# %%
def best_of(fn, repeats=5):
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


n_t = 10 * N
A_t, b_t, w_t = rng.standard_normal((n_t, D)), rng.dirichlet(np.ones(n_t)), rng.random(n_t)
p_t = SoftmaxRegression(A_t, b_t, w_t)
t_struct = best_of(lambda: p_t.hessian(x))  # each call computes z = A x afresh (nothing is cached)
t_dense = best_of(lambda: A_t.T @ p_t.B(x) @ A_t)
t_torch = best_of(lambda: autodiff.hessian(A_t, b_t, w_t, x))
print(f"n = {n_t}: dense / structured = {t_dense / t_struct:.1f}×, torch.func / structured = {t_torch / t_struct:.1f}×")

# %% [markdown]
# ## Summary
#
# - Each object of appendix C is a few lines of numpy; every one agreed with the library and with an
#   independent reference (autograd, central differences, sympy exactly).
# - The paper's numbering: Defs. C.1–C.4 are $u$, $v$ (the same vector), $\alpha$, $f$; Defs. C.6–C.8
#   the three losses; Lemma C.9 the first derivatives; Lemma C.10 is about $\log f$ and ends with
#   $\nabla L_{cent}$; Lemma C.11 is the Hessian of $\log f$, from which Def. C.13 and Lemma C.14 give
#   $\nabla^2 L_{cent}$. $c$, $\nabla L_{exp}$ and $B_{exp}$ are DLS23's.
# - The structured Hessian costs one $O(nd^2)$ product; the timing cell shows how much that saves
#   against the dense $n\times n$ route (the ratio grows with $n$).
#
# ## Exercises
#
# 1. Derive DLS23's $\nabla L_{exp} = A^\top J (f-b)$ yourself from Lemma C.9, then break one sign in
#    `grad_exp` and watch which assertion fails.
# 2. Set `N = 2000` in the parameters cell: how do the two timing ratios change, and why?
# 3. Lemma C.11 says all $\log f_j$ share one Hessian. Show that $f_j$ itself does not: compute
#    `torch.func.hessian` of `torch.softmax(A_t @ y, 0)[j]` for two $j$ and compare.
