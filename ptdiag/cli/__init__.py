"""Command-line interface: one module per command, all registered on one Typer app."""

from ptdiag.cli import (  # noqa: F401  (registration)
    analyze_cmd,
    check_cmd,
    curate_cmd,
    demo_cmd,
    er_cmd,
    inspect_cmd,
    report_cmd,
    score_cmd,
)
from ptdiag.cli.app import app


def main() -> None:
    app()


__all__ = ["app", "main"]
