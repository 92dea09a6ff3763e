"""The few-shot report: the paper's Tables 3 and 4 (arXiv 2306.04933) from the grid's runs, with
cell-level statistics, the paper's ordering against ours and the grid's bookkeeping, in markdown.

    python -m benchmarks.fewshot_report --out results/fewshot --write docs/results.md

Input: every finished ``OUT/<task>-<shots>/<method>/seed<k>/results.json`` (the layout of
``benchmarks/fewshot.py``; deeper files are learning-rate search sub-runs and feed only the time
bookkeeping). Unfinished runs are skipped; unreadable files are listed. The tables and statistics
use every finished run found; the grid options only say which runs are expected, so that the
missing ones can be listed: the runner's ``PARTS`` (``--parts``, default all three, each counted
apart; the pre-registered test's runs live apart, ``benchmarks.prereg_report``), or instead a grid
of ``--shots --methods --seeds`` (the runner's defaults). Its parts: ``fewshot_data`` (loading,
the paper's numbers), ``fewshot_compare`` (seed-level comparisons on ``infoprompt.stats``),
``fewshot_tables`` and ``fewshot_prose``.

The protocol: every reported-set number comes from ``test.final`` (the model after the last
epoch, the paper's rule), ``test.selected`` (the best-on-validation checkpoint), ``test.labels``
and ``test.predictions``. ``best`` and ``test_curve`` are never read; ``curve`` feeds only the
critic diagnostic (last validation point).

``--write FILE`` replaces the text between ``<!-- fewshot:begin -->`` and ``<!-- fewshot:end -->``
if FILE holds both markers, else writes the whole file; atomically. ``-`` (default): stdout.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import tempfile
from pathlib import Path

from benchmarks.fewshot import (
    PARTS,
    SEEDS,
    Run,
    plan_flags,
)
from benchmarks.fewshot_data import GRID_PARTS, MARK_BEGIN, MARK_END, load
from benchmarks.fewshot_prose import critic_section, missing_lines, ordering_section, stats_section
from benchmarks.fewshot_tables import lr_section, setting_lines, tables_section, time_section


def commands_lines(out: Path, argv: list[str]) -> list[str]:
    """The runner's commands (``OUT/commands.log``, each once, in order) and this report's."""
    try:
        logged = [
            line.split("\t", 1)[-1]
            for line in (Path(out) / "commands.log").read_text().splitlines()
        ]
    except OSError:
        logged = []
    report = shlex.join(["python", "-m", "benchmarks.fewshot_report", *argv])
    return ["Commands:", "", "```", *dict.fromkeys(logged), report, "```"]


def summarize(
    out: Path, planned: list[Run], argv: list[str], parts: dict[str, list[Run]] | None = None
) -> str:
    """The whole markdown report (module docstring); ``parts``: the planned runs by part of
    the grid, counted apart."""
    runs, unreadable = load(out)
    lines = [*tables_section(runs), *stats_section(runs), *ordering_section(runs)]
    lines += critic_section(runs)
    lines += ["### Runs", "", *missing_lines(planned, runs, parts, out), ""]
    if unreadable:
        lines += ["Unreadable results (skipped):", "", *(f"- {u}" for u in unreadable), ""]
    if runs:
        lines += [*lr_section(runs), "", *time_section(out, runs), "", *setting_lines(runs), ""]
    lines += commands_lines(out, argv)
    return "\n".join(lines) + "\n"


def write_output(text: str, dest: str | None, marks=(MARK_BEGIN, MARK_END)) -> None:
    """``text`` to stdout (``dest`` None or '-'), else into ``dest`` between the two ``marks``
    when it holds both (begin first), else as the whole file; temp file + os.replace."""
    if dest in (None, "-"):
        sys.stdout.write(text)
        return
    path = Path(dest)
    old = path.read_text() if path.exists() else ""
    begin, end = marks
    i, j = old.find(begin), old.find(end)
    if 0 <= i < j:
        body = text.rstrip("\n")
        text = f"{old[: i + len(begin)]}\n{body}\n{old[j:]}"
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(tmp, path.stat().st_mode if path.exists() else 0o644)
    os.replace(tmp, path)


def _list(text: str, cast=str) -> list:
    return [cast(x) for x in text.split(",") if x.strip()]


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default="results/fewshot", help="the runner's --out")
    p.add_argument("--write", default="-", help="markdown file (between the markers) or - ")
    p.add_argument("--tasks", default="sst2,rte,mrpc,cola,semeval")
    p.add_argument("--parts", default=",".join(GRID_PARTS), help="the runner's parts planned")
    p.add_argument("--shots", help="instead of --parts: a grid of these shots, methods, seeds")
    p.add_argument("--methods", help="default: all")
    p.add_argument("--seeds", help=f"default {','.join(map(str, SEEDS))}")
    a = p.parse_args(argv)
    parts = None
    if a.shots or a.methods or a.seeds:
        planned = plan_flags(a.tasks, a.shots, a.methods, a.seeds)
    else:
        unknown = [k for k in _list(a.parts) if k not in PARTS]
        if unknown:
            p.error(f"unknown part(s) {', '.join(unknown)} (valid: {', '.join(PARTS)})")
        parts = {k: PARTS[k].plan(_list(a.tasks)) for k in _list(a.parts)}
        planned = [r for rs in parts.values() for r in rs]
    write_output(summarize(Path(a.out), planned, argv, parts), a.write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
