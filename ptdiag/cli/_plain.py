"""The one terminal check of the CLI, and plain line output for logs and pipes."""

from __future__ import annotations

import sys


def stdout_is_terminal() -> bool:
    """Whether stdout is a terminal (styled tables) or a pipe or file (plain lines every tool can read)."""
    return sys.stdout.isatty()


def print_lines(lines: list[str]) -> None:
    for line in lines:
        print(line, flush=False)
    sys.stdout.flush()
