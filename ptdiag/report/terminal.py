"""Rich terminal rendering of a results dict: the full report, the short end-of-analysis summary, the gate.

Every user-provided string goes through `Text` so names like "[bold]" are never read as Rich markup.
"""

from __future__ import annotations

from typing import Any

from rich import box
from rich.console import Console, Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from ptdiag.report import remedies_view
from ptdiag.report._format import (
    DASH,
    SPLIT_LABELS,
    VERDICT_MEANINGS,
    effect_text,
    interval,
    key_numbers,
    number,
    pct,
    points,
    seconds,
    share,
    shift_labels_text,
    shift_pct,
    verdict_title,
)
from ptdiag.report._tables import WholeTable
from ptdiag.report.gate import GateResult, collect_warnings
from ptdiag.schema import GAP_NAMES

VERDICT_STYLES = {
    "pretraining-helps": "green",
    "dataset-bias": "yellow",
    "both": "yellow",
    "no-shift": "green",
    "inconclusive": "magenta",
}
STATUS_STYLES = {"PASS": "green", "WARN": "yellow", "FAIL": "bold red", "INCONCLUSIVE": "magenta"}


def render_terminal(results: dict[str, Any], console: Console, source: str | None = None) -> None:
    """Print the full report: verdict, data, line fits, ER table, support split, decomposition, warnings."""
    console.print(verdict_panel(results, source))
    for title, renderable in (
        ("Data", data_table(results)),
        ("Accuracy on the line (probit fit over the from-scratch baselines)", fit_table(results)),
        ("Effective robustness of pre-trained models (accuracy points, 95 % interval)", er_table(results)),
        ("Support split (in-support vs out-of-support shifted images)", support_table(results)),
        ("Gap decomposition (accuracy points)", decomposition_table(results)),
        *([("Measured remedies (held-out; ER in points; share of each gap part recovered)",
            remedies_view.terminal_table(results))] if "remedies" in results else []),
        *([("Curated against random labelled shifted images, by size", remedies_view.size_curve_terminal(results))]
          if remedies_view.curated_rows(results) else []),
        ("Warnings", warnings_text(results)),
        ("Run", run_text(results)),
    ):
        console.print()
        console.rule(Text(title, style="bold"), align="left")
        console.print(renderable)


def render_summary(results: dict[str, Any], console: Console, source: str | None = None) -> None:
    """Print the short summary `ptdiag analyze` ends with: verdict box, key numbers, ER table, warnings count."""
    console.print(verdict_panel(results, source))
    numbers = Table.grid(padding=(0, 2))
    numbers.add_column(style="bold")
    numbers.add_column()
    for label, value in key_numbers(results):
        numbers.add_row(Text(label), Text(value))
    console.print(numbers)
    if results["pretrained"]:
        console.print(er_table(results, compact=True))
    if results.get("remedies"):
        console.print(remedies_view.terminal_table(results, compact=True))
    warnings = collect_warnings(results)
    if warnings:
        console.print(Text(f"{len(warnings)} warning(s); the first: {warnings[0]}", style="yellow"))
    console.print(Text("Full report: ptdiag report [RUN] (terminal) or ptdiag report --html", style="dim"))


def render_gate(gate: GateResult, console: Console) -> None:
    """One line per gate check, then the final status and exit code."""
    for check in gate.checks:
        line = Text()
        line.append(f"{check.status:<5}", style=STATUS_STYLES[check.status])
        line.append(f" {check.name:<15} ")
        line.append(check.message)
        console.print(line, soft_wrap=True)
    final = Text("gate: ")
    final.append(gate.status, style=STATUS_STYLES[gate.status])
    final.append(f" (exit {gate.exit_code})")
    console.print(final)


def verdict_panel(results: dict[str, Any], source: str | None = None) -> Panel:
    """The verdict box: kind, confidence, reasons and recommendations."""
    verdict = results["verdict"]
    kind = verdict["kind"]
    style = VERDICT_STYLES.get(kind, "white")
    parts: list[RenderableType] = []
    headline = Text(verdict_title(kind), style=f"bold {style}")
    headline.append(f"  ({kind}, confidence {verdict['confidence']})", style="default")
    parts.append(headline)
    if kind in VERDICT_MEANINGS:
        parts.append(Text(VERDICT_MEANINGS[kind], style="italic"))
    for label, items in (("Why", verdict["reasons"]), ("What to do", verdict["recommendations"])):
        if items:
            parts.append(Text(f"\n{label}:", style="bold"))
            parts.append(_bullets(items))
    checks = verdict.get("checks") or []
    if checks:
        parts.append(Text("\nChecks:", style="bold"))
        parts.append(_hanging([(Text(f"  {c.get('status', '')}", style=STATUS_STYLES.get(str(c.get("status")), "")),
                                Text(f"{c.get('name', '')}: {c.get('message', '')}")) for c in checks],
                              marker_justify="left"))
    title = "ptdiag verdict" + (f" · {source}" if source else "")
    return Panel(Group(*parts), title=Text(title), title_align="left", border_style=style, box=box.ROUNDED)


