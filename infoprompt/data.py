"""The unit of data: one ``Example``, as every reader makes it and every template encodes it.

Where the rest lives: ``tasks`` (labels, verbalizers, metrics, templates), ``files`` (each
task's files), ``readers`` (``load_split``), ``tsv`` (the user's own task), ``sampling`` (the
few-shot draws).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Example:
    """One example; ``spans`` are character spans ``(start, end)`` in ``text_a`` (E1, then E2)."""

    text_a: str
    text_b: str | None = None
    label: int = 0
    spans: tuple[tuple[int, int], ...] = ()
