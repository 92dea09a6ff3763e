"""Shared helpers for the benchmark scripts: best-of-k interleaved timings, machine info."""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable


def best_times(ops: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Fastest wall time (s) of each op over ``repeats`` rounds (as ``timeit`` advises: on a shared
    machine, slower samples measure the neighbours). Ops are interleaved within a round so that load
    changes hit all of them alike. One warm-up call each."""
    for op in ops.values():
        op()
    samples: dict[str, list[float]] = {name: [] for name in ops}
    for _ in range(repeats):
        for name, op in ops.items():
            t0 = time.perf_counter()
            op()
            samples[name].append(time.perf_counter() - t0)
    return {name: min(v) for name, v in samples.items()}


def machine() -> str:
    """One line: CPU, cores, Python, numpy/scipy/torch versions and BLAS threads."""
    import numpy as np
    import scipy

    parts = [
        platform.processor() or platform.machine(),
        f"{os.cpu_count()} cores",
        f"Python {platform.python_version()}",
        f"numpy {np.__version__}",
        f"scipy {scipy.__version__}",
    ]
    try:
        import torch

        parts.append(f"torch {torch.__version__} ({torch.get_num_threads()} threads)")
    except ImportError:
        pass
    return ", ".join(parts)


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)
