"""`ptdiag er`: effective robustness of already-evaluated models from a CSV of accuracies."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from ptdiag._io import write_json_atomic
from ptdiag.cli._paths import check_output_file
from ptdiag.cli.app import app, handle_errors
from ptdiag.report.er_view import render_er


class ScaleChoice(str, Enum):  # noqa: UP042  (a str Enum renders best in Typer's help)
    probit = "probit"
    logit = "logit"


@app.command("er")
@handle_errors
def er_command(
    accuracies: Annotated[Path, typer.Option("--accuracies", help="CSV with columns model,kind,ref_acc,shift_acc "
                                             "(kind: baseline|pretrained); optional ref_n,shift_n and "
                                             "in_acc,out_acc,in_n,out_n.")],
    json_path: Annotated[Path | None, typer.Option("--json", help="Also write the results as JSON to this file.")]
    = None,
    scale: Annotated[ScaleChoice, typer.Option("--scale", help="Transform for the baseline line.")]
    = ScaleChoice.probit,
) -> None:
    """Effective robustness of evaluated models against the baseline line, from a CSV of accuracies."""
    from ptdiag.stats.er_table import er_from_table, read_er_table  # scipy/pandas load only when the command runs

    check_output_file(json_path, "--json")
    table = read_er_table(accuracies)
    result = er_from_table(table, scale=scale.value, source=str(accuracies))
    render_er(result, Console(highlight=False))
    if json_path is not None:
        write_json_atomic(json_path, result.to_dict())
