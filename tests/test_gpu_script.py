"""benchmarks/gpu.sh, the prepared GPU run, at toy sizes on CPU: every part runs and is written."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_gpu_script_runs_every_check_at_a_small_size(tmp_path, tiny_bert):
    env = {**os.environ, "GPU_SH_SMALL": "1", "OUT": str(tmp_path), "PYTHON": sys.executable,
           "GPU_SH_MODEL": tiny_bert}  # fmt: skip
    done = subprocess.run(
        ["bash", "benchmarks/gpu.sh"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    theory = json.loads((tmp_path / "theory" / "gpu.json").read_text())["theory"]
    trainer = json.loads((tmp_path / "trainer" / "gpu.json").read_text())["trainer"]
    assert {r["method"] for r in theory} == {"newton", "sketched-subspace-newton"}
    assert all(
        r["success"] and r["dtype"] == "float64" and r["ms_per_iteration"] > 0 for r in theory
    )
    assert abs(theory[0]["loss"] - theory[1]["loss"]) <= 1e-9 * theory[0]["loss"]
    assert {(r["method"], r["batch"]) for r in trainer} == {
        (m, b) for m in ("infoprompt", "warp") for b in (2, 4)
    }
    assert all(
        r["precision"] == "bf16" and r["trainable_dtypes"] == ["torch.float32"] for r in trainer
    )
    assert all(r["examples_per_s"] > 0 for r in trainer)
    report = (tmp_path / "gpu.md").read_text()
    assert "Torch engine, float64" in report and "Trainer steps" in report
