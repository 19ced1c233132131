"""One error hierarchy; the CLI maps each class to a documented exit code.

Exit codes: 0 ok · 1 gate failed · 2 usage error · 3 data error · 4 inconclusive · 5 runtime/resource error ·
130 interrupted (Ctrl-C) · 141 stdout closed by its reader (a pipe into `head`).
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_GATE_FAILED = 1
EXIT_USAGE = 2
EXIT_DATA = 3
EXIT_INCONCLUSIVE = 4
EXIT_RUNTIME = 5
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report it
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, as shells report a writer whose pipe closed

EXIT_CODES_HELP = (
    "Exit codes: 0 ok, 1 gate failed, 2 usage error, 3 data error, 4 inconclusive, 5 runtime/resource error, "
    "130 interrupted, 141 output pipe closed."
)


class PtdiagError(Exception):
    """An expected failure, shown to the user as one line plus an optional hint (no traceback)."""

    exit_code = EXIT_RUNTIME

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint


class UsageError(PtdiagError):
    """Bad flags or configuration."""

    exit_code = EXIT_USAGE


class DataError(PtdiagError):
    """Unusable input data (missing folder, empty set, bad CSV, class mismatch...)."""

    exit_code = EXIT_DATA


class ResultsError(PtdiagError):
    """An unreadable results.json, or one with the wrong schema."""

    exit_code = EXIT_DATA


class ModelError(PtdiagError):
    """A model or weights file that cannot be created or loaded."""

    exit_code = EXIT_RUNTIME


class ResourceError(PtdiagError):
    """Out of memory, disk or time; the hint names the knob to lower."""

    exit_code = EXIT_RUNTIME
