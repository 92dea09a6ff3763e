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
# The theory of InfoPrompt (arXiv 2306.04933, appendix C) studies one objective:
#
# $$L(x) = \underbrace{\tfrac12\|f(x) - b\|^2}_{L_{exp}} \; \underbrace{-\,\langle b, \log f(x)\rangle}_{L_{cent}}
#   + \underbrace{\tfrac12\|\mathrm{diag}(w) A x\|^2}_{L_{reg}}, \qquad f(x) = \mathrm{softmax}(Ax).$$
#
# Each cell below: one formula, a few lines of code, an `allclose` check against an independent
# reference (torch autograd, sympy), and at the end a timing.

# %% tags=["parameters"]
N, D, SEED = 40, 3, 0  # small by default so that the notebook runs in CI in seconds

# %%
import time

import numpy as np

from theory import SoftmaxRegression, appendix, autodiff, symbolic

rng = np.random.default_rng(SEED)
A = rng.standard_normal((N, D))
b = rng.dirichlet(np.ones(N))
w = rng.random(N)
x = rng.standard_normal(D)

# %% [markdown]
# ## Definitions C.1–C.4: $u = e^{Ax}$, $\alpha = \langle u, 1\rangle$, $f = u/\alpha$, $c = f - b$
# In floating point, $u$ overflows for $z > 709$; the code computes $f$ from $z - \max z$ and
# $\log f = z - \mathrm{logsumexp}(z)$ instead.

# %%
f = appendix.f(A, x)
assert np.allclose(f, appendix.u(A, x) / appendix.alpha(A, x))
assert np.isclose(f.sum(), 1) and (f >= 0).all()
print("f on the simplex; softmax of (1e4, 0, -1e4):", appendix.softmax(np.array([1e4, 0, -1e4])))

# %% [markdown]
# ## Lemma C.9: $\dfrac{df}{dx_i} = f\circ A_{*,i} - \langle f, A_{*,i}\rangle f$, i.e. $J A$ with $J = \mathrm{diag} f - f f^\top$

# %%
assert np.allclose(appendix.df_dx(A, x), autodiff.softmax_jacobian(A, x), rtol=1e-12, atol=1e-14)
J = appendix.softmax_jacobian(f)
print("eigenvalues of J lie in [0, 1/2]:", np.linalg.eigvalsh(J)[[0, -1]])

# %% [markdown]
# ## Lemma C.10: gradients
# $\nabla L_{exp} = A^\top J c$, $\quad\nabla L_{cent} = A^\top (s f - b)$ with $s = \langle b, 1\rangle$,
# $\quad\nabla L_{reg} = A^\top (w^2 \circ Ax)$.

# %%
for part, mine in [
    ("exp", appendix.grad_L_exp(A, x, b)),
    ("cent", appendix.grad_L_cent(A, x, b)),
    ("reg", appendix.grad_L_reg(A, x, w)),
]:
    ref = autodiff.gradient(A, b, w, x, part=part)
    assert np.allclose(mine, ref, rtol=1e-10, atol=1e-12), part
    print(f"grad L_{part:4s} matches autograd: max |diff| = {np.max(np.abs(mine - ref)):.1e}")

# %% [markdown]
# ## Lemmas C.11 and C.14: Hessians $A^\top B A$
# $B_{exp} = \langle 3f-2b, f\rangle ff^\top - \langle f-b, f\rangle \mathrm{diag} f + \mathrm{diag}\, q - qf^\top - fq^\top$,
# $q = (2f - b)\circ f$; $\quad B_{cent} = s(\mathrm{diag} f - ff^\top)$.
# sympy checks both *exactly*, as rational functions of $u_i = e^{z_i}$:

# %%
print(symbolic.z_space_identities(3))
z = A @ x
assert np.allclose(appendix.B_exp(f, b), autodiff.z_hessian(b, z, "exp"), atol=1e-12)
assert np.allclose(appendix.B_cent(f, b), autodiff.z_hessian(b, z, "cent"), atol=1e-12)

# %% [markdown]
# ## The structured Hessian
# Every $B$ is a diagonal plus a rank-2 term in $f$ and $q$, so
# $\nabla^2 L = A^\top \mathrm{diag}(v) A + \kappa g g^\top - h g^\top - g h^\top$ with $g = A^\top f$,
# $h = A^\top q$: one $O(nd^2)$ product and never an $n\times n$ matrix. `SoftmaxRegression` does this.

# %%
prob = SoftmaxRegression(A, b, w)
H = prob.hessian(x)
assert np.allclose(H, autodiff.hessian(A, b, w, x), rtol=1e-10, atol=1e-12)
assert np.allclose(H, A.T @ prob.B(x) @ A, rtol=1e-10, atol=1e-12)
v = rng.standard_normal(D)
assert np.allclose(prob.hessp(x, v), H @ v)
print("structured Hessian == autograd == dense Aᵀ B A")

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