def data_table(results: dict[str, Any]) -> RenderableType:
    """Images per set and class, split sizes, fingerprints and validation findings."""
    data = results["data"]
    ref, shift = data["reference"], data["shift"]
    table = WholeTable(("class", "reference", "shift"))
    ref_counts, shift_counts = ref.get("class_counts") or {}, shift.get("class_counts") or {}
    for name in list(dict.fromkeys([*ref["classes"], *shift["classes"]])):
        table.add_row(Text(name), _count(ref_counts.get(name)), _count(shift_counts.get(name)))
    if data.get("shift_labelled", "all") != "all":  # the class counts hold the labelled shifted images only
        table.add_row(Text("(unlabelled)"), Text(DASH), Text(f"{shift['n'] - shift.get('n_labelled', 0):,}"))
    table.add_row(Text("total", style="bold"), Text(f"{ref['n']:,}"), Text(f"{shift['n']:,}"))
    split = data["split"]
    lines = [
        table,
        Text(f"reference split: train {split['train']:,} · val {split['val']:,} · test {split['test']:,}"),
        Text(f"fingerprints: reference {ref['fingerprint']} · shift {shift['fingerprint']}"),
    ]
    labels = shift_labels_text(results)
    if labels:
        lines.insert(1, Text(f"shifted labels: {labels}", style="yellow"))
    for finding in data.get("findings") or []:
        level = finding.get("level", "info")
        lines.append(Text(f"{level}: {finding.get('message', '')}", style="yellow" if level != "info" else "dim"))
    return Group(*lines)


def fit_table(results: dict[str, Any]) -> RenderableType:
    """One row per split: n, slope, intercept, r², residual SE, t*, the baselines' reference range."""
    table = WholeTable(("split", "n", "slope", "intercept", "r²", "resid. SE", "t*", "baseline ref. acc."))
    for key, label in SPLIT_LABELS.items():
        fit = results["fit"].get(key)
        if fit is None:
            table.add_row(Text(label), *[Text(DASH)] * 6, Text("not available"))
            continue
        low, high = fit["ref_range"]
        table.add_row(
            Text(label),
            Text(str(fit["n"])),
            Text(f"{fit['slope']:.3f}"),
            Text(f"{fit['intercept']:.3f}"),
            Text(f"{fit['r2']:.3f}"),
            Text(f"{fit['residual_se']:.3f}"),
            Text(number(fit.get("t_star"), 2)),
            Text(f"{pct(low)} – {pct(high)}"),
        )
    return table


def er_table(results: dict[str, Any], compact: bool = False) -> RenderableType:
    """Pre-trained models with accuracies and ER / ER_in / ER_out intervals."""
    models = results["pretrained"]
    if not models:
        return Text("no pre-trained models in this run")
    table = WholeTable(("model", "ref", "shift", "ER", "ER_in", "ER_out"))
    for model in models:
        row = [Text(model["name"]), Text(pct(model["ref_acc"])), Text(shift_pct(model))]
        row += [Text(interval(model.get(key))) for key in ("er", "er_in", "er_out")]
        table.add_row(*row)
    if compact:
        return table
    notes = []
    for model in models:
        extras = [f"strategy {model['strategy']}, lr {DASH if model.get('lr') is None else format(model['lr'], 'g')}"]
        if model.get("er_bootstrap"):
            extras.append(f"bootstrap ER {interval(model['er_bootstrap'])}")
        measured = {k: v for k, v in (model.get("recovered") or {}).items() if v}
        if measured:  # schema 2: share of each gap component recovered, with its interval
            extras.append("recovers " + ", ".join(f"{effect_text(v, 'share')} of the {GAP_NAMES.get(k, k)}"
                                                  for k, v in measured.items()))
        recovered = {k: v for k, v in (model.get("share_recovered") or {}).items() if v is not None}
        if recovered and not measured:
            extras.append(
                "share of the baseline drop recovered: "
                + ", ".join(f"{SPLIT_LABELS.get(k, k)} {pct(v, 0)}" for k, v in recovered.items())
            )
        if model.get("extrapolated"):
            distance = model.get("extrapolation_distance")
            suffix = f" by {distance:.2f} probit units" if distance is not None else ""
            extras.append(f"reference accuracy outside the baselines' range{suffix}: the line is extrapolated")
        if extras:
            notes.append(Text(f"{model['name']}: " + "; ".join(extras), style="dim"))
    return Group(table, *notes)


