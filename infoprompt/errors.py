"""The trainer's two error types: each message names what is wrong and how to fix it.

The command line prints either as one line, ``error: ...``, and exits with status 2, before any
work starts where the mistake can be seen up front.
"""

from __future__ import annotations


class ConfigError(ValueError):
    """A bad configuration value, path or run folder; the message names the field and the fix."""


class DataError(ValueError):
    """Bad task, file or sampling request; the message names the file, the line and the fix."""
