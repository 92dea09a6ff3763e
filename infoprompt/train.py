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

Nothing is chosen on the reported set. ``--test-curve`` also scores it at every validation, into
the curve as ``test_curve``, labelled so and never read by any selection.

The prompt-free pass Φ(X) is frozen and deterministic (eval mode, no gradient), so P' (input of the
prompt generators and probe) and Z' (centre of the representation loss's negatives) are computed
once per example (``session.build_cache``) and reused at every step and evaluation.

Multi-GPU: ``accelerate launch -m infoprompt train ...``. Each process takes its share of every
global batch (batch_size × processes) and Accelerate averages the gradients; every process
evaluates with the unwrapped model and only the main process writes files.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import platform
import time
from collections import defaultdict
from pathlib import Path

import torch

from infoprompt import activity
from infoprompt.checkpoint import (
    load_params,
    read_checkpoint,
    restore_training,
    rng_state,
    save_checkpoint,
    write_json,
)
from infoprompt.config import ConfigError, RunConfig
from infoprompt.metrics import compute_all
from infoprompt.model import load_backbone
from infoprompt.session import (
    Session,
    Split,
    build_session,
    by_length,
    collate,
    make_accelerator,
    read_examples,
    unsort,
)

RESULTS, BEST, LAST = "results.json", "best.safetensors", "last.safetensors"
CRITIC_EVERY = 5  # validations between two runs of the critics' control


def epoch_batches(n: int, batch_size: int, seed: int, epoch: int, rank=0, world=1):
    """This process's batches of one epoch: a permutation seeded by (seed, epoch), cut into global
    batches of batch_size × world, each split across processes. With several processes the order
    is padded from its start so that every process gets batch_size examples every step."""
    gen = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    order = torch.randperm(n, generator=gen).tolist()
    per_step = batch_size * world
    steps = math.ceil(n / per_step)
    if world > 1:
        order = (order * math.ceil(steps * per_step / n))[: steps * per_step]
    starts = [s * per_step + rank * batch_size for s in range(steps)]
    return [order[a : a + batch_size] for a in starts]


def _bar(items, desc: str | None, accelerator):
    """``items`` under a transient progress bar named ``desc`` (main process only; no bar when
    ``desc`` is None)."""
    if desc is None or not accelerator.is_main_process:
        return items
    from tqdm.auto import tqdm

    return tqdm(items, desc=desc, leave=False, unit="batch")


@torch.no_grad()
def predict_split(session: Session, split: Split, desc: str | None = None) -> torch.Tensor:
    """Class probabilities (N, C) for every example of ``split``; ``desc``: show a bar so named."""
    model, acc = session.model, session.accelerator
    model.train(False)
    probs = []
    batches, order = by_length(split, session.config.eval_batch_size)
    with acc.autocast():
        for idx in _bar(batches, desc, acc):
            b = collate(split, idx, session.pad, acc.device)
            b.pop("labels")
            probs.append(model(**b)["logits"].float().softmax(-1).cpu())
    return unsort(probs, order)


def evaluate(session: Session, split: Split, with_predictions: bool = False, desc=None):
    """The task's metrics (``spec.metrics``) of the model's predictions on ``split``; with
    ``with_predictions`` also the predicted class ids (N,); ``desc``: a progress bar's name."""
    pred = predict_split(session, split, desc).argmax(-1).tolist()
    metrics = compute_all(session.spec.metrics, split.labels, pred, session.spec.labels)
    return (metrics, pred) if with_predictions else metrics


@torch.no_grad()
def critic_gap(session: Session, split: Split, desc: str | None = None) -> dict[str, float]:
    """Mean NCE_rep and NCE_head on ``split`` with the true prompts and with each example's P
    replaced by another example's (rolled by one in the batch). A critic that reads P's content
    scores the true P better (lower NCE); equal values mean it ignores which prompt it sees.
    Runs on its own RNG stream, so training draws are unchanged. ``desc``: a progress bar's name."""
    model, acc = session.model, session.accelerator
    if (model.rep_mi is None and model.head_mi is None) or len(split.labels) < 2:
        return {}
    model.train(False)
    sums: dict[str, float] = defaultdict(float)
    batches, _ = by_length(split, max(2, session.config.eval_batch_size))
    batches = [b for b in batches if len(b) > 1]
    with torch.random.fork_rng(devices=[]), acc.autocast():
        for shuffled in (False, True):
            torch.manual_seed(0)
            name = desc and f"{desc} ({'shuffled' if shuffled else 'true'} P)"
            for idx in _bar(batches, name, acc):
                out = model(
                    **collate(split, idx, session.pad, acc.device), shuffle_prompts=shuffled
                )
                for k in ("rep", "head"):
                    if k in out:
                        sums[f"{k}_shuffled" if shuffled else k] += out[k].item() / len(batches)
    return dict(sums)


