"""The few-shot grid of the paper's tables 3 and 4 on real data: resumable, parallel, with ETA.

    python benchmarks/fewshot.py --data ../shared/data --out results/fewshot --part a --jobs 1
    python benchmarks/fewshot.py --out results/fewshot --part b --dry-run  # the plan and its cost
    python -m benchmarks.fewshot_report --out results/fewshot --write docs/results.md

Grid: tasks × shots × seeds × methods (``infoprompt.methods.METHODS``; default: all of them,
64 shots, five seeds), or one of ``PARTS``, the three parts of the paper's Tables 3 and 4 run in
order: (a) 64 shots, every method, five seeds; (b) 256 shots, four methods, five seeds; (c) 256
shots, the other methods, three seeds.
One run is one ``python -m infoprompt train`` subprocess with one seed, in
``OUT/<task>-<shots>/<method>/seed<k>`` (its log beside it, ``seed<k>.log``). Its protocol is the
trainer's: training and validation draws from the training file, the reported set scored after
the last epoch (``test.final``) and for the best-on-validation checkpoint (``test.selected``).

Learning rates: chosen once per (task, method) by the trainer's validation search
(``--lr-grid``, the method's default × ``LR_FACTORS``, one rule for every method) on the
first seed at 64 shots (``lr_source``, ``--lr-shots``); that run *is* the grid's run for that
seed, and every other run of the (task, method), at any number of shots, trains with the chosen
rate (``--lr``). A search whose choice is an edge of its grid, strictly better on validation than
its neighbour, is widened by a factor ``WIDEN`` beyond that edge (at most ``MAX_WIDEN`` times; the
trainer reuses the rates already trained), and a run trained at a rate its widened search no
longer chooses is trained again. A run waits for its search; with ``--jobs 1`` the order below already puts
searches first, and a 256-shot grid run after the 64-shot one finds its searches on disk.

Resume: a run whose ``results.json`` says ``finished`` is skipped without starting a process; an
interrupted one continues from its last checkpoint (the trainer's ``--resume``). Order: shots,
then task, then seed, then method, so a grid cut short holds complete tasks, each with paired
comparisons (every method on the same seeds and examples). ``--jobs N`` runs at once, each with
``--threads`` torch/OMP/MKL threads (default cores // jobs). ``--budget S``: start no run after S
seconds. SIGINT/SIGTERM stop the children (they resume later) and exit. After every run the runner
prints what is left and its estimated time (mean time of the finished runs of the same method and
shots, else of the same method scaled by shots).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from infoprompt.methods import METHODS

DATA_DIRS = {
    "sst2": "SST-2",
    "rte": "RTE",
    "mrpc": "MRPC",
    "cola": "CoLA",
    "semeval": "SemEval2010_task8",
}
# Per-task trainer flags. SemEval's training file holds one example of Entity-Destination(e2,e1),
# so a balanced draw (3 per class of 19, training + validation) is impossible: its draws are
# stratified by the file's class frequencies instead.
TASK_FLAGS = {"semeval": ["--sampling", "proportional"]}
SEEDS = (13, 21, 42, 87, 100)  # LM-BFF's seeds (Gao et al. 2021)
LR_FACTORS = (0.1, 1.0, 10.0)  # the search grid, relative to the method's default rate
WIDEN = 10.0  # an edge choice strictly better than its neighbour adds the rate a factor beyond
MAX_WIDEN = 2  # at most this many rates added per search
LR_SHOTS = 64  # the searches run at this number of shots, once per (task, method)


@dataclass(frozen=True)
class Run:
    task: str
    shots: int
    method: str  # a key of METHODS
    seed: int

    def folder(self, out: Path) -> Path:
        """The trainer's --out; the run itself lives in ``folder / seed<k>``."""
        return Path(out) / f"{self.task}-{self.shots}" / self.method

    def run_dir(self, out: Path) -> Path:
        return self.folder(out) / f"seed{self.seed}"

    def name(self) -> str:
        return f"{self.task}-{self.shots} {self.method} seed{self.seed}"


