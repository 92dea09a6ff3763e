"""The "tsv" task: a user's own single-sentence or sentence-pair classification data.

Your own task: tsv
------------------
``load_split("tsv", data_dir, split, tsv=TsvFormat(text_columns, label_column, label_words,
template))`` reads ``data_dir/train.tsv`` and ``data_dir/dev.tsv``: UTF-8, tab-separated, a header
row naming the columns, then one example per line, every row with as many fields as the header
(blank lines are skipped; other columns are ignored). ``text_columns`` names one column (a single
sentence, ``<A>``; default ``("sentence",)``) or two (a pair, ``<A>`` and ``<B>``);
``label_column`` (default ``"label"``) holds the labels, arbitrary non-empty strings. The label set
is the sorted set of train.tsv's labels (or ``labels``); every dev label must occur in train.tsv.
Metrics: accuracy (main) and macro-F1. Default template ``"<P> <A> <P> <MASK> <P>"``, for pairs
``"<P> <A> <P> <MASK> , <P> <B> <P>"``; ``label_words``, if given, are one word per label in the
sorted label order. Example (a question-type task)::

    question<TAB>label
    How far is it from Denver to Aspen ?<TAB>NUM
    Who wrote Hamlet ?<TAB>HUM

Errors (DataError, each naming file and line, before any model loads): a missing column (the
message lists the header's columns), an empty or header-only file, a row with the wrong number of
fields, a file that is not UTF-8, an empty label, a dev label not in train.tsv, label words that do
not match the labels, a template the grammar rejects.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from infoprompt.data import Example
from infoprompt.errors import DataError
from infoprompt.files import read_lines, split_paths
from infoprompt.tasks import TaskSpec

_TSV_TEMPLATES = {1: "<P> <A> <P> <MASK> <P>", 2: "<P> <A> <P> <MASK> , <P> <B> <P>"}


def _names(value: str | Sequence[str] | None) -> tuple[str, ...] | None:
    """A tuple of names from a tuple, a list or a comma-separated string (each stripped)."""
    if value is None:
        return None
    items = value.split(",") if isinstance(value, str) else value
    return tuple(str(v).strip() for v in items)


@dataclass(frozen=True)
class TsvFormat:
    """How to read the "tsv" task's ``train.tsv`` and ``dev.tsv`` (see the module docstring).

    ``text_columns``: one column (single sentence, ``<A>``) or two (a pair, ``<A>`` and ``<B>``);
    ``label_column``: the column of the label strings; ``label_words``: one verbalizer word per
    label, in the sorted label order (None: the model's default); ``template``: None for the
    default (``"<P> <A> <P> <MASK> <P>"``, pairs ``"<P> <A> <P> <MASK> , <P> <B> <P>"``).
    Sequences may also be given as lists or comma-separated strings (``"question,answer"``).
    """

    text_columns: tuple[str, ...] = ("sentence",)
    label_column: str = "label"
    label_words: tuple[str, ...] | None = None
    template: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "text_columns", _names(self.text_columns))
        object.__setattr__(self, "label_words", _names(self.label_words))
        object.__setattr__(self, "label_column", str(self.label_column).strip())
        problems = []
        if len(self.text_columns) not in (1, 2):
            problems.append(
                f"text_columns must name 1 column (single sentence) or 2 (a pair); got "
                f"{len(self.text_columns)}: {self.text_columns}"
            )
        names = (*self.text_columns, self.label_column)
        if len(set(names)) != len(names) or "" in names:
            problems.append("the text and label columns must be distinct, non-empty names")
        if problems:
            raise DataError(
                f"task 'tsv': text_columns={self.text_columns}, label_column="
                f"{self.label_column!r}: "
                + "; ".join(problems)
                + " (--text-columns a[,b], --label-column)"
            )

    @property
    def columns(self) -> tuple[str, ...]:
        """The columns read: the text columns, then the label column."""
        return (*self.text_columns, self.label_column)


def load_tsv(
    data_dir: Path, split: str, labels: Sequence[str] | None, fmt: TsvFormat
) -> tuple[TaskSpec, list[Example]]:
    """The "tsv" task's spec and one split's examples (``load_split`` with task "tsv")."""
    path = split_paths("tsv", data_dir, split)[0]
    records = _tsv_records(path, fmt)
    if labels is None:
        train_path = data_dir / "train.tsv"
        if split != "train" and not train_path.is_file():
            raise DataError(
                f"task 'tsv': the label set comes from {train_path}, which does not exist; "
                "add it or pass labels=... (the train labels) to load_split"
            )
        train = records if split == "train" else _tsv_records(train_path, fmt)
        names = tuple(sorted({label for _, _, label in train}))
    else:
        names = tuple(labels)
    spec = tsv_spec(fmt, names, data_dir / "train.tsv")
    from_train = labels is None or split != "train"
    return spec, [
        Example(
            texts[0],
            texts[1] if len(texts) == 2 else None,
            label=_tsv_label_id(label, names, path, i, from_train),
        )
        for i, texts, label in records
    ]


def _tsv_records(path: Path, fmt: TsvFormat) -> list[tuple[int, tuple[str, ...], str]]:
    """(line, texts, label) per example of a "tsv" file: header checked, every row checked."""
    lines = [(i, line) for i, line in read_lines(path) if line.strip()]
    if not lines:
        raise DataError(
            f"{path}: empty file; expected a header row naming the columns "
            f"({', '.join(fmt.columns)}, tab-separated), then one example per line"
        )
    header = [name.strip() for name in lines[0][1].split("\t")]
    where = _tsv_columns(path, lines[0][0], header, fmt)
    if len(lines) == 1:
        raise DataError(f"{path}: only a header (line {lines[0][0]}), no examples")
    records = []
    for i, line in lines[1:]:
        cols = line.split("\t")
        if len(cols) != len(header):
            raise DataError(
                f"{path}, line {i}: expected {len(header)} tab-separated fields (as in the "
                f"header, line {lines[0][0]}), got {len(cols)}. Fix or remove that row (a stray "
                "tab, a missing field, or a line break inside a field?)."
            )
        texts = tuple(cols[where[c]].strip() for c in fmt.text_columns)
        label = cols[where[fmt.label_column]].strip()
        if not label:
            raise DataError(f"{path}, line {i}: empty label (column {fmt.label_column!r})")
        records.append((i, texts, label))
    return records


def _tsv_columns(path: Path, line: int, header: list[str], fmt: TsvFormat) -> dict[str, int]:
    """Column name -> index in the header, for the columns ``fmt`` reads."""
    twice = sorted({name for name in header if header.count(name) > 1})
    if twice:
        raise DataError(
            f"{path}, line {line}: the header names the column(s) {twice} twice or more"
        )
    missing = [c for c in fmt.columns if c not in header]
    if missing:
        flags = "--text-columns" if fmt.label_column not in missing else "--label-column"
        raise DataError(
            f"{path}, line {line}: no column {', '.join(map(repr, missing))} in the header; its "
            f"columns: {', '.join(header)}. Name the columns to read with text_columns= and "
            f"label_column= ({flags}), or fix the header."
        )
    return {name: header.index(name) for name in fmt.columns}


def _tsv_label_id(
    value: str, names: tuple[str, ...], path: Path, line: int, from_train: bool
) -> int:
    """Index of ``value`` in the label set; DataError naming file, line, label and the labels."""
    if value in names:
        return names.index(value)
    if not from_train:
        raise DataError(
            f"{path}, line {line}: label {value!r} is not in labels=({', '.join(names)}); "
            "pass every label of the file, or leave labels out to take them from train.tsv"
        )
    raise DataError(
        f"{path}, line {line}: label {value!r} does not occur in train.tsv; the train labels: "
        f"{', '.join(names)}. Every label must be a train label: fix the row, or add examples of "
        f"{value!r} to train.tsv."
    )


def tsv_spec(fmt: TsvFormat, labels: tuple[str, ...], train_path: Path) -> TaskSpec:
    """The "tsv" task's spec: ``labels``, ``fmt``'s label words and template; every check as
    DataError (``TaskSpec`` raises ValueError)."""
    if len(labels) < 2 or len(set(labels)) != len(labels):
        raise DataError(
            f"task 'tsv': the labels {labels} (from labels=... or {train_path}) must be at least "
            "two distinct strings: a classifier needs two classes"
        )
    if fmt.label_words is not None and len(fmt.label_words) != len(labels):
        raise DataError(
            f"task 'tsv': {len(fmt.label_words)} label words {fmt.label_words} for "
            f"{len(labels)} labels; give one word per label, in the sorted label order: "
            f"{', '.join(labels)} (--label-words)"
        )
    template = fmt.template or _TSV_TEMPLATES[len(fmt.text_columns)]
    spans = [slot for slot in ("<E1>", "<E2>") if slot in template.split()]
    if spans:
        raise DataError(f"task 'tsv': template {template!r} uses {spans}; tsv rows have no spans")
    pair = len(fmt.text_columns) == 2
    try:
        return TaskSpec(
            "tsv", labels, fmt.label_words, template, ("accuracy", "macro_f1"), "accuracy", pair
        )
    except ValueError as e:
        hint = " (<B> is the second text column)" if "<B>" in str(e) else ""
        raise DataError(f"{e}{hint}; fix --template or --text-columns") from None
