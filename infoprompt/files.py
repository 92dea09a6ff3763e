"""The files of each task's splits, and reading them as UTF-8 text lines.

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
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

from infoprompt.data import Example
from infoprompt.errors import DataError

FILES: dict[str, dict[str, tuple[str, ...]]] = {
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


def nonempty(path: Path, examples: list[Example]) -> list[Example]:
    """``examples``, checked to hold at least one."""
    if not examples:
        raise DataError(
            f"{path}: no examples (the file is empty or holds only a header); "
            "is this the right file, and was it written completely?"
        )
    return examples


def split_paths(task: str, data_dir: Path, split: str) -> list[Path]:
    """The files of one split, checked to exist."""
    splits = FILES[task]
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


def read_lines(path: Path) -> list[tuple[int, str]]:
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


def tsv_rows(path: Path, n_cols: int, header: str | None) -> list[tuple[int, list[str]]]:
    """Tab-separated rows with exactly ``n_cols`` columns; blank lines skipped, header checked."""
    lines = [(i, line) for i, line in read_lines(path) if line.strip()]
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


def label_id(value: str, names: Sequence[str], path: Path, line: int) -> int:
    """Index of ``value`` in ``names``; DataError naming the file, line and valid labels."""
    if value not in names:
        raise DataError(
            f"{path}, line {line}: unknown label {value!r}; valid labels: {', '.join(names)}"
        )
    return names.index(value)