def plan(tasks, shots, methods, seeds, by_seed: bool = False) -> list[Run]:
    """The grid, ordered shots → task → seed → method (see the module docstring); ``by_seed``:
    seed → shots → task → method, so that a plan cut short holds the same seeds in every cell."""
    for m in methods:
        if m not in METHODS:
            raise SystemExit(f"error: unknown method {m!r} (valid: {', '.join(METHODS)})")
    for t in tasks:
        if t not in DATA_DIRS:
            raise SystemExit(f"error: unknown task {t!r} (valid: {', '.join(DATA_DIRS)})")
    if by_seed:
        return [Run(t, n, m, s) for s in seeds for n in shots for t in tasks for m in methods]
    return [Run(t, n, m, s) for n in shots for t in tasks for s in seeds for m in methods]


@dataclass(frozen=True)
class Part:
    """A part of the grid: shots × methods × seeds over ``tasks`` (default: the ``--tasks``
    given); ``lr``: one fixed rate for every run (no search), in seed-major order."""

    shots: tuple[int, ...]
    methods: tuple[str, ...]
    seeds: tuple[int, ...]
    lr: float | None = None
    tasks: tuple[str, ...] | None = None

    def plan(self, tasks) -> list[Run]:
        return plan(self.tasks or tasks, self.shots, self.methods, self.seeds, self.lr is not None)


PART_B = ("infoprompt", "warp", "beta0gamma0", "probe-pooled")
# docs/preregistration.md: the grid's five seeds, then the smallest positive integers not among
# them, to 20 distinct seeds (1–12, 14, 15, 16)
PREREG_SEEDS = SEEDS + tuple(s for s in range(1, 17) if s not in SEEDS)
PREREG = Part(
    (64,),
    ("infoprompt", "beta0gamma0", "infoprompt-pneg"),
    PREREG_SEEDS,
    lr=1e-3,
    tasks=("sst2", "semeval"),
)
PARTS = {  # run in this order, each part complete before the next
    "a": Part((64,), tuple(METHODS), SEEDS),  # every method, five seeds
    "b": Part((256,), PART_B, SEEDS),
    "c": Part((256,), tuple(m for m in METHODS if m not in PART_B), SEEDS[:3]),  # the rest
    "prereg": PREREG,  # the pre-registered test (docs/preregistration.md), in results/prereg
}


def lr_source(run: Run, runs: list[Run], lr_shots: int = LR_SHOTS) -> Run:
    """The run whose validation search sets ``run``'s learning rate: same task and method, the
    plan's first seed, ``lr_shots`` training examples (it need not be in this plan: a 256-shot
    grid reuses the 64-shot searches on disk)."""
    return Run(run.task, lr_shots, run.method, runs[0].seed)


def read_results(run: Run, out: Path) -> dict | None:
    return read_results_file(run.run_dir(out) / "results.json")


