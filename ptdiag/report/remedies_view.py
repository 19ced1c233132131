"""The remedies section of every report: one table, the label-budget curve, text for terminal/Markdown.

Reads only `results["remedies"]` (absent in results written before remedies existed: nothing is shown).
"""

from __future__ import annotations

from typing import Any

from rich.text import Text

from ptdiag.report._format import DASH, interval, pct, share_interval
from ptdiag.report._tables import WholeTable

METHODS = {"last-layer": "last-layer retraining", "reweight": "reweighting (x, y)",
           "curated-finetune": "fine-tuning"}
COMPONENTS = (("gap", "gap"), ("bias", "bias"), ("extrapolation", "extrap."))


def remedies(results: dict[str, Any]) -> list[dict[str, Any]]:
    return list(results.get("remedies") or [])


def what(row: dict[str, Any]) -> str:
    """'last-layer retraining on 200 labelled shifted images (+ reference)'."""
    text = METHODS.get(row["method"], row["method"])
    if row["method"] in ("last-layer", "curated-finetune"):
        chosen = {"curated-shift": " curated", "random-shift": " random"}.get(row.get("data"), "")
        text += f" on {row['n_shift_labelled']}{chosen} labelled shifted images"
        if row.get("variant") == "reference+shift":
            text += " + the reference set"
        if row.get("base_kind") == "finetuned":
            text += ", on the fine-tuned model's features"
    else:
        text += f", weights from {row['n_shift_labelled']} labelled shifted images"
    return text


def recovered(row: dict[str, Any]) -> dict[str, str]:
    """Share of each gap component recovered, as '78% [64, 90]', or a dash when unmeasured or not quotable."""
    return {key: share_interval((row.get("recovered") or {}).get(key)) for key, _ in COMPONENTS}


def terminal_table(results: dict[str, Any], compact: bool = False) -> WholeTable | Text:
    """Rich table, one row per remedy: accuracy, ER, share of each gap component recovered; skipped ones say why.

    In/out-of-support accuracies and ER_in/ER_out are in results.json and the HTML report (the terminal is narrow).
    """
    rows = remedies(results)
    if not rows:
        return Text(results.get("remedies_note") or "No remedies in these results.", style="dim")
    columns = ["shift", "recovers gap"] if compact else ["ref", "shift", "ER", "gap", "bias", "extrap."]
    table = WholeTable(["remedy (base)", *columns])
    for row in rows:
        name = Text(f"{what(row)} ({row['base']})")
        if not row["applicable"]:
            name.append(f"\n{row['note']}", style="dim")
            table.add_row(name)
            continue
        shares = recovered(row)
        cells = ([pct(row["shift_acc"]), shares["gap"]] if compact else
                 [pct(row["ref_acc"]), pct(row["shift_acc"]), interval(row.get("er")),
                  *(shares[k] for k, _ in COMPONENTS)])
        table.add_row(name, *(Text(c) for c in cells))
    return table


def markdown_lines(results: dict[str, Any], escape) -> list[str]:
    """A Markdown table of the remedies (user strings escaped with `escape`), or nothing."""
    rows = remedies(results)
    if not rows:
        return []
    lines = ["| Remedy | Base | Shift acc. | In | Out | ER | Recovers gap / bias / extrap. |",
             "|---|---|---:|---:|---:|---:|---|"]
    for row in rows:
        if not row["applicable"]:
            lines.append(f"| {escape(what(row))} | {escape(row['base'])} | {DASH} | {DASH} | {DASH} | {DASH} | "
                         f"{escape(row['note'])} |")
            continue
        shares = recovered(row)
        lines.append(f"| {escape(what(row))} | {escape(row['base'])} | {pct(row['shift_acc'])} | "
                     f"{pct(row['in_acc'])} | {pct(row['out_acc'])} | {interval(row.get('er'))} | "
                     f"{' / '.join(shares[k] for k, _ in COMPONENTS)} |")
    return lines + ["", "Remedies: held-out accuracy (2-fold cross-fitted over the labelled shifted set).", "",
                    *size_curve_lines(results, escape)]


