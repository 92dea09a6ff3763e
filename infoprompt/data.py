"""Tasks, templates, dataset readers and few-shot sampling for the InfoPrompt trainer.

The tasks are those of InfoPrompt (Wu et al. 2023, arXiv 2306.04933): four GLUE sets (SST-2, RTE,
MRPC, CoLA), SemEval-2010 Task 8 relation classification, two generic JSONL tasks ("relation",
"entity") for the paper's ACE2005 relation extraction and entity typing, which the LDC licenses and
a user converts to JSONL (format below), and "tsv", any single-sentence or sentence-pair
classification data set of the user's (format below; not in ``TASKS``: its labels come from data).

Template grammar
----------------
A template is a string of whitespace-separated items, read left to right:

``<P>``
    a prompt slot group. The model spreads its ``n_p`` prompt vectors evenly over the groups, in
    order (WARP, Hambardzumyan et al. 2021, puts prompts before, around and after the mask).
``<A>``, ``<B>``
    the example's ``text_a`` and ``text_b``.
``<MASK>``
    the tokenizer's mask token; the classifier reads the hidden state there.
``<E1>``, ``<E2>``
    the text of ``Example.spans[0]`` and ``Example.spans[1]`` (entity mentions in ``text_a``).
anything else
    literal text, e.g. ``It was`` or ``?``.

The default templates are WARP-style with the wording of LM-BFF (Gao et al. 2021): SST-2
``"S1 It was <mask> ."``, CoLA ``"S1 This is <mask> ."``, MRPC ``"S1 <mask> , S2"``, RTE
``"S1 ? <mask> , S2"``, with prompt groups placed around the mask and between the sentences.
Relation tasks ask for the relation between the two mentions (``<E1> <MASK> <E2>``) and entity
typing for the type of the mention (``<E1> is a <MASK> .``). ``TASKS`` holds data only; override a
template with ``dataclasses.replace(TASKS["rte"], template="<P> <A> <P> <B> <P> <MASK> <P>")``.

Labels
------
Label id = index in ``TaskSpec.labels``. SST-2: 0 = negative, 1 = positive (words terrible/great).
CoLA: 0 = unacceptable, 1 = acceptable (incorrect/correct). MRPC: 0 = not paraphrase,
1 = paraphrase (No/Yes). RTE: 0 = entailment, 1 = not_entailment (Yes/No; LM-BFF's words).
SemEval: the 18 directed relations ``"Type(e1,e2)"``/``"Type(e2,e1)"`` then ``"Other"`` (19 ids).
Relation / entity / tsv: the labels of the train file, sorted (or the ``labels`` argument).

Files (``data_dir`` is one task's folder)
-----------------------------------------
sst2      train.tsv, dev.tsv; header ``sentence<TAB>label``.
rte       train.tsv, dev.tsv; header ``index sentence1 sentence2 label`` (tab-separated).
mrpc      train.tsv, dev.tsv; header, after a UTF-8 BOM,
          ``Quality #1 ID #2 ID #1 String #2 String``.
cola      train.tsv; dev = dev.tsv + out_of_domain_dev.tsv (GLUE's 1,043 dev rows); no header,
          ``source label star sentence``.
semeval   TRAIN_FILE.TXT (train), TEST_FILE_FULL.TXT (dev and test: the task has no dev set); blocks
          of 4 lines: ``id<TAB>"sentence with <e1>..</e1> and <e2>..</e2>"``, relation,
          ``Comment: ...``, blank line.
relation  train.jsonl, dev.jsonl; one object per line,
          ``{"text": str, "head": [start, end], "tail": [start, end], "label": str}``.
entity    train.jsonl, dev.jsonl; ``{"text": str, "span": [start, end], "label": str}``.

tsv       train.tsv, dev.tsv; see below.

JSONL spans are character offsets into ``text``, end exclusive (``text[start:end]`` is the mention).
Every file must be UTF-8 text and hold at least one example (a header alone is an error).

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

Few-shot draws (``draw``)
-------------------------
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

import dataclasses
import io
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from infoprompt.metrics import METRICS

TEMPLATE_SLOTS = ("<P>", "<A>", "<B>", "<MASK>", "<E1>", "<E2>")


class DataError(ValueError):
    """Bad task, file or sampling request; the message names the file, the line and the fix."""


@dataclass(frozen=True)
class Example:
    """One example; ``spans`` are character spans ``(start, end)`` in ``text_a`` (E1, then E2)."""

    text_a: str
    text_b: str | None = None
    label: int = 0
    spans: tuple[tuple[int, int], ...] = ()


@dataclass(frozen=True)
class TaskSpec:
    """A task: its labels, verbalizer, template (grammar in the module docstring) and metrics."""

    name: str
    labels: tuple[str, ...]
    label_words: tuple[str, ...] | None
    template: str
    metrics: tuple[str, ...]
    main_metric: str
    pair: bool

    def __post_init__(self) -> None:
        items = self.template.split()
        problems = []
        if items.count("<MASK>") != 1:
            problems.append("it needs exactly one <MASK>")
        typos = [t for t in items if re.fullmatch(r"<\w+>", t) and t not in TEMPLATE_SLOTS]
        if typos:
            problems.append(f"unknown slots {typos} (slots: {' '.join(TEMPLATE_SLOTS)})")
        if "<A>" not in items:
            problems.append("it needs <A>")
        if ("<B>" in items) != self.pair:
            problems.append("<B> must appear if and only if the task is a pair task")
        if self.label_words is not None and len(self.label_words) != len(self.labels):
            problems.append(f"{len(self.label_words)} label words for {len(self.labels)} labels")
        unknown = [m for m in self.metrics if m not in METRICS]
        if unknown:
            problems.append(f"unknown metrics {unknown} (known: {sorted(METRICS)})")
        if self.main_metric not in self.metrics:
            problems.append(f"main_metric {self.main_metric!r} is not in metrics {self.metrics}")
        if problems:
            raise ValueError(
                f"task {self.name!r}, template {self.template!r}: " + "; ".join(problems)
            )


SEMEVAL_RELATIONS = (
    "Cause-Effect",
    "Component-Whole",
    "Content-Container",
    "Entity-Destination",
    "Entity-Origin",
    "Instrument-Agency",
    "Member-Collection",
    "Message-Topic",
    "Product-Producer",
)
SEMEVAL_LABELS = tuple(
    f"{r}({a},{b})" for r in SEMEVAL_RELATIONS for a, b in (("e1", "e2"), ("e2", "e1"))
) + ("Other",)

_RELATION_TEMPLATE = "<P> <A> <P> <E1> <MASK> <E2> <P>"

TASKS: dict[str, TaskSpec] = {
    "sst2": TaskSpec(
        "sst2",
        ("negative", "positive"),
        ("terrible", "great"),
        "<P> <A> <P> It was <MASK> . <P>",
        ("accuracy",),
        "accuracy",
        pair=False,
    ),
    "rte": TaskSpec(
        "rte",
        ("entailment", "not_entailment"),
        ("Yes", "No"),
        "<P> <A> ? <P> <MASK> , <P> <B> <P>",
        ("accuracy",),
        "accuracy",
        pair=True,
    ),
    "mrpc": TaskSpec(
        "mrpc",
        ("not_paraphrase", "paraphrase"),
        ("No", "Yes"),
        "<P> <A> <P> <MASK> , <P> <B> <P>",
        ("accuracy", "f1"),
        "accuracy",
        pair=True,
    ),
    "cola": TaskSpec(
        "cola",
        ("unacceptable", "acceptable"),
        ("incorrect", "correct"),
        "<P> <A> <P> This is <MASK> . <P>",
        ("mcc", "accuracy"),
        "mcc",
        pair=False,
    ),
    "semeval": TaskSpec(
        "semeval",
        SEMEVAL_LABELS,
        None,
        _RELATION_TEMPLATE,
        ("semeval_macro_f1", "accuracy"),
        "semeval_macro_f1",
        pair=False,
    ),
    "relation": TaskSpec(
        "relation",
        (),
        None,
        _RELATION_TEMPLATE,
        ("macro_f1", "accuracy"),
        "macro_f1",
        pair=False,
    ),
    "entity": TaskSpec(
        "entity",
        (),
        None,
        "<P> <A> <P> <E1> is a <MASK> . <P>",
        ("accuracy", "macro_f1"),
        "accuracy",
        pair=False,
    ),
}

_FILES: dict[str, dict[str, tuple[str, ...]]] = {
    "sst2": {"train": ("train.tsv",), "dev": ("dev.tsv",)},
    "rte": {"train": ("train.tsv",), "dev": ("dev.tsv",)},
    "mrpc": {"train": ("train.tsv",), "dev": ("dev.tsv",)},
    "cola": {"train": ("train.tsv",), "dev": ("dev.tsv", "out_of_domain_dev.tsv")},
    "semeval": {
        "train": ("TRAIN_FILE.TXT",),
        "dev": ("TEST_FILE_FULL.TXT",),
        "test": ("TEST_FILE_FULL.TXT",),
    },
    "relation": {"train": ("train.jsonl",), "dev": ("dev.jsonl",)},
    "entity": {"train": ("train.jsonl",), "dev": ("dev.jsonl",)},
    "tsv": {"train": ("train.tsv",), "dev": ("dev.tsv",)},
}

TASK_NAMES: tuple[str, ...] = (*TASKS, "tsv")
"""Every task ``load_split`` reads: those of ``TASKS`` and "tsv" (labels from its files)."""

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


def load_split(
    task: str,
    data_dir: str | Path,
    split: str,
    labels: Sequence[str] | None = None,
    tsv: TsvFormat | None = None,
) -> tuple[TaskSpec, list[Example]]:
    """Read one split of a task from ``data_dir`` (file formats in the module docstring).

    Returns the task's spec (for "relation", "entity" and "tsv" with ``labels`` filled in:
    ``labels`` if given, else the sorted labels of the train file) and the examples in file order.
    For the fixed-label tasks ``labels``, if given, must equal the spec's labels. ``tsv`` (only
    for task "tsv"; default ``TsvFormat()``) names the columns, label words and template. A file
    with no example (empty, or only a header) or not in UTF-8 is a DataError.
    """
    if tsv is not None and task != "tsv":
        raise DataError(f"task {task!r}: tsv=TsvFormat(...) applies only to task 'tsv'")
    if task == "tsv":
        return _load_tsv(Path(data_dir), split, labels, tsv or TsvFormat())
    spec = _task_spec(task)
    paths = _split_paths(task, Path(data_dir), split)
    if task in ("relation", "entity"):
        names = tuple(labels) if labels is not None else _jsonl_label_set(task, Path(data_dir))
        spec = dataclasses.replace(spec, labels=names)
        return spec, _nonempty(paths[0], _read_jsonl(paths[0], task, names))
    if labels is not None and tuple(labels) != spec.labels:
        raise DataError(
            f"task {task!r} has the fixed labels {spec.labels}; got labels={tuple(labels)}. "
            "Leave `labels` out for this task."
        )
    reader = _READERS[task]
    return spec, [ex for path in paths for ex in _nonempty(path, reader(path))]


def reported_split(task: str) -> str:
    """The split a task reports: its test file where it has one (SemEval), else dev (GLUE)."""
    return "test" if "test" in _FILES.get(task, {}) else "dev"


def task_spec(task: str, labels: Sequence[str], tsv: TsvFormat | None = None) -> TaskSpec:
    """The spec of ``task`` with the label names ``labels`` (as saved with a run), no file read."""
    if task == "tsv":
        return _tsv_spec(tsv or TsvFormat(), tuple(labels), Path("train.tsv"))
    spec = _task_spec(task)
    return dataclasses.replace(spec, labels=tuple(labels))


def check_reported(task: str, data_dir, labels: Sequence[str], tsv: TsvFormat | None = None):
    """Parse the reported split up front for its errors (missing file, bad rows, labels unseen in
    training) and discard it: nothing of it is kept or used before training ends."""
    load_split(task, data_dir, reported_split(task), labels=labels, tsv=tsv)


def _nonempty(path: Path, examples: list[Example]) -> list[Example]:
    """``examples``, checked to hold at least one."""
    if not examples:
        raise DataError(
            f"{path}: no examples (the file is empty or holds only a header); "
            "is this the right file, and was it written completely?"
        )
    return examples


def _task_spec(task: str) -> TaskSpec:
    if task not in TASKS:
        raise DataError(f"unknown task {task!r}; valid tasks: {', '.join(TASK_NAMES)}")
    return TASKS[task]


def _split_paths(task: str, data_dir: Path, split: str) -> list[Path]:
    """The files of one split, checked to exist."""
    splits = _FILES[task]
    if split not in splits:
        raise DataError(f"task {task!r} has no split {split!r}; valid splits: {', '.join(splits)}")
    paths = [data_dir / name for name in splits[split]]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        expected = "; ".join(f"{s}: {' + '.join(names)}" for s, names in splits.items())
        raise DataError(
            f"task {task!r}: file not found: {', '.join(missing)}. "
            f"Pass the task's folder as data_dir; it must hold ({expected})."
        )
    return paths


def _lines(path: Path) -> list[tuple[int, str]]:
    """(1-based line number, line without its end-of-line) for every line; a BOM is dropped.

    A file that is not UTF-8 text is a DataError naming the line of the first bad byte.
    """
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise DataError(
            f"{path}, line {line}: not UTF-8 text (byte 0x{data[e.start]:02x} at offset "
            f"{e.start}); is it a binary or compressed file? Save it as UTF-8 text."
        ) from None
    text = text.removeprefix("\ufeff")
    return [(i, line.rstrip("\r\n")) for i, line in enumerate(io.StringIO(text, newline=""), 1)]


def _tsv_rows(path: Path, n_cols: int, header: str | None) -> list[tuple[int, list[str]]]:
    """Tab-separated rows with exactly ``n_cols`` columns; blank lines skipped, header checked."""
    lines = [(i, line) for i, line in _lines(path) if line.strip()]
    if header is not None:
        if not lines or lines[0][1].split("\t") != header.split("\t"):
            got = repr(lines[0][1]) if lines else "an empty file"
            raise DataError(
                f"{path}, line 1: expected the header {header!r}, got {got}. "
                "Is this the right file for the task?"
            )
        lines = lines[1:]
    rows = []
    for i, line in lines:
        cols = line.split("\t")
        if len(cols) != n_cols:
            raise DataError(
                f"{path}, line {i}: expected {n_cols} tab-separated columns, got {len(cols)}. "
                "Fix or remove that row (a stray tab or a line break inside a field?)."
            )
        rows.append((i, cols))
    return rows


def _label_id(value: str, names: Sequence[str], path: Path, line: int) -> int:
    """Index of ``value`` in ``names``; DataError naming the file, line and valid labels."""
    if value not in names:
        raise DataError(
            f"{path}, line {line}: unknown label {value!r}; valid labels: {', '.join(names)}"
        )
    return names.index(value)


_BINARY = ("0", "1")


def _read_sst2(path: Path) -> list[Example]:
    return [
        Example(cols[0].strip(), label=_label_id(cols[1], _BINARY, path, i))
        for i, cols in _tsv_rows(path, 2, header="sentence\tlabel")
    ]


def _read_rte(path: Path) -> list[Example]:
    names = TASKS["rte"].labels
    return [
        Example(cols[1].strip(), cols[2].strip(), _label_id(cols[3], names, path, i))
        for i, cols in _tsv_rows(path, 4, header="index\tsentence1\tsentence2\tlabel")
    ]


def _read_mrpc(path: Path) -> list[Example]:
    header = "Quality\t#1 ID\t#2 ID\t#1 String\t#2 String"
    return [
        Example(cols[3].strip(), cols[4].strip(), _label_id(cols[0], _BINARY, path, i))
        for i, cols in _tsv_rows(path, 5, header=header)
    ]


def _read_cola(path: Path) -> list[Example]:
    return [
        Example(cols[3].strip(), label=_label_id(cols[1], _BINARY, path, i))
        for i, cols in _tsv_rows(path, 4, header=None)
    ]


_ENTITY_TAG = re.compile(r"</?e[12]>")


def _untag(sentence: str, path: Path, line: int) -> tuple[str, tuple[tuple[int, int], ...]]:
    """Drop SemEval's ``<e1>..</e1>``, ``<e2>..</e2>`` tags; return the text and (E1, E2) spans."""
    tags = [m.group() for m in _ENTITY_TAG.finditer(sentence)]
    if sorted(tags) != sorted(("<e1>", "</e1>", "<e2>", "</e2>")):
        raise DataError(
            f"{path}, line {line}: the sentence must contain each of <e1>, </e1>, <e2>, </e2> "
            f"exactly once; got {sentence!r}"
        )
    pieces = _ENTITY_TAG.split(sentence)  # tag k follows pieces[0..k]
    offset = dict(zip(tags, np.cumsum([len(p) for p in pieces[:-1]]).tolist(), strict=True))
    spans = ((offset["<e1>"], offset["</e1>"]), (offset["<e2>"], offset["</e2>"]))
    if any(start >= end for start, end in spans):
        raise DataError(f"{path}, line {line}: an entity is empty or its tags are out of order")
    return "".join(pieces), spans


