"""The few-shot grid of the paper's tables 3 and 4 on real data, resumable and parallel.

    python benchmarks/fewshot.py --data ../shared/data --out runs/fewshot \\
        --tasks sst2,rte,mrpc,cola --shots 64,256 --seeds 1,2,3 \\
        --methods infoprompt,warp,idpg,gamma0,beta0 --epochs 30 --jobs 2
    python benchmarks/fewshot.py --out runs/fewshot --summarize docs/results.md

Grid: tasks × shots × seeds × methods. One run is one ``python -m infoprompt train`` subprocess
with one seed, in ``OUT/<task>-<shots>/<method>/seed<k>`` (its log beside it,
``seed<k>.log``). Methods (``VARIANTS``): the trainer's methods, plus the ablations of InfoPrompt
as ``gamma0`` (γ = 0), ``beta0`` (β = 0) and ``betagamma0`` (β = γ = 0; the trainer's ``idpg`` is
the same model and loss, so the grid uses ``idpg`` as that row by default).

Resume: a run whose ``results.json`` says ``finished`` is skipped without starting a process; an
interrupted one is continued from its last checkpoint (the trainer's ``--resume``, which reproduces
the uninterrupted run). Order: shots, then seed, then task, then method, so a grid cut short holds
complete paired comparisons (every method of a task on the same seeds and examples).

Parallel: ``--jobs N`` runs at once, each with ``--threads`` torch/OMP/MKL threads (default
cores // jobs). ``--budget S``: start no run after S seconds (running ones finish). SIGINT/SIGTERM
stop the children (they resume later from their last evaluation) and exit.

``--summarize FILE`` reads every results.json under OUT and writes the tables (layout of the
paper's tables 3 and 4, mean ± std over seeds), the paired comparison of infoprompt against warp
and against β = γ = 0, the convergence analysis (steps to 95 % of the final dev score) and the
run times, as markdown: into FILE between ``<!-- fewshot:begin -->`` and ``<!-- fewshot:end -->``
if FILE holds those markers, else as the whole FILE (``-`` = stdout); written atomically.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

DATA_DIRS = {
    "sst2": "SST-2",
    "rte": "RTE",
    "mrpc": "MRPC",
    "cola": "CoLA",
    "semeval": "SemEval2010_task8",
}
TASK_NAMES = {"sst2": "SST-2", "rte": "RTE", "mrpc": "MRPC", "cola": "CoLA", "semeval": "SemEval"}
# variant -> (trainer method, extra trainer flags, row name in the tables)
VARIANTS = {
    "finetune": ("finetune", [], "finetune"),
    "lora": ("lora", [], "lora"),
    "warp": ("warp", [], "WARP"),
    "idpg": ("idpg", [], "IDPG = InfoPrompt β = γ = 0"),
    "betagamma0": ("infoprompt", ["--beta", "0", "--gamma", "0"], "InfoPrompt β = γ = 0"),
    "gamma0": ("infoprompt", ["--gamma", "0"], "InfoPrompt γ = 0 (no head loss)"),
    "beta0": ("infoprompt", ["--beta", "0"], "InfoPrompt β = 0 (no representation loss)"),
    "infoprompt": ("infoprompt", [], "InfoPrompt (β = 0.1, γ = 0.05)"),
}
DEFAULT_METHODS = "infoprompt,warp,idpg,gamma0,beta0"
MARK_BEGIN, MARK_END = "<!-- fewshot:begin -->", "<!-- fewshot:end -->"


@dataclass(frozen=True)
class Run:
    task: str
    shots: int
    method: str  # a key of VARIANTS
    seed: int

    def folder(self, out: Path) -> Path:
        """The trainer's --out; the run itself lives in ``folder / seed<k>``."""
        return Path(out) / f"{self.task}-{self.shots}" / self.method

    def run_dir(self, out: Path) -> Path:
        return self.folder(out) / f"seed{self.seed}"

    def name(self) -> str:
        return f"{self.task}-{self.shots} {self.method} seed{self.seed}"


def plan(tasks, shots, methods, seeds) -> list[Run]:
    """The grid, ordered shots → seed → task → method (see the module docstring)."""
    for m in methods:
        if m not in VARIANTS:
            raise SystemExit(f"error: unknown method {m!r} (valid: {', '.join(VARIANTS)})")
    for t in tasks:
        if t not in DATA_DIRS:
            raise SystemExit(f"error: unknown task {t!r} (valid: {', '.join(DATA_DIRS)})")
    return [Run(t, n, m, s) for n in shots for s in seeds for t in tasks for m in methods]


