"""Command line: ``python -m infoprompt {train,report,predict,figures,theory} ...`` (``--help`` on each).

    python -m infoprompt train --task sst2 --data-dir ../shared/data/SST-2 --method infoprompt \\
        --shots 64 --seeds 13,21,42 --out runs/sst2-infoprompt
    python -m infoprompt report runs/
    python -m infoprompt predict --run runs/sst2-infoprompt/seed13 "a gem of a film"

``train`` makes one run folder per seed, ``OUT/seed<k>``: it parses and validates the
configuration once, derives every seed's from it, checks the data folder and the model and
creates every seed's folder (a probe file written in it) before anything loads. Its flags are the
fields of ``infoprompt.config.RunConfig`` (``transformers.HfArgumentParser``), each spelt with
dashes: ``--data-dir``, ``--lr-grid 1e-4 1e-3 1e-2``, ``--test-curve``, ... Multi-GPU:
``accelerate launch -m infoprompt train ...``.

The command line runs offline (``HF_HUB_OFFLINE=1``) unless the environment sets
``HF_HUB_OFFLINE``: a model that is not a local folder or in the Hugging Face cache is an error at
once, not after retries. ``train --threads N`` (default: ``OMP_NUM_THREADS``, else physical cores
// local processes) sets torch's and BLAS's threads. Ctrl-C during ``train`` exits 130 with one
line: the same command with ``--resume`` where a run folder holds a checkpoint to continue from,
else that nothing was saved.

Subcommands are registered in ``SUBCOMMANDS``: name → (help, function of the remaining
arguments returning the exit status); each parses its own arguments.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shlex
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from infoprompt._cli import HelpFormatter, dashed_flags_only, run_reporting_errors, set_threads
from infoprompt.config import RunConfig
from infoprompt.errors import ConfigError

if TYPE_CHECKING:
    from transformers import HfArgumentParser


@dataclasses.dataclass
class TrainOptions:
    """How to run, not what: these never change a result."""

    seeds: str | None = dataclasses.field(
        default=None,
        metadata={
            "help": "comma-separated seeds, e.g. 13,21,42,87,100 (overrides --seed); each seed "
            "runs in OUT/seed<k>"
        },
    )
    resume: bool = dataclasses.field(
        default=False, metadata={"help": "continue an unfinished run, or return a finished one"}
    )
    no_progress: bool = dataclasses.field(
        default=False,
        metadata={
            "help": "no progress bars (ours, transformers', huggingface_hub's); log lines stay"
        },
    )
    threads: int | None = dataclasses.field(
        default=None,
        metadata={
            "help": "CPU threads per process for torch (intra-op) and BLAS (threadpoolctl); "
            "None = $OMP_NUM_THREADS if set, else physical cores // local processes (at least 1)"
        },
    )


def train_parser() -> HfArgumentParser:
    """The ``train`` command line, read from the ``RunConfig`` and ``TrainOptions`` fields, one
    dashed spelling per flag; ``--out`` is required (a config in memory may have none)."""
    from transformers import HfArgumentParser

    parser = HfArgumentParser(
        (RunConfig, TrainOptions),  # type: ignore[arg-type]  # frozen dataclasses are dataclasses
        prog="python -m infoprompt train",
        description="train one configuration for one or more seeds",
        formatter_class=HelpFormatter,
    )
    for action in parser._actions:
        if action.dest == "out":
            action.required = True
    return dashed_flags_only(parser)


def parse_seeds(text: str) -> list[int]:
    try:
        seeds = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise ConfigError(f"--seeds must be comma-separated integers, got {text!r}") from None
    if not seeds:
        raise ConfigError("--seeds is empty; give at least one seed, e.g. --seeds 13")
    if any(s < 0 for s in seeds):
        raise ConfigError(f"--seeds must be integers >= 0, got {text!r}")
    return seeds


def name_flags(e: ConfigError) -> ConfigError:
    """``e`` with each problem prefixed by the flag it is about (``--seed: seed must be ...``)."""
    head, sep, rest = str(e).partition("invalid configuration: ")
    if not sep:
        return e
    flags = {f.name for f in dataclasses.fields(RunConfig)}
    out = []
    for problem in rest.split("; "):
        words = [w.strip("(),'") for w in problem.split()[:2]]
        name = next((w for w in words if w in flags), None)
        out.append(f"--{name.replace('_', '-')}: {problem}" if name else problem)
    return ConfigError(head + sep + "; ".join(out))


def parse_train(argv: list[str]) -> tuple[list[RunConfig], TrainOptions]:
    """The one pass from the command line to the runs: parse and validate once, derive every
    seed's configuration (``RunConfig.for_seed``), check the inputs and create every run folder."""
    try:
        base, opts = train_parser().parse_args_into_dataclasses(argv, look_for_args_file=False)
    except ConfigError as e:
        raise name_flags(e) from None
    seeds = parse_seeds(opts.seeds) if opts.seeds is not None else [base.seed]
    configs = [base.for_seed(s, str(Path(base.out) / f"seed{s}")) for s in seeds]
    base.check_inputs()
    for c in configs:
        c.prepare_out()
    return configs, opts


