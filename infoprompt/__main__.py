"""Command line: ``python -m infoprompt {train,report,predict,figures,theory} ...`` (``--help`` on each).

    python -m infoprompt train --task sst2 --data-dir ../shared/data/SST-2 --method infoprompt \\
        --shots 64 --seeds 13,21,42 --out runs/sst2-infoprompt
    python -m infoprompt report runs/
    python -m infoprompt predict --run runs/sst2-infoprompt/seed13 "a gem of a film"

``train`` makes one run folder per seed, ``OUT/seed<k>``, and validates every seed's configuration
and the paths before training any. Its flags are the fields of ``infoprompt.config.RunConfig``
(``transformers.HfArgumentParser``): ``--lr-grid 1e-4 1e-3 1e-2``, ``--test-curve``, ... Multi-GPU: ``accelerate launch -m infoprompt train ...``.

The command line runs offline (``HF_HUB_OFFLINE=1``) unless the environment sets
``HF_HUB_OFFLINE``: a model that is not a local folder or in the Hugging Face cache is an error at
once, not after retries. ``train --threads N`` (default: ``OMP_NUM_THREADS``, else physical cores
// local processes) sets torch's and BLAS's threads. Ctrl-C during ``train`` exits 130 with one
line: the same command with ``--resume`` continues from the last checkpoint.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shlex
import sys
from pathlib import Path

from infoprompt.config import ConfigError, RunConfig
from infoprompt.data import DataError


@dataclasses.dataclass
class TrainOptions:
    """How to run, not what: these never change a result."""

    seeds: str | None = dataclasses.field(
        default=None,
        metadata={
            "help": "comma-separated seeds, e.g. 13,21,42,87,100 (overrides --seed); "
            "each seed runs in OUT/seed<k>"
        },  # fmt: skip
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
        },  # fmt: skip
    )


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Defaults in every option's help; '(required)' instead of a default for required ones."""

    def _get_help_string(self, action):
        if action.required:
            return (action.help or "") + " (required)"
        return super()._get_help_string(action)


def train_parser():
    """The ``train`` command line, read from the ``RunConfig`` and ``TrainOptions`` fields."""
    from transformers import HfArgumentParser

    return HfArgumentParser(
        (RunConfig, TrainOptions),
        prog="python -m infoprompt train",
        description="train one configuration for one or more seeds",
        formatter_class=HelpFormatter,
    )


