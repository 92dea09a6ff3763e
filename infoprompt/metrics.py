"""Classification metrics of the InfoPrompt benchmarks, in numpy (scores are fractions in [0, 1]).

Conventions: ``y_true``, ``y_pred`` are integer class ids of shape (N,), N >= 1; ``labels`` maps an
id to its name (needed by ``semeval_macro_f1`` only). A ratio whose denominator is 0 counts as 0
(scikit-learn's ``zero_division=0``).

- ``accuracy``: mean(y_pred == y_true) (SST-2, RTE, MRPC in GLUE).
- ``f1``: binary F1 of class 1, 2 TP / (2 TP + FP + FN) (MRPC in GLUE).
- ``mcc``: Matthews correlation (CoLA in GLUE), the K-class form of Gorodkin (2004),
  (N c - p·t) / sqrt((N² - p·p)(N² - t·t)), c = #correct, p_k, t_k = #predicted, #true in class k.
- ``macro_f1``: unweighted mean of per-class F1 over the classes in y_true or y_pred.
- ``semeval_macro_f1``: the official score of SemEval-2010 Task 8 (Hendrickx et al. 2010),
  scorer v1.2's "(9+1)-way evaluation with directionality taken into account", macro-averaged F1.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

import numpy as np


def accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Fraction of exact matches."""
    return float(np.mean(y_true == y_pred))


def _ratio(num: float, den: float) -> float:
    return float(num / den) if den else 0.0


def f1(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Binary F1 of the positive class 1: 2 TP / (2 TP + FP + FN)."""
    tp = np.sum((y_pred == 1) & (y_true == 1))
    return _ratio(2 * tp, np.sum(y_pred == 1) + np.sum(y_true == 1))


def mcc(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Matthews correlation, K classes: (N c - p·t) / sqrt((N² - p·p)(N² - t·t)); 0 if undefined."""
    k = int(max(y_true.max(), y_pred.max())) + 1
    t = np.bincount(y_true, minlength=k).astype(float)  # (K,) true counts
    p = np.bincount(y_pred, minlength=k).astype(float)  # (K,) predicted counts
    n, c = float(len(y_true)), float(np.sum(y_true == y_pred))
    den = np.sqrt((n * n - p @ p) * (n * n - t @ t))
    return _ratio(n * c - p @ t, den)


def _f1_per_class(correct: np.ndarray, proposed: np.ndarray, actual: np.ndarray) -> np.ndarray:
    """F1 = 2 P R / (P + R) per class, P = correct / proposed, R = correct / actual, 0 for 0/0."""
    p = np.divide(correct, proposed, out=np.zeros(len(correct)), where=proposed > 0)
    r = np.divide(correct, actual, out=np.zeros(len(correct)), where=actual > 0)
    return np.divide(2 * p * r, p + r, out=np.zeros(len(correct)), where=p + r > 0)


def macro_f1(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Mean per-class F1 over the classes present in y_true or y_pred."""
    classes = np.union1d(y_true, y_pred)
    correct = np.array([np.sum((y_true == c) & (y_pred == c)) for c in classes])
    proposed = np.array([np.sum(y_pred == c) for c in classes])
    actual = np.array([np.sum(y_true == c) for c in classes])
    return float(np.mean(_f1_per_class(correct, proposed, actual)))


_DIRECTION = re.compile(r"\(e[12],e[12]\)$")


def semeval_macro_f1(y_true: np.ndarray, y_pred: np.ndarray, labels: Sequence[str]) -> float:
    """Official SemEval-2010 Task 8 score (scorer v1.2, evaluation (iii)), as a fraction.

    Relation type r of a label = the label without its direction ``(e1,e2)``/``(e2,e1)``. For each
    type r != "Other" that occurs in y_true: correct_r = #(y_pred == y_true, type r), proposed_r =
    #(predicted type r) (a right type in the wrong direction counts here but is not correct),
    actual_r = #(true type r); F1_r from P = correct/proposed and R = correct/actual. The score is
    the mean of F1_r over those types (types seen only in y_pred do not enter the mean).
    """
    names = np.array([_DIRECTION.sub("", name) for name in labels])
    gold, pred = names[y_true], names[y_pred]
    types = [r for r in np.unique(gold) if r != "Other"]
    if not types:
        return 0.0
    correct = np.array([np.sum((y_true == y_pred) & (gold == r)) for r in types])
    proposed = np.array([np.sum(pred == r) for r in types])
    actual = np.array([np.sum(gold == r) for r in types])
    return float(np.mean(_f1_per_class(correct, proposed, actual)))


METRICS: dict[str, Callable[..., float]] = {
    "accuracy": accuracy,
    "f1": f1,
    "mcc": mcc,
    "macro_f1": macro_f1,
    "semeval_macro_f1": semeval_macro_f1,
}


def compute(
    name: str, y_true: Sequence[int], y_pred: Sequence[int], labels: Sequence[str] | None = None
) -> float:
    """The metric ``name`` (a key of ``METRICS``) of predictions ``y_pred`` against ``y_true``."""
    if name not in METRICS:
        raise ValueError(f"unknown metric {name!r}; known metrics: {', '.join(METRICS)}")
    t, p = _as_ids(y_true, "y_true"), _as_ids(y_pred, "y_pred")
    if t.shape != p.shape:
        raise ValueError(f"y_true has {len(t)} entries but y_pred has {len(p)}; they must match")
    if name != "semeval_macro_f1":
        return METRICS[name](t, p)
    if labels is None:
        raise ValueError("semeval_macro_f1 needs labels (id -> relation name, e.g. spec.labels)")
    if max(t.max(), p.max()) >= len(labels):
        raise ValueError(f"class id {max(t.max(), p.max())} has no name in {len(labels)} labels")
    return semeval_macro_f1(t, p, labels)


def compute_all(
    names: Sequence[str],
    y_true: Sequence[int],
    y_pred: Sequence[int],
    labels: Sequence[str] | None = None,
) -> dict[str, float]:
    """``{name: compute(name, ...)}`` for every metric in ``names``."""
    return {name: compute(name, y_true, y_pred, labels) for name in names}


def _as_ids(y: Sequence[int], what: str) -> np.ndarray:
    """A non-empty 1-D array of non-negative integer class ids."""
    a = np.asarray(y)
    if a.ndim != 1 or a.size == 0:
        raise ValueError(f"{what} must be a non-empty 1-D sequence of class ids; shape {a.shape}")
    if not np.issubdtype(a.dtype, np.integer) or a.min() < 0:
        raise ValueError(f"{what} must hold non-negative integer class ids; got dtype {a.dtype}")
    return a.astype(np.int64)
