"""`ptdiag inspect`'s report: rich tables on a terminal, or plain lines for logs, where every fact, finding and
path is printed whole on its own line (no tables wrapped at 80 columns, no cut paths), so CI logs can be searched
with grep. Reads an InspectReport only."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from ptdiag.data.inspection import InspectReport

_MAX_CLASS_ROWS = 100
_MAX_PER_CODE = 20
_MAX_LEAK_ROWS = 10
_LEVEL_STYLE = {"error": "bold red", "warning": "yellow", "info": "dim"}


def render_report(report: InspectReport, console: Console) -> None:
    """Print the report as rich tables; reads the report only."""
    console.print(_sets_table(report))
    console.print(_classes_table(report))
    if report.leaked:
        console.print(_leak_table(report))
    console.print(_cache_table(report))
    console.print(_findings_table(report))
    verdict = (
        Text("usable: yes", style="bold green")
        if report.usable
        else Text(f"usable: no ({len(report.errors)} error(s))", style="bold red")
    )
    console.print(verdict)


def _fmt_stats(stats: dict[str, float]) -> str:
    return f"{stats['min']:g} / {stats['median']:g} / {stats['max']:g}"


def _sets_table(report: InspectReport) -> Table:
    table = Table(title="Sets", title_justify="left")
    table.add_column("")
    table.add_column("train", overflow="fold")
    table.add_column("shift", overflow="fold")
    a, b = report.train, report.shift
    rows = [
        ("source", a.source, b.source),
        ("format", a.format, b.format),
        ("image files listed", a.n_listed, b.n_listed),
        ("usable images", a.n_usable, b.n_usable),
        ("unreadable (skipped)", a.n_unreadable, b.n_unreadable),
        ("readable, outside the shared classes", a.n_outside_shared, b.n_outside_shared),
        ("non-image files (ignored)", a.n_non_image, b.n_non_image),
        ("exact duplicates within", a.n_duplicates_within, b.n_duplicates_within),
        ("width min / median / max", _fmt_stats(a.width), _fmt_stats(b.width)),
        ("height min / median / max", _fmt_stats(a.height), _fmt_stats(b.height)),
        ("modes", _fmt_counts(a.modes), _fmt_counts(b.modes)),
        ("file formats", _fmt_counts(a.formats), _fmt_counts(b.formats)),
    ]
    for name, left, right in rows:
        table.add_row(name, str(left), str(right))
    return table


def _fmt_counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{key} {n}" for key, n in counts.items()) or "-"


def _classes_table(report: InspectReport) -> Table:
    n = len(report.classes)
    caption = f"first {_MAX_CLASS_ROWS} of {n} classes; see --json" if n > _MAX_CLASS_ROWS else None
    table = Table(title=f"Classes ({len(report.shared_classes)} shared)", title_justify="left", caption=caption)
    for column in ("class", "train files", "train used", "shift files", "shift used", "status"):
        table.add_column(column, justify="left" if column in ("class", "status") else "right")
    for row in report.classes[:_MAX_CLASS_ROWS]:
        style = None if row.status == "shared" else ("red" if row.status != "train only" else "yellow")
        table.add_row(
            Text(row.name), str(row.train_listed), str(row.train_used), str(row.shift_listed), str(row.shift_used),
            row.status, style=style,
        )  # fmt: skip
    return table


def _leak_table(report: InspectReport) -> Table:
    n = len(report.leaked)
    caption = f"first {_MAX_LEAK_ROWS} of {n}; see --json" if n > _MAX_LEAK_ROWS else None
    table = Table(title=f"Duplicates across sets ({n})", title_justify="left", caption=caption)
    table.add_column("train file")
    table.add_column("identical shift file")
    for a, b in report.leaked[:_MAX_LEAK_ROWS]:
        table.add_row(Text(a), Text(b))
    return table


def _cache_table(report: InspectReport) -> Table:
    table = Table(title=f"Decode cache ({escape(str(report.cache_dir))})", title_justify="left")
    table.add_column("size")
    table.add_column("cached", justify="right")
    table.add_column("coverage", justify="right")
    if not report.cache:
        table.add_row("-", "nothing cached for these images", "-")
    for c in report.cache:
        table.add_row(f"{c.size}px", f"{c.cached}/{c.total}", f"{c.fraction:.0%}")
    if report.n_decoded:
        table.caption = f"{report.n_decoded} image(s) decoded into the cache by this run"
    return table


def _findings_table(report: InspectReport) -> Table:
    table = Table(title=f"Findings ({len(report.findings)})", title_justify="left")
    table.add_column("level")
    table.add_column("code")
    table.add_column("message", overflow="fold")
    order = {"error": 0, "warning": 1, "info": 2}
    shown: dict[str, int] = {}
    for f in sorted(report.findings, key=lambda f: order.get(f.level, 3)):
        shown[f.code] = shown.get(f.code, 0) + 1
        if shown[f.code] <= _MAX_PER_CODE:
            table.add_row(Text(f.level, style=_LEVEL_STYLE.get(f.level, "")), f.code, Text(f.message))
    hidden = {code: n - _MAX_PER_CODE for code, n in shown.items() if n > _MAX_PER_CODE}
    if hidden:
        table.caption = "not shown: " + ", ".join(f"{n} more {code}" for code, n in hidden.items()) + " (see --json)"
    if not report.findings:
        table.add_row("-", "-", "no problems found")
    return table


def finding_line(level: str, code: str, message: str, path: str | None) -> str:
    """``LEVEL code: message`` plus ``[path]`` when the message does not already name the path."""
    where = f" [{path}]" if path and path not in message else ""
    return f"{level.upper()} {code}: {message}{where}"


def inspect_lines(report: InspectReport) -> list[str]:
    """The inspect report as plain lines: sets, classes, cross-set duplicates, cache, every finding, usability."""
    lines = []
    for s in (report.train, report.shift):
        lines += [
            f"{s.role} source: {s.source}",
            f"{s.role} format: {s.format}",
            f"{s.role} images: {s.n_usable} usable of {s.n_listed} listed; {s.n_unreadable} unreadable (skipped), "
            f"{s.n_outside_shared} readable but outside the shared classes, "
            f"{s.n_non_image} non-image files (ignored), {s.n_duplicates_within} exact duplicates within",
            f"{s.role} width min/median/max: {s.width['min']:g} / {s.width['median']:g} / {s.width['max']:g}; "
            f"height: {s.height['min']:g} / {s.height['median']:g} / {s.height['max']:g}",
            f"{s.role} modes: {_fmt_counts(s.modes)}; file formats: {_fmt_counts(s.formats)}",
        ]
    lines.append(f"classes: {len(report.shared_classes)} shared")
    for row in report.classes:
        lines.append(
            f"class {row.name}: train {row.train_used} used of {row.train_listed}, shift {row.shift_used} used of "
            f"{row.shift_listed} ({row.status})"
        )
    lines += [f"duplicate across sets: {a} = {b}" for a, b in report.leaked]
    lines.append(f"decode cache: {report.cache_dir}")
    lines += [f"decode cache {c.size}px: {c.cached}/{c.total} cached ({c.fraction:.0%})" for c in report.cache]
    order = {"error": 0, "warning": 1, "info": 2}
    findings = sorted(report.findings, key=lambda f: order.get(f.level, 3))
    lines.append(f"findings: {len(findings)}")
    lines += [finding_line(f.level, f.code, f.message, f.path) for f in findings]
    lines.append("usable: yes" if report.usable else f"usable: no ({len(report.errors)} error(s))")
    return lines