def read_results_file(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def status(run: Run, out: Path, runs: list[Run] | None = None, lr_shots: int = LR_SHOTS) -> str:
    """'done' (finished and current: a search needs no widening, a run trained at its search's
    chosen rate), 'pending' (finished, its search to be widened first), 'stale' (finished at a
    rate its widened search no longer chooses), 'partial' (interrupted, or a search to widen: it
    resumes) or 'todo'. Without ``runs``, finished = done."""
    if not (run.run_dir(out) / "results.json").exists() and not run.run_dir(out).exists():
        return "todo"
    r = read_results(run, out)
    if not (r and r.get("finished")):
        return "partial"
    if runs is None:
        return "done"
    source = lr_source(run, runs, lr_shots)
    if source == run:
        grid = (r.get("lr_search") or {}).get("grid")
        return "done" if grid is None or search_grid(run, out) == grid else "partial"
    if status(source, out, runs, lr_shots) != "done":
        return "pending"  # finished; judged when its search is current
    lr, chosen = (r.get("config") or {}).get("lr"), read_results(source, out).get("lr")
    return "stale" if lr and chosen and not math.isclose(lr, chosen) else "done"


def search_grid(run: Run, out: Path) -> list[float]:
    """The search's rates: the method's default × ``LR_FACTORS``, widened by ``WIDEN`` beyond an
    edge whose validation score is strictly better than its neighbour's, at most ``MAX_WIDEN``
    times (a tie keeps the grid: the trainer then chooses the smaller rate)."""
    base = sorted(float(f"{METHODS[run.method].lr * f:g}") for f in LR_FACTORS)
    r = read_results(run, out)
    if not (r and r.get("finished") and r.get("lr_search")):
        return base
    grid, val, chosen = r["lr_search"]["grid"], r["lr_search"]["val"], r["lr_search"]["chosen"]
    if len(grid) >= len(base) + MAX_WIDEN or None in val:
        return grid
    if math.isclose(chosen, grid[-1]) and val[-1] > val[-2]:
        return [*grid, float(f"{grid[-1] * WIDEN:g}")]
    if math.isclose(chosen, grid[0]) and val[0] > val[1]:
        return [float(f"{grid[0] / WIDEN:g}"), *grid]
    return grid


def lr_flags(
    run: Run, runs: list[Run], out: Path, lr_shots: int = LR_SHOTS, fixed: float | None = None
) -> list[str] | None:
    """``--lr-grid ...`` for a search run, ``--lr <chosen>`` for the others; None while the
    search has not finished or is to be widened. ``fixed``: ``--lr fixed`` for every run."""
    if fixed is not None:
        return ["--lr", f"{fixed:g}"]
    source = lr_source(run, runs, lr_shots)
    if source == run:
        return ["--lr-grid", *(f"{lr:g}" for lr in search_grid(run, out))]
    if status(source, out, runs, lr_shots) != "done":
        return None
    return ["--lr", f"{read_results(source, out)['lr']:g}"]


def command(run: Run, out: Path, data: Path, lr: list[str], extra: list[str]) -> list[str]:
    """The trainer command of one run (always --resume: the trainer continues a partial run)."""
    return [
        sys.executable,
        "-m",
        "infoprompt",
        "train",
        "--task",
        run.task,
        "--data-dir",
        str(Path(data) / DATA_DIRS[run.task]),
        "--method",
        run.method,
        "--shots",
        str(run.shots),
        "--seeds",
        str(run.seed),
        *lr,
        "--out",
        str(run.folder(out)),
        "--resume",
        "--no-progress",
        *TASK_FLAGS.get(run.task, []),
        *extra,
    ]


def thread_env(threads: int) -> dict:
    env = dict(os.environ)
    for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[k] = str(threads)
    env["TOKENIZERS_PARALLELISM"] = "false"
    env["PYTHONUNBUFFERED"] = "1"  # log lines reach seed<k>.log as they happen
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.setdefault("TRANSFORMERS_OFFLINE", "1")
    return env


def run_seconds(r: dict) -> float:
    return r.get("wall_time_s", 0.0) + r.get("setup_s", 0.0)


def estimate(todo: list[Run], out: Path, all_runs: list[Run] | None) -> float | None:
    """Estimated seconds for ``todo`` from the finished runs (module docstring; a search costs
    ``len(LR_FACTORS)`` runs; ``all_runs`` None: no searches); None if no finished run of some method to estimate from."""
    times: dict[tuple[str, int], list[float]] = {}
    for path in Path(out).glob("*-*/*/seed*/results.json"):  # every finished run, in plan or not
        r = read_results_file(path)
        if r and r.get("finished"):
            shots = int(path.parts[-4].rsplit("-", 1)[1])
            times.setdefault((path.parts[-3], shots), []).append(run_seconds(r))
    total = 0.0
    for run in todo:
        searches = len(LR_FACTORS) if all_runs and lr_source(run, all_runs) == run else 1
        same = times.get((run.method, run.shots))
        if same:
            total += searches * statistics.fmean(same)
            continue
        other = [(n, statistics.fmean(v)) for (m, n), v in times.items() if m == run.method]
        if not other:
            return None
        n, t = other[0]
        total += searches * t * run.shots / n
    return total


def eta_hours(seconds: float, jobs: int) -> str:
    """An estimate of one job's seconds (``estimate``) in hours, and with ``jobs`` at once (the
    runs' times are measured under that load, so ``jobs`` of them take about one's time)."""
    text = f"about {seconds / 3600:.1f} h of one job"
    return text + (f", {seconds / 3600 / jobs:.1f} h with {jobs} jobs" if jobs > 1 else "")


def execute(
    runs,
    out: Path,
    make_cmd,
    jobs: int = 1,
    threads: int = 1,
    budget=None,
    log=print,
    lr_shots: int = LR_SHOTS,
    searched: bool = True,
):
    """Run the pending ``runs`` (``make_cmd(run) -> argv``, or None while it must wait), ``jobs``
    at a time; skip finished ones. A search that finishes with an edge choice runs again, widened
    (``search_grid``); a run trained at a rate its widened search no longer chooses is deleted and
    trained again. Returns {run: returncode} of the runs started. ``budget`` (s): start nothing
    after it. ``searched``: False for a plan at a fixed rate (a finished run is done)."""
    out = Path(out)
    graded = runs if searched else None
    todo = [r for r in runs if status(r, out, graded, lr_shots) != "done"]
    log(
        f"grid: {len(runs)} runs, {len(runs) - len(todo)} finished, {len(todo)} to run, "
        f"{jobs} at a time × {threads} threads"
    )
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
                run, cmd = _first_ready(queue, make_cmd)
                if run is None:
                    break  # every queued run waits for a search that is running
                queue.remove(run)
                state = status(run, out, graded, lr_shots)
                if state == "done":  # its search kept its choice: nothing to train
                    codes[run] = 0
                    continue
                if state == "stale":
                    log(
                        f"superseded: {run.name()} (trained at another rate than its widened "
                        f"search chose); training it again"
                    )
                    shutil.rmtree(run.run_dir(out))
                run.folder(out).mkdir(parents=True, exist_ok=True)
                logf = open(run.folder(out) / f"seed{run.seed}.log", "a")
                how = "resume" if state == "partial" else "start"
                p = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT, env=env)
                running[p] = (run, time.monotonic(), logf)
                log(f"[{len(codes) + len(running)}/{len(todo)}] {how} {run.name()}")
            if stopping:
                queue.clear()
            if not running and queue:
                log(
                    f"error: {len(queue)} runs wait for learning-rate searches that failed or "
                    f"are not in this plan (run the {LR_SHOTS}-shot grid first)"
                )
                break
            time.sleep(0.05)
            for p in [p for p in running if p.poll() is not None]:
                run, started, logf = running.pop(p)
                logf.close()
                codes[run] = p.returncode
                log(_done_line(run, out, p.returncode, time.monotonic() - started))
                if p.returncode == 0 and status(run, out, graded, lr_shots) == "partial":
                    log(f"widening {run.name()}: its choice is an edge of the grid")
                    queue.insert(0, run)
                    del codes[run]
                left = [r for r in todo if r not in codes]
                eta = estimate(left, out, graded)
                eta_text = "not yet known" if eta is None else eta_hours(eta, jobs)
                log(f"left: {len(left)} runs, {eta_text} (elapsed {time.monotonic() - t0:.0f} s)")
    finally:
        for s, h in old.items():
            signal.signal(s, h)
    if stopping:
        log("stopped by signal; rerun the same command to resume")
    return codes


