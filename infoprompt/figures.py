"""The paper's figures 1–3 (Wu et al. 2023, arXiv 2306.04933) with the packaged MiniLM: sessions
in memory, shared by the experiments.

    python -m infoprompt figures cmi --data-dir ../shared/data/SST-2 --out docs/figures/fig1_cmi.png
    python -m infoprompt figures landscape --data-dir ../shared/data/SST-2 \\
        --out docs/figures/fig2_landscape.png
    python -m infoprompt figures curves --runs runs/curves --out docs/figures/fig3_curves.png

``build`` makes a run's ``Session`` (``session.build_session``) on given examples, in memory;
``run_steps`` trains it with the trainer's own step (``loop.TrainLoop.step``). The experiments:
``fig_cmi`` (Fig. 1), ``fig_landscape`` (Fig. 2) and, here, Fig. 3's learning curves
(``learning_curve`` in memory; ``reported_curves`` read from finished runs). Drawing:
``plots``; the command line: ``figures_cli``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from infoprompt.config import RunConfig
from infoprompt.data import Example
from infoprompt.errors import ConfigError
from infoprompt.evaluation import evaluate
from infoprompt.loop import TrainLoop
from infoprompt.session import Session, build_session, collate
from infoprompt.tasks import TASKS

__all__ = ["build", "collate", "learning_curve", "method_config", "run_steps"]  # collate:
# notebooks/04 reads it from here


def build(
    config: RunConfig, train_ex: list[Example], dev_ex: list[Example], backbone: tuple[Any, Any]
) -> Session:
    """The session of ``config`` on a copy of ``backbone`` = (tokenizer, encoder), whose
    validation slot holds ``dev_ex`` (the figures read the dev set, labelled so); P', Z' are
    cached for every method, since Fig. 1 needs Z' for all."""
    spec = TASKS[config.task]
    examples = (spec, train_ex, dev_ex)
    return build_session(config, backbone, examples, log=_quiet, cache_all=True)


def _quiet(line: str) -> None:
    """The figures' sessions log nothing."""


def run_steps(setup: Session, n_steps: int, on_step: Callable[[int], object] | None = None) -> None:
    """``n_steps`` training steps of ``loop.TrainLoop`` (AdamW, warm-up, linear decay over the
    whole epochs that cover ``n_steps``), in memory; ``on_step(step)`` after each step (it may
    evaluate: the model is put back in train mode)."""
    spe = math.ceil(len(setup.train_set.encoded) / setup.config.batch_size)
    s = setup
    loop = TrainLoop(s, None, log=_quiet, epochs=max(1, math.ceil(n_steps / spe)))
    s.model.train(True)
    for step in range(n_steps):
        epoch, k = divmod(step, loop.steps_per_epoch)
        loop.step(loop.batches(epoch)[k])
        if on_step is not None:
            on_step(step + 1)
            s.model.train(True)
    s.model.train(False)


def method_config(base: RunConfig, method: str, **kw: Any) -> RunConfig:
    """``base`` with another method and that method's defaults (fields, learning rate)."""
    return base.with_method(method, **kw)


def learning_curve(setup: Session, steps: int, every: int) -> list[tuple[int, float]]:
    """(step, dev main metric) at step 0 and every ``every`` steps up to ``steps``."""
    s = setup

    def dev_score() -> float:
        metric = s.spec.main_metric
        return evaluate(s, s.val_set)[metric]

    curve = [(0, dev_score())]

    def record(t: int) -> None:
        if t % every == 0 or t == steps:
            curve.append((t, dev_score()))

    run_steps(s, steps, record)
    return curve


def curve_stats(curve: list[tuple[int, float]]) -> dict[str, float]:
    """Best score, first step reaching 95 % of the way from the start to the best, and the std of
    the scores over the second half of the steps (lower = steadier)."""
    steps, acc = np.array(curve).T
    best = acc.max()
    reach = steps[np.argmax(acc >= acc[0] + 0.95 * (best - acc[0]))]
    return {
        "best": float(best),
        "step_95": int(reach),
        "late_std": float(acc[steps >= steps[-1] / 2].std()),
    }


def reported_curves(
    folders: list[str], split: str = "test"
) -> dict[str, list[list[tuple[int, float]]]]:
    """{method label: one (step, main metric) curve per run} from the finished runs under
    ``folders`` (``report.find_results``): ``split`` "test", the reported set's ``test_curve`` of
    runs trained with ``--test-curve``; "validation", the validation split every run scores."""
    from infoprompt.report import find_results

    key = "test_curve" if split == "test" else "val"
    curves: dict[str, list[list[tuple[int, float]]]] = {}
    for run in find_results(folders):
        points = [p for p in run["curve"] if p.get(key)]
        if points:
            metric = run["main_metric"]
            curve = [(p["step"], p[key][metric]) for p in points]
            curves.setdefault(run["label"], []).append(curve)
    if not curves:
        how = "trained with --test-curve " if split == "test" else ""
        raise ConfigError(
            f"no finished run {how}under {', '.join(folders)}; train them with "
            "`python -m infoprompt train ...` (docs/figures.md)"
        )
    return curves
