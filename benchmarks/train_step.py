"""Time per training step of every method on the packaged MiniLM, as ratios to WARP, in one run.

    python benchmarks/train_step.py                      # batch 8, n_p 4, 7 repeats of 3 steps
    python benchmarks/train_step.py --repeats 11 --steps 5 --model PATH_OR_NAME

Each method gets its own model and its own optimizer; a step is exactly the trainer's step
(``infoprompt.loop.TrainLoop.step``: forward, backward, clipping, AdamW, schedule). Methods
are interleaved within every repeat (a shared, noisy machine slows them alike) and the table reports
the median over repeats. Rows:

  infoprompt            generated prompts, L_pred + β NCE_rep + γ NCE_head, P' and Z' cached
  infoprompt, no cache  the same plus the prompt-free pass on the batch at every step (what the
                        cache saves; not a trainer option)
  idpg, adapter, finetune, lora
                        the trainer's other methods
  peft prompt tuning    ``peft.PromptTuningConfig`` (n_p virtual tokens prepended, random init)
                        on the same encoder, with the same linear head on the mask state

The one-time cost of the cache (the prompt-free pass over a 64-example training set) is printed
below the table, in WARP steps.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time

import torch
import torch.nn.functional as F

from infoprompt.config import RunConfig, default_model
from infoprompt.data import Example
from infoprompt.loop import TrainLoop
from infoprompt.methods import METHODS
from infoprompt.model import load_backbone
from infoprompt.session import Split, build_cache, build_session, collate, make_template
from infoprompt.tasks import TASKS

SENTENCES = [  # SST-2-like lengths (15 to 30 words)
    "it 's a charming and often affecting journey , full of small moments that stay with you "
    "long after the credits roll",
    "the film is strictly routine , with a plot that never surprises and characters you forget",
    "an utterly compelling portrait of a family coming apart at the seams , told with wit",
    "too long , too loud and too pleased with itself to be much fun for anyone over twelve",
    "a gorgeous , witty , seductive movie that rewards patience with real emotional payoff",
    "the performances are fine , but the script is a mess of clichés and half-finished ideas",
    "one of the most original american films of the decade , and one of the funniest as well",
    "it never rises above the level of a made-for-tv movie , despite a talented cast",
]


def make_loop(method: str, model_path: str, n_prompts: int | None, batch: int, tmp: str, acc):
    """A trainer loop for ``method`` over ``batch`` examples (one step = one batch), built by the
    trainer's own ``build_session``."""
    config = RunConfig(
        task="sst2",
        data_dir=tmp,
        out=tmp,
        model=model_path,
        method=method,
        n_prompts=n_prompts,
        batch_size=batch,
        val_shots=0,
    )
    examples = [Example(SENTENCES[i % len(SENTENCES)], label=i % 2) for i in range(batch)]
    quiet = lambda line: None  # noqa: E731
    s = build_session(config, examples=(TASKS["sst2"], examples, []), log=quiet, accelerator=acc)
    loop = TrainLoop(s, tmp, quiet)
    s.model.train(True)
    return loop, s.train_set, s.pad


def trainer_op(loop, batch: int):
    idx = list(range(batch))
    return lambda: loop.step(idx)


def uncached_op(loop, split, pad, batch: int, acc):
    """The prompt-free pass on the batch before every step (what caching P', Z' avoids)."""
    idx = list(range(batch))

    def op():
        b = collate(split, idx, pad, acc.device, plain=True)
        loop.model.plain_pass(b["input_ids"], b["attention_mask"], b["mask_pos"])
        loop.step(idx)

    return op