def make_optimizer(model, config: RunConfig, total_steps: int):
    """AdamW over the trainable parameters; linear warm-up over ``warmup`` of the steps, then
    linear decay to 0 (transformers' ``get_linear_schedule_with_warmup``). One rate for all, as
    the paper; with ``critic_lr`` the MI critics form a second group at that rate."""
    from transformers import get_linear_schedule_with_warmup

    critics = model.critics()
    if config.critic_lr is None or not critics:
        groups = [{"params": list(model.trainable().values())}]
    else:  # the critics in a group of their own, at --critic-lr
        rest = [p for n, p in model.trainable().items() if n not in critics]
        groups = [{"params": rest}, {"params": list(critics.values()), "lr": config.critic_lr}]
    opt = torch.optim.AdamW(groups, lr=config.lr, weight_decay=config.weight_decay)
    warmup = round(config.warmup * total_steps)
    return opt, get_linear_schedule_with_warmup(opt, warmup, total_steps)


def versions() -> dict:
    import accelerate
    import peft
    import safetensors
    import transformers

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "peft": peft.__version__,
        "accelerate": accelerate.__version__,
        "safetensors": safetensors.__version__,
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "cpus": torch.get_num_threads(),
        "gpu": gpu,
        "commit": source_commit(),
    }


def source_commit() -> str | None:
    """The git commit of the code that runs (``+dirty`` with uncommitted changes to tracked
    files), or None outside a git checkout."""
    import subprocess

    here = Path(__file__).resolve().parent
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True,
                              text=True, timeout=10)  # fmt: skip
        if head.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                               capture_output=True, text=True, timeout=10).stdout.strip()  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    return head.stdout.strip() + ("+dirty" if dirty else "")