def _first_ready(queue: list[Run], make_cmd):
    """The first queued run that can start, with its command; (None, None) if all wait."""
    for run in queue:
        cmd = make_cmd(run)
        if cmd is not None:
            return run, cmd
    return None, None


def _done_line(run: Run, out: Path, code: int, seconds: float) -> str:
    r = read_results(run, out)
    if code != 0 or not r or "test" not in r:
        return f"FAILED ({code}) {run.name()} after {seconds:.0f} s; see its seed{run.seed}.log"
    m = r["main_metric"]
    final, selected = r["test"]["final"][m], r["test"]["selected"][m]
    return (
        f"done {run.name()}: test.final {m} {100 * final:.1f}, test.selected "
        f"{100 * selected:.1f}, lr {r['config']['lr'] or r.get('lr'):g} in {seconds:.0f} s"
    )


def _csv(text, cast=str):
    return [cast(x) for x in text.split(",") if x.strip()]


def grid(p: argparse.ArgumentParser, a: argparse.Namespace) -> list[Run]:
    """The runs of ``--part`` or of ``--shots``/``--methods``/``--seeds`` (not both)."""
    if a.part:
        given = [f"--{k}" for k in ("shots", "methods", "seeds") if getattr(a, k) is not None]
        if given:
            p.error(f"--part {a.part} sets {', '.join(given)}; give one or the other")
        return PARTS[a.part].plan(_csv(a.tasks))
    return plan_flags(a.tasks, a.shots, a.methods, a.seeds)