def peft_prompt_tuning_op(model_path: str, n_prompts: int, batch: int, acc):
    """One step of PEFT's prompt tuning with a linear head on the (shifted) mask state."""
    from peft import PromptTuningConfig, TaskType, get_peft_model

    tokenizer, encoder = load_backbone(model_path)
    peft_cfg = PromptTuningConfig(
        task_type=TaskType.FEATURE_EXTRACTION, num_virtual_tokens=n_prompts
    )
    model = get_peft_model(encoder, peft_cfg).to(acc.device)
    head = torch.nn.Linear(encoder.config.hidden_size, 2).to(acc.device)
    template = make_template(
        RunConfig(task="sst2", data_dir=".", out=".", model=model_path, method="finetune"),
        TASKS["sst2"],
        tokenizer,
    )
    examples = [Example(SENTENCES[i % len(SENTENCES)], label=i % 2) for i in range(batch)]
    split = Split([template.encode(e) for e in examples], [e.label for e in examples])
    b = collate(split, list(range(batch)), tokenizer.pad_token_id, acc.device)
    params = [p for p in model.parameters() if p.requires_grad] + list(head.parameters())
    opt = torch.optim.AdamW(params, lr=1e-3)
    model.base_model.eval()
    rows = torch.arange(batch, device=acc.device)

    def op():
        hidden = model(input_ids=b["input_ids"], attention_mask=b["attention_mask"])
        z = hidden.last_hidden_state[rows, b["mask_pos"] + n_prompts]  # (B, D)
        loss = F.cross_entropy(head(z).float(), b["labels"])
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        loss.item()

    return op


def median_times(ops: dict, repeats: int, steps: int) -> dict[str, float]:
    """Median seconds per step; every repeat runs every op ``steps`` times, ops interleaved."""
    for op in ops.values():  # warm-up
        op()
    samples: dict[str, list[float]] = {name: [] for name in ops}
    for _ in range(repeats):
        for name, op in ops.items():
            t0 = time.perf_counter()
            for _ in range(steps):
                op()
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            samples[name].append((time.perf_counter() - t0) / steps)
    return {name: statistics.median(v) for name, v in samples.items()}


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
        return names[0]
    except (OSError, IndexError):
        return platform.processor() or platform.machine()


def machine_line() -> str:
    from infoprompt.runs import versions

    v = versions()
    where = v["gpu"] or f"{cpu_name()}, {os.cpu_count()} cores"
    libs = ", ".join(f"{k} {v[k]}" for k in ("torch", "transformers", "peft", "accelerate"))
    return f"{where}, {torch.get_num_threads()} torch threads; Python {v['python']}, {libs}"


def main() -> None:
    from accelerate import Accelerator

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=default_model(), help="encoder (default: MiniLM)")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--n-prompts", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--steps", type=int, default=3, help="steps per timing sample")
    args = parser.parse_args()
    torch.manual_seed(0)
    acc = Accelerator()
    tmp = tempfile.mkdtemp()
    ops, loops = {}, {}
    for method in ("warp", "infoprompt", "idpg", "adapter", "finetune", "lora"):
        n_p = args.n_prompts if METHODS[method].prompts else None
        loops[method] = make_loop(method, args.model, n_p, args.batch, tmp, acc)
        ops[method] = trainer_op(loops[method][0], args.batch)
    ops["infoprompt, no cache"] = uncached_op(*loops["infoprompt"], args.batch, acc)
    ops["peft prompt tuning"] = peft_prompt_tuning_op(args.model, args.n_prompts, args.batch, acc)
    times = median_times(ops, args.repeats, args.steps)
    print(f"Machine: {machine_line()}")
    print(
        f"Batch {args.batch}, n_p {args.n_prompts}, median of {args.repeats} x {args.steps} steps\n"
    )
    print("| method | ms / step | ratio to warp |")
    print("|---|---|---|")
    for name, t in times.items():
        print(f"| {name} | {1000 * t:.1f} | {t / times['warp']:.2f} |")
    loop, split, pad = loops["infoprompt"]
    t0 = time.perf_counter()
    for _ in range(64 // args.batch):  # a 64-example training set
        build_cache(loop.session, split)
    once = time.perf_counter() - t0
    print(
        f"\nOne-time cache of P', Z' for 64 training examples: {once:.2f} s "
        f"= {once / times['warp']:.1f} warp steps (a 64-shot, 30-epoch run has 240 steps)"
    )


if __name__ == "__main__":
    main()
