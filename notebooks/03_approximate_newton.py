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
# # 03 · Algorithm 1: approximate Newton with a sketched Hessian
#
# Algorithm 1 of the paper (appendix D) minimises $L$ by Newton steps with an approximate Hessian
# $\tilde H = A^\top \tilde D A$, where $\tilde D$ samples the diagonal of $B(x)$ so that
# $(1-\epsilon)H \preceq \tilde H \preceq (1+\epsilon)H$, and steps
# $x_{t+1} = x_t - \tilde H^{-1}\nabla L(x_t)$ (the paper prints $+$; see `docs/paper-notes.md`).
# Here: the sketches' spectral error against sample size, convergence against exact Newton, scipy
# and gradient descent, and the contraction ratio against the paper's 0.4.

# %% tags=["parameters"]
N, D, SEED = 4000, 20, 0

# %%
import time

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from theory import solve
from theory.instances import make_instance, theorem_report
from theory.sketch import SKETCHES, make_sketch

rng = np.random.default_rng(SEED)

# %% [markdown]
# ## Sketches: spectral error $\epsilon = \|H^{-1/2}\tilde H H^{-1/2} - I\|$ against sample size
# On a *coherent* A (rows of heavy-tailed norms), uniform row sampling misses the few rows that
# carry the curvature; leverage-score sampling does not.

# %%
inst = make_instance("coherent", N, D, seed=SEED)
A = inst.prob.A
v = inst.prob.hessian_parts(inst.x0).diag
H = (A * v[:, None]).T @ A
w_, U = np.linalg.eigh(H)
H_inv_half = U @ np.diag(w_**-0.5) @ U.T


def spectral_error(Ht):
    return np.max(np.abs(np.linalg.eigvalsh(H_inv_half @ Ht @ H_inv_half) - 1))


sizes = [2 * D, 4 * D, 8 * D, 16 * D, 32 * D]
errors = {}
for name in SKETCHES:
    sk = make_sketch(name)
    errors[name] = [np.median([spectral_error(sk.gram(A, v, s, rng).H) for _ in range(3)]) for s in sizes]
fig, ax = plt.subplots(figsize=(5, 3.2))
for name, errs in errors.items():
    ax.loglog(sizes, errs, "o-", label=name)
ax.set_xlabel("sample size s"); ax.set_ylabel("spectral error ε"); ax.legend(fontsize=7); fig.tight_layout()
assert errors["leverage"][-1] < errors["uniform"][-1]
print({k: round(e[-1], 3) for k, e in errors.items()})

# %% [markdown]
# ## Convergence: sketched Newton and its two refinements against the anchors
# A nonlinear instance (b on a few rows, small w), from $x_0 = 0$, to $\max|\nabla L| \le 10^{-10}$.
# Besides Algorithm 1 (`sketched-newton`) and exact Newton: `sketched-newton-cg` (the sketch
# preconditions CG on exact Hessian-vector products) and the default, `sketched-subspace-newton`:
# since $L(x) = \ell(Ax)$, it keeps $z = Ax$ and minimises $L$ over $x + \mathrm{span}\{-P^{-1}g, s_{k-1}\}$
# through $\ell(z + Zy)$, $Z = A[u, s_{k-1}]$ — two passes over $A$ per iteration
# (`theory/subspace.py`).

# %%
inst = make_instance("sparse", N, D, seed=SEED)
x_star = inst.x_star
# The identity the subspace method rests on: with z = A x and Z = A V, L(x + V y) is a function of
# z + Z y alone, so it costs O(n k) once Z is known: no further pass over A. `prob.loss_z` is that
# function, ℓ of `theory/loss.py`, which knows b and w but nothing of A.
rng = np.random.default_rng(SEED)
x, V, y = rng.standard_normal(D) * 0.1, rng.standard_normal((D, 2)), rng.standard_normal(2)
z, Z = inst.prob.A @ x, inst.prob.A @ V
ell = inst.prob.loss_z
via_z = ell.value(z + Z @ y, ell.softmax(z + Z @ y))
assert np.isclose(via_z, inst.prob.loss(x + V @ y), rtol=1e-12)
print(f"L(x + V y) = {inst.prob.loss(x + V @ y):.12f},  ℓ(z + Z y) = {via_z:.12f}")

# %%
methods = ["sketched-subspace-newton", "sketched-newton-cg", "sketched-newton", "newton", "scipy-trust-krylov", "scipy-l-bfgs-b", "gradient-descent"]
results = {}
for m in methods:
    t0 = time.perf_counter()
    results[m] = solve(inst.prob, method=m, tol=1e-10, x_star=x_star, max_iter=200 if m == "gradient-descent" else 100)
    print(f"{m:24s} success={results[m].success!s:5s} nit={results[m].nit:4d} time={time.perf_counter() - t0:6.3f}s  ‖x − x*‖={np.linalg.norm(results[m].x - x_star):.1e}")
assert all(results[m].success for m in ("sketched-subspace-newton", "sketched-newton-cg", "newton"))

fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
for m, r in results.items():
    err = r.history["error"]
    axes[0].semilogy(err, label=m)
    axes[1].semilogy(r.history["time"], err, label=m)
axes[0].set_xlabel("iteration"); axes[1].set_xlabel("seconds"); axes[0].set_ylabel("‖x − x*‖")
axes[1].legend(fontsize=7); fig.tight_layout()

# %% [markdown]
# ## The theorem's regime: contraction ratio against the paper's 0.4
# Inside Theorem D.1's conditions (with this project's explicit constants: `theory.bounds`), the
# full-step sketched Newton with ε = 0.01 should contract $\|x_t - x^*\|$ by at least 0.4 a step.

# %%
inst = make_instance("theorem", N, D, seed=SEED)
report = theorem_report(inst, eps=0.01)
for c in report.values():
    print(f"{c.name:24s} {c.lhs:10.3g} vs {c.rhs:10.3g}  {'holds' if c.holds else 'FAILS'}")
res = solve(inst.prob, method="sketched-newton", x0=inst.x0, x_star=inst.x_star, eps=0.01,
            line_search=False, tol=1e-13, max_iter=20)
err = res.history["error"]
ratios = err[1:] / err[:-1]
ratios = ratios[err[:-1] > 1e-11]  # stop before the rounding floor
print("contraction ratios:", np.round(ratios, 4), " paper: ≤ 0.4")
assert np.all(ratios <= 0.4)
w2_share = np.min(inst.prob.w2) / (np.min(inst.prob.w2) + inst.notes["M"])
print(f"min w² / (min w² + M): {w2_share:.4f} — in this regime the Hessian is almost Aᵀ W² A")