def curated_rows(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Applicable curated-finetune rows with a size curve (curated, random, + reference)."""
    return [r for r in remedies(results) if r["method"] == "curated-finetune" and r["applicable"]
            and r.get("size_curve")]


def curve_label(row: dict[str, Any]) -> str:
    """'curated', 'random' or 'curated + reference': which images a curated-finetune row was fine-tuned on."""
    source = {"curated-shift": "curated", "random-shift": "random"}.get(row.get("data"), row.get("data") or "")
    return source + (" + reference" if row.get("variant") == "reference+shift" else "")


def size_curve_table(results: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the curated-set size curve: the held-out accuracy each row is judged by (`judged_by`:
    in-support, else shifted) per size with its 95 % interval, one column per curated-finetune remedy, and the paired
    curated − random difference in points. Empty when none was measured."""
    rows = curated_rows(results)
    if not rows:
        return [], []
    key = rows[0].get("judged_by", "shift_acc")
    sizes = sorted({p["n_images"] for r in rows for p in r["size_curve"]})
    paired = [r for r in rows if any(p.get("minus_random") for p in r["size_curve"])]
    header = [f"labelled shifted images ({'in-support' if key == 'in_acc' else 'shifted'} accuracy, held out)",
              *(curve_label(r) for r in rows), *(["curated − random (points)"] if paired else [])]
    body = []
    for n in sizes:
        points = [next((p for p in r["size_curve"] if p["n_images"] == n), None) for r in rows]
        cells = [str(n), *(_accuracy_cell(p, key) for p in points)]
        if paired:
            diff = next((p for p in paired[0]["size_curve"] if p["n_images"] == n), {}).get("minus_random")
            cells.append(interval(diff))
        body.append(cells)
    return header, body


def _accuracy_cell(point: dict[str, Any] | None, key: str) -> str:
    if point is None:
        return DASH
    iv = point.get("interval")
    return pct(point[key]) + (f" [{100 * iv['lower']:.1f}, {100 * iv['upper']:.1f}]" if iv else "")


def size_curve_terminal(results: dict[str, Any]) -> WholeTable:
    """The size curve as a Rich table."""
    header, body = size_curve_table(results)
    table = WholeTable(header)
    for cells in body:
        table.add_row(*(Text(c) for c in cells))
    return table


def size_curve_lines(results: dict[str, Any], escape) -> list[str]:
    """The size curve as a Markdown table, or nothing."""
    header, body = size_curve_table(results)
    if not body:
        return []
    lines = ["| " + " | ".join(escape(h) for h in header) + " |", "|---" + "|---:" * (len(header) - 1) + "|"]
    return lines + ["| " + " | ".join(cells) + " |" for cells in body] + [""]


def label_budget_plot(results: dict[str, Any]) -> str | None:
    """Held-out shifted accuracy against labelled shifted images per class, one line per last-layer remedy (SVG)."""
    curves = [r for r in remedies(results) if r["applicable"] and r.get("label_budget")]
    if not curves:
        return None
    from ptdiag.report import plots  # matplotlib loads only when a report is drawn

    return plots._styled(_budget_figure)(curves)


def _budget_figure(curves: list[dict[str, Any]]) -> str:
    from matplotlib.figure import Figure

    from ptdiag.report import plots
    from ptdiag.report.plots import _MARGINS, PRETRAINED_COLORS, to_svg

    fig = Figure(figsize=(5.2, 3.4))
    ax = fig.add_subplot()
    for color, row in zip(PRETRAINED_COLORS, curves, strict=False):
        points = [p for p in row["label_budget"] if p["shift_acc"] is not None]
        label = row["base"][:28] + (" + ref." if "reference" in (row.get("variant") or "") else "")
        ax.plot([p["n_per_class"] for p in points], [100 * p["shift_acc"] for p in points], marker="o", ms=3,
                color=color, lw=1.3, label=label)
    ax.set_xscale("log")
    ax.set_xlabel("labelled shifted images per class (log scale)")
    ax.set_ylabel("held-out shifted accuracy (%)")
    ax.grid(True, color="#dddddd", lw=0.5)
    plots.legend(ax)
    fig.subplots_adjust(**_MARGINS)
    return to_svg(fig)