def status(run: Run, out: Path) -> str:
    """'done' (finished results.json), 'partial' (interrupted; will resume) or 'todo'."""
    path = run.run_dir(out) / "results.json"
    if not path.exists():
        return "todo"
    try:
        finished = json.loads(path.read_text()).get("finished")
    except (OSError, json.JSONDecodeError):
        return "partial"
    return "done" if finished else "partial"


def command(run: Run, out: Path, data: Path, epochs: int, extra: list[str]) -> list[str]:
    """The trainer command of one run (always --resume: the trainer continues a partial run)."""
    method, flags, _ = VARIANTS[run.method]
    return [
        sys.executable, "-m", "infoprompt", "train",
        "--task", run.task, "--data-dir", str(Path(data) / DATA_DIRS[run.task]),
        "--method", method, *flags, "--n-prompts", "4", "--shots", str(run.shots),
        "--seeds", str(run.seed), "--epochs", str(epochs),
        "--out", str(run.folder(out)), "--resume", "--no-progress", *extra,
    ]  # fmt: skip


def thread_env(threads: int) -> dict:
    env = dict(os.environ)
    for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[k] = str(threads)
    env["TOKENIZERS_PARALLELISM"] = "false"
    env["PYTHONUNBUFFERED"] = "1"  # log lines reach seed<k>.log as they happen
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.setdefault("TRANSFORMERS_OFFLINE", "1")
    return env


def execute(runs, out: Path, make_cmd, jobs: int = 1, threads: int = 1, budget=None, log=print):
    """Run the pending ``runs`` (``make_cmd(run) -> argv``), ``jobs`` at a time; skip finished
    ones. Returns {run: returncode} of the runs started. ``budget`` (s): start nothing after it."""
    out = Path(out)
    todo = [r for r in runs if status(r, out) != "done"]
    log(f"grid: {len(runs)} runs, {len(runs) - len(todo)} finished, {len(todo)} to run, "
        f"{jobs} at a time × {threads} threads")  # fmt: skip
    env, t0 = thread_env(threads), time.monotonic()
    running: dict[subprocess.Popen, tuple[Run, float, object]] = {}
    codes: dict[Run, int] = {}
    stopping = []

    def stop(signum, frame):
        stopping.append(signum)
        for p in running:
            p.send_signal(signal.SIGTERM)

    old = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        queue = list(todo)
        while queue or running:
            while queue and len(running) < jobs and not stopping:
                if budget is not None and time.monotonic() - t0 > budget:
                    log(f"budget of {budget:.0f} s spent: {len(queue)} runs not started")
                    queue.clear()
                    break
                run = queue.pop(0)
                run.folder(out).mkdir(parents=True, exist_ok=True)
                logf = open(run.folder(out) / f"seed{run.seed}.log", "a")
                how = "resume" if status(run, out) == "partial" else "start"
                p = subprocess.Popen(make_cmd(run), stdout=logf, stderr=subprocess.STDOUT, env=env)
                running[p] = (run, time.monotonic(), logf)
                log(f"[{len(codes) + len(running)}/{len(todo)}] {how} {run.name()}")
            if stopping:
                queue.clear()
            time.sleep(0.05)
            for p in [p for p in running if p.poll() is not None]:
                run, started, logf = running.pop(p)
                logf.close()
                codes[run] = p.returncode
                log(f"{'done' if p.returncode == 0 else f'FAILED ({p.returncode})'} "
                    f"{run.name()}: {_best_text(run, out)} in {time.monotonic() - started:.0f} s "
                    f"(elapsed {time.monotonic() - t0:.0f} s)")  # fmt: skip
    finally:
        for s, h in old.items():
            signal.signal(s, h)
    if stopping:
        log("stopped by signal; rerun the same command to resume")
    return codes


def _best_text(run: Run, out: Path) -> str:
    try:
        r = json.loads((run.run_dir(out) / "results.json").read_text())
        m = r["main_metric"]
        return f"best dev {m} {100 * r['best']['dev'][m]:.1f}"
    except (OSError, KeyError, TypeError, json.JSONDecodeError):
        return "no results"


# --------------------------------------------------------------------------- summary


def load_runs(out: Path) -> dict[Run, dict]:
    """Finished runs under ``out`` keyed by Run (the layout ``Run.run_dir`` writes)."""
    found = {}
    for path in sorted(Path(out).glob("*-*/*/seed*/results.json")):
        try:
            r = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        if not r.get("finished"):
            continue
        task, shots = path.parts[-4].rsplit("-", 1)
        run = Run(task, int(shots), path.parts[-3], int(path.parts[-2][4:]))
        found[run] = r
    return found


