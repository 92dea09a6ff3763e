"""Every GPU check of the project in one run (``benchmarks/gpu.sh`` calls this; docs/solver.md and
README quote its tables): writes ``gpu.md`` and ``gpu.json`` under ``--out``.

    python -m benchmarks.gpu --out OUT                 # the sizes below, < 8 minutes on one H100
    python -m benchmarks.gpu --out OUT --small         # the same checks at toy sizes (CPU test)

1. **theory**: the torch engine (:class:`theory.engine.TorchEngine`, float64, A drawn block by
   block and moved to the device) on sparse 10⁷×256, Newton and the default
   (sketched-subspace-newton) to ``max|g| ≤ 1e-8``: iterations, time per iteration (best of two
   solves, the first pays the kernels' start-up), the card's name. This machine's numpy figure for
   the same work is in docs/solver.md ("On a GPU"), measured on the 2-core VM.
2. **trainer**: one training step (``infoprompt.train.TrainLoop.step``, forward, backward, AdamW)
   of InfoPrompt and WARP on the packaged encoder (MiniLM), bf16 autocast with the trainables in
   fp32 (``--precision``), at batch 8 and 64: examples per second (median of repeats).
"""

from __future__ import annotations

import argparse
import json
import os
import time

from benchmarks._common import machine, markdown_table

FULL = {"n": 10_000_000, "d": 256, "blocks": 8, "batches": (8, 64), "repeats": 5, "steps": 3}
SMALL = {"n": 20_000, "d": 16, "blocks": 2, "batches": (2, 4), "repeats": 1, "steps": 1}
METHODS = ("newton", "sketched-subspace-newton")
TRAINER_METHODS = ("infoprompt", "warp")


def device_name(device: str) -> str:
    import torch

    if device.startswith("cuda"):
        return torch.cuda.get_device_name(torch.device(device))
    from benchmarks.train_step import cpu_name

    return f"{cpu_name()} ({torch.get_num_threads()} torch threads)"


def theory_part(size: dict, device: str) -> tuple[str, list[dict]]:
    """Newton and the default on the torch engine, float64, sparse n×d drawn from seed 0."""
    import torch

    from theory import solve
    from theory.distributed import EngineRegression
    from theory.engine import TorchEngine

    n, d = size["n"], size["d"]
    t0 = time.perf_counter()
    eng = TorchEngine.generate("sparse", n, d, 0, blocks=size["blocks"], device=device)
    drawn = time.perf_counter() - t0
    prob = EngineRegression(eng)
    rows = []
    for method in METHODS:
        best, res = float("inf"), None
        for _ in range(2):
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            res = solve(prob, method=method, tol=1e-8, max_iter=200)
            best = min(best, time.perf_counter() - t0)
        rows.append(
            {"method": method, "n": n, "d": d, "nit": res.nit, "success": bool(res.success),
             "loss": res.fun, "seconds": best, "ms_per_iteration": 1e3 * best / max(res.nit, 1),
             "device": device_name(device), "dtype": "float64", "draw_seconds": drawn}
        )  # fmt: skip
    eng.close()
    table = markdown_table(
        ["A", "method", "nit", "converged", "final L", "s", "ms / iteration", "device"],
        [[f"{r['n']}×{r['d']}", r["method"], str(r["nit"]), str(r["success"]), f"{r['loss']:.12g}",
          f"{r['seconds']:.3f}", f"{r['ms_per_iteration']:.1f}", r["device"]] for r in rows],
    )  # fmt: skip
    return table + f"\n\nDrawing A (float64, {size['blocks']} blocks) took {drawn:.1f} s.", rows


def trainer_part(size: dict, precision: str, model: str | None) -> tuple[str, list[dict]]:
    """Examples per second of one InfoPrompt and one WARP step at each batch size."""
    import tempfile

    import torch
    from accelerate import Accelerator

    from benchmarks.train_step import make_loop, median_times, trainer_op
    from infoprompt.config import default_model
    from infoprompt.methods import METHODS as TRAIN_METHODS

    model = model or default_model()
    acc = Accelerator(mixed_precision="bf16" if precision == "bf16" else "no")
    tmp = tempfile.mkdtemp()
    rows = []
    for batch in size["batches"]:
        torch.manual_seed(0)
        ops, loops = {}, {}
        for method in TRAINER_METHODS:
            n_p = 4 if TRAIN_METHODS[method].prompts else None
            loops[method] = make_loop(method, model, n_p, batch, tmp, acc)
            trainables = [p for p in loops[method][0].model.parameters() if p.requires_grad]
            dtypes = sorted({str(p.dtype) for p in trainables})
            ops[method] = trainer_op(loops[method][0], batch)
        times = median_times(ops, size["repeats"], size["steps"])
        for method, t in times.items():
            rows.append(
                {"method": method, "batch": batch, "precision": precision,
                 "trainable_dtypes": dtypes, "ms_per_step": 1e3 * t, "examples_per_s": batch / t,
                 "device": str(acc.device)}
            )  # fmt: skip
    table = markdown_table(
        ["method", "batch", "precision (autocast)", "trainables", "ms / step", "examples / s"],
        [[r["method"], str(r["batch"]), r["precision"], ", ".join(r["trainable_dtypes"]),
          f"{r['ms_per_step']:.1f}", f"{r['examples_per_s']:.1f}"] for r in rows],
    )  # fmt: skip
    return table, rows


def main(argv=None) -> int:
    import torch

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", required=True, help="folder for gpu.md and gpu.json")
    p.add_argument("--small", action="store_true", help="toy sizes (a test on CPU)")
    p.add_argument("--device", default=None, help="default: cuda when present, else cpu")
    p.add_argument("--precision", choices=("bf16", "fp32"), default="bf16")
    p.add_argument("--model", default=None, help="encoder (default: the packaged MiniLM)")
    p.add_argument("--parts", default="theory,trainer", help="comma-separated")
    args = p.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    size = SMALL if args.small else FULL
    parts = args.parts.split(",")
    report = [f"# GPU checks\n\n{machine()}; device: {device_name(device)}"]
    results: dict = {"machine": machine(), "device": device_name(device), "small": args.small}
    if "theory" in parts:
        table, results["theory"] = theory_part(size, device)
        report.append("## Torch engine, float64, sparse family, tol 1e-8\n\n" + table)
        print(report[-1], flush=True)
    if "trainer" in parts:
        table, results["trainer"] = trainer_part(size, args.precision, args.model)
        report.append("## Trainer steps, packaged encoder\n\n" + table)
        print(report[-1], flush=True)
    with open(os.path.join(args.out, "gpu.md"), "w") as f:
        f.write("\n\n".join(report) + "\n")
    with open(os.path.join(args.out, "gpu.json"), "w") as f:
        json.dump(results, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
