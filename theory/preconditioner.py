r"""One preconditioner policy for the Newton-CG and subspace solvers: what to build, what it costs,
and when a rebuild pays — all deterministic (a cost model, never measured times), so that the same
seed gives the same iterates on any machine under any load.

**What.** P ≈ ∇²L(x) is the exact Hessian ``Aᵀ B A`` or Algorithm 1's sketch H̃
(:func:`theory.newton.sketched_hessian`), optionally made exact on the range of the rank-2 term
(:func:`range_corrected`); whichever the cost model finds cheaper.

**Cost model**, in gradient evaluations (≈ one Hessian-vector product, or one subspace iteration:
each is two passes over A)::

    exact Hessian   d / 22                                  one syrk against two memory-bound passes
    sketch          2 + extra + (s + 3d) d / (22 n)          approximate leverage scores ≈ 2, ``extra``
                                                            passes, the O((s + 3d) d²) CountSketch
                                                            Gram, sampled Gram and factor

(the constants 22 and 2: docs/solver.md, "Measured constants"). K, the price of a build, is the
cheaper of the two, or ``rebuild_after`` when given.

**When** (ski rental). P starts as the identity. A solver estimates the work, in the same unit,
still needed under its current P and under a fresh one; the policy rebuilds when
``work_now > K + work_fresh`` (:meth:`PreconditionerPolicy.pays`), and, for solvers that measure a
rate over several iterations, only after each P has been used for ``max(wait, ⌊K/4⌋)`` iterations
(:meth:`PreconditionerPolicy.waited`): a build first rents a quarter of its price, which bounds
what is spent on builds by a few times what is spent on iterations. ``rebuild_after=0`` builds at
every iteration.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from theory.linalg import SPDSolver
from theory.newton import sampled_diagonal_part, sketched_hessian
from theory.rows import as_rows
from theory.sketch import SketchedGram

HESSIAN_GRADS_PER_D = 22.0  # exact Hessian ≈ d/22 gradients (docs/solver.md, "Measured constants").
LEVERAGE_GRADS = 2.0  # approximate leverage scores ≈ 2 gradient evaluations.
RENT = 0.25  # at least ⌊RENT·K⌋ iterations under each P (P = I included) before a rebuild.


def hessian_price(d: int) -> float:
    """The exact Hessian's price ``d / 22`` in gradient evaluations (module docstring)."""
    return d / HESSIAN_GRADS_PER_D


def build_costs(n: int, d: int, s: int, extra: float = 0.0) -> tuple[float, float]:
    """``(exact, sketch)`` = ``(d / 22, 2 + extra + (s + 3d) d / (22 n))`` gradient evaluations."""
    exact = hessian_price(d)
    return exact, LEVERAGE_GRADS + extra + (s + 3 * d) * d / (HESSIAN_GRADS_PER_D * n)


@dataclass(frozen=True)
class PreconditionerPolicy:
    """The policy of the module docstring for one solve (a record): build the exact Hessian or the
    sketch (``exact``), K (``price``, gradient evaluations), build at every iteration (``always``),
    the sketch's size ``s`` and whether it is range-corrected (``corrected``)."""

    exact: bool
    price: float
    always: bool
    s: int
    corrected: bool

    @classmethod
    def for_problem(
        cls,
        n: int,
        d: int,
        s: int,
        rebuild_after: int | None,
        extra: float = 0.0,
        corrected: bool = False,
    ) -> PreconditionerPolicy:
        """The policy for A (n, d), sketch size s and ``extra`` passes of the sketch's build."""
        exact, sketch = build_costs(n, d, s, extra)
        price = min(exact, sketch) if rebuild_after is None else float(rebuild_after)
        return cls(exact <= sketch, price, rebuild_after == 0, s, corrected)

    def pays(self, work_now: float, work_fresh: float) -> bool:
        """Ski rental: rebuild when ``work_now > K + work_fresh`` (always for rebuild_after=0)."""
        return self.always or work_now > self.price + work_fresh

    def waited(self, iterations: int, minimum: int) -> bool:
        """Whether the current P has been used ``max(minimum, ⌊K/4⌋)`` iterations."""
        return self.always or iterations >= max(minimum, int(RENT * self.price))

    def build(
        self, rows, parts, sketch, rng, exact_hessian
    ) -> tuple[SPDSolver, SketchedGram | None]:
        """P (an SPD :class:`~theory.linalg.SPDSolver`, the eigenvalue fallback when need be):
        ``exact_hessian()`` (the caller's, counted by it) or the sketch of ``parts`` drawn from
        ``rng``. Returns ``(P, SketchedGram)``, None for the exact P."""
        if self.exact:
            return SPDSolver(exact_hessian()), None
        make = range_corrected if self.corrected else _plain
        return make(rows, parts, sketch, self.s, rng)


def _plain(A, parts, sketch, s, rng):
    H, sk = sketched_hessian(A, parts, sketch, s, rng)
    return SPDSolver(H), sk


def range_corrected(A, parts, sketch, s: int, rng: np.random.Generator):
    """Algorithm 1's H̃ (:func:`theory.newton.sketched_hessian`), made exact on the range of the
    rank-2 term; an :class:`~theory.linalg.SPDSolver`.

    Where the rank-2 term nearly cancels the diagonal part ``D = Aᵀ diag(v) A`` (κ < 0: at x* of
    the sparse family ``uᵀ H u`` can be a few percent of ``uᵀ D u`` in one direction), the sampling
    error ``ε D`` swamps H there and one eigenvalue of ``H̃⁻¹ H`` falls far below 1. With
    ``U = orth[g, h]`` (d, 2) and ``Δ = D̃ − D``, adding ``E Uᵀ + U Eᵀ − U UᵀE Uᵀ``, ``E = −Δ U``
    (two more passes over A for ``D U``), leaves the error ``(I − UUᵀ) Δ (I − UUᵀ)``, zero on
    span(U) (docs/solver.md has the measured spectra). The correction is not always positive
    definite: if its Cholesky fails, H̃ itself is used. Returns ``(P, SketchedGram)``.
    """
    A, v = as_rows(A), parts.diag
    G = parts.range(A)  # (d, 2)
    low = parts.low_rank(A, G)
    D, sk = sampled_diagonal_part(A, parts, sketch, s, rng)
    U, _ = np.linalg.qr(G)
    E = A.rmatvec(A.scale_rows(v, A.matvec(U))) - D @ U  # (d, 2) = (D_exact − D̃) U
    UE = U @ (U.T @ E)
    P = SPDSolver(D + E @ U.T + U @ E.T - 0.5 * (UE @ U.T + U @ UE.T) + low)
    return (P if P.fallback is None else SPDSolver(D + low)), sk