def _read_semeval(path: Path) -> list[Example]:
    """SemEval-2010 Task 8 blocks: sentence line, relation line, ``Comment:`` line, blank line."""
    lines = _lines(path)
    examples, k = [], 0
    while k < len(lines):
        if not lines[k][1].strip():
            k += 1
            continue
        block = lines[k : k + 4]
        if len(block) < 3 or not block[2][1].startswith("Comment"):
            where = block[2][0] if len(block) >= 3 else lines[-1][0] + 1
            raise DataError(
                f"{path}, line {where}: expected 'Comment: ...', the third line of the 4-line "
                f'block (id<TAB>"sentence", relation, comment, blank line) from line {lines[k][0]}'
            )
        examples.append(_semeval_example(path, block))
        k += 4
    return examples


def _semeval_example(path: Path, block: list[tuple[int, str]]) -> Example:
    """One example from a block of ``_read_semeval``."""
    (i, first), (j, relation) = block[:2]
    if len(block) == 4 and block[3][1].strip():
        raise DataError(f"{path}, line {block[3][0]}: expected a blank line after the comment")
    sentence = first.split("\t", 1)[-1].strip()
    if "\t" not in first or len(sentence) < 2 or sentence[0] != '"' or sentence[-1] != '"':
        raise DataError(f'{path}, line {i}: expected id<TAB>"sentence", got {first!r}')
    text, spans = _untag(sentence[1:-1], path, i)
    return Example(text, label=_label_id(relation.strip(), SEMEVAL_LABELS, path, j), spans=spans)


