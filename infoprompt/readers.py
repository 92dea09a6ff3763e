"""Reading a task's split from its folder: GLUE, SemEval-2010 Task 8, JSONL and the user's TSV.

``load_split(task, data_dir, split)`` returns the task's spec and the examples in file order; every
error is a DataError naming the file and the line (formats: ``infoprompt.files``; the "tsv" task:
``infoprompt.tsv``).
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from infoprompt.data import Example
from infoprompt.errors import DataError
from infoprompt.files import FILES, label_id, nonempty, read_lines, split_paths, tsv_rows
from infoprompt.tasks import SEMEVAL_LABELS, TASKS, TaskSpec
from infoprompt.tsv import TsvFormat, load_tsv, tsv_spec

TASK_NAMES: tuple[str, ...] = (*TASKS, "tsv")
"""Every task ``load_split`` reads: those of ``TASKS`` and "tsv" (labels from its files)."""


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
        return load_tsv(Path(data_dir), split, labels, tsv or TsvFormat())
    spec = _task_spec(task)
    paths = split_paths(task, Path(data_dir), split)
    if task in ("relation", "entity"):
        names = tuple(labels) if labels is not None else _jsonl_label_set(task, Path(data_dir))
        spec = dataclasses.replace(spec, labels=names)
        return spec, nonempty(paths[0], _read_jsonl(paths[0], task, names))
    if labels is not None and tuple(labels) != spec.labels:
        raise DataError(
            f"task {task!r} has the fixed labels {spec.labels}; got labels={tuple(labels)}. "
            "Leave `labels` out for this task."
        )
    reader = _READERS[task]
    return spec, [ex for path in paths for ex in nonempty(path, reader(path))]


def reported_split(task: str) -> str:
    """The split a task reports: its test file where it has one (SemEval), else dev (GLUE)."""
    return "test" if "test" in FILES.get(task, {}) else "dev"


def task_spec(task: str, labels: Sequence[str], tsv: TsvFormat | None = None) -> TaskSpec:
    """The spec of ``task`` with the label names ``labels`` (as saved with a run), no file read."""
    if task == "tsv":
        return tsv_spec(tsv or TsvFormat(), tuple(labels), Path("train.tsv"))
    spec = _task_spec(task)
    return dataclasses.replace(spec, labels=tuple(labels))


def check_reported(
    task: str, data_dir: str | Path, labels: Sequence[str], tsv: TsvFormat | None = None
) -> None:
    """Parse the reported split up front for its errors (missing file, bad rows, labels unseen in
    training) and discard it: nothing of it is kept or used before training ends."""
    load_split(task, data_dir, reported_split(task), labels=labels, tsv=tsv)


def _task_spec(task: str) -> TaskSpec:
    if task not in TASKS:
        raise DataError(f"unknown task {task!r}; valid tasks: {', '.join(TASK_NAMES)}")
    return TASKS[task]


_BINARY = ("0", "1")


def _read_sst2(path: Path) -> list[Example]:
    return [
        Example(cols[0].strip(), label=label_id(cols[1], _BINARY, path, i))
        for i, cols in tsv_rows(path, 2, header="sentence\tlabel")
    ]


def _read_rte(path: Path) -> list[Example]:
    names = TASKS["rte"].labels
    return [
        Example(cols[1].strip(), cols[2].strip(), label_id(cols[3], names, path, i))
        for i, cols in tsv_rows(path, 4, header="index\tsentence1\tsentence2\tlabel")
    ]


def _read_mrpc(path: Path) -> list[Example]:
    header = "Quality\t#1 ID\t#2 ID\t#1 String\t#2 String"
    return [
        Example(cols[3].strip(), cols[4].strip(), label_id(cols[0], _BINARY, path, i))
        for i, cols in tsv_rows(path, 5, header=header)
    ]


def _read_cola(path: Path) -> list[Example]:
    return [
        Example(cols[3].strip(), label=label_id(cols[1], _BINARY, path, i))
        for i, cols in tsv_rows(path, 4, header=None)
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
    lines = read_lines(path)
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
    return Example(text, label=label_id(relation.strip(), SEMEVAL_LABELS, path, j), spans=spans)


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
    assert isinstance(value, list)
    return value[0], value[1]


_JSONL_SPAN_KEYS = {"relation": ("head", "tail"), "entity": ("span",)}


def _jsonl_objects(path: Path, task: str) -> list[tuple[int, dict]]:
    """(line number, object) for every non-blank line, with the task's keys checked."""
    required = ("text", "label", *_JSONL_SPAN_KEYS[task])
    objects = []
    for i, line in read_lines(path):
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
        examples.append(Example(text, label=label_id(obj["label"], labels, path, i), spans=spans))
    return examples


_READERS = {
    "sst2": _read_sst2,
    "rte": _read_rte,
    "mrpc": _read_mrpc,
    "cola": _read_cola,
    "semeval": _read_semeval,
}