def _pct(values) -> str:
    if not values:
        return "–"
    mean = 100 * statistics.fmean(values)
    std = 100 * statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{mean:.1f} ± {std:.1f}"


def main_score(r: dict) -> float:
    return r["best"]["dev"][r["main_metric"]]


def steps_to_95(r: dict) -> int | None:
    """First evaluated step whose main dev metric reaches 95 % of the final (last) one; None if
    the final score is <= 0 (e.g. an MCC of 0), where 95 % of it means nothing."""
    m = r["main_metric"]
    curve = r["curve"]
    final = curve[-1]["dev"][m]
    if final <= 0:
        return None
    return next(p["step"] for p in curve if p["dev"][m] >= 0.95 * final)


def sign_test(wins: int, losses: int) -> float:
    """Two-sided exact binomial p-value of wins vs losses (ties dropped)."""
    n = wins + losses
    if n == 0:
        return 1.0
    k = min(wins, losses)
    p = sum(math.comb(n, i) for i in range(k + 1)) / 2**n
    return min(1.0, 2 * p)


def paired(runs: dict[Run, dict], a: str, b: str, score=main_score):
    """{(task, shots): [(seed, score_a, score_b)]} over seeds where both finished."""
    pairs = defaultdict(list)
    for run, r in runs.items():
        if run.method != a:
            continue
        other = runs.get(Run(run.task, run.shots, b, run.seed))
        if other is not None:
            pairs[(run.task, run.shots)].append((run.seed, score(r), score(other)))
    return {k: sorted(v) for k, v in sorted(pairs.items(), key=lambda kv: _task_key(kv[0]))}


def _task_key(key):
    task, shots = key
    return shots, list(DATA_DIRS).index(task)