def default_threads() -> int:
    """$OMP_NUM_THREADS if set, else physical cores (of this process's CPUs) // local processes."""
    env = os.environ.get("OMP_NUM_THREADS", "")
    if env.isdigit() and int(env) > 0:
        return int(env)
    try:
        import psutil

        cores = psutil.cpu_count(logical=False) or os.cpu_count() or 1
    except ImportError:
        cores = os.cpu_count() or 1
    if hasattr(os, "sched_getaffinity"):
        cores = min(cores, len(os.sched_getaffinity(0)))
    local = int(os.environ.get("LOCAL_WORLD_SIZE", "1") or 1)
    return max(1, cores // max(local, 1))


def set_threads(threads: int | None) -> int:
    """Set torch's intra-op threads and BLAS's (threadpoolctl) to ``threads`` (None:
    ``default_threads()``); print the value once (main process); return it."""
    import torch
    from threadpoolctl import threadpool_limits

    if threads is not None and threads < 1:
        raise ConfigError(f"--threads must be an integer >= 1, got {threads}")
    n = threads or default_threads()
    torch.set_num_threads(n)
    threadpool_limits(limits=n)
    if os.environ.get("RANK", "0") == "0":
        print(
            f"threads: {n} per process (torch intra-op and BLAS; --threads to change)", flush=True
        )
    return n


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


def check_model(name: str) -> None:
    """Offline, a hub name must be in the Hugging Face cache: an error now, not after the data."""
    from infoprompt.model import offline, unavailable

    if os.path.isdir(os.path.expanduser(name)) or not offline():
        return
    from huggingface_hub import try_to_load_from_cache

    try:
        cached = try_to_load_from_cache(name, "config.json")
    except ValueError:  # not a valid repository id
        cached = None
    if not isinstance(cached, str):
        raise unavailable(name)


def cmd_train(argv: list[str]) -> None:
    from accelerate import PartialState

    from infoprompt.train import train

    try:
        base, opts = train_parser().parse_args_into_dataclasses(argv, look_for_args_file=False)
    except ConfigError as e:
        raise name_flags(e) from None
    seeds = parse_seeds(opts.seeds) if opts.seeds is not None else [base.seed]
    configs = [
        dataclasses.replace(base, seed=s, out=str(Path(base.out) / f"seed{s}")) for s in seeds
    ]
    for c in configs:
        c.check_paths()
    check_model(base.model)
    set_threads(opts.threads)
    for c in configs:
        results = train(c, resume=opts.resume, progress=not opts.no_progress)
        if PartialState().is_main_process:
            t = results["test"]
            print(
                f"seed {c.seed}: test final {json.dumps(t['final'])}, selected (step "
                f"{t['selected_step']}) {json.dumps(t['selected'])}; "
                f"{results['wall_time_s']:.0f} s; results in {c.out}/results.json"
            )


def cmd_report(args: argparse.Namespace) -> None:
    from infoprompt.report import find_results, tables

    print(tables(find_results(args.folders)))


def cmd_predict(args: argparse.Namespace) -> None:
    from infoprompt.predict import predict

    for p in predict(args.run, args.texts):
        probs = " ".join(f"{k}={v:.3f}" for k, v in p["probs"].items())
        print(f"{p['label']}\t{probs}\t{p['text']}")


def version() -> str:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as package_version

    try:
        return package_version("infoprompt")
    except PackageNotFoundError:
        return "unknown (not installed; pip install -e .)"


def interrupted(argv: list[str]) -> int:
    """One line on Ctrl-C during ``train``: how to continue. Exit status 130 (SIGINT)."""
    again = argv if "--resume" in argv else [*argv, "--resume"]
    if os.environ.get("RANK", "0") == "0":
        print(
            "\ninterrupted; to continue from the last checkpoint, run the same command with "
            f"--resume: python -m infoprompt {shlex.join(again)}",
            file=sys.stderr,
        )
    return 130


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before huggingface_hub reads it (on import)
    parser = argparse.ArgumentParser(
        prog="python -m infoprompt",
        description=__doc__.split("\n")[0],
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"infoprompt {version()}")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("train", help="train one configuration (train --help)", add_help=False)
    rep = sub.add_parser(
        "report", help="mean ± std tables of finished runs", formatter_class=HelpFormatter
    )
    rep.add_argument("folders", nargs="+", help="folders searched for results.json")
    pred = sub.add_parser(
        "predict",
        help="predict labels of new text with a trained run",
        formatter_class=HelpFormatter,
    )
    pred.add_argument("--run", required=True, help="one run's folder (holds best.safetensors)")
    pred.add_argument("texts", nargs="+", help="texts; pairs as 'A ||| B'")
    sub.add_parser("figures", help="the paper's figures 1-3 (figures --help)", add_help=False)
    sub.add_parser("theory", help="Theorem 3.1 against a run (theory --help)", add_help=False)
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["figures"]:  # its own parser and dispatch: infoprompt.figures
        from infoprompt.figures import main as figures_main

        return figures_main(argv[1:])
    try:
        if argv[:1] == ["theory"]:  # its own parser: infoprompt.theorem
            from infoprompt.theorem import main as theorem_main

            return theorem_main(argv[1:])
        if argv[:1] == ["train"]:  # its own parser, read from the dataclasses
            try:
                cmd_train(argv[1:])
            except KeyboardInterrupt:
                return interrupted(argv)
            return 0
        args = parser.parse_args(argv)
        {"report": cmd_report, "predict": cmd_predict}[args.command](args)
    except (ConfigError, DataError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
