r"""The problem on an engine: ``EngineRegression(engine)`` is a :class:`~theory.objective.Regression`
whose A, b, w and every O(n) vector stay with the engine's blocks (:mod:`theory.engine`).

It reuses the problem's and the solvers' code unchanged by giving them, in place of the in-memory
parts, objects with the same methods:

* :class:`EngineRows` — the row-matrix protocol (:mod:`theory.rows`): ``matvec`` returns a
  :class:`~theory.engine.BlockVector` (z stays on the blocks), ``rmatvec`` and ``weighted_gram``
  are per-block sums (d,) and (d, d); ``blocks()`` and ``array()`` refuse (they would bring A to
  the driver).
* :class:`EngineLoss` — ℓ in z-space (:mod:`theory.loss`) as two rounds for the softmax and the
  loss (:meth:`~theory.blocks.Block.softmax_stats`, :meth:`~theory.blocks.Block.softmax_finish`)
  and one for r and B's parts, which stay on the blocks.
  B's parts (:class:`~theory.loss.HessianParts`) hold BlockVectors: ``range`` = ``Aᵀ [f, q]`` is
  one round, and ``∇²L v`` one sweep (:meth:`EngineRegression.hessp_sweep`), never ``B t``.
* :class:`EngineZSpace` — the subspace solver's z-space workspace (:mod:`theory.subspace`):
  Z = A V (n, k) as (m_k, k) pieces; the subspace model ``Zᵀ[r, f, q]``, ``Zᵀ diag(v) Z`` one
  round ((k, 3) and (k, k) per block), a trial point ``z + Z y`` with its softmax statistics one
  round, ``Z y`` pushed as the next memory column one round.
* ``EngineRows.split_positive``, ``scale_rows``, ``amax_abs`` — the few vector operations the
  sketched solvers do outside the loss, methods of the row protocol (:mod:`theory.rows` has the
  in-memory ones): ``v₊ = max(v, 0)`` with the negative rows' Gram (d, d) per block (Algorithm 1
  adds them exactly), ``v ∘ (A U)`` for the range correction, ``||A u||_∞`` for Newton-CG's first
  radius; one round each.

The sketches' work on the rows (:mod:`theory.sketch` writes each sketch once over it) is
``EngineRows``' too: per-block sampling, per-block sketch sums and the leverage scores kept on
the blocks, seeded by a driver-drawn seed and the block index.

Rounds. A kernel that returns nothing (A x into a vector, r, q, v, Z y pushed) does not
take a round of its own: it rides with the next round that returns something
(:meth:`~theory.engine.Engine.later`). What returns something, per block: the softmax statistics
(m_k, S_k) with z = A x before them, the loss's six sums, g = A_kᵀ r_k (or instead of those
three, one sweep's partial, (d, 4) and seven sums: :mod:`theory.sweep`), the Hessian's Gram
and range together ((d, d + 2)), a ∇²L v sweep ((d + 2,), the first at an iterate with the range:
(3d + 2,)); per subspace inner step the model ``Zᵀ[r, f, q]``, ``Zᵀ diag(v) Z``
((k, 3), (k, k)) and per trial point its softmax statistics and sums; a leverage-score sketch adds
the CountSketch ((2d, d)), the drift test, Σ v ℓ and the sampled rows' Gram ((d, d)). So a round
moves O(d²) numbers per block at most; ``python -m benchmarks.engines`` prints the rounds and
bytes per iteration. Every method of :func:`theory.solve.solve` runs on an engine through these
objects; only the sketches ``srtt`` and ``leverage-exact``, which need all of A in one place, are
refused.
"""

from __future__ import annotations

import math

import numpy as np

from theory.blocks import Block
from theory.engine import BlockVector, Engine, Kernel, add_up
from theory.linalg import JL_BLOCK_ROWS, PRECOND_ROWS_PER_D, jl_map
from theory.loss import HessianParts, Softmax, kappa, parts_from_sums, subspace_model
from theory.regression import Regression
from theory.rows import RowMatrix
from theory.sweep import finish, merge_all, pays


