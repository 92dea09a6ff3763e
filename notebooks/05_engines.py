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
# # 05 · The solver where A lives: row blocks, per-block sums, a Dask cluster
#
# > **Optional — engineering.** Nothing in notebooks 01–04 depends on this one, and it teaches no
# > mathematics of the paper beyond notebook 01: it shows how the same solver runs when $A$ is too
# > large for one process. Skip it on a first reading.
#
# **What this notebook teaches.** How the objective of appendix C splits into per-block sums, how
# an *engine* keeps $A$ in row blocks where it lives (a thread pool, a Dask cluster) and moves only
# $O(d)$ or $O(d^2)$ numbers per block, and how to check that the result equals the in-memory solve.
#
# **What it assumes.** Notebooks 01 and 03 (the losses, the Hessian's diagonal-plus-rank-2 form,
# Newton's method); the log-sum-exp trick; for the last section, what a Dask client and worker are.
#
# $L(x) = \ell(Ax)$ depends on $x$ only through $z = Ax$, and every quantity a solver needs is a
# sum over rows once a few global scalars are known (appendix C). So A can stay in row blocks
# wherever it lives, with $z$ and the other length-$n$ vectors beside their blocks, and the driver
# only ever receives $O(d)$ or $O(d^2)$ numbers per block. This notebook builds the loss from
# per-block sums by hand, checks it against the in-memory problem, and then runs the same solver on
# a thread pool and on a local Dask cluster whose workers draw A themselves.

# %% tags=["parameters"]
N, D, SEED, BLOCKS = 20000, 8, 0, 4

# %%
import math

import numpy as np

from theory import solve
from theory.blocks import block_bounds
from theory.distributed import EngineRegression
from theory.engine import LocalEngine
from theory.instances import make_instance

prob = make_instance("sparse", N, D, SEED).prob  # the whole instance, for the reference
A, b, w = prob.A, prob.b, prob.w
x = 0.1 * np.random.default_rng(SEED).standard_normal(D)

# %% [markdown]
# ## The loss from per-block sums
#
# Each block $k$ returns $m_k = \max z_k$ and $S_k = \sum e^{z_k - m_k}$; the driver merges them
# with a max shift, $m = \max_k m_k$, $S = \sum_k S_k e^{m_k - m}$, $\mathrm{lse} = m + \log S$.
# Then each block returns its share of the three terms of $L$ (Defs. C.6–C.8):
# $\sum (f - b)^2$, $\sum b (z - \mathrm{lse})$ and $\sum w^2 z^2$, with $f_k = e^{z_k - \mathrm{lse}}$.

# %%
pieces = [(A[i:j], b[i:j], w[i:j]) for i, j in block_bounds(N, BLOCKS)]
stats = [
    (float((Ak @ x).max()), float(np.exp(Ak @ x - (Ak @ x).max()).sum())) for Ak, _, _ in pieces
]
m = max(mk for mk, _ in stats)
lse = m + math.log(sum(Sk * math.exp(mk - m) for mk, Sk in stats))
exp = cent = reg = 0.0
for Ak, bk, wk in pieces:
    zk = Ak @ x
    fk = np.exp(zk - lse)
    exp += 0.5 * float((fk - bk) @ (fk - bk))
    cent -= float(bk @ (zk - lse))
    reg += 0.5 * float((wk**2 * zk) @ zk)
print("per-block sums:", exp + cent + reg)
print("in memory     :", prob.loss(x))
assert abs(exp + cent + reg - prob.loss(x)) <= 1e-13 * abs(prob.loss(x))

# %% [markdown]
# ## The loss and gradient in one sweep: the online normaliser
#
# Above, the blocks' $z_k$ had to be finished (for $\mathrm{lse}$) before any $f_k$ could be
# formed: two passes over $A$. Every term of $\nabla L$ is, however, a sum that can be rescaled
# when the maximum grows. With $u = e^{z - m_k}$ relative to the block's own maximum, a block
# returns $G_k = A_k^\top [u,\; u \circ b,\; u^2,\; w^2 \circ z - b]$ and a few sums, reading
# $A_k$ once. The driver rescales each block to the global $m$: the $u$ terms by $e^{m_k - m}$ and
# the $u^2$ terms by $e^{2(m_k - m)}$. With $\alpha = \sum u$, $f = u / \alpha$ and
# $\langle 1, t \rangle = \sum f^2 - \sum f b$:
# $$\nabla L = A^\top f^2 - A^\top (f \circ b) + (s - \langle 1, t \rangle) A^\top f + A^\top(w^2 \circ z - b).$$
# This is `theory/sweep.py`, which `prob.gradient(x)` runs.

# %%
parts = []
for Ak, bk, wk in pieces:
    zk = Ak @ x
    mk = float(zk.max())
    u = np.exp(zk - mk)
    R = np.column_stack([u, u * bk, u * u, wk**2 * zk - bk])
    parts.append((mk, Ak.T @ R, u.sum(), (u * bk).sum(), (u * u).sum()))
