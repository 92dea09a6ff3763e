"""Theory companion to InfoPrompt (arXiv 2306.04933), appendices C–D.

``SoftmaxRegression`` is the objective L_exp + L_cent + L_reg with closed-form derivatives;
``solve`` minimises it (Algorithm 1's sketched Newton, its preconditioned-CG variant, anchors);
``theory.appendix`` follows appendix C object by object; ``theory.bounds`` gives explicit
constants for Lemmas C.15 and C.16; ``theory.autodiff`` and ``theory.symbolic`` are the
independent references the tests compare against.
"""

from theory.objective import SoftmaxRegression
from theory.solve import solve
from theory.validation import PrecisionWarning

__all__ = ["SoftmaxRegression", "solve", "PrecisionWarning"]