def _saved_config(run_dir: Path) -> dict | None:
    """The config of the run on disk (results.json, else the last checkpoint), or None."""
    try:
        if (run_dir / RESULTS).exists():
            return json.loads((run_dir / RESULTS).read_text())["config"]
        if (run_dir / LAST).exists():
            return read_checkpoint(run_dir / LAST)[1]["config"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ConfigError(
            f"{run_dir} holds a damaged run ({e.__class__.__name__}: {e}); "
            "delete the folder or choose another --out"
        ) from None
    return None


def _same(field: str, saved, asked) -> bool:
    """Whether a saved field equals the asked one: ``out`` always does (it is the folder being
    resumed); ``data_dir`` and ``model`` also when both name the same existing folder."""
    if field == "out" or saved == asked:
        return True
    if field in ("data_dir", "model") and isinstance(saved, str) and isinstance(asked, str):
        try:
            return os.path.samefile(saved, asked)
        except OSError:
            return False
    return False


def check_run_dir(config: RunConfig, resume: bool) -> dict | None:
    """The finished results to return instead of training, or None (train or continue). Refuses
    to overwrite a run, and to resume one whose configuration differs from ``config`` in any
    field (``_same``): every field changes what the run computes, so none may change on resume.
    One exception: an lr search resumed with a grid that contains its saved grid is *widened*
    (None: its finished rates are reused, the new ones trained, the choice made again)."""
    run_dir = Path(config.out)
    saved = _saved_config(run_dir)
    if saved is None:
        return None
    if not resume:
        raise ConfigError(
            f"{run_dir} already holds a run; pass --resume to continue or reuse it, "
            "or choose another --out"
        )
    asked = config.to_dict()
    differ = sorted(k for k in set(saved) | set(asked) if not _same(k, saved.get(k), asked.get(k)))
    if differ == ["lr_grid"] and saved["lr_grid"] and set(saved["lr_grid"]) < set(asked["lr_grid"]):
        return None
    if differ:
        what = ", ".join(f"{k}: saved {saved.get(k)!r}, asked {asked.get(k)!r}" for k in differ)
        raise ConfigError(
            f"--resume: {run_dir} holds a run with another configuration ({what}); "
            "resume with the saved settings or choose another --out"
        )
    path = run_dir / RESULTS
    results = json.loads(path.read_text()) if path.exists() else {}
    return results if results.get("finished") else None


@contextlib.contextmanager
def library_bars(progress: bool):
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


def train(config: RunConfig, resume: bool = False, progress: bool = True) -> dict:
    """Run ``config`` to the end (or continue it with ``resume``); return the results dict.
    ``progress``: bars (training, each evaluation, the libraries'); without it, none."""
    config.check_paths()
    with library_bars(progress):
        if config.lr_grid:
            return lr_search(config, resume, progress)
        finished = check_run_dir(config, resume)
        if finished is not None:
            return finished
        return fit(config, resume=resume, progress=progress)


def fit(config, backbone=None, examples=None, resume=False, progress=True, report=True) -> dict:
    """Build the session, train to the end, score the reported set (``report``), write results."""
    start = time.perf_counter()
    acc = make_accelerator(config)
    log = _logger(acc)
    session = build_session(config, backbone, examples, log=log, accelerator=acc)
    loop = TrainLoop(session, Path(config.out), log)
    if resume and (Path(config.out) / LAST).exists():
        loop.restore(Path(config.out) / LAST)
        log(f"resumed at step {loop.state['step']} of {loop.total}")
    loop.setup_s = time.perf_counter() - start
    loop.run(progress)
    test = score_reported(loop) if report else None
    results = loop.results(finished=True, test=test)
    if session.accelerator.is_main_process:
        write_json(Path(config.out) / RESULTS, results)
    return results


def score_reported(loop: TrainLoop) -> dict:
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
        load_params(session.model, read_checkpoint(loop.run_dir / BEST)[0])
        out["selected"], preds["selected"] = evaluate(
            session, split, with_predictions=True, desc=desc("reported set, selected")
        )
        out["selected_step"] = best["step"]
    return out | {"labels": list(split.labels), "predictions": preds}


def lr_search(config: RunConfig, resume: bool, progress: bool) -> dict:
    """One run per learning rate of ``config.lr_grid`` (folders ``lr-<value>``, the same budget
    each), the one whose final-epoch model scores best on validation chosen (``final_val``: the
    model ``test.final`` reports; ties: the smaller rate); the reported set is read for the
    chosen run only. Its results, with ``lr_search``, become this run's."""
    if not config.val_shots:
        raise ConfigError("lr_grid needs a validation split to choose on; set val_shots > 0")
    finished = check_run_dir(config, resume)
    if finished is not None:
        return finished
    acc = make_accelerator(config)
    log = _logger(acc)
    examples, backbone = read_examples(config), load_backbone(config.model)
    runs, scores = {}, {}
    for lr in sorted(config.lr_grid):
        sub = dataclasses.replace(
            config, lr=lr, lr_grid=[], out=str(Path(config.out) / f"lr-{lr:g}")
        )
        log(f"lr search: lr {lr:g} ({len(runs) + 1} of {len(config.lr_grid)})")
        done = check_run_dir(sub, resume)
        runs[lr] = done or fit(
            sub, backbone, examples, resume=resume, progress=progress, report=False
        )
        scores[lr] = final_val(runs[lr])
    chosen = max(runs, key=lambda lr: (scores[lr] if scores[lr] is not None else -math.inf, -lr))
    log(f"lr search: validation {scores}; chosen lr {chosen:g}")
    sub = dataclasses.replace(
        config, lr=chosen, lr_grid=[], out=str(Path(config.out) / f"lr-{chosen:g}")
    )
    session = build_session(sub, backbone, examples, log=log, accelerator=acc)
    loop = TrainLoop(session, Path(sub.out), log)
    loop.load_finished(Path(sub.out) / LAST)
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
    if session.accelerator.is_main_process:
        write_json(Path(config.out) / RESULTS, results)
    return results


def final_val(results: dict) -> float | None:
    """The validation score of the final-epoch model, the one ``test.final`` reports: what the
    learning-rate search chooses on (None without validation)."""
    val = results["curve"][-1]["val"] if results["curve"] else {}
    return val.get(results["main_metric"])


def _logger(accelerator):
    """One line per stage and validation, from the main process (bars are ``progress``'s)."""
    from tqdm.auto import tqdm

    return lambda line: tqdm.write(line) if accelerator.is_main_process else None


class TrainLoop:
    """The optimisation loop and its bookkeeping (curve, best, checkpoints, results); ``step`` is
    one training step (also what ``benchmarks/train_step.py`` times)."""

    def __init__(self, session: Session, run_dir: Path, log=print):
        self.session, self.config, self.model = session, session.config, session.model
        self.acc, self.run_dir, self.log = session.accelerator, Path(run_dir), log
        self.steps_per_epoch = len(self.batches(0))
        self.total = self.steps_per_epoch * self.config.epochs
        self.setup_s = 0.0  # loading, encoding and caching, measured by ``fit``
        self.optimizer, self.scheduler = make_optimizer(self.model, self.config, self.total)
        self.ddp_model, self.prepared_opt = self.acc.prepare(self.model, self.optimizer)
        self.state = {"step": 0, "curve": [], "best": None, "elapsed_s": 0.0, "activity": []}
        self.generator = self.model.generator()  # the parameters whose gradient shares we measure
        self.reported_activity = 0  # measured steps already in the curve
        self.sums: dict[str, float] = defaultdict(float)
        self.n_sums = 0
        self.progress = False  # bars: set by ``run``

    def bar_name(self, what: str) -> str | None:
        """``what`` as an evaluation bar's name, or None (no bar) without ``progress``."""
        return what if self.progress else None

    def restore(self, path: Path) -> None:
        tensors, meta = read_checkpoint(path)
        load_params(self.model, tensors)
        rank, world = self.acc.process_index, self.acc.num_processes
        self.state = restore_training(tensors, meta, self.optimizer, self.scheduler, rank, world)
        self.state.setdefault("activity", [])  # checkpoints written before it was measured
        self.reported_activity = len(self.state["activity"])

    def load_finished(self, path: Path) -> None:
        """The model and bookkeeping of a finished run, to score it (no optimizer state: a run
        made before a parameter was frozen still loads, e.g. the unused pooler)."""
        tensors, meta = read_checkpoint(path)
        load_params(self.model, tensors)
        self.state = meta["state"]

    def batches(self, epoch: int) -> list[list[int]]:
        """This process's batches of ``epoch`` (``epoch_batches``)."""
        n, c = len(self.session.train_set.labels), self.config
        rank, world = self.acc.process_index, self.acc.num_processes
        return epoch_batches(n, c.batch_size, c.seed, epoch, rank, world)

    def run(self, progress: bool) -> None:
        """Steps from ``state["step"]`` to the end, validating when due."""
        from tqdm.auto import tqdm

        self.t0, self.elapsed0 = time.perf_counter(), self.state["elapsed_s"]
        main, self.progress = self.acc.is_main_process, progress
        bar = tqdm(
            total=self.total,
            initial=self.state["step"],
            disable=not (progress and main),
            desc="training",
            unit="step",
        )
        self.model.train(True)
        batches = None
        while self.state["step"] < self.total:
            epoch, k = divmod(self.state["step"], self.steps_per_epoch)
            if k == 0 or batches is None:
                batches = self.batches(epoch)
            self.step(batches[k])
            self.state["step"] += 1
            bar.update(1)
            if self._eval_due():
                self.log(self._validate())
                self.model.train(True)
        bar.close()

    def step(self, idx: list[int]) -> None:
        batch = collate(self.session.train_set, idx, self.session.pad, self.acc.device)
        out = self.ddp_model(**batch)
        measure = self._activity_due()
        if measure:
            mi_grads = activity.mi_gradients(out["terms"], self.generator)
        self.acc.backward(out["loss"])
        if measure:
            share = activity.shares(mi_grads, self.generator)
            value = {k: out[k].item() for k in share}
            self.state["activity"].append(
                {"step": self.state["step"] + 1, "share": share, "value": value}
            )
        if self.config.max_grad_norm:
            self.acc.clip_grad_norm_(self.model.trainable().values(), self.config.max_grad_norm)
        self.prepared_opt.step()
        self.scheduler.step()
        self.prepared_opt.zero_grad(set_to_none=True)
        for key in ("loss", "pred", "rep", "head"):
            if key in out:
                self.sums[key] += out[key].item()
        self.n_sums += 1

    def _activity_due(self) -> bool:
        """Whether this step measures the terms' gradient shares (``infoprompt.activity``): runs
        with MI terms and a prompt generator, one process, one step in ``activity.EVERY``."""
        m = self.model
        has_mi = m.rep_mi is not None or m.head_mi is not None
        single = self.acc.num_processes == 1
        due = self.state["step"] % activity.EVERY == 0
        return has_mi and single and bool(self.generator) and due

    def _eval_due(self) -> bool:
        step, every = self.state["step"], self.config.eval_every
        if step == self.total:
            return True
        return step % (every or self.steps_per_epoch) == 0

    def _critic_due(self) -> bool:
        """The critics' control at the first, every CRITIC_EVERY-th and the last validation (it
        costs about a training epoch)."""
        k = len(self.state["curve"])
        return k % CRITIC_EVERY == 0 or self.state["step"] == self.total

    def _validate(self) -> str:
        """Validation metrics → curve, best and last checkpoints, results.json; the log line."""
        s, main = self.session, self.session.spec.main_metric
        has_val, desc = bool(s.val_set.labels), self.bar_name
        val = evaluate(s, s.val_set, desc=desc("validation")) if has_val else {}
        step = self.state["step"]
        train_loss = {k: v / max(self.n_sums, 1) for k, v in self.sums.items()}
        self.sums, self.n_sums = defaultdict(float), 0
        point = {
            "step": step,
            "epoch": step / self.steps_per_epoch,
            "lr": self.scheduler.get_last_lr()[0],
            "train": train_loss,
            "val": val,
            "critic": critic_gap(s, s.val_set, desc("critics")) if self._critic_due() else {},
        }
        recent = self.state["activity"][self.reported_activity :]
        self.reported_activity = len(self.state["activity"])
        if recent:
            point["share"] = activity.mean_shares(recent)
        if self.config.test_curve:
            point["test_curve"] = evaluate(s, s.reported(), desc=desc("test curve"))
        point["elapsed_s"] = self.state["elapsed_s"] = self.elapsed0 + time.perf_counter() - self.t0
        self.state["curve"].append(point)
        best = self.state["best"]
        improved = has_val and (best is None or val[main] > best["val"][main])
        if improved:
            self.state["best"] = {"step": step, "epoch": point["epoch"], "val": val}
        self.state["scheduler"] = self.scheduler.state_dict()
        rng = self._rng_states()
        if self.acc.is_main_process:
            self._save(improved, rng)
        self.acc.wait_for_everyone()
        return self._line(point)

    def _line(self, point: dict) -> str:
        main, best = self.session.spec.main_metric, self.state["best"]
        parts = " ".join(f"{k} {v:.4f}" for k, v in point["train"].items())
        line = f"step {point['step']}/{self.total} epoch {point['epoch']:.2f} | train {parts}"
        if point["val"]:
            line += (
                f" | val {main} {point['val'][main]:.4f} | best {best['val'][main]:.4f} "
                f"@ step {best['step']}"
            )
        if "share" in point:
            line += " | grad share " + " ".join(f"{k} {v:.3f}" for k, v in point["share"].items())
        critic = point["critic"]
        for k in ("rep", "head"):
            if k in critic:
                true, shuffled = critic[k], critic[k + "_shuffled"]
                line += f" | NCE_{k} true {true:.3f} shuffled P {shuffled:.3f}"
                if activity.saturated(true, shuffled):
                    line += " (saturated)"
        if "test_curve" in point:
            line += f" | test curve {main} {point['test_curve'][main]:.4f}"
        return line

    def _rng_states(self) -> list[dict[str, bytes]]:
        """Every process's RNG states (``checkpoint.rng_state``), in rank order, on every process
        (one ``gather_object``), so that each rank resumes with its own draws."""
        if self.acc.num_processes == 1:
            return [rng_state()]
        from accelerate.utils import gather_object

        return gather_object([rng_state()])

    def _save(self, improved: bool, rng: list[dict[str, bytes]] | None = None) -> None:
        params = self.model.trainable()
        info = {"config": self.config.to_dict(), "labels": list(self.session.spec.labels)}
        if improved:
            save_checkpoint(self.run_dir / BEST, params, info)
        save_checkpoint(self.run_dir / LAST, params, info, self.optimizer, self.state, rng)
        write_json(self.run_dir / RESULTS, self.results(finished=False))

    def results(self, finished: bool, test: dict | None = None) -> dict:
        s = self.session
        out = {
            "config": self.config.to_dict(),
            "label": self.config.label,
            "task": self.config.task,
            "main_metric": s.spec.main_metric,
            "n_train": len(s.train_set.labels),
            "n_val": len(s.val_set.labels),
            "truncated": {"train": s.train_set.truncated, "val": s.val_set.truncated},
            "curve": self.state["curve"],
            "best": self.state["best"],
            "wall_time_s": self.state["elapsed_s"],
            "setup_s": self.setup_s,
            "finished": finished,
            "versions": versions(),
        }
        if self.state.get("activity"):
            out["mi_activity"] = activity.summary(self.state["activity"], self.steps_per_epoch)
        if test is not None:
            out["test"] = test
            out["truncated"]["test"] = s.reported().truncated
        return out
