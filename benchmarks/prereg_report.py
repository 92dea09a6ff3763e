"""The pre-registered test of the MI losses (docs/preregistration.md), from its runs, in markdown.

    python -m benchmarks.prereg_report --out results/prereg --write docs/results.md

Reads every finished ``OUT/<task>-64/<method>/seed<k>/results.json`` of the plan
(``benchmarks.fewshot.PREREG``) and writes, as the plan says:

- the primary test per cell: InfoPrompt − β = γ = 0 on ``test.final`` over the seeds both arms
  finished, paired t, 95 % interval, Holm over the two cells (``infoprompt.stats``);
- the MI terms' activity of the arms that have them (``mi_activity``: median and range over seeds
  of ``live_fraction``, ``peak_share``, ``last_live_epoch``), and whether the cell's MI terms are
  live by the plan's rule;
- the verdict per cell against the decision rule — only when all planned seeds of both cells are
  in; before that the table is marked interim and no verdict is given;
- secondary, descriptive: ``infoprompt-pneg`` − β = γ = 0 and InfoPrompt − ``infoprompt-pneg``,
  ``test.selected`` differences, the critics' control at the last validation;
- every run's commit (``versions.commit``), against the commit that added the plan.

``--write FILE`` replaces the text between ``<!-- prereg:begin -->`` and ``<!-- prereg:end -->``.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
from pathlib import Path

from benchmarks.fewshot import PREREG, Run, read_results
from benchmarks.fewshot_report import write_output
from infoprompt.activity import LIVE_SHARE, saturated
from infoprompt.report import TASK_NAMES
from infoprompt.stats import holm, paired_t

MARKS = ("<!-- prereg:begin -->", "<!-- prereg:end -->")
OURS, ABLATION, PNEG = "infoprompt", "beta0gamma0", "infoprompt-pneg"
PAPER_GAP = {"sst2": 66.97 - 55.05, "semeval": 21.13 - 22.78}  # Tables 3–4, points
ALPHA = 0.05
LIVE_FRACTION = 0.5  # the plan: a term live on at least half the measured steps, median seed


def scores(runs: dict[Run, dict], task: str, method: str, which: str = "final") -> dict:
    """seed → ``test.<which>`` main metric in points, for the finished runs of (task, method)."""
    out = {}
    for run, r in runs.items():
        if (run.task, run.method) == (task, method):
            out[run.seed] = 100 * r["test"][which][r["main_metric"]]
    return out


def paired(runs, task, a, b, which="final"):
    """``paired_t`` of a − b over the seeds both finished."""
    sa, sb = scores(runs, task, a, which), scores(runs, task, b, which)
    seeds = sorted(set(sa) & set(sb))
    return paired_t([sa[s] for s in seeds], [sb[s] for s in seeds])


def activity(runs, task, method) -> dict[str, list[dict]]:
    """term → the ``mi_activity`` entries of the finished runs of (task, method)."""
    out: dict[str, list[dict]] = {}
    for run, r in runs.items():
        if (run.task, run.method) == (task, method):
            for k in ("rep", "head"):
                if k in r.get("mi_activity", {}):
                    out.setdefault(k, []).append(r["mi_activity"][k])
    return out


def live(runs, task) -> bool | None:
    """The plan's rule: in the median seed of InfoPrompt, some MI term is live on at least half
    the measured steps (None without any measured run)."""
    act = activity(runs, task, OURS)
    if not act:
        return None
    return any(
        statistics.median(a["live_fraction"] for a in entries) >= LIVE_FRACTION
        for entries in act.values()
    )


def _range(values: list[float | None], fmt: str) -> str:
    vals = [v for v in values if v is not None]
    if not vals:
        return "–"
    return f"{statistics.median(vals):{fmt}} [{min(vals):{fmt}}, {max(vals):{fmt}}]"


def _pts(x: float) -> str:
    return "–" if math.isnan(x) else f"{x:+.2f}"


def _p(x: float) -> str:
    return "–" if math.isnan(x) else f"{x:.3g}"


def verdict(task: str, t, p_holm: float, is_live: bool | None) -> str:
    """The decision rule of docs/preregistration.md for one cell."""
    if p_holm < ALPHA and t.mean > 0:
        return "supports the claim" if is_live else "positive, but the MI terms are not live"
    if p_holm < ALPHA and t.mean < 0:
        return "contradicts the claim"
    parts = [f"no effect detected (an effect above {t.high:+.2f} points is excluded)"]
    if task == "sst2" and t.high < PAPER_GAP["sst2"]:
        parts.append(f"excludes the paper's gap (+{PAPER_GAP['sst2']:.1f})")
    if not is_live:
        parts.append("the MI terms are not live: the test could not show an effect")
    return "; ".join(parts)


def load(out: Path) -> tuple[dict[Run, dict], list[Run]]:
    """The finished runs of the plan, and the planned runs not finished."""
    planned = PREREG.plan(list(PREREG.tasks or ()))
    runs, missing = {}, []
    for run in planned:
        r = read_results(run, out)
        if r and r.get("finished") and "test" in r:
            runs[run] = r
        else:
            missing.append(run)
    return runs, missing


def summarize(out: Path) -> str:
    runs, missing = load(out)
    tasks = list(PREREG.tasks or ())
    complete = not missing
    tests = {t: paired(runs, t, OURS, ABLATION) for t in tasks}
    adjusted = dict(zip(tasks, holm([tests[t].p for t in tasks])))
    lines = [
        "Status: "
        + (
            f"complete, {len(runs)} of {len(runs)} planned runs."
            if complete
            else f"**interim** — {len(runs)} of {len(runs) + len(missing)} planned runs "
            "finished; descriptive only, no verdict (the plan tests only when all 20 seeds of "
            "both cells are in)."
        ),
        "",
        "Primary test: InfoPrompt − β = γ = 0 on `test.final`, points, paired over seeds; "
        "Holm over the two cells.",
        "",
        "| cell | n | InfoPrompt | β = γ = 0 | mean Δ | 95 % interval |"
        + (" p | Holm p |" if complete else "")
        + " MI terms live |"
        + (" verdict |" if complete else ""),
        "|---|---|---|---|---|---|---|" + ("---|---|---|" if complete else ""),
    ]
    for t in tasks:
        x, is_live = tests[t], live(runs, t)
        a, b = scores(runs, t, OURS), scores(runs, t, ABLATION)
        row = [
            f"{TASK_NAMES[t]} 64",
            str(x.n),
            _mean_sd(a),
            _mean_sd(b),
            _pts(x.mean),
            f"[{_pts(x.low)}, {_pts(x.high)}]",
        ]
        if complete:  # the test's p values are computed only on the complete plan
            row += [_p(x.p), _p(adjusted[t])]
        row.append({None: "–", True: "yes", False: "no"}[is_live])
        if complete:
            row.append(verdict(t, x, adjusted[t], is_live))
        lines.append("| " + " | ".join(row) + " |")
    lines += ["", *activity_table(runs, tasks), "", *secondary_table(runs, tasks), ""]
    lines += commit_lines(runs)
    return "\n".join(lines) + "\n"


def _mean_sd(s: dict[int, float]) -> str:
    v = list(s.values())
    if not v:
        return "–"
    return f"{statistics.fmean(v):.1f} ± {statistics.stdev(v):.1f}" if len(v) > 1 else f"{v[0]:.1f}"


def activity_table(runs, tasks) -> list[str]:
    """Per cell, arm with MI terms and term: median [min, max] over seeds of the activity."""
    rows = []
    for t in tasks:
        for m in (OURS, PNEG):
            for k, entries in activity(runs, t, m).items():
                rows.append(
                    f"| {TASK_NAMES[t]} 64 | {m} | NCE_{k} | {len(entries)} | "
                    f"{_range([e['live_fraction'] for e in entries], '.2f')} | "
                    f"{_range([e['peak_share'] for e in entries], '.3f')} | "
                    f"{_range([e['mean_share'] for e in entries], '.3f')} | "
                    f"{_range([e['last_live_epoch'] for e in entries], '.1f')} | "
                    f"{_range([e['final_value'] for e in entries], '.3f')} |"
                )
    return [
        f"MI-term activity (`mi_activity`; live: share of the generator's gradient above "
        f"{LIVE_SHARE:.0%}; median [min, max] over seeds):",
        "",
        "| cell | arm | term | runs | live fraction | peak share | mean share | last live epoch "
        "| final NCE |",
        "|---|---|---|---|---|---|---|---|---|",
        *rows,
    ]


def secondary_table(runs, tasks) -> list[str]:
    """The plan's descriptive comparisons and the critics' control (no verdict)."""
    rows = []
    for t in tasks:
        for a, b, which in (
            (PNEG, ABLATION, "final"),
            (OURS, PNEG, "final"),
            (OURS, ABLATION, "selected"),
        ):
            x = paired(runs, t, a, b, which)
            rows.append(
                f"| {TASK_NAMES[t]} 64 | {a} − {b} | test.{which} | {x.n} | {_pts(x.mean)} | "
                f"[{_pts(x.low)}, {_pts(x.high)}] |"
            )
    critic = []
    for t in tasks:
        for m in (OURS, PNEG):
            counts = critic_counts(runs, t, m)
            if counts:
                critic.append(f"- {TASK_NAMES[t]} 64, {m}: " + "; ".join(counts))
    return [
        "Secondary, descriptive (no test, no verdict):",
        "",
        "| cell | difference | on | n | mean Δ | 95 % interval |",
        "|---|---|---|---|---|---|",
        *rows,
        "",
        "The critics' control at the last validation (true P against each P replaced by another "
        "example's; saturated: both below 0.01 nats):",
        "",
        *critic,
    ]


def critic_counts(runs, task, method) -> list[str]:
    out = []
    for k in ("rep", "head"):
        gaps, full = [], 0
        for run, r in runs.items():
            if (run.task, run.method) != (task, method) or not r.get("curve"):
                continue
            c = r["curve"][-1].get("critic", {})
            if k in c:
                if saturated(c[k], c[f"{k}_shuffled"]):
                    full += 1
                else:
                    gaps.append(c[f"{k}_shuffled"] - c[k])
        if gaps or full:
            mean = f"mean gap {statistics.fmean(gaps):+.3f} nats over {len(gaps)}" if gaps else ""
            out.append(f"NCE_{k} {mean}{', ' if mean else ''}{full} saturated")
    return out


def commit_lines(runs) -> list[str]:
    commits = sorted({str((r.get("versions") or {}).get("commit")) for r in runs.values()})
    return [f"Runs' commits (`versions.commit`): {', '.join(commits) or '–'}."]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default="results/prereg", help="the runner's --out for --part prereg")
    p.add_argument("--write", default="-", help="markdown file (between the markers) or -")
    a = p.parse_args(argv)
    write_output(summarize(Path(a.out)), a.write, MARKS)
    return 0


if __name__ == "__main__":
    sys.exit(main())
