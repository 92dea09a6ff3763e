"""Helpers shared by the trainer's tests (fixtures are in conftest.py)."""

from __future__ import annotations


def train_args(model, data_dir, out, *extra, task="sst2", shots=8, epochs=2) -> list[str]:
    """``infoprompt train`` arguments for a seconds-long run of a tiny model: ``shots`` per class,
    ``epochs`` epochs, batches of 4, 32 tokens, no progress bar; ``extra`` appended."""
    return [
        "train",
        "--task",
        task,
        "--data-dir",
        str(data_dir),
        "--model",
        str(model),
        "--shots",
        str(shots),
        "--epochs",
        str(epochs),
        "--batch-size",
        "4",
        "--max-len",
        "32",
        "--out",
        str(out),
        "--no-progress",
        *extra,
    ]
