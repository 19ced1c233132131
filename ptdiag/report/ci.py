"""CI formats of a gate result: JUnit XML, GitHub Actions annotations and job summary, and plain log lines.

JUnit: one ``<testsuite name="ptdiag">`` with one ``<testcase>`` per gate check; a FAIL check carries a
``<failure>`` with its message, a WARN check passes with the message in ``<system-out>`` (GitLab, Jenkins, Azure
DevOps and the GitHub test-report actions read this subset of the format). GitHub Actions: ``::error`` /
``::warning`` workflow commands for failed and warned checks, and Markdown appended to ``$GITHUB_STEP_SUMMARY``.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from ptdiag._io import atomic_write
from ptdiag.report.gate import GateResult, collect_warnings
from ptdiag.report.markdown import render_markdown

ANNOTATION = {"FAIL": "error", "INCONCLUSIVE": "error", "WARN": "warning"}


def junit_xml(gate: GateResult, results_path: str | Path) -> str:
    """The gate as a JUnit XML document (UTF-8 text with declaration)."""
    failures = sum(c.status in ("FAIL", "INCONCLUSIVE") for c in gate.checks)
    attrs = {"tests": str(len(gate.checks)), "failures": str(failures), "errors": "0", "skipped": "0", "time": "0"}
    suites = ET.Element("testsuites", {"name": "ptdiag check", **attrs})
    suite = ET.SubElement(suites, "testsuite", {"name": "ptdiag", **attrs})
    props = ET.SubElement(suite, "properties")
    for name, value in (("results", str(results_path)), ("verdict", gate.verdict_kind), ("status", gate.status)):
        ET.SubElement(props, "property", {"name": name, "value": value})
    for check in gate.checks:
        case = ET.SubElement(suite, "testcase", {"name": check.name, "classname": "ptdiag.check", "time": "0"})
        if check.status in ("FAIL", "INCONCLUSIVE"):
            failure = ET.SubElement(case, "failure", {"message": check.message, "type": "ptdiag.gate"})
            failure.text = check.message
        else:
            ET.SubElement(case, "system-out").text = f"{check.status}: {check.message}"
    ET.indent(suites)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"


def write_junit(path: str | Path, gate: GateResult, results_path: str | Path) -> None:
    text = junit_xml(gate, results_path)
    atomic_write(Path(path), lambda fh: fh.write(text))


def gate_lines(gate: GateResult) -> list[str]:
    """One line per check (status, name, message: the terminal's layout, unstyled), then the overall status."""
    return [f"{c.status:<5} {c.name:<15} {c.message}" for c in gate.checks] + [
        f"gate: {gate.status} (exit {gate.exit_code})"
    ]


def github_annotations(gate: GateResult) -> list[str]:
    """``::error`` / ``::warning`` workflow commands for failed and warned checks."""
    return [
        f"::{ANNOTATION[c.status]} title=ptdiag {c.name}::{_escape(c.message)}"
        for c in gate.checks
        if c.status in ANNOTATION
    ]


def _escape(text: str) -> str:
    """GitHub's escaping of a workflow command's message."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def gate_markdown(gate: GateResult) -> str:
    rows = "\n".join(f"| {c.status} | {c.name} | {_cell(c.message)} |" for c in gate.checks)
    return (
        f"## ptdiag check: {gate.status}\n\nverdict `{gate.verdict_kind}`, exit {gate.exit_code}\n\n"
        f"| status | check | message |\n|---|---|---|\n{rows}\n"
    )


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def github_step_summary(gate: GateResult, results: dict[str, Any]) -> bool:
    """Append the gate table and the Markdown report to ``$GITHUB_STEP_SUMMARY``; False when it is not set."""
    target = os.environ.get("GITHUB_STEP_SUMMARY")
    if not target:
        return False
    with open(target, "a", encoding="utf-8") as fh:
        fh.write(gate_markdown(gate) + "\n" + render_markdown(results) + "\n")
    return True


def on_github_actions() -> bool:
    return os.environ.get("GITHUB_ACTIONS", "").lower() == "true"


def summary_lines(results: dict[str, Any], source: str | None = None) -> list[str]:
    """`analyze`'s closing summary as plain lines: verdict, reasons, recommendations, checks, ER, warnings."""
    verdict = results["verdict"]
    lines = [f"verdict: {verdict['kind']} (confidence {verdict['confidence']})"]
    if source:
        lines.append(f"results: {source}")
    lines += [f"why: {r}" for r in verdict.get("reasons") or []]
    lines += [f"what to do: {r}" for r in verdict.get("recommendations") or []]
    lines += [f"check {c.get('status', '')} {c.get('name', '')}: {c.get('message', '')}" for c in
              verdict.get("checks") or []]
    for m in results.get("pretrained") or []:
        parts = [f"{key} {_interval(m.get(key))}" for key in ("er", "er_in", "er_out") if m.get(key)]
        estimated = " est." if m.get("estimated") else ""
        lines.append(f"model {m['name']}: ref acc {100 * m['ref_acc']:.1f}, shift acc {100 * m['shift_acc']:.1f}"
                     f"{estimated}" + (f"; {'; '.join(parts)}" if parts else ""))
    warnings = collect_warnings(results)
    lines += [f"warning: {w}" for w in warnings]
    return lines


def _interval(value: dict[str, float]) -> str:
    return f"{100 * value['mid']:+.1f} [{100 * value['lower']:+.1f}, {100 * value['upper']:+.1f}] points"
