"""The demo's side-by-side table of both scenarios (reads their results only)."""

from __future__ import annotations

from rich.markup import escape
from rich.table import Table

from ptdiag.report._format import DASH, points


def _er(entry: dict | None) -> str:
    """An interval on two lines (the demo's table is narrow): '+48.2' over '[+43.0, +51.5]'."""
    if not entry:
        return DASH
    return f"{points(entry['mid'])}\n[{points(entry['lower'])}, {points(entry['upper'])}]"


def demo_table(rows) -> Table:
    """Both scenarios side by side: expected vs measured verdict, then one line per fine-tuning strategy."""
    table = Table(title="ptdiag demo — Fashion-MNIST, two known-answer scenarios (accuracy points)", show_lines=True)
    for column in ("scenario", "verdict", "strategy", "ER", "ER_in", "ER_out", "bias /\nextrap."):
        table.add_column(column, no_wrap=column in ("scenario", "verdict", "strategy"))
    for row in rows:
        r = row.results
        verdict = r["verdict"]
        colour = "green" if verdict["kind"] == row.expected else "red"
        support = r.get("support") or {}
        n_shift = (support.get("n_in") or 0) + (support.get("n_out") or 0)
        out_frac = f"{100 * support['n_out'] / n_shift:.1f} %" if n_shift else DASH
        lines = r["decomposition"]["baseline"]
        for i, model in enumerate(r["pretrained"]):
            comp = next((d for d in lines if model["name"] in d["name"]), lines[0] if lines else None)
            parts = (DASH if comp is None
                     else f"{points(comp['bias_component'])} /\n{points(comp['extrapolation_component'])}")
            first = i == 0
            table.add_row(f"{row.key}\n{out_frac} out-of-\nsupport" if first else "",
                          f"[{colour}]{verdict['kind']}[/]\n({verdict['confidence']})\nexpected:\n{row.expected}"
                          if first else "",
                          escape(model.get("strategy") or model["name"]), _er(model.get("er")),
                          _er(model.get("er_in")), _er(model.get("er_out")), parts)
    return table