def table(runs: dict[Run, dict], shots: int, tasks: list[str], paper: dict) -> list[str]:
    present = [v for v in VARIANTS if any(r.method == v and r.shots == shots for r in runs)]
    cols = []
    for t in tasks:
        cols.append((t, None))
        if t == "mrpc":
            cols.append((t, "f1"))
    head = ["method"] + [
        f"{TASK_NAMES[t]} ({'F1' if m == 'f1' else _metric_name(t)})" for t, m in cols
    ]
    lines = [
        f"#### {shots} training examples",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    for v in present:
        row = [VARIANTS[v][2]]
        for t, m in cols:
            rs = [
                r for run, r in runs.items() if (run.task, run.shots, run.method) == (t, shots, v)
            ]
            vals = [r["best"]["dev"][m] if m else main_score(r) for r in rs]
            row.append(_pct(vals) + (f" ({len(vals)})" if vals else ""))
        lines.append("| " + " | ".join(row) + " |")
    for name, numbers in paper.items():
        row = [f"*paper, RoBERTa-large: {name}*"]
        for t, m in cols:
            row.append(numbers.get((t, shots, m or "main"), "n/a"))
        lines.append("| " + " | ".join(row) + " |")
    return lines


def _metric_name(task):
    return {"cola": "MCC", "semeval": "macro-F1"}.get(task, "acc")


def missing(planned: list[Run], runs: dict[Run, dict]) -> list[str]:
    """Markdown lines naming the planned runs that have not finished, grouped by cell."""
    cells = defaultdict(list)
    for r in planned:
        if r not in runs:
            cells[(r.task, r.shots, r.method)].append(r.seed)
    if not cells:
        return ["Every planned run has finished."]
    lines = [
        f"{sum(map(len, cells.values()))} of {len(planned)} planned runs have not finished:",
        "",
    ]
    for (t, n, m), seeds in cells.items():
        lines.append(f"- {TASK_NAMES[t]}, {n} shots, {m}: seed {', '.join(map(str, seeds))}")
    return lines


def summarize(out: Path, paper: dict | None = None, planned: list[Run] | None = None) -> str:
    runs = load_runs(out)
    if not runs:
        return "no finished runs under " + str(out)
    paper = paper or {}
    L = []
    any_r = next(iter(runs.values()))
    v = any_r["versions"]
    cfg = any_r["config"]
    L += [
        "### Setting",
        "",
        f"Finished runs: {len(runs)}. Encoder: `{'/'.join(Path(cfg['model']).parts[-2:])}`; "
        f"n_p = 4, K = "
        f"{cfg['n_negatives']}, batch {cfg['batch_size']}, lr {cfg['lr']:g} (prompt methods), "
        f"epochs {sorted({r['config']['epochs'] for r in runs.values()})}, dev evaluated every "
        f"{'epoch' if not cfg['eval_every'] else str(cfg['eval_every']) + ' steps'}; a cell is "
        "the best dev score over the evaluations of a run, mean ± std (ddof 1) over seeds in %, "
        "with the number of seeds in parentheses.",
        "",
        f"Versions: Python {v['python']}, torch {v['torch']}, transformers {v['transformers']}, "
        f"peft {v['peft']}, accelerate {v['accelerate']}; machine {v['machine']}, GPU "
        f"{v['gpu'] or 'none'}.",
        "",
    ]
    glue = [t for t in ("sst2", "rte", "mrpc", "cola") if any(r.task == t for r in runs)]
    for shots in sorted({r.shots for r in runs if r.task in glue}):
        L += (
            ["### GLUE (layout of the paper's table 3)", ""]
            if shots == min(r.shots for r in runs if r.task in glue)
            else []
        )
        L += table(runs, shots, glue, paper) + [""]
    if any(r.task == "semeval" for r in runs):
        L += ["### SemEval-2010 Task 8 (layout of the paper's table 4)", ""]
        for shots in sorted({r.shots for r in runs if r.task == "semeval"}):
            L += table(runs, shots, ["semeval"], paper) + [""]

    L += ["### Paired comparison (same seed = same training examples, order and init seed)", ""]
    L += [
        "Difference in the main dev metric, InfoPrompt minus the baseline, in points; "
        "win/tie/loss over (task, seed) pairs; p = two-sided sign test over wins and losses.",
        "",
        "| baseline | task | shots | pairs | win / tie / loss | mean Δ | min Δ | max Δ | sign test p |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for base in ("warp", "idpg", "betagamma0", "gamma0", "beta0"):
        pairs = paired(runs, "infoprompt", base)
        if not pairs:
            continue
        all_d = []  # GLUE only: SemEval's macro-F1 is on another scale, its rows stand alone
        for (task, shots), rows in pairs.items():
            d = [100 * (a - b) for _, a, b in rows]
            all_d += d if task != "semeval" else []
            L.append(_pair_row(VARIANTS[base][2], TASK_NAMES[task], str(shots), d) + " |")
        if all_d:
            w, lo = sum(x > 0 for x in all_d), sum(x < 0 for x in all_d)
            L.append(
                _pair_row(f"**{VARIANTS[base][2]}**", "**all GLUE**", "", all_d)
                + f" {sign_test(w, lo):.2g} |"
            )
    L += [""]

    L += ["### Convergence: steps to reach 95 % of the final dev score", ""]
    L += [
        "From the same runs' learning curves (one point per evaluation). `final` = the main dev "
        "metric at the last evaluation; a run with final ≤ 0 (possible for MCC) has no such step "
        "and is left out. Lower is faster. Paired by seed: how often InfoPrompt gets there first.",
        "",
        "| task | shots | InfoPrompt steps | WARP steps | IDPG (β = γ = 0) steps | "
        "InfoPrompt earlier than WARP / same / later | step of best dev: InfoPrompt, WARP |",
        "|---|---|---|---|---|---|---|",
    ]
    best_step = paired(runs, "infoprompt", "warp", score=lambda r: r["best"]["step"])
    conv = paired(runs, "infoprompt", "warp", score=lambda r: steps_to_95(r))
    conv_b = paired(runs, "infoprompt", "idpg", score=lambda r: steps_to_95(r))
    tot = [0, 0, 0]
    for (task, shots), rows in conv.items():
        rows = [x for x in rows if x[1] is not None and x[2] is not None]
        bg = [b for _, _, b in conv_b.get((task, shots), []) if b is not None]
        if not rows:
            continue
        e = sum(a < b for _, a, b in rows)
        s = sum(a == b for _, a, b in rows)
        later = len(rows) - e - s
        tot = [tot[0] + e, tot[1] + s, tot[2] + later]
        L.append(
            f"| {TASK_NAMES[task]} | {shots} | {_mean([a for _, a, _ in rows])} | "
            f"{_mean([b for _, _, b in rows])} | {_mean(bg)} | {e} / {s} / {later} | "
            f"{_mean([a for _, a, _ in best_step[(task, shots)]])}, "
            f"{_mean([b for _, _, b in best_step[(task, shots)]])} |"
        )
    L += [f"| **all** | | | | | {tot[0]} / {tot[1]} / {tot[2]} | |", ""]

    L += ["### Time per run", ""]
    L += [
        "Seconds per run (training + evaluations; setup = loading, encoding, caching), mean over "
        "the finished runs.",
        "",
        "| task | shots | method | runs | train + eval s | setup s |",
        "|---|---|---|---|---|---|",
    ]
    groups = defaultdict(list)
    for run, r in runs.items():
        groups[(run.task, run.shots, run.method)].append(r)
    for (t, n, m), rs in sorted(
        groups.items(), key=lambda kv: (_task_key(kv[0][:2]), list(VARIANTS).index(kv[0][2]))
    ):
        L.append(
            f"| {TASK_NAMES[t]} | {n} | {m} | {len(rs)} | "
            f"{statistics.fmean(r['wall_time_s'] for r in rs):.0f} | "
            f"{statistics.fmean(r['setup_s'] for r in rs):.0f} |"
        )
    total = sum(r["wall_time_s"] + r["setup_s"] for r in runs.values())
    L += ["", f"Sum over the finished runs: {total / 60:.0f} min of run time.", ""]
    if planned is not None:
        L += ["### Missing runs", ""] + missing(planned, runs) + [""]
    return "\n".join(L)


def _mean(xs) -> str:
    return f"{statistics.fmean(xs):.1f}" if xs else "–"


def _pair_row(base, task, shots, d) -> str:
    w, t, lo = sum(x > 0 for x in d), sum(x == 0 for x in d), sum(x < 0 for x in d)
    return (
        f"| {base} | {task} | {shots} | {len(d)} | {w} / {t} / {lo} | "
        f"{statistics.fmean(d):+.1f} | {min(d):+.1f} | {max(d):+.1f} |"
    )


def write_summary(text: str, dest: str) -> None:
    """Into ``dest`` between the markers if it holds them, else as the whole file; atomic."""
    if dest == "-":
        print(text)
        return
    path = Path(dest)
    body = text
    if path.exists():
        old = path.read_text()
        if MARK_BEGIN in old and MARK_END in old:
            head, rest = old.split(MARK_BEGIN, 1)
            _, tail = rest.split(MARK_END, 1)
            body = f"{head}{MARK_BEGIN}\n{text}\n{MARK_END}{tail}"
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        f.write(body)
    os.replace(tmp, path)


def _csv(text, cast=str):
    return [cast(x) for x in text.split(",") if x.strip()]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", default="../shared/data", help="folder holding SST-2/, RTE/, ...")
    p.add_argument("--out", default="runs/fewshot")
    p.add_argument("--tasks", default="sst2,rte,mrpc,cola")
    p.add_argument("--shots", default="64,256")
    p.add_argument("--methods", default=DEFAULT_METHODS, help=f"of {', '.join(VARIANTS)}")
    p.add_argument("--seeds", default="1,2,3")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--jobs", type=int, default=1)
    p.add_argument("--threads", type=int, default=0, help="per run; 0 = cores // jobs")
    p.add_argument("--budget", type=float, default=None, help="start no run after this many s")
    p.add_argument("--extra", default="", help="more trainer flags, e.g. '--eval-every 16'")
    p.add_argument("--dry-run", action="store_true", help="print the plan and exit")
    p.add_argument("--summarize", metavar="FILE", help="write the markdown summary and exit")
    a = p.parse_args(argv)
    out = Path(a.out)
    runs = plan(_csv(a.tasks), _csv(a.shots, int), _csv(a.methods), _csv(a.seeds, int))
    if a.summarize:  # the grid options say which runs are planned (listed if missing)
        write_summary(summarize(out, PAPER, runs), a.summarize)
        return 0
    extra = shlex.split(a.extra)
    threads = a.threads or max(1, (os.cpu_count() or 1) // a.jobs)

    def make(run):
        return command(run, out, Path(a.data), a.epochs, extra)

    if a.dry_run:
        for r in runs:
            print(status(r, out), shlex.join(make(r)))
        return 0
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "commands.log", "a") as f:
        f.write(
            f"{time.strftime('%Y-%m-%d %H:%M:%S')}\t{shlex.join([sys.argv[0], *sys.argv[1:]])}\n"
        )
    codes = execute(runs, out, make, a.jobs, threads, a.budget)
    return 1 if any(codes.values()) else 0


# The paper's RoBERTa-large numbers (arXiv 2306.04933, tables 3 and 4), keyed
# (task, shots, "main" | "f1") -> text, per row. Empty where this offline workspace could not check
# them; the tables then print "n/a".
PAPER: dict[str, dict] = {}


if __name__ == "__main__":
    sys.exit(main())
