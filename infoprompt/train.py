"""One training run under the few-shot protocol: draws → session → AdamW loop → reported set.

Order of ``train``: check the configuration, paths and run folder → (``lr_grid``: one run per
learning rate, chosen on the validation split, ``lr_search``) → ``build_session`` (training and
validation draws from the *training* file, encoder, template, model, cache of the prompt-free
pass) → (resume from ``last.safetensors``) → steps: forward, backward, clip, AdamW, schedule →
every validation: validation metrics, the critics' control (``critic_gap``), best (on validation)
and last checkpoints, results.json, one log line → after the last step, and only then, the
reported set (GLUE dev, SemEval's test file) is read and scored twice:

- ``test.final``: the model after the last epoch (the paper's rule, "results after 30 epochs");
- ``test.selected``: the checkpoint with the best validation score (ties: the earliest).

Where the parts live: ``runs`` (the run folder: may it resume?), ``session`` (data, encoder,
template, model, cache), ``loop`` (the AdamW loop, checkpoints, results), ``evaluation``
(metrics, the critics' control).

Nothing is chosen on the reported set. ``--test-curve`` also scores it at every validation, into
the curve as ``test_curve``, labelled so and never read by any selection.

The prompt-free pass Φ(X) is frozen and deterministic (eval mode, no gradient), so P' (input of the
prompt generators and probe) and Z' (centre of the representation loss's negatives) are computed
once per example (``session.plain_cache``) and reused at every step and evaluation.

Multi-GPU: ``accelerate launch -m infoprompt train ...``. Each process takes its share of every
global batch (batch_size × processes) and Accelerate averages the gradients; every process
evaluates with the unwrapped model and only the main process writes files.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from infoprompt.backbone import load_backbone
from infoprompt.checkpoint import load_params, read_checkpoint, write_json
from infoprompt.config import RunConfig
from infoprompt.errors import ConfigError
from infoprompt.evaluation import evaluate
from infoprompt.loop import TrainLoop
from infoprompt.runs import BEST, LAST, RESULTS, check_run_dir
from infoprompt.session import accelerator_for, build_session, read_examples


@contextlib.contextmanager
def library_bars(progress: bool) -> Iterator[None]:
    """Without ``progress``, silence the bars transformers ("Loading weights") and
    huggingface_hub (downloads) draw, for the duration; restore their setting after."""
    if progress:
        yield
        return
    from huggingface_hub import utils as hub
    from transformers.utils import logging as hf

    was_hf, was_hub = hf.is_progress_bar_enabled(), not hub.are_progress_bars_disabled()
    hf.disable_progress_bar()
    hub.disable_progress_bars()
    try:
        yield
    finally:
        if was_hf:
            hf.enable_progress_bar()
        if was_hub:
            hub.enable_progress_bars()


def train(
    config: RunConfig, resume: bool = False, progress: bool = True, paths_checked: bool = False
) -> dict[str, Any]:
    """Run ``config`` to the end (or continue it with ``resume``); return the results dict.
    ``progress``: bars (training, caching, each evaluation, the libraries'); without it, none.
    ``paths_checked``: the caller ran ``config.check_paths()`` already (the command line checks
    every seed's folder before the first trains)."""
    if not paths_checked:
        config.check_paths()
    with library_bars(progress):
        if config.lr_grid:
            return lr_search(config, resume, progress)
        finished = check_run_dir(config, resume)
        if finished is not None:
            return finished
        return fit(config, resume=resume, progress=progress)


def fit(
    config: RunConfig,
    backbone: tuple[Any, Any] | None = None,
    examples: Any = None,
    resume: bool = False,
    progress: bool = True,
    report: bool = True,
) -> dict[str, Any]:
    """Build the session, train to the end, score the reported set (``report``), write results."""
    start = time.perf_counter()
    assert config.out is not None
    run_dir = Path(config.out)
    acc = accelerator_for(config)
    log = _logger(acc)
    session = build_session(config, backbone, examples, log, acc, progress=progress)
    loop = TrainLoop(session, run_dir, log)
    if resume and (run_dir / LAST).exists():
        loop.restore(run_dir / LAST)
        log(f"resumed at step {loop.state['step']} of {loop.total}")
    loop.setup_s = time.perf_counter() - start
    loop.run(progress)
    test = score_reported(loop) if report else None
    results = loop.results(finished=True, test=test)
    if acc.is_main_process:
        write_json(run_dir / RESULTS, results)
    acc.free_memory()  # the next run of this process prepares its own model and optimizer
    return results


def score_reported(loop: TrainLoop) -> dict[str, Any]:
    """``final``: the reported set's metrics of the model as trained; ``selected``: of the
    best-on-validation checkpoint (the same model when the last validation was the best). With
    the gold ``labels`` and both models' ``predictions``, for paired per-example tests."""
    session, desc = loop.session, loop.bar_name
    split = session.reported()
    final, pred = evaluate(session, split, with_predictions=True, desc=desc("reported set"))
    best = loop.state["best"]
    out = {"final": final, "selected": final, "selected_step": loop.total, "n": len(split.labels)}
    preds = {"final": pred, "selected": pred}
    if best is not None and best["step"] != loop.total:
        assert loop.run_dir is not None  # a run that saved its best checkpoint
        load_params(session.model, read_checkpoint(loop.run_dir / BEST)[0])
        out["selected"], preds["selected"] = evaluate(
            session, split, with_predictions=True, desc=desc("reported set, selected")
        )
        out["selected_step"] = best["step"]
    return out | {"labels": list(split.labels), "predictions": preds}


def lr_search(config: RunConfig, resume: bool, progress: bool) -> dict[str, Any]:
    """One run per learning rate of ``config.lr_grid`` (folders ``lr-<value>``, the same budget
    each), the one whose final-epoch model scores best on validation chosen (``final_val``: the
    model ``test.final`` reports; ties: the smaller rate); the reported set is read for the
    chosen run only. Its results, with ``lr_search``, become this run's."""
    if not config.val_shots:
        raise ConfigError("lr_grid needs a validation split to choose on; set val_shots > 0")
    finished = check_run_dir(config, resume)
    if finished is not None:
        return finished
    assert config.out is not None
    acc = accelerator_for(config)
    log = _logger(acc)
    examples, backbone = read_examples(config), load_backbone(config.model)
    runs: dict[float, dict[str, Any]] = {}
    scores: dict[float, float | None] = {}
    for lr in sorted(config.lr_grid):
        sub = config.at_lr(lr, str(Path(config.out) / f"lr-{lr:g}"))
        log(f"lr search: lr {lr:g} ({len(runs) + 1} of {len(config.lr_grid)})")
        done = check_run_dir(sub, resume)
        runs[lr] = done or fit(
            sub, backbone, examples, resume=resume, progress=progress, report=False
        )
        scores[lr] = final_val(runs[lr])
    chosen = max(runs, key=lambda lr: (_or_minus_inf(scores[lr]), -lr))
    log(f"lr search: validation {scores}; chosen lr {chosen:g}")
    sub = config.at_lr(chosen, str(Path(config.out) / f"lr-{chosen:g}"))
    session = build_session(sub, backbone, examples, log, acc, progress=progress)
    loop = TrainLoop(session, Path(str(sub.out)), log)
    loop.load_finished(Path(str(sub.out)) / LAST)
    loop.progress = progress
    results = runs[chosen] | {
        "config": config.to_dict(),
        "lr": chosen,
        "lr_search": {
            "grid": sorted(config.lr_grid),
            "val": [scores[lr] for lr in sorted(runs)],
            "chosen": chosen,
        },
        "test": score_reported(loop),
    }
    if acc.is_main_process:
        write_json(Path(config.out) / RESULTS, results)
    acc.free_memory()
    return results


def _or_minus_inf(score: float | None) -> float:
    return score if score is not None else -math.inf


def final_val(results: dict[str, Any]) -> float | None:
    """The validation score of the final-epoch model, the one ``test.final`` reports: what the
    learning-rate search chooses on (None without validation)."""
    val = results["curve"][-1]["val"] if results["curve"] else {}
    score = val.get(results["main_metric"])
    return None if score is None else float(score)


def _logger(accelerator: Any) -> Callable[[str], None]:
    """One line per stage and validation, from the main process (bars are ``progress``'s)."""
    from tqdm.auto import tqdm

    def log(line: str) -> None:
        if accelerator.is_main_process:
            tqdm.write(line)

    return log
