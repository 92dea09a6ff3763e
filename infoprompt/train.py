"""One training run: data → model → (cache the prompt-free pass) → AdamW loop → results.json.

Order of ``train``: validate paths → load and sample the data → load the encoder, build the model →
encode the examples → cache P' and Z' of the prompt-free pass once per example (generated-prompt
methods) → (resume from ``last.safetensors``) → steps: forward, backward, clip, AdamW, schedule →
every evaluation: dev metrics, best and last checkpoints, results.json, one log line.

The prompt-free pass Φ(X) is frozen and deterministic (eval mode, no gradient), so P' (input of the
prompt generator) and Z' (centre of the representation loss's negatives) are computed once for
every training and dev example, before the first step, and reused at every step and evaluation:
a step of infoprompt costs one prompted forward and backward, like a step of WARP.

Multi-GPU: ``accelerate launch -m infoprompt train ...``. Each process takes its share of every
global batch (batch_size × processes) and Accelerate averages the gradients; every process
evaluates the whole dev set with the unwrapped model and only the main process writes files.
On one process (CPU or GPU) the Accelerator changes nothing but the device and autocast.
"""

from __future__ import annotations

import json
import math
import platform
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import torch

from infoprompt.checkpoint import (
    load_params,
    read_checkpoint,
    restore_training,
    save_checkpoint,
    write_json,
)
from infoprompt.config import PROMPT_METHODS, ConfigError, RunConfig
from infoprompt.data import TaskSpec, few_shot, load_split
from infoprompt.metrics import compute_all
from infoprompt.model import PromptModel, load_backbone
from infoprompt.templates import Encoded, Template

RESULTS, BEST, LAST = "results.json", "best.safetensors", "last.safetensors"


@dataclass
class PlainCache:
    """P' and Z' of the prompt-free pass for every example of a split."""

    pooled: torch.Tensor  # (N, D)
    z: torch.Tensor  # (N, D)


@dataclass
class Split:
    encoded: list[Encoded]
    labels: list[int]
    cache: PlainCache | None = None


def collate(split: Split, idx: list[int], pad_id: int, device, plain: bool = False) -> dict:
    """Padded tensors for the examples ``idx``; ``plain`` gives the prompt-free sequences."""
    items = [split.encoded[i] for i in idx]
    seqs = [e.plain_ids if plain else e.ids for e in items]
    ids = torch.full((len(seqs), max(map(len, seqs))), pad_id, dtype=torch.long)  # (B, T)
    attention = torch.zeros_like(ids)  # (B, T)
    for row, seq in enumerate(seqs):
        ids[row, : len(seq)] = torch.tensor(seq)
        attention[row, : len(seq)] = 1
    mask_pos = [e.plain_mask_pos if plain else e.mask_pos for e in items]
    batch = {"input_ids": ids, "attention_mask": attention, "mask_pos": torch.tensor(mask_pos)}
    if not plain:
        if items[0].prompt_pos:
            batch["prompt_pos"] = torch.tensor([e.prompt_pos for e in items])  # (B, n_p)
        if split.cache is not None:
            batch["pooled"], batch["z_plain"] = split.cache.pooled[idx], split.cache.z[idx]
        batch["labels"] = torch.tensor([split.labels[i] for i in idx])
    return {k: v.to(device) for k, v in batch.items()}


def by_length(split: Split, size: int) -> tuple[list[list[int]], torch.Tensor]:
    """Batches of examples of similar length (less padding), and the order (N,) they cover."""
    order = sorted(range(len(split.encoded)), key=lambda i: len(split.encoded[i].ids))
    return [order[i : i + size] for i in range(0, len(order), size)], torch.tensor(order)


def unsort(rows: list[torch.Tensor], order: torch.Tensor) -> torch.Tensor:
    """The concatenated ``rows`` (in ``order``) back in example order."""
    stacked = torch.cat(rows)
    out = torch.empty_like(stacked)
    out[order.to(stacked.device)] = stacked
    return out


def build_cache(model: PromptModel, split: Split, batch_size: int, pad_id: int, accelerator):
    """Run the frozen prompt-free pass once over ``split``: P' (N, D) and Z' (N, D)."""
    pooled, z = [], []
    model.train(False)
    batches, order = by_length(split, batch_size)
    with accelerator.autocast():
        for idx in batches:
            b = collate(split, idx, pad_id, accelerator.device, plain=True)
            p, zz = model.plain_pass(b["input_ids"], b["attention_mask"], b["mask_pos"])
            pooled.append(p)
            z.append(zz)
    return PlainCache(unsort(pooled, order), unsort(z, order))


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