def plan_flags(tasks: str, shots: str | None, methods: str | None, seeds: str | None):
    """``plan`` from the comma lists of the flags; unset: 64 shots, every method, ``SEEDS``."""
    return plan(
        _csv(tasks),
        _csv(shots or "64", int),
        _csv(methods) if methods else list(METHODS),
        _csv(seeds, int) if seeds else SEEDS,
    )


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", default="../shared/data", help="folder holding SST-2/, RTE/, ...")
    p.add_argument("--out", default="results/fewshot")
    p.add_argument("--tasks", default="sst2,rte,mrpc,cola,semeval")
    p.add_argument(
        "--part",
        choices=PARTS,
        help="a part of the paper's grid (PARTS): sets --shots, --methods and --seeds",
    )
    p.add_argument("--shots", help="default 64")
    p.add_argument("--methods", help=f"of {', '.join(METHODS)} (default: all)")
    p.add_argument("--seeds", help=f"default {','.join(map(str, SEEDS))}")
    p.add_argument("--jobs", type=int, default=1)
    p.add_argument("--threads", type=int, default=0, help="per run; 0 = cores // jobs")
    p.add_argument("--budget", type=float, default=None, help="start no run after this many s")
    p.add_argument("--extra", default="", help="more trainer flags, e.g. '--epochs 10'")
    p.add_argument("--lr-shots", type=int, default=LR_SHOTS, help="shots of the lr searches")
    p.add_argument(
        "--lr",
        type=float,
        default=None,
        help="one fixed rate for every run, no search (--part prereg: 1e-3)",
    )
    p.add_argument("--dry-run", action="store_true", help="print the plan, its cost, and exit")
    a = p.parse_args(argv)
    out = Path(a.out)
    runs = grid(p, a)
    extra = shlex.split(a.extra)
    threads = a.threads or max(1, (os.cpu_count() or 1) // a.jobs)

    fixed = a.lr if a.lr is not None else (PARTS[a.part].lr if a.part else None)
    graded = None if fixed is not None else runs

    def make(run):
        lr = lr_flags(run, runs, out, a.lr_shots, fixed)
        return None if lr is None else command(run, out, Path(a.data), lr, extra)

    if a.dry_run:
        for r in runs:
            cmd = make(r)
            print(
                status(r, out, graded, a.lr_shots),
                shlex.join(cmd) if cmd else f"{r.name()} (waits for its lr search)",
            )
        todo = [r for r in runs if status(r, out, graded, a.lr_shots) != "done"]
        eta = estimate(todo, out, graded)
        print(
            f"{len(todo)} of {len(runs)} runs to go; estimated "
            + (
                eta_hours(eta, a.jobs)
                if eta is not None
                else "cost unknown (no finished run of some method yet)"
            )
        )
        return 0
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "commands.log", "a") as f:
        f.write(
            f"{time.strftime('%Y-%m-%d %H:%M:%S')}\t{shlex.join([sys.argv[0], *sys.argv[1:]])}\n"
        )
    codes = execute(
        runs, out, make, a.jobs, threads, a.budget, lr_shots=a.lr_shots, searched=graded is not None
    )
    return 1 if any(codes.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
