"""Theory companion to InfoPrompt (arXiv 2306.04933), appendices C–D.

``SoftmaxRegression`` is the objective L_exp + L_cent + L_reg = ℓ(A x) with closed-form
derivatives (``GroupedSoftmaxRegression``: the softmax taken within groups of rows, e.g.
multinomial logistic regression; ``theory.grouped``) (``theory.loss``: ℓ in z-space; ``theory.rows``: the row-matrix protocol for A);
``solve`` minimises it — by default with ``sketched-subspace-newton`` (Newton in a two-dimensional
subspace through z = A x, sketch-preconditioned, two passes over A an iteration), or Algorithm 1's
sketched Newton, sketch-preconditioned Newton-CG, exact Newton and scipy anchors;
``theory.engine``, ``theory.dask_engine`` and ``theory.distributed`` run every solver where A
lives (a thread pool, torch tensors on a device, a Dask cluster) with only O(d²) numbers a round
reaching the driver; ``theory.appendix`` follows appendix C object by object; ``theory.bounds`` gives explicit
constants for Lemmas C.15 and C.16; ``theory.autodiff`` and ``theory.symbolic`` are the
independent references the tests compare against.
"""

from theory.grouped import GroupedSoftmaxRegression
from theory.objective import SoftmaxRegression
from theory.solve import solve
from theory.validation import PrecisionWarning

__all__ = ["SoftmaxRegression", "GroupedSoftmaxRegression", "solve", "PrecisionWarning"]