def _block_seed(rng: np.random.Generator) -> int:
    """The driver's draw that, with a block's index k, seeds that block's randomness."""
    return int(rng.integers(2**63 - 1))


class Stack:
    """Several BlockVectors side by side, (n, j): what ``rmatvec`` takes to return (d, j). Its
    ``key`` is their keys, as a kernel takes them (the vectors are held: alive while it is)."""

    def __init__(self, *vectors: BlockVector):
        self.vectors, self.key = vectors, [v.key for v in vectors]


class Column:
    """Column j of an (n, k) BlockVector: where ``EngineRows.matvec(x, out=...)`` writes ``A x``."""

    def __init__(self, matrix: BlockVector, j: int):
        self.matrix, self.j = matrix, j


class EngineRows(RowMatrix):
    """A (n, d) on an engine: the six operations of :mod:`theory.rows`, each one round."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self.shape = engine.shape

    def blocks(self):
        raise ValueError(
            "A lives on the engine's blocks; bringing its rows to the driver is what the engine "
            "avoids. Use matvec, rmatvec and weighted_gram."
        )

    def take_rows(self, idx):
        raise ValueError(
            "an engine samples rows where they live (theory.sketch's engine paths return the "
            "sampled rows' Gram); it never brings rows to the driver."
        )

    def matvec(self, x, out=None):
        """``z = A x`` as a new BlockVector, or written into ``out``, a :class:`Column`."""
        x = np.asarray(x, dtype=np.float64)
        if out is None:
            z = self.engine.new()
            self.engine.later(Block.matvec, z.key, x)
            return z
        if not isinstance(out, Column):
            raise ValueError("an engine's A x stays on its blocks; out= takes a Column.")
        self.engine.later(Block.matvec_into, out.matrix.key, out.j, x)
        return out

    def zero_image(self):
        z = self.engine.new()
        self.engine.later(Block.zeros, z.key)
        return z

    def rmatvec(self, r):
        """``Aᵀ r`` (d,) for a BlockVector, (d, j) for a :class:`Stack`."""
        return self.engine.sum(Block.rmatvec, r.key)

    def weighted_gram(self, v):
        return self.engine.sum(Block.weighted_gram, v.key)

    def gram_and_rmatvec(self, v, R):
        """``(Aᵀ diag(v) A, Aᵀ R)`` for R a :class:`Stack`, in one round ((d, d + j) per block)."""
        M = self.engine.sum(Block.gram_and_rmatvec, v.key, R.key)
        return M[:, : self.shape[1]], M[:, self.shape[1] :]

    def image_norm(self, U):
        return math.sqrt(self.engine.sum(Block.image_sumsq, np.asarray(U, dtype=np.float64)))

    def amax_abs(self, z) -> float:
        """``max_i |z_i|``: ``z.sums["amax"]`` where known (``split_positive``'s v₊), else one
        round."""
        if "amax" not in z.sums:
            z.sums["amax"] = max(self.engine.map(Block.amax, z.key, True))
        return z.sums["amax"]

    def ratio_range(self, v, ref, floor: float) -> tuple[float, float]:
        """The extreme ratios over the blocks (one round)."""
        res = self.engine.map(Block.drift, v.key, ref.key, floor)
        return max(hi for hi, _ in res), min(lo for _, lo in res)

    def scale_rows(self, v, Y):
        """``v[:, None] ∘ Y`` (n, j) as a new BlockVector (rides with the next round)."""
        out = self.engine.new()
        self.engine.later(Block.scale_rows, out.key, v.key, Y.key)
        return out

    def columns(self, *vectors):
        """BlockVectors side by side (a :class:`Stack`), as :meth:`rmatvec` takes them."""
        return Stack(*vectors)

    def zspace(self, cols: int, in_memory=None):
        """The subspace workspace on the blocks (:class:`EngineZSpace`)."""
        return EngineZSpace(self.engine, cols)

    def split_positive(self, v):
        """``(v₊, N)``, one round: v₊ = max(v, 0) a BlockVector (``sums["amax"]``: its largest
        entry), and N the per-block Grams of the negative rows summed in block order (None when
        v ≥ 0)."""
        eng = self.engine
        res = eng.map(Block.positive_part, (out := eng.new()).key, v.key)
        out.sums["amax"] = max(0.0, *(top for top, _, _ in res))
        grams = [g for _, count, g in res if count]
        return out, (add_up(grams) if grams else None)

    def frobenius(self):
        return math.sqrt(self.engine.sum(Block.sumsq))

    # -- the sketches' work on the blocks: randomness from a driver-drawn seed and the block index

    def countsketch(self, v, s: int, rng: np.random.Generator) -> np.ndarray:
        """``S diag(√v) A = Σ_k S_k diag(√v_k) A_k`` (s, d): one round, (s, d) per block."""
        return self._project(Block.countsketch, v, s, rng)

    def gaussian_sketch(self, v, s: int, rng: np.random.Generator) -> np.ndarray:
        return self._project(Block.gaussian_sketch, v, s, rng)

    def _project(self, kernel: Kernel, v, s: int, rng) -> np.ndarray:
        """Each block draws its own columns of S from ``(seed, k)``."""
        return self.engine.sum(kernel, v.key, s, _block_seed(rng), per_block=self._per_block())

    def leverage_scores(self, v, rng: np.random.Generator) -> BlockVector:
        """ℓ on the blocks (two rounds): the CountSketch ``S₁ diag(√v) A`` summed over blocks,
        R and Ω on the driver (:func:`~theory.linalg.jl_map`), then ``ℓ_i = ||a_iᵀ Ω/scale||²``
        kept on the blocks. ℓ is the in-memory one divided by ``scale²``: p ∝ v ∘ ℓ is unchanged."""
        SM = self.countsketch(v, PRECOND_ROWS_PER_D * self.shape[1], rng)
        Omega, scale = jl_map(SM, rng)
        ell = self.engine.new()
        self.engine.later(Block.row_norms2, ell.key, Omega / scale, JL_BLOCK_ROWS)
        return ell

    def sample_gram(self, v, ell, s: int, rng: np.random.Generator) -> tuple[np.ndarray, int]:
        """Per-block multinomial: the driver draws the counts ``(s_k) ~ Multinomial(s, P_k / P)``,
        ``P_k = Σ_{i ∈ k} v_i ℓ_i`` (one round; ``m_k`` for uniform, none), then block k draws its
        s_k rows i.i.d. from ``p_i / P_k`` (seeded by ``(seed, k)``). That is exactly the
        in-memory distribution (s i.i.d. draws from p, grouped by block): the same expectation
        ``Aᵀ diag(v) A`` and sampling lemma; only the random stream differs."""
        eng = self.engine
        if ell is None:
            mass = np.array([j - i for i, j in eng.bounds], dtype=np.float64)
        else:
            mass = np.array([m for (m,) in eng.map(Block.dots, [(v.key, ell.key)])])
        total = float(np.sum(mass))
        if not total > 0:
            raise ValueError("the weights v are all zero: there is nothing to sample.")
        draws = rng.multinomial(s, mass / total).tolist()
        key = None if ell is None else ell.key
        per_block = self._per_block(draws)
        res = eng.map(
            Block.sample_gram, v.key, key, total, s, _block_seed(rng), per_block=per_block
        )
        return add_up([h for h, _ in res]), sum(c for _, c in res)

    def _per_block(self, *extra) -> list[tuple]:
        return [(k, *(e[k] for e in extra)) for k in range(len(self.engine.bounds))]


class EngineLoss:
    """ℓ(z) of :mod:`theory.loss` for z on an engine: the methods of
    :class:`~theory.loss.SoftmaxLoss` the solvers call, with BlockVectors for (n,) arrays."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self.s = engine.s

    def softmax(self, z: BlockVector, out=None) -> Softmax:
        """``f = softmax(z)`` on the blocks and ``lse``; f carries the loss's sums (two rounds;
        none when z came with its lse and sums, ``z.sums["swept"]``: :meth:`EngineZSpace.trial`,
        and f is formed with the next round)."""
        eng = self.engine
        if "swept" in z.sums:
            lse, sums, e, maxima = z.sums.pop("swept")
            f = eng.new(dict(sums))
            scale = [(math.exp(m - lse),) for m in maxima]
            eng.later(Block.scale_into, e.key, f.key, per_block=scale)
            return Softmax(f, lse)
        e = eng.new()
        stats = eng.map(Block.softmax_stats, z.key, e.key)
        f = eng.new()
        m = max(mk for mk, _ in stats)
        S = sum(Sk * math.exp(mk - m) for mk, Sk in stats)
        lse = m + math.log(S)
        per_block = [(math.exp(mk - m) / S, lse) for mk, _ in stats]
        sums = eng.sum(Block.softmax_finish, z.key, e.key, f.key, per_block=per_block)
        f.sums = dict(zip(("exp2", "bzl", "wz2", "tsum", "ff", "bf"), sums.tolist()))
        return Softmax(f, lse)

    def softmax_from(self, z: BlockVector, lse: float, out=None, sums=None) -> Softmax:
        """``f = exp(z − lse)`` on the blocks (rides with the next round), carrying ``sums``."""
        f = self.engine.new(dict(sums or {}))
        self.engine.later(Block.softmax_at, z.key, f.key, lse)
        return Softmax(f, lse)

    def parts(self, z, sm, tmp=None) -> dict[str, float]:
        s = sm.f.sums
        return parts_from_sums(1.0, s["exp2"], s["bzl"], s["wz2"])

    def value(self, z, sm, tmp=None) -> float:
        p = self.parts(z, sm)
        return p["exp"] + p["cent"] + p["reg"]

    def residual(self, z, f, out=None, tmp=None) -> BlockVector:
        r = self.engine.new()
        self.engine.later(Block.derivatives, z.key, f.key, [r.key], self.s, f.sums["tsum"])
        return r

    def derivatives(self, z, f, out=None, tmp=None):
        """Fresh handles r and B's parts at z, f (κ from f's sums), filled on the blocks with the
        next round (:meth:`~theory.blocks.Block.derivatives`)."""
        eng = self.engine
        r, q, v = eng.new(), eng.new(), eng.new()
        k = kappa(1.0, f.sums["ff"], f.sums["bf"], self.s)
        eng.later(Block.derivatives, z.key, f.key, [r.key, q.key, v.key], self.s, f.sums["tsum"])
        return r, HessianParts(diag=v, f=f, q=q, kappa=k)


class EngineRegression(Regression):
    """``min_x ℓ(A x)`` with A, b, w on ``engine`` (module docstring): the base contract of
    :class:`~theory.objective.Regression` (loss, gradient, hessian, hessp), not the in-memory
    extension (``b``, ``w`` and the dense n×n ``B`` stay off the driver). Built from the engine,
    whose blocks were validated when it was made."""

    def __init__(self, engine: Engine):
        if not isinstance(engine, Engine):
            raise TypeError(f"EngineRegression takes an engine, not {type(engine).__name__}.")
        self.A = self.engine = engine
        self.rows = EngineRows(engine)
        self.loss_z = EngineLoss(engine)
        self.s = engine.s

    def loss_and_gradient(self, x) -> tuple[float, np.ndarray]:
        """``(L(x), ∇L(x))`` in one round: each block sweeps its rows once
        (:meth:`~theory.blocks.Block.sweep`) and the driver merges the blocks' partials."""
        swept = finish(merge_all(self.engine.map(Block.sweep, self.check_x(x))))
        return swept.loss, swept.grad

    def sweeps(self) -> bool:
        """On a cluster (a round costs a message per worker) or where A is larger than the cache
        (:func:`theory.sweep.pays`)."""
        return self.engine.remote or pays(self.n, self.d)

    def hessp_sweeps(self) -> bool:
        """Always: one round for ``∇²L v``, where B's parts applied to ``A v`` take two."""
        return True

    def hessp_sweep(self, parts, v, with_range: bool = False) -> np.ndarray:
        """One round: each block's :meth:`~theory.blocks.Block.hessp_sweep`, summed."""
        keys = (parts.diag.key, parts.f.key, parts.q.key)
        return self.engine.sum(Block.hessp_sweep, keys, self.check_x(v, name="v"), with_range)

    def swept_point(self, x, out=None, f_out=None):
        """``(z, softmax(z), L(x), ∇L(x))`` in one round: the sweep keeps z on the blocks, and f
        (with the sums r and κ need, from the sweep) follows with the next round."""
        z = self.engine.new()
        swept = finish(merge_all(self.engine.map(Block.sweep, self.check_x(x), z.key)))
        sm = self.loss_z.softmax_from(z, swept.lse, sums=swept.sums)
        return z, sm, swept.loss, swept.grad

    def __repr__(self) -> str:
        return f"EngineRegression(n={self.n}, d={self.d}, engine={self.engine!r})"


class ZPoint:
    """A point of the subspace solver on an engine: z (a BlockVector), its softmax and, once
    computed, (r, B's parts)."""

    __slots__ = ("z", "sm", "derivs")

    def __init__(self, z=None):
        self.z, self.sm, self.derivs = z, None, None


class EngineZSpace:
    """The z-space workspace of :mod:`theory.subspace` on an engine: Z = A V (n, k) lives on the
    blocks as one (m_k, k) matrix each, and every operation is one round returning O(k²) numbers
    per block at most:

    ``column(j)``   the target of ``rows.matvec(u, out=…)``: A u into column j (the pass itself)
    ``model``       ``Zᵀ [r, f, q]`` (k, 3) and ``Zᵀ diag(v) Z`` (k, k) per block, summed: the
                    subspace gradient gy = Zᵀ r and Hessian Zᵀ diag(v) Z + low rank([Zᵀf, Zᵀq])
    ``trial``       z + Z y, a new BlockVector, with ℓ's sums there in the same round
                    (:func:`theory.sweep.point_sums`: the online normaliser, so that they need not
                    wait for the global lse); its softmax and loss then take no round
    ``model_at``    :meth:`model` at a trial point, its r, q, v computed with the same round
    ``push``        Z ← [Z₀, Z y, Z₁ …]: the step's image as the newest memory column

    The solver's points are :class:`ZPoint`; the buffers the in-memory workspace passes to the
    loss (``value_kw`` …) are empty here (the blocks allocate their own vectors).
    """

    def __init__(self, engine: Engine, cols: int):
        self.engine = engine
        self.Z = engine.new()
        engine.later(Block.zeros, self.Z.key, cols)

    def point(self) -> ZPoint:
        return ZPoint()

    def value_kw(self, pt) -> dict:
        return {}

    def softmax_kw(self, pt) -> dict:
        return {}

    def derivs_kw(self, pt) -> dict:
        return {}

    def column(self, j: int) -> Column:
        return Column(self.Z, j)

    def model(self, r, parts, k: int):
        """``(gy, Hy)``: ``Zᵀ r`` (k,) and ``Zᵀ B Z`` (k, k) on the first k columns of Z, from the
        blocks' ``(Zᵀ[r, f, q], Zᵀ diag(v) Z)`` summed in block order."""
        res = self.engine.map(
            Block.subspace_model, self.Z.key, k, r.key, parts.diag.key, parts.f.key, parts.q.key
        )
        return subspace_model(parts, add_up([zr for zr, _ in res]), add_up([h for _, h in res]))

    def model_at(self, loss, pt, k: int):
        """:meth:`model` at a trial point, its r, q, v formed with the same round (``pt.derivs``)."""
        pt.derivs = r, parts = loss.derivatives(pt.z, pt.sm.f)
        return self.model(r, parts, k)

    def trial(self, z, y, busy=()) -> ZPoint:
        """A new point at ``z + Z y`` with its lse, ℓ's sums and each block's exp(z_k − m_k)
        (``z.sums["swept"]``, made f by :meth:`EngineLoss.softmax`), in one round."""
        eng = self.engine
        pt, e = ZPoint(eng.new()), eng.new()
        res = eng.map(Block.trial_point, pt.z.key, e.key, z.key, self.Z.key, y)
        sw = finish(merge_all(res))
        pt.z.sums["swept"] = (sw.lse, sw.sums, e, [p.m for p in res])
        return pt

    def push(self, y) -> None:
        self.engine.later(Block.push_image, self.Z.key, y)

    def close(self) -> None:
        return None