def _span(value: object, text: str, path: Path, line: int, key: str) -> tuple[int, int]:
    """A JSONL ``[start, end]`` character span, checked against ``text``."""
    ok = (
        isinstance(value, list)
        and len(value) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
        and 0 <= value[0] < value[1] <= len(text)
    )
    if not ok:
        raise DataError(
            f"{path}, line {line}: {key!r} must be [start, end] character offsets with "
            f"0 <= start < end <= len(text) = {len(text)}; got {value!r}"
        )
    return value[0], value[1]


_JSONL_SPAN_KEYS = {"relation": ("head", "tail"), "entity": ("span",)}


def _jsonl_objects(path: Path, task: str) -> list[tuple[int, dict]]:
    """(line number, object) for every non-blank line, with the task's keys checked."""
    required = ("text", "label", *_JSONL_SPAN_KEYS[task])
    objects = []
    for i, line in _lines(path):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise DataError(f"{path}, line {i}: not valid JSON ({e.msg})") from None
        missing = [k for k in required if k not in obj] if isinstance(obj, dict) else required
        if missing:
            raise DataError(
                f"{path}, line {i}: task {task!r} needs an object with keys {list(required)}; "
                f"missing {list(missing)}"
            )
        if not isinstance(obj["text"], str) or not isinstance(obj["label"], str):
            raise DataError(f"{path}, line {i}: 'text' and 'label' must be strings")
        objects.append((i, obj))
    return objects


