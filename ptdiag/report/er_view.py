"""`ptdiag er`'s terminal output: the fitted lines and one row per model (reads an ErResult only)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.console import Console
from rich.markup import escape
from rich.text import Text

from ptdiag.report._format import interval, pct
from ptdiag.report._tables import WholeTable

if TYPE_CHECKING:
    from ptdiag.stats.er_table import ErResult


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
        main.add_row(Text(m["model"]), m["kind"], pct(m["ref_acc"]), pct(m["shift_acc"]),
                     pct(m["predicted_shift_acc"]), interval(m.get("er")), note)
    console.print(main)
    if any("er_in" in m or "er_out" in m for m in result.models):
        splits = _table(("model", "ER_in [95% CI]", "ER_out [95% CI]"))
        for m in result.models:
            splits.add_row(Text(m["model"]), interval(m.get("er_in")), interval(m.get("er_out")))
        console.print(splits)
    for warning in result.warnings:
        console.print(f"[yellow]warning:[/] {escape(warning)}")


def _table(columns: tuple[str, ...]) -> WholeTable:
    return WholeTable(columns, right=[i for i, col in enumerate(columns) if col not in ("model", "kind", "note")])