m = max(p[0] for p in parts)
scale = lambda mk: np.array([math.exp(mk - m), math.exp(mk - m), math.exp(2 * (mk - m)), 1.0])
G = sum(Gk * scale(mk) for mk, Gk, *_ in parts)
alpha = sum(Su * math.exp(mk - m) for mk, _, Su, _, _ in parts)
f_b = sum(Sub * math.exp(mk - m) for mk, _, _, Sub, _ in parts) / alpha
f_f = sum(Suu * math.exp(2 * (mk - m)) for mk, _, _, _, Suu in parts) / alpha**2
s = b.sum()
grad = G[:, 2] / alpha**2 - G[:, 1] / alpha + (s - (f_f - f_b)) * G[:, 0] / alpha + G[:, 3]
print("one sweep, by hand:", grad[:3])
print("prob.gradient(x)  :", prob.gradient(x)[:3])
assert np.allclose(grad, prob.gradient(x), rtol=1e-12, atol=1e-15)

# %% [markdown]
# The gradient is $\sum_k A_k^\top r_k$ once the driver has broadcast $\mathrm{lse}$ and
# $\langle 1, f \circ (f - b)\rangle$; the Hessian is $\sum_k A_k^\top \mathrm{diag}(v_k) A_k$ plus a
# rank-2 term built from $\sum_k A_k^\top [f_k, q_k]$. An *engine* runs exactly these kernels
# (`theory/blocks.py`) where the blocks are, and `EngineRegression` is the problem `solve` takes.

# %% [markdown]
# ## A thread pool over the blocks
#
# With one block the engine *is* the in-memory solve, bit for bit; with four blocks the sums
# round differently but Newton takes the same iterations to the same minimiser.

# %%
one = EngineRegression(LocalEngine.from_arrays(A, b, w, blocks=1))
four = EngineRegression(LocalEngine.from_arrays(A, b, w, blocks=BLOCKS, workers=2))
ref = solve(prob, method="newton", tol=1e-10)
for name, p in (("1 block", one), (f"{BLOCKS} blocks, 2 threads", four)):
    res = solve(p, method="newton", tol=1e-10)
    print(
        f"{name:22s} nit {res.nit} (in memory {ref.nit}), |x - x_ref| = {np.linalg.norm(res.x - ref.x):.1e}"
    )
assert np.array_equal(solve(one, method="newton", tol=1e-10).x, ref.x)

# %% [markdown]
# ## A local Dask cluster, A drawn on the workers
#
# `DaskEngine.generate` sends each worker only a family name, sizes and a seed; each block's rows are
# drawn there (`block_rows`, tile by tile, so any blocking gives the same A) and kept in a Dask
# actor with its vectors. What comes back per round is counted: the bytes per iteration do not
# depend on n.

# %%
from dask.distributed import Client

from theory.dask_engine import DaskEngine, local_cluster

with local_cluster(2) as cluster, Client(cluster) as client:
    eng = DaskEngine.generate(client, "sparse", N, D, SEED, blocks=BLOCKS)
    res = solve(EngineRegression(eng), tol=1e-10)  # the default solver
    moved = (eng.bytes_in + eng.bytes_out) / (res.nit + 1)
    print(res)
    print(
        f"|x - x_ref| = {np.linalg.norm(res.x - ref.x):.1e}; {moved / 1024:.1f} KiB a round trip "
        f"per iteration, against {8 * N / 1024:.0f} KiB for one vector z"
    )
    eng.close()
assert res.success and np.linalg.norm(res.x - ref.x) <= 1e-8 * np.linalg.norm(ref.x)
assert moved < 8 * N / 4

# %% [markdown]
# On a real cluster the same call takes `Client("tcp://scheduler:8786")` and
# `DaskEngine.from_dask_array(client, A, b, w)` for an A stored as a `dask.array`;
# `docs/solver.md` ("On a cluster") has the set-up, measured tables and a cost model for
# $n = 10^9$.

# %% [markdown]
# ## Summary
#
# - The loss is a merge of per-block sums once the global log-sum-exp is known; built by hand from
#   four blocks it matched the in-memory value to rounding.
# - The gradient needs no global quantity in advance: each block's sums, taken relative to its own
#   maximum and rescaled by the driver, give $\nabla L$ in one read of $A$.
# - On a thread pool the engine reproduced the in-memory Newton solve (bit for bit with one block,
#   the same iterations with four).
# - On a local Dask cluster whose workers drew $A$ themselves, the default solver converged to the
#   same minimiser while each iteration moved a few KiB, far less than one length-$n$ vector.
#
# ## Exercises
#
# 1. Build the gradient row by row from per-block sums (broadcast $\mathrm{lse}$ and
#    $\langle 1, t\rangle$, then $\sum_k A_k^\top r_k$), and compare it with the sweep above.
# 2. Change `BLOCKS` to 1, 3 and 16: which assertions still hold bit for bit, and which only to
#    rounding? Why?
# 3. Double `N`: does the number of bytes moved per iteration on the Dask cluster change?