def cmd_train(argv: list[str]) -> int:
    """``train``: every seed in turn; Ctrl-C exits 130 saying how to continue (``interrupted``)."""
    from accelerate import PartialState

    from infoprompt.train import train

    configs, opts = parse_train(argv)
    set_threads(opts.threads)
    try:
        for c in configs:
            results = train(c, opts.resume, not opts.no_progress, paths_checked=True)
            if PartialState().is_main_process:
                t = results["test"]
                print(
                    f"seed {c.seed}: test final {json.dumps(t['final'])}, selected (step "
                    f"{t['selected_step']}) {json.dumps(t['selected'])}; "
                    f"{results['wall_time_s']:.0f} s; results in {c.out}/results.json"
                )
    except KeyboardInterrupt:
        return interrupted(argv, [Path(str(c.out)) for c in configs])
    return 0


def resumable(run_dirs: list[Path]) -> bool:
    """Whether any of ``run_dirs`` (or an lr search's sub-run in it) holds a checkpoint or
    results that ``--resume`` would continue from."""
    from infoprompt.runs import LAST, RESULTS

    return any(
        (d / LAST).exists() or (d / RESULTS).exists() or any(d.glob(f"lr-*/{LAST}"))
        for d in run_dirs
    )


def interrupted(argv: list[str], run_dirs: list[Path]) -> int:
    """One line on Ctrl-C during ``train``: how to continue. Exit status 130 (SIGINT)."""
    if os.environ.get("RANK", "0") == "0":
        if resumable(run_dirs):
            again = argv if "--resume" in argv else [*argv, "--resume"]
            line = (
                "interrupted; to continue from the last checkpoint, run the same command with "
                f"--resume: python -m infoprompt train {shlex.join(again)}"
            )
        else:
            line = (
                "interrupted before the first checkpoint; nothing was saved, so run the same "
                "command again to start over"
            )
        print("\n" + line, file=sys.stderr)
    return 130


def cmd_report(argv: list[str]) -> int:
    from infoprompt.report import find_results, tables

    p = argparse.ArgumentParser(
        prog="python -m infoprompt report",
        description="mean ± std tables of finished runs",
        formatter_class=HelpFormatter,
    )
    p.add_argument("folders", nargs="+", help="folders searched for results.json")
    args = p.parse_args(argv)
    print(tables(find_results(args.folders)))
    return 0


def cmd_predict(argv: list[str]) -> int:
    from infoprompt.predict import predict

    p = argparse.ArgumentParser(
        prog="python -m infoprompt predict",
        description="predict labels of new text with a trained run",
        formatter_class=HelpFormatter,
    )
    p.add_argument("--run", required=True, help="one run's folder (holds best.safetensors)")
    p.add_argument("texts", nargs="+", help="texts; pairs as 'A ||| B'")
    args = p.parse_args(argv)
    for r in predict(args.run, args.texts):
        probs = " ".join(f"{k}={v:.3f}" for k, v in r["probs"].items())
        print(f"{r['label']}\t{probs}\t{r['text']}")
    return 0


def cmd_figures(argv: list[str]) -> int:
    from infoprompt.figures_cli import main as figures_main

    return figures_main(argv)


def cmd_theory(argv: list[str]) -> int:
    """``theory``: its own parser (``infoprompt.theorem``)."""
    from infoprompt.theorem import main as theorem_main

    return theorem_main(argv)


SUBCOMMANDS: dict[str, tuple[str, Callable[[list[str]], int]]] = {
    "train": ("train one configuration (train --help)", cmd_train),
    "report": ("mean ± std tables of finished runs (report --help)", cmd_report),
    "predict": ("predict labels of new text with a trained run (predict --help)", cmd_predict),
    "figures": ("the paper's figures 1-3 (figures --help)", cmd_figures),
    "theory": ("Theorem 3.1 against a finished run (theory --help)", cmd_theory),
}


def version() -> str:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as package_version

    try:
        return package_version("infoprompt")
    except PackageNotFoundError:
        return "unknown (not installed; pip install -e .)"


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before huggingface_hub reads it (on import)
    parser = argparse.ArgumentParser(
        prog="python -m infoprompt",
        description=(__doc__ or "").split("\n")[0],
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"infoprompt {version()}")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (text, _) in SUBCOMMANDS.items():
        sub.add_parser(name, help=text, add_help=False)
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] not in SUBCOMMANDS:
        parser.parse_args(argv)  # usage, --help, --version or the error for an unknown command
        return 2
    _, fn = SUBCOMMANDS[argv[0]]
    status = 0

    def run() -> None:
        nonlocal status
        status = fn(argv[1:])

    return run_reporting_errors(run) or status


if __name__ == "__main__":
    sys.exit(main())
