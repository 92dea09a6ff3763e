"""The optimisation loop: AdamW over the trainable parameters, validation, checkpoints, results.

``TrainLoop(session, run_dir)`` holds the loop's state (step, curve, best, gradient shares);
``run`` steps to the end, validating every epoch (or ``eval_every`` steps): validation metrics,
the critics' control (``evaluation.critic_gap``), best (on validation) and last checkpoints,
results.json, one log line. ``step`` is one training step (what ``benchmarks/train_step.py``
times and ``figures.run_steps`` calls).
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from infoprompt import activity
from infoprompt.backbone import identity
from infoprompt.checkpoint import (
    load_params,
    read_checkpoint,
    restore_training,
    rng_state,
    save_checkpoint,
    write_json,
)
from infoprompt.config import RunConfig
from infoprompt.evaluation import critic_gap, evaluate
from infoprompt.model import PromptModel
from infoprompt.runs import BEST, LAST, RESULTS, versions
from infoprompt.session import Session, collate

CRITIC_EVERY = 5  # validations between two runs of the critics' control


def epoch_batches(
    n: int, batch_size: int, seed: int, epoch: int, rank: int = 0, world: int = 1
) -> list[list[int]]:
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


def make_optimizer(
    model: PromptModel, config: RunConfig, total_steps: int
) -> tuple[torch.optim.AdamW, Any]:
    """AdamW over the trainable parameters; linear warm-up over ``warmup`` of the steps, then
    linear decay to 0 (transformers' ``get_linear_schedule_with_warmup``). One rate for all, as
    the paper; with ``critic_lr`` the MI critics form a second group at that rate."""
    from transformers import get_linear_schedule_with_warmup

    critics = model.critics()
    if config.critic_lr is None or not critics:
        groups: list[dict[str, Any]] = [{"params": list(model.trainable().values())}]
    else:  # the critics in a group of their own, at --critic-lr
        rest = [p for n, p in model.trainable().items() if n not in critics]
        groups = [{"params": rest}, {"params": list(critics.values()), "lr": config.critic_lr}]
    assert config.lr is not None  # an lr search trains one rate at a time (RunConfig.at_lr)
    opt = torch.optim.AdamW(groups, lr=config.lr, weight_decay=config.weight_decay)
    warmup = round(config.warmup * total_steps)
    return opt, get_linear_schedule_with_warmup(opt, warmup, total_steps)


class TrainLoop:
    """The optimisation loop and its bookkeeping (curve, best, checkpoints, results); ``step`` is
    one training step (also what ``benchmarks/train_step.py`` times)."""

    def __init__(
        self,
        session: Session,
        run_dir: Path | None,
        log: Callable[[str], None] = print,
        epochs: int | None = None,
    ):
        """``run_dir``: where checkpoints and results go (None: nowhere, for steps taken in
        memory, ``figures.run_steps``); ``epochs``: the schedule's length in epochs (None: the
        config's)."""
        self.session, self.config, self.model = session, session.config, session.model
        self.acc, self.log = session.accelerator, log
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.steps_per_epoch = len(self.batches(0))
        self.total = self.steps_per_epoch * (epochs or self.config.epochs)
        self.setup_s = 0.0  # loading, encoding and caching, measured by ``fit``
        self.optimizer, self.scheduler = make_optimizer(self.model, self.config, self.total)
        self.ddp_model, self.prepared_opt = self.acc.prepare(self.model, self.optimizer)
        self.state: dict[str, Any] = {
            "step": 0,
            "curve": [],
            "best": None,
            "elapsed_s": 0.0,
            "activity": [],
        }
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
        if self.run_dir is None:
            return
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
            "encoder": identity(self.config.model),
            "versions": versions(),
        }
        if self.state.get("activity"):
            out["mi_activity"] = activity.summary(self.state["activity"], self.steps_per_epoch)
        if test is not None:
            out["test"] = test
            out["truncated"]["test"] = s.reported().truncated
        return out
