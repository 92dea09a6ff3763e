"""Command line: ``python -m infoprompt {train,report,predict,figures} ...`` (``--help`` on each).

    python -m infoprompt train --task sst2 --data-dir ../shared/data/SST-2 --method infoprompt \\
        --shots 64 --seeds 13,21,42 --out runs/sst2-infoprompt
    python -m infoprompt report runs/
    python -m infoprompt predict --run runs/sst2-infoprompt/seed13 "a gem of a film"

``train`` makes one run folder per seed, ``OUT/seed<k>``, and validates every seed's configuration
and the paths before training any. Its flags are the fields of ``infoprompt.config.RunConfig``
(``transformers.HfArgumentParser``): ``--lr-grid 1e-4 1e-3 1e-2``, ``--test-curve``, ... Multi-GPU: ``accelerate launch -m infoprompt train ...``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
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
    no_progress: bool = dataclasses.field(default=False, metadata={"help": "no progress output"})


def train_parser():
    """The ``train`` command line, read from the ``RunConfig`` and ``TrainOptions`` fields."""
    from transformers import HfArgumentParser

    return HfArgumentParser(
        (RunConfig, TrainOptions),
        prog="python -m infoprompt train",
        description="train one configuration for one or more seeds",
    )


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


def cmd_train(argv: list[str]) -> None:
    from accelerate import PartialState

    from infoprompt.train import train

    base, opts = train_parser().parse_args_into_dataclasses(argv, look_for_args_file=False)
    seeds = parse_seeds(opts.seeds) if opts.seeds is not None else [base.seed]
    configs = [
        dataclasses.replace(base, seed=s, out=str(Path(base.out) / f"seed{s}")) for s in seeds
    ]
    for c in configs:
        c.check_paths()
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m infoprompt", description=__doc__.split("\n")[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("train", help="train one configuration (train --help)", add_help=False)
    rep = sub.add_parser("report", help="mean ± std tables of finished runs")
    rep.add_argument("folders", nargs="+", help="folders searched for results.json")
    pred = sub.add_parser("predict", help="predict labels of new text with a trained run")
    pred.add_argument("--run", required=True, help="one run's folder (holds best.safetensors)")
    pred.add_argument("texts", nargs="+", help="texts; pairs as 'A ||| B'")
    sub.add_parser("figures", help="the paper's figures 1-3 (figures --help)", add_help=False)
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["figures"]:  # its own parser and dispatch: infoprompt.figures
        from infoprompt.figures import main as figures_main

        return figures_main(argv[1:])
    try:
        if argv[:1] == ["train"]:  # its own parser, read from the dataclasses
            cmd_train(argv[1:])
            return 0
        args = parser.parse_args(argv)
        {"report": cmd_report, "predict": cmd_predict}[args.command](args)
    except (ConfigError, DataError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
