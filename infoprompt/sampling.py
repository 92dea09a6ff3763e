"""Few-shot draws: the training and validation examples of a run, both from the training file.

``draw(examples, shots, val_shots, seed, n_labels)`` returns ``(train, val)``, both from the
training file, disjoint, each shuffled, and the same for the same arguments whatever the global
random state (``numpy.random.default_rng(seed)``). With C classes:

balanced (default)
    shots // C examples of every class; the other shots % C go one each to classes chosen by the
    seed (preferring classes with examples to spare). 64 shots over 2 classes: 32 + 32; over 6
    classes: 11, 11, 11, 11, 10, 10 in a seed-chosen order.
proportional
    class c, with n_c of the N examples, gets within one of its quota shots * n_c / N, and at least
    one (``_allocate``): stratified sampling, the trainer's rule before the balanced default.

The validation draw applies the same rule with ``val_shots`` to the examples the training draw
left (every class at least once, but a class with a single example in the file, which a
proportional draw gives to training: SemEval's Entity-Destination(e2,e1)); ``val_shots=0`` gives
an empty validation list. ``shots=0`` trains on all examples: the
validation draw is held out first and train is the rest (at least one per class). Within a class
the draw is uniform without replacement. A DataError names every class (id, and name when
``label_names`` is given) with too few examples for training + validation together.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from infoprompt.data import Example
from infoprompt.errors import DataError

SAMPLING = ("balanced", "proportional")


def draw(
    examples: Sequence[Example],
    shots: int,
    val_shots: int,
    seed: int,
    n_labels: int,
    sampling: str = "balanced",
    label_names: Sequence[str] | None = None,
) -> tuple[list[Example], list[Example]]:
    """(train, val): a few-shot training draw and a disjoint validation draw from ``examples``.

    Both come from the given (training-file) examples; rules in the module docstring ("Few-shot
    draws"). ``sampling="balanced"``: shots // C per class, the other shots % C one each to classes
    chosen by the seed; ``"proportional"``: sizes close to each class's share (``_allocate``).
    The validation draw applies the same rule with ``val_shots`` to what the training draw left;
    ``val_shots=0`` gives no validation draw (an empty list). ``shots=0`` trains on everything:
    the validation draw is held out first and train is the rest. Within a class the draw is uniform
    without replacement; each list is shuffled. The same arguments give the same lists, whatever
    the global random state (``numpy.random.default_rng(seed)``). ``label_names`` (label id ->
    name) only makes the error messages name the classes.
    """
    y = _check_draw(examples, shots, val_shots, n_labels, sampling, label_names)
    counts = np.bincount(y, minlength=n_labels)
    rng = np.random.default_rng(seed)
    val_reserve = val_shots // n_labels if sampling == "balanced" and shots else 0
    train_sizes = _sizes(counts, shots, rng, sampling, val_reserve) if shots else None
    left = counts if train_sizes is None else np.maximum(counts - train_sizes, 0)
    val_sizes = _sizes(left, val_shots, rng, sampling, 0) if val_shots else np.zeros_like(counts)
    _check_class_sizes(counts, train_sizes, val_sizes, shots, val_shots, sampling, label_names)
    pools = [np.flatnonzero(y == c) for c in range(n_labels)]
    if train_sizes is None:
        val = _take(pools, val_sizes, rng)
        train = rng.permutation(np.setdiff1d(np.arange(len(y)), val))
    else:
        train = _take(pools, train_sizes, rng)
        val = _take([np.setdiff1d(pool, train) for pool in pools], val_sizes, rng)
    return [examples[i] for i in train], [examples[i] for i in val]


def _class_name(c: int, label_names: Sequence[str] | None) -> str:
    """``class 3`` or ``class 3 ('DESC')``."""
    return f"class {c}" + (f" ({label_names[c]!r})" if label_names is not None else "")


def _check_draw(
    examples: Sequence[Example],
    shots: int,
    val_shots: int,
    n_labels: int,
    sampling: str,
    label_names: Sequence[str] | None,
) -> np.ndarray:
    """The labels of ``examples``, once the request is checked to make sense at all."""
    if sampling not in SAMPLING:
        raise DataError(f"few-shot: unknown sampling {sampling!r}; use one of {SAMPLING}")
    if n_labels < 1:
        raise DataError(f"few-shot: n_labels must be at least 1; got {n_labels}")
    if label_names is not None and len(label_names) != n_labels:
        raise DataError(f"few-shot: {len(label_names)} label_names for n_labels={n_labels}")
    for what, k in (("shots", shots), ("val_shots", val_shots)):
        if k < 0:
            raise DataError(f"few-shot: {what} must be 0 or more; got {k}")
        if 0 < k < n_labels:
            raise DataError(
                f"few-shot: {k} {what} cannot cover {n_labels} classes; ask for at least "
                f"{n_labels} {what} (one per class), or 0"
            )
    if shots > len(examples):
        raise DataError(
            f"few-shot: {shots} shots requested but only {len(examples)} examples are available; "
            "ask for fewer shots or use the full training set (shots=0)"
        )
    if shots + val_shots > len(examples) - (shots == 0) * n_labels:
        raise DataError(
            f"few-shot: {shots} training + {val_shots} validation shots requested but only "
            f"{len(examples)} examples are available"
            + (", and training needs at least one per class" if shots == 0 else "")
            + "; ask for fewer val_shots (--val-shots) or shots"
        )
    y = np.array([ex.label for ex in examples], dtype=int)
    if len(y) and (y.min() < 0 or y.max() >= n_labels):
        raise DataError(f"few-shot: labels must lie in 0..{n_labels - 1}; got {sorted(set(y))}")
    empty = np.flatnonzero(np.bincount(y, minlength=n_labels) == 0).tolist()
    if empty:
        names = f" {[label_names[c] for c in empty]}" if label_names is not None else ""
        raise DataError(
            f"few-shot: class id(s) {empty}{names} have no example, so not every class can be "
            "drawn; check the labels of the training file or n_labels"
        )
    return y


def _sizes(
    counts: np.ndarray, shots: int, rng: np.random.Generator, sampling: str, reserve: int
) -> np.ndarray:
    """Per-class draw sizes summing to ``shots`` (not checked against ``counts``).

    Proportional: ``_allocate`` (which needs every count >= 1; a class with none gets 0).
    Balanced: shots // C each; the other shots % C go one each to classes chosen by ``rng``,
    first among those with more than ``reserve`` + shots // C examples (room for them and a later
    draw's ``reserve``), then among the others.
    """
    if sampling == "proportional":
        return _allocate(counts, shots) if counts.sum() else np.zeros_like(counts)
    base, extra = divmod(shots, len(counts))
    sizes = np.full(len(counts), base)
    roomy = counts > base + reserve
    order = np.concatenate(
        [rng.permutation(np.flatnonzero(roomy)), rng.permutation(np.flatnonzero(~roomy))]
    )
    sizes[order[:extra]] += 1
    return sizes


def _check_class_sizes(
    counts: np.ndarray,
    train: np.ndarray | None,
    val: np.ndarray,
    shots: int,
    val_shots: int,
    sampling: str,
    label_names: Sequence[str] | None,
) -> None:
    """DataError naming each class with too few examples for the training + validation draws.

    Training takes ``train`` per class (``None``: all but the validation draw, which must leave at
    least one), validation ``val`` (at least one per class when ``val_shots > 0``, but for a class
    with a single example in the file: that example trains and validation goes without the class).
    """
    need_val = np.where(counts > 1, np.maximum(val, 1), val) if val_shots else val
    need = need_val + (1 if train is None else train)
    short = np.flatnonzero(need > counts).tolist()
    if not short:
        return
    lines = []
    for c in short:
        t = "at least 1" if train is None else str(train[c])
        lines.append(
            f"{_class_name(c, label_names)} has {counts[c]} example(s) but needs {need[c]} "
            f"({t} for training + {need_val[c]} for validation)"
        )
    fixes = "ask for fewer shots or val_shots (--shots, --val-shots), "
    fixes += "use --sampling proportional, " if sampling == "balanced" else ""
    raise DataError(
        f"few-shot: {shots} training + {val_shots} validation shots over {len(counts)} classes "
        f"({sampling}): "
        + "; ".join(lines)
        + f". To fix: {fixes}or add examples of "
        + ("that class" if len(short) == 1 else "those classes")
    )


def _take(pools: list[np.ndarray], sizes: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``sizes[c]`` indices drawn uniformly without replacement from each class pool, shuffled."""
    if not sizes.sum():
        return np.zeros(0, dtype=int)
    picked = [
        i for pool, a in zip(pools, sizes, strict=True) for i in rng.choice(pool, a, replace=False)
    ]
    return rng.permutation(np.array(picked, dtype=int))


def _allocate(counts: np.ndarray, shots: int) -> np.ndarray:
    """Per-class sample sizes a (K,): sum a = shots, 1 <= a_c <= counts_c, a close to the quota.

    Start from a = clip(floor(q), 1, counts) with quota q = shots * counts / sum(counts), then add
    one to the class furthest below its quota (max q - a, room left) or take one from the class
    furthest above it (max a - q, a > 1) until sum a = shots. Requires K <= shots <= sum(counts).
    """
    quota = shots * counts / counts.sum()
    alloc = np.clip(np.floor(quota), 1, counts).astype(int)
    while alloc.sum() < shots:
        alloc[np.argmax(np.where(alloc < counts, quota - alloc, -np.inf))] += 1
    while alloc.sum() > shots:
        alloc[np.argmax(np.where(alloc > 1, alloc - quota, -np.inf))] -= 1
    return alloc