@torch.no_grad()
def predict_split(model: PromptModel, split: Split, config: RunConfig, pad_id: int, accelerator):
    """Class probabilities (N, C) for every example of ``split``."""
    model.train(False)
    probs = []
    batches, order = by_length(split, config.eval_batch_size)
    with accelerator.autocast():
        for idx in batches:
            b = collate(split, idx, pad_id, accelerator.device)
            b.pop("labels")
            probs.append(model(**b)["logits"].float().softmax(-1).cpu())
    return unsort(probs, order)


def evaluate(model, split: Split, spec: TaskSpec, config: RunConfig, pad_id: int, accelerator):
    """The task's metrics (``spec.metrics``) of the model's predictions on ``split``."""
    pred = predict_split(model, split, config, pad_id, accelerator).argmax(-1).tolist()
    return compute_all(spec.metrics, split.labels, pred, spec.labels)


def load_data(config: RunConfig):
    """(spec, train examples drawn by seed, dev examples)."""
    spec, train = load_split(config.task, config.data_dir, "train")
    _, dev = load_split(config.task, config.data_dir, "dev", labels=spec.labels)
    if config.shots:
        train = few_shot(train, config.shots, config.seed, len(spec.labels))
    return spec, train, dev


def make_template(config: RunConfig, spec: TaskSpec, tokenizer) -> Template:
    n_p = config.n_prompts if config.method in PROMPT_METHODS else 0
    return Template(spec.template, tokenizer, n_p, config.max_len)


def make_optimizer(model: PromptModel, config: RunConfig, total_steps: int):
    """AdamW over the trainable parameters; linear warm-up over ``warmup`` of the steps, then
    linear decay to 0 (transformers' ``get_linear_schedule_with_warmup``)."""
    from transformers import get_linear_schedule_with_warmup

    params = list(model.trainable().values())
    opt = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    warmup = round(config.warmup * total_steps)
    return opt, get_linear_schedule_with_warmup(opt, warmup, total_steps)


def mixed_precision(config: RunConfig) -> str:
    """Accelerate's setting: bf16 autocast if asked, or on CUDA with 'auto'; else none."""
    bf16 = config.precision == "bf16" or (config.precision == "auto" and torch.cuda.is_available())
    return "bf16" if bf16 else "no"


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
    }


def _check_run_dir(run_dir: Path, resume: bool) -> dict | None:
    """The finished results to return instead of training, or None; refuses to overwrite a run."""
    path = run_dir / RESULTS
    if not path.exists():
        return None
    results = json.loads(path.read_text())
    if not resume:
        raise ConfigError(
            f"{run_dir} already holds a run ({RESULTS}); pass --resume to continue or reuse it, "
            "or choose another --out"
        )
    return results if results.get("finished") else None


def train(config: RunConfig, resume: bool = False, progress: bool = True) -> dict:
    """Run ``config`` to the end (or continue it with ``resume``); return the results dict."""
    from accelerate import Accelerator

    start = time.perf_counter()
    config.check_paths()
    run_dir = Path(config.out)
    finished = _check_run_dir(run_dir, resume)
    if finished is not None:
        return finished
    torch.manual_seed(config.seed)
    spec, train_ex, dev_ex = load_data(config)
    tokenizer, encoder = load_backbone(config.model)
    template = make_template(config, spec, tokenizer)
    train_set = Split([template.encode(e) for e in train_ex], [e.label for e in train_ex])
    dev_set = Split([template.encode(e) for e in dev_ex], [e.label for e in dev_ex])
    accelerator = Accelerator(mixed_precision=mixed_precision(config))
    model = PromptModel(config, spec, tokenizer, encoder).to(accelerator.device)
    pad = tokenizer.pad_token_id
    if model.generates_prompts:
        train_set.cache = build_cache(model, train_set, config.eval_batch_size, pad, accelerator)
        dev_set.cache = build_cache(model, dev_set, config.eval_batch_size, pad, accelerator)
        model.prompts.calibrate_(train_set.cache.pooled, model.embed.weight.std().item())
    loop = TrainLoop(config, spec, model, train_set, dev_set, pad, accelerator, run_dir)
    if resume and (run_dir / LAST).exists():
        loop.restore(run_dir / LAST)
    loop.setup_s = time.perf_counter() - start
    return loop.run(progress)