def support_table(results: dict[str, Any]) -> RenderableType:
    """Split sizes, domain-classifier quality and the ε sweep."""
    support = results.get("support")
    if not support:
        return Text("not available: the support split did not run, so ER_in / ER_out are not computed")
    total = support["n_in"] + support["n_out"]
    lines: list[RenderableType] = [
        Text(
            f"ε = {support['epsilon']:g}: {support['n_in']:,} in-support ({share(support['n_in'], total)}), "
            f"{support['n_out']:,} out-of-support ({share(support['n_out'], total)})"
        ),
        Text(
            f"domain classifier: out-of-fold AUC {support['domain_auc']:.3f}, temperature "
            f"{support['temperature']:.3f}, ECE {support['ece']:.3f}"
            + (f", {support['folds']} folds" if support.get("folds") else "")
            + (f", {support['n_reference_sample']:,} reference images" if support.get("n_reference_sample") else "")
        ),
    ]
    sweep = support.get("epsilon_sweep") or []
    if sweep:
        lines.append(Text("ε sweep"))
        table = WholeTable(("ε", "in-support", "out-of-support", "out share"), right=(0, 1, 2, 3))
        for row in sweep:
            n_total = row["n_in"] + row["n_out"]
            table.add_row(
                Text(f"{row['epsilon']:g}"),
                Text(f"{row['n_in']:,}"),
                Text(f"{row['n_out']:,}"),
                Text(share(row["n_out"], n_total)),
            )
        lines.append(table)
    return Group(*lines)


def decomposition_table(results: dict[str, Any]) -> RenderableType:
    """Gap = bias component (in-support) + extrapolation component (out-of-support), per row."""
    decomposition = results["decomposition"]
    rows = [("baseline", r) for r in decomposition["baseline"]] + [
        ("pre-trained", r) for r in decomposition["pretrained"]
    ]
    if not rows:
        return Text("no rows")
    table = WholeTable(("name", "kind", "ref. acc.", "gap", "bias", "extrapolation"), right=(2, 3, 4, 5))
    for kind, row in rows:
        table.add_row(
            Text(row["name"]),
            Text(kind),
            Text(pct(row["ref_acc"])),
            Text(points(row["gap"], signed=False)),
            Text(points(row.get("bias_component"), signed=False)),
            Text(points(row.get("extrapolation_component"), signed=False)),
        )
    pi_in, pi_out = decomposition.get("pi_in"), decomposition.get("pi_out")
    if pi_in is not None and pi_out is not None:
        caption = Text(f"weights: π_in {pi_in:.2f}, π_out {pi_out:.2f}", style="dim")
        return Group(table, caption)
    return table


def warnings_text(results: dict[str, Any]) -> RenderableType:
    warnings = collect_warnings(results)
    if not warnings:
        return Text("none")
    return _bullets(warnings, style="yellow")


def run_text(results: dict[str, Any]) -> RenderableType:
    """When and with what the run was made, and where its time went."""
    env = results["environment"]
    versions = ", ".join(f"{k} {env[k]}" for k in ("python", "torch", "timm") if k in env)
    made = f"created {results['created']} · ptdiag {results['ptdiag_version']}"
    return Group(
        Text(f"{made} · {versions} · device {env['device']}"),
        Text("timings: " + " · ".join(f"{k} {seconds(v)}" for k, v in results["timings"].items())),
    )


def _bullets(items: list[str], style: str = "") -> Table:
    """A bulleted list whose wrapped lines stay indented under their text."""
    return _hanging([(Text("  •", style=style), Text(str(item), style=style)) for item in items])


def _hanging(rows: list[tuple[Text, Text]], marker_justify: str = "right") -> Table:
    """Marker and text side by side; wrapped lines of the text stay indented under it."""
    grid = Table.grid(padding=(0, 1))
    grid.add_column(justify=marker_justify, no_wrap=True)  # type: ignore[arg-type]
    grid.add_column(ratio=1)
    for marker, text in rows:
        grid.add_row(marker, text)
    return grid


def _count(value: int | None) -> Text:
    return Text(DASH if value is None else f"{value:,}")
