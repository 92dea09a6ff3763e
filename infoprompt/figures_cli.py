"""Command line of the figures: ``python -m infoprompt figures {cmi,landscape,curves}``."""

from __future__ import annotations

import argparse
import sys

import numpy as np

from infoprompt._cli import HelpFormatter, set_threads
from infoprompt.backbone import default_model, load_backbone
from infoprompt.config import RunConfig
from infoprompt.data import Example
from infoprompt.errors import ConfigError, DataError
from infoprompt.fig_cmi import cmi_distributions
from infoprompt.fig_landscape import LANDSCAPE_ARMS, landscape_run, log10, roughness
from infoprompt.figures import curve_stats, reported_curves
from infoprompt.plots import plot_cmi, plot_curves, plot_landscapes
from infoprompt.readers import load_split
from infoprompt.sampling import draw


def _data(args: argparse.Namespace) -> tuple[list[Example], list[Example]]:
    """The seed's few-shot training draw and a fixed random subset of ``--dev`` dev examples."""
    spec, train = load_split(args.task, args.data_dir, "train")
    _, dev = load_split(args.task, args.data_dir, "dev", labels=spec.labels)
    train, _ = draw(train, args.shots, 0, args.seed, len(spec.labels), label_names=spec.labels)
    if args.dev and args.dev < len(dev):
        dev = [dev[i] for i in np.random.default_rng(0).choice(len(dev), args.dev, replace=False)]
    return train, dev


def _base(
    args: argparse.Namespace, beta: float | None = None, gamma: float | None = None
) -> RunConfig:
    """The figures' configuration (in memory: no run folder)."""
    return RunConfig(
        task=args.task,
        data_dir=args.data_dir,
        model=args.model,
        shots=args.shots,
        val_shots=0,
        seed=args.seed,
        max_len=args.max_len,
        beta=beta,
        gamma=gamma,
    )


def cmd_cmi(args: argparse.Namespace) -> None:
    train, dev = _data(args)
    values, norms = cmi_distributions(
        load_backbone(args.model),
        train,
        dev,
        _base(args),
        args.steps,
        args.k,
        critic_steps=args.critic_steps,
        sets=args.sets,
        unit=args.unit_prompts,
    )
    for name, v in values.items():
        print(
            f"{name:22s} mean {np.mean(v):.3f}  median {np.median(v):.3f}  std {np.std(v):.3f}",
            end="",
        )
        print(f"  mean |P| {norms[name]:.3f}")
    print(f"mean |P| of the K - 1 reference prompt sets: {norms['(reference sets)']:.3f}")
    unit = ", P/|P|" if args.unit_prompts else ""
    plot_cmi(
        values, args.k, args.out, f"(K = {args.k}, {args.steps} steps, {len(dev)} dev ex.{unit})"
    )


def cmd_landscape(args: argparse.Namespace) -> None:
    train, dev = _data(args)
    backbone, runs = load_backbone(args.model), {}
    for name, weights in LANDSCAPE_ARMS.items():
        config = _base(args, **weights)
        runs[name] = r = landscape_run(
            backbone, train, dev, config, args.steps, args.points, args.grid
        )
        path = np.linalg.norm(np.diff(r["traj"], axis=0), axis=1).sum()
        print(
            f"{name}: roughness of log10 task loss {roughness(log10(r['pred'])):.4f}, "
            f"of log10 rep loss {roughness(log10(r['rep'])):.4f}; path length {path:.3f}"
        )
    plot_landscapes(runs, args.out, f"({args.steps} steps, {args.grid}×{args.grid} grid)")


def cmd_curves(args: argparse.Namespace) -> None:
    curves = reported_curves(args.runs, args.split)
    for name, per_run in curves.items():
        stats = [curve_stats(c) for c in per_run]
        means = {k: float(np.mean([s[k] for s in stats])) for k in stats[0]}
        print(f"{name} ({len(stats)} runs), means: {means}")
    runs = ", ".join(f"{k} × {len(v)}" for k, v in curves.items())
    where = "reported set, --test-curve runs" if args.split == "test" else "validation split"
    plot_curves(curves, args.out, f"({where}: {runs})", ylabel=f"{where}: main metric")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m infoprompt figures",
        description="the paper's figures 1–3",
        formatter_class=HelpFormatter,
    )
    sub = p.add_subparsers(dest="figure", required=True)
    specs = {
        "cmi": (
            "Fig. 1: CMI of prompts and mask representation",
            cmd_cmi,
            {"steps": 120, "dev": 150},
        ),
        "landscape": (
            "Fig. 2: loss landscapes and trajectories",
            cmd_landscape,
            {"steps": 250, "dev": 32},
        ),
    }
    curves = sub.add_parser(
        "curves",
        help="Fig. 3: learning curves on the reported set, from --test-curve runs",
        description="Fig. 3: learning curves on the reported set, read from runs trained with "
        "--test-curve (their curves are labelled so and never select anything)",
        formatter_class=HelpFormatter,
    )
    curves.set_defaults(fn=cmd_curves)
    curves.add_argument("--runs", nargs="+", required=True, help="folders holding the runs")
    curves.add_argument(
        "--split",
        choices=("test", "validation"),
        default="test",
        help="'test': the reported set's --test-curve; 'validation': the validation split",
    )
    curves.add_argument("--out", required=True, help="PNG file to write")
    for name, (text, fn, d) in specs.items():
        q = sub.add_parser(
            name,
            help=text,
            description=text,
            formatter_class=HelpFormatter,
        )
        q.set_defaults(fn=fn)
        q.add_argument("--data-dir", required=True, help="the task's data folder")
        q.add_argument("--out", required=True, help="PNG file to write")
        q.add_argument(
            "--task", default="sst2", help="task whose data --data-dir holds (e.g. sst2)"
        )
        q.add_argument(
            "--model",
            default=default_model(),
            help="encoder: hub name or local folder (the packaged MiniLM by default)",
        )
        q.add_argument("--shots", type=int, default=64, help="training examples drawn by seed")
        q.add_argument("--seed", type=int, default=1, help="seed of the draw and initialisation")
        q.add_argument("--max-len", type=int, default=128, help="tokens per sequence incl. prompts")
        q.add_argument(
            "--threads",
            type=int,
            default=None,
            help="CPU threads for torch (intra-op) and BLAS, as train --threads; None = "
            "$OMP_NUM_THREADS if set, else physical cores // local processes",
        )
        q.add_argument("--steps", type=int, default=d["steps"], help="training steps")
        q.add_argument("--dev", type=int, default=d["dev"], help="dev examples used (0 = all)")
        if name == "cmi":
            q.add_argument("--k", type=int, default=32, help="K of the InfoNCE bound")
            q.add_argument(
                "--critic-steps", type=int, default=300, help="training steps of the MI critic"
            )
            q.add_argument("--sets", type=int, default=96, help="random prompt sets (critic)")
            q.add_argument(
                "--unit-prompts", action="store_true", help="critic sees P / |P| (norm control)"
            )
        if name == "landscape":
            q.add_argument("--points", type=int, default=20, help="examples averaged")
            q.add_argument("--grid", type=int, default=15, help="grid points per axis")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        if hasattr(args, "threads"):  # the figures that train
            set_threads(args.threads)
        args.fn(args)
    except (ConfigError, DataError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {args.out}")
    return 0
