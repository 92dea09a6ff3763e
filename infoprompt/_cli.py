"""Helpers the trainer's command lines share (``train``, ``report``, ``predict``, ``figures``).

``__main__`` registers the subcommands and ``figures`` builds its own parser; both import these
helpers from here, so that neither imports the other.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from typing import TypeVar

from infoprompt.errors import ConfigError, DataError


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Defaults in every option's help; '(required)' instead of a default for required ones."""

    def _get_help_string(self, action: argparse.Action) -> str:
        if action.required:
            return (action.help or "") + " (required)"
        return super()._get_help_string(action) or ""


P = TypeVar("P", bound=argparse.ArgumentParser)


def dashed_flags_only(parser: P) -> P:
    """Keep one spelling per option, the dashed one (``--data-dir``): ``HfArgumentParser`` also
    registers ``--data_dir``, which would then show in usage lines and help."""
    for action in parser._actions:
        dashed = [s for s in action.option_strings if not (s.startswith("--") and "_" in s)]
        if dashed and len(dashed) < len(action.option_strings):
            for s in set(action.option_strings) - set(dashed):
                parser._option_string_actions.pop(s, None)
            action.option_strings = dashed
    return parser


def default_threads() -> int:
    """$OMP_NUM_THREADS if set, else physical cores (of this process's CPUs) // local processes."""
    env = os.environ.get("OMP_NUM_THREADS", "")
    if env.isdigit() and int(env) > 0:
        return int(env)
    try:
        import psutil

        cores = psutil.cpu_count(logical=False) or os.cpu_count() or 1
    except ImportError:
        cores = os.cpu_count() or 1
    if hasattr(os, "sched_getaffinity"):
        cores = min(cores, len(os.sched_getaffinity(0)))
    local = int(os.environ.get("LOCAL_WORLD_SIZE", "1") or 1)
    return max(1, cores // max(local, 1))


def set_threads(threads: int | None) -> int:
    """Set torch's intra-op threads and BLAS's (threadpoolctl) to ``threads`` (None:
    ``default_threads()``); print the value once (main process); return it."""
    import torch
    from threadpoolctl import threadpool_limits

    if threads is not None and threads < 1:
        raise ConfigError(f"--threads must be an integer >= 1, got {threads}")
    n = threads or default_threads()
    torch.set_num_threads(n)
    threadpool_limits(limits=n)
    if os.environ.get("RANK", "0") == "0":
        print(
            f"threads: {n} per process (torch intra-op and BLAS; --threads to change)", flush=True
        )
    return n


def run_reporting_errors(fn: Callable[[], object]) -> int:
    """Run ``fn``; a ConfigError or DataError becomes one line on stderr and exit status 2."""
    try:
        fn()
    except (ConfigError, DataError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0
