"""Metrics against hand-worked cases, an independent MCC formula, the official SemEval scorer."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from infoprompt.metrics import compute, compute_all
from infoprompt.tasks import SEMEVAL_LABELS

SCORER = "SemEval2010_task8/semeval2010_task8_scorer-v1.2.pl"
# The official scorer is not ours to ship: $SEMEVAL_SCORER, else the data folder beside the
# repository (../shared/data, as in the README); the comparison is skipped without either.
SCORER_PLACES = [
    *([Path(os.environ["SEMEVAL_SCORER"])] if os.environ.get("SEMEVAL_SCORER") else []),
    Path(__file__).resolve().parents[1].parent / "shared" / "data" / SCORER,
]


def test_accuracy_by_hand():
    assert compute("accuracy", [1, 0, 1, 1], [1, 1, 1, 0]) == 0.5


def test_f1_by_hand():
    # TP = 2, FP = 1, FN = 1: P = R = 2/3
    assert compute("f1", [1, 1, 0, 0, 1], [1, 0, 1, 0, 1]) == pytest.approx(2 / 3)
    assert compute("f1", [0, 0], [0, 0]) == 0.0  # no positive anywhere: 0/0 counts as 0


def test_mcc_by_hand():
    # TP = 1, TN = 2, FP = 0, FN = 1: (1*2 - 0*1) / sqrt(1 * 2 * 2 * 3)
    assert compute("mcc", [1, 1, 0, 0], [1, 0, 0, 0]) == pytest.approx(2 / np.sqrt(12))
    assert compute("mcc", [0, 1, 0, 1], [0, 1, 0, 1]) == pytest.approx(1.0)
    assert compute("mcc", [0, 1, 0, 1], [1, 0, 1, 0]) == pytest.approx(-1.0)
    assert compute("mcc", [0, 1, 0, 1], [1, 1, 1, 1]) == 0.0  # constant prediction


@settings(derandomize=True, max_examples=60, deadline=None)
@given(st.data())
def test_mcc_equals_correlation_of_one_hot_labels(data):
    """Gorodkin's R_K = cov(X, Y) / sqrt(cov(X, X) cov(Y, Y)), X, Y one-hot (N, K)."""
    k = data.draw(st.integers(2, 4), label="k")
    ids = hnp.arrays(
        np.int64, data.draw(st.integers(2, 30), label="n"), elements=st.integers(0, k - 1)
    )
    y_true, y_pred = data.draw(ids, label="y_true"), data.draw(ids, label="y_pred")
    x, y = np.eye(k)[y_true], np.eye(k)[y_pred]
    x, y = x - x.mean(axis=0), y - y.mean(axis=0)
    den = np.sqrt(np.sum(x * x) * np.sum(y * y))
    expected = np.sum(x * y) / den if den > 0 else 0.0
    assert compute("mcc", y_true, y_pred) == pytest.approx(expected, abs=1e-12)


def test_macro_f1_by_hand():
    # class 0: P 1, R 1/2 -> 2/3; class 1: P 1/3, R 1 -> 1/2; class 2: never predicted -> 0
    assert compute("macro_f1", [0, 0, 1, 2], [0, 1, 1, 1]) == pytest.approx((2 / 3 + 1 / 2) / 3)


def test_semeval_macro_f1_by_hand():
    labels = ["A-B(e1,e2)", "A-B(e2,e1)", "C-D(e1,e2)", "C-D(e2,e1)", "Other", "E-F(e1,e2)"]
    gold = [0, 0, 3, 4]
    pred = [0, 1, 3, 5]
    # A-B: correct 1, proposed 2 (one in the wrong direction), actual 2 -> F1 1/2
    # C-D: correct 1, proposed 1, actual 1 -> F1 1; Other and E-F (not in gold) are not averaged
    assert compute("semeval_macro_f1", gold, pred, labels) == pytest.approx(0.75)
    assert compute("semeval_macro_f1", [4], [4], labels) == 0.0  # only Other in gold


def test_compute_all():
    assert compute_all(["accuracy", "f1"], [1, 0], [1, 1]) == {"accuracy": 0.5, "f1": 2 / 3}


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (("auc", [1], [1]), "unknown metric 'auc'; known metrics: accuracy, f1, mcc"),
        (("accuracy", [1, 0], [1]), "y_true has 2 entries but y_pred has 1"),
        (("accuracy", [], []), "non-empty"),
        (("accuracy", [0.5], [1]), "integer class ids"),
        (("semeval_macro_f1", [1], [1]), "needs labels"),
        (("semeval_macro_f1", [1], [7], ["a", "b"]), "class id 7 has no name"),
    ],
)
def test_bad_input(args, problem):
    with pytest.raises(ValueError, match=problem):
        compute(*args)


def official_score(scorer: Path, tmp_path: Path, gold: np.ndarray, pred: np.ndarray) -> float:
    """Run the official Perl scorer on id<TAB>label files; return its macro-F1 (percent)."""
    for name, ids in (("key.txt", gold), ("proposed.txt", pred)):
        rows = "".join(f"{i + 1}\t{SEMEVAL_LABELS[c]}\n" for i, c in enumerate(ids))
        (tmp_path / name).write_text(rows)
    out = subprocess.run(
        ["perl", str(scorer), str(tmp_path / "proposed.txt"), str(tmp_path / "key.txt")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return float(re.search(r"macro-averaged F1 = ([0-9.]+)%", out).group(1))


@pytest.mark.parametrize(("n", "seed"), [(25, 0), (200, 1), (2717, 2)])
def test_semeval_macro_f1_matches_official_scorer(tmp_path, n, seed):
    scorer = next((p for p in SCORER_PLACES if p.is_file()), None)
    if scorer is None or shutil.which("perl") is None:
        pytest.skip(
            "official SemEval-2010 Task 8 scorer ($SEMEVAL_SCORER or ../shared/data) or perl "
            "not available"
        )
    rng = np.random.default_rng(seed)
    gold = rng.integers(0, 19, size=n)
    pred = np.where(rng.random(n) < 0.5, gold, rng.integers(0, 19, size=n))
    flip = (rng.random(n) < 0.2) & (pred < 18)  # same relation, other direction
    pred = np.where(flip, pred ^ 1, pred)
    ours = 100 * compute("semeval_macro_f1", gold, pred, SEMEVAL_LABELS)
    assert abs(ours - official_score(scorer, tmp_path, gold, pred)) <= 0.005 + 1e-4