class TrainLoop:
    """The optimisation loop and its bookkeeping (curve, best, checkpoints, results); ``step`` is
    one training step (also what ``benchmarks/train_step.py`` times)."""

    def __init__(self, config, spec, model, train_set, dev_set, pad_id, accelerator, run_dir):
        self.config, self.spec, self.model, self.pad = config, spec, model, pad_id
        self.train_set, self.dev_set = train_set, dev_set
        self.acc, self.run_dir = accelerator, Path(run_dir)
        self.steps_per_epoch = len(self.batches(0))
        self.total = self.steps_per_epoch * config.epochs
        self.setup_s = 0.0  # loading, encoding and caching, measured by ``train``
        self.optimizer, self.scheduler = make_optimizer(model, config, self.total)
        self.ddp_model, self.prepared_opt = accelerator.prepare(model, self.optimizer)
        self.state = {"step": 0, "curve": [], "best": None, "elapsed_s": 0.0}
        self.sums: dict[str, float] = defaultdict(float)
        self.n_sums = 0

    def restore(self, path: Path) -> None:
        tensors, meta = read_checkpoint(path)
        load_params(self.model, tensors)
        self.state = restore_training(tensors, meta, self.optimizer, self.scheduler)

    def batches(self, epoch: int) -> list[list[int]]:
        """This process's batches of ``epoch`` (``epoch_batches``)."""
        n, c = len(self.train_set.encoded), self.config
        rank, world = self.acc.process_index, self.acc.num_processes
        return epoch_batches(n, c.batch_size, c.seed, epoch, rank, world)

    def run(self, progress: bool) -> dict:
        """Steps from ``state["step"]`` to the end, evaluating when due; returns the results."""
        from tqdm.auto import tqdm

        self.t0, self.elapsed0 = time.perf_counter(), self.state["elapsed_s"]
        main = self.acc.is_main_process
        bar = tqdm(total=self.total, initial=self.state["step"], disable=not (progress and main))
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
                line = self._evaluate()
                if main:
                    bar.write(line)
                self.model.train(True)
        bar.close()
        return self._results(finished=True)

    def step(self, idx: list[int]) -> None:
        batch = collate(self.train_set, idx, self.pad, self.acc.device)
        out = self.ddp_model(**batch)
        self.acc.backward(out["loss"])
        if self.config.max_grad_norm:
            self.acc.clip_grad_norm_(self.model.trainable().values(), self.config.max_grad_norm)
        self.prepared_opt.step()
        self.scheduler.step()
        self.prepared_opt.zero_grad(set_to_none=True)
        for key in ("loss", "pred", "rep", "head"):
            if key in out:
                self.sums[key] += out[key].item()
        self.n_sums += 1

    def _eval_due(self) -> bool:
        step, every = self.state["step"], self.config.eval_every
        if step == self.total:
            return True
        return step % (every or self.steps_per_epoch) == 0

    def _evaluate(self) -> str:
        """Dev metrics → curve, best and last checkpoints, results.json; returns the log line."""
        c, main = self.config, self.spec.main_metric
        dev = evaluate(self.model, self.dev_set, self.spec, c, self.pad, self.acc)
        step = self.state["step"]
        train_loss = {k: v / max(self.n_sums, 1) for k, v in self.sums.items()}
        self.sums, self.n_sums = defaultdict(float), 0
        elapsed = self.elapsed0 + time.perf_counter() - self.t0
        point = {
            "step": step,
            "epoch": step / self.steps_per_epoch,
            "lr": self.scheduler.get_last_lr()[0],
            "train": train_loss,
            "dev": dev,
            "elapsed_s": elapsed,
        }
        self.state["curve"].append(point)
        self.state["elapsed_s"] = elapsed
        best = self.state["best"]
        improved = best is None or dev[main] > best["dev"][main]
        if improved:
            self.state["best"] = {"step": step, "epoch": point["epoch"], "dev": dev}
        self.state["scheduler"] = self.scheduler.state_dict()
        if self.acc.is_main_process:
            self._save(improved)
        self.acc.wait_for_everyone()
        parts = " ".join(f"{k} {v:.4f}" for k, v in train_loss.items())
        return (
            f"step {step}/{self.total} epoch {point['epoch']:.2f} | train {parts} | "
            f"dev {main} {dev[main]:.4f} | best {self.state['best']['dev'][main]:.4f} "
            f"@ step {self.state['best']['step']}"
        )

    def _save(self, improved: bool) -> None:
        params = self.model.trainable()
        info = {"config": self.config.to_dict(), "labels": list(self.spec.labels)}
        if improved:
            save_checkpoint(self.run_dir / BEST, params, info)
        save_checkpoint(self.run_dir / LAST, params, info, self.optimizer, self.state)
        write_json(self.run_dir / RESULTS, self._results(finished=self.state["step"] == self.total))

    def _results(self, finished: bool) -> dict:
        return {
            "config": self.config.to_dict(),
            "label": self.config.label,
            "task": self.config.task,
            "main_metric": self.spec.main_metric,
            "n_train": len(self.train_set.encoded),
            "n_dev": len(self.dev_set.encoded),
            "curve": self.state["curve"],
            "best": self.state["best"],
            "wall_time_s": self.state["elapsed_s"],
            "setup_s": self.setup_s,
            "finished": finished,
            "versions": versions(),
        }
