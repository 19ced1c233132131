"""`ptdiag er`: effective robustness of already-evaluated models from a CSV of accuracies."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.text import Text

from ptdiag._io import write_json_atomic
from ptdiag.cli._paths import check_output_file
from ptdiag.cli.app import app, handle_errors
from ptdiag.report._tables import WholeTable

if TYPE_CHECKING:
    from ptdiag.stats.er_table import ErResult


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


def render_er(result: ErResult, console: Console) -> None:
    """Print the fits and a per-model ER table."""
    for name, fit in result.fits.items():
        lo, hi = fit.ref_range
        console.print(f"[bold]{name}[/] line ({fit.scale}): slope {fit.slope:.3f}, intercept {fit.intercept:.3f}, "
                      f"r² {fit.r2:.3f}, n {fit.n}, residual SE {fit.residual_se:.3f}, "
                      f"reference range {100 * lo:.1f}–{100 * hi:.1f}%")
    main = _table(("model", "kind", "ref", "shift", "predicted", "ER [95% CI]", "note"))
    for m in result.models:
        notes = [f"extrap. {m['extrapolation_distance']:.2f}"] if m["extrapolated"] else []
        band = (m.get("prediction_band") or {}).get("shift")
        if m["kind"] == "pretrained" and band is not None and not band["beyond"]:
            notes.append("inside the baselines' scatter")
        note = "; ".join(notes)
        main.add_row(Text(m["model"]), m["kind"], _pct(m["ref_acc"]), _pct(m["shift_acc"]),
                     _pct(m["predicted_shift_acc"]), _er(m.get("er")), note)
    console.print(main)
    if any("er_in" in m or "er_out" in m for m in result.models):
        splits = _table(("model", "ER_in [95% CI]", "ER_out [95% CI]"))
        for m in result.models:
            splits.add_row(Text(m["model"]), _er(m.get("er_in")), _er(m.get("er_out")))
        console.print(splits)
    for warning in result.warnings:
        console.print(f"[yellow]warning:[/] {escape(warning)}")


def _table(columns: tuple[str, ...]) -> WholeTable:
    return WholeTable(columns, right=[i for i, col in enumerate(columns) if col not in ("model", "kind", "note")])


def _pct(value: float) -> str:
    return f"{100 * value:.1f}%"


def _er(er: dict[str, Any] | None) -> str:
    if not er:
        return "–"
    return f"{100 * er['mid']:+.1f} [{100 * er['lower']:+.1f}, {100 * er['upper']:+.1f}]"
