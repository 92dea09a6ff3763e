"""Command line: ``python -m infoprompt {train,report,predict,figures} ...`` (``--help`` on each).

    python -m infoprompt train --task sst2 --data-dir ../shared/data/SST-2 --method infoprompt \\
        --n-prompts 4 --shots 64 --seeds 1,2,3 --epochs 30 --out runs/sst2-infoprompt
    python -m infoprompt report runs/
    python -m infoprompt predict --run runs/sst2-infoprompt/seed1 "a gem of a film"

``train`` makes one run folder per seed, ``OUT/seed<k>``, and validates every seed's configuration
and the paths before training any. Multi-GPU: ``accelerate launch -m infoprompt train ...``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

from infoprompt.config import ConfigError, RunConfig
from infoprompt.data import DataError

_TYPES = {"int": int, "float": float, "str": str, "float | None": float}
_NOT_FLAGS = ("seed", "out")  # replaced by --seeds and --out (one folder per seed)


def _train_parser(sub) -> None:
    p = sub.add_parser("train", help="train one configuration for one or more seeds")
    for f in dataclasses.fields(RunConfig):
        if f.name in _NOT_FLAGS:
            continue
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        p.add_argument(
            "--" + f.name.replace("_", "-"),
            type=_TYPES[f.type],
            required=required,
            default=argparse.SUPPRESS,
            help=f.metadata["help"],
        )
    p.add_argument("--seeds", default="1", help="comma-separated seeds, e.g. 1,2,3 (default 1)")
    p.add_argument("--out", required=True, help="output folder; one subfolder per seed")
    p.add_argument("--resume", action="store_true", help="continue from the last checkpoints")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def parse_seeds(text: str) -> list[int]:
    try:
        seeds = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise ConfigError(f"--seeds must be comma-separated integers, got {text!r}") from None
    if not seeds:
        raise ConfigError("--seeds is empty; give at least one seed, e.g. --seeds 1")
    return seeds


def cmd_train(args: argparse.Namespace) -> None:
    from accelerate import PartialState

    from infoprompt.train import train

    fields = {f.name for f in dataclasses.fields(RunConfig)} - set(_NOT_FLAGS)
    options = {k: v for k, v in vars(args).items() if k in fields}
    configs = [
        RunConfig(**options, seed=s, out=str(Path(args.out) / f"seed{s}"))
        for s in parse_seeds(args.seeds)
    ]
    for c in configs:
        c.check_paths()
    for c in configs:
        results = train(c, resume=args.resume, progress=not args.no_progress)
        best = results["best"]
        if PartialState().is_main_process:
            print(
                f"seed {c.seed}: best dev {json.dumps(best['dev'])} at step {best['step']}; "
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
    _train_parser(sub)
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
    args = parser.parse_args(argv)
    commands = {"train": cmd_train, "report": cmd_report, "predict": cmd_predict}
    try:
        commands[args.command](args)
    except (ConfigError, DataError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
