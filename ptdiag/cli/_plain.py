"""Line output for logs: when stdout is not a terminal, every fact, finding and path is printed whole on its own
line (no tables wrapped at 80 columns, no cut paths), so CI logs can be searched with grep."""

from __future__ import annotations

import sys

from ptdiag.data.inspection import InspectReport


def stdout_is_terminal() -> bool:
    return sys.stdout.isatty()


def print_lines(lines: list[str]) -> None:
    for line in lines:
        print(line, flush=False)
    sys.stdout.flush()


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
            f"{s.role} modes: {_counts(s.modes)}; file formats: {_counts(s.formats)}",
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


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{key} {n}" for key, n in counts.items()) or "-"