def _jsonl_label_set(task: str, data_dir: Path) -> tuple[str, ...]:
    """The sorted labels of ``data_dir/train.jsonl``."""
    path = data_dir / "train.jsonl"
    if not path.is_file():
        raise DataError(
            f"task {task!r}: the label set comes from {path}, which does not exist; "
            "add it or pass labels=... (the train labels) to load_split"
        )
    return tuple(sorted({obj["label"] for _, obj in _jsonl_objects(path, task)}))


def _read_jsonl(path: Path, task: str, labels: tuple[str, ...]) -> list[Example]:
    examples = []
    for i, obj in _jsonl_objects(path, task):
        text = obj["text"]
        spans = tuple(_span(obj[k], text, path, i, k) for k in _JSONL_SPAN_KEYS[task])
        examples.append(Example(text, label=_label_id(obj["label"], labels, path, i), spans=spans))
    return examples


def _load_tsv(
    data_dir: Path, split: str, labels: Sequence[str] | None, fmt: TsvFormat
) -> tuple[TaskSpec, list[Example]]:
    """The "tsv" task's spec and one split's examples (``load_split`` with task "tsv")."""
    path = _split_paths("tsv", data_dir, split)[0]
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
    spec = _tsv_spec(fmt, names, data_dir / "train.tsv")
    from_train = labels is None or split != "train"
    return spec, [
        Example(*texts, label=_tsv_label_id(label, names, path, i, from_train))
        for i, texts, label in records
    ]


def _tsv_records(path: Path, fmt: TsvFormat) -> list[tuple[int, tuple[str, ...], str]]:
    """(line, texts, label) per example of a "tsv" file: header checked, every row checked."""
    lines = [(i, line) for i, line in _lines(path) if line.strip()]
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


def _tsv_spec(fmt: TsvFormat, labels: tuple[str, ...], train_path: Path) -> TaskSpec:
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


_READERS = {
    "sst2": _read_sst2,
    "rte": _read_rte,
    "mrpc": _read_mrpc,
    "cola": _read_cola,
    "semeval": _read_semeval,
}


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
