"""A compact GitHub-flavoured Markdown summary: verdict, key numbers, ER table, warnings.

Sized for a pull-request comment or `$GITHUB_STEP_SUMMARY`. User strings are escaped so a class or model
name can neither inject HTML nor break the table.
"""

from __future__ import annotations

import re
from typing import Any

from ptdiag.report import remedies_view
from ptdiag.report._format import VERDICT_MEANINGS, interval, key_numbers, pct, shift_pct, verdict_title
from ptdiag.report.gate import GateResult, collect_warnings

# Characters that GitHub Markdown would read as formatting, plus the table's own separator.
_MD_SPECIAL = re.compile(r"([\\`*_\[\]{}|#~!])")
_STATUS_ICONS = {"PASS": "✅", "WARN": "⚠️", "FAIL": "❌", "INCONCLUSIVE": "❔"}


def md_escape(text: Any) -> str:
    """Escape a user string for Markdown text or a table cell (HTML entities, specials, newlines)."""
    text = str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _MD_SPECIAL.sub(r"\\\1", text).replace("\r", " ").replace("\n", " ")


def md_text(text: Any) -> str:
    """Like md_escape, but `backtick` spans (flag names in the verdict's texts) stay Markdown code spans."""
    parts = str(text).split("`")
    if len(parts) % 2 == 0:  # an unpaired backtick: escape everything
        return md_escape(text)
    return "".join(md_escape(p) if i % 2 == 0 else f"`{p}`" for i, p in enumerate(parts))


def render_markdown(results: dict[str, Any], gate: GateResult | None = None) -> str:
    """The Markdown summary as one string ending in a newline; `gate` adds the gate's check table."""
    verdict = results["verdict"]
    kind, confidence = verdict["kind"], md_escape(verdict["confidence"])
    lines = [f"## ptdiag: {verdict_title(kind)} (`{kind}`, confidence {confidence})", ""]
    if verdict["kind"] in VERDICT_MEANINGS:
        lines += [f"_{VERDICT_MEANINGS[verdict['kind']]}_", ""]
    for label, items in (("Why", verdict["reasons"]), ("What to do", verdict["recommendations"])):
        if items:
            lines += [f"**{label}**", ""] + [f"- {md_text(item)}" for item in items] + [""]

    lines += ["| Key number | Value |", "|---|---|"]
    lines += [f"| {md_escape(label.strip())} | {md_escape(value)} |" for label, value in key_numbers(results)]
    lines.append("")

    if results["pretrained"]:
        lines += [
            "| Pre-trained model | Ref. acc. | Shift acc. | ER | ER_in | ER_out |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for model in results["pretrained"]:
            cells = [md_escape(model["name"]), pct(model["ref_acc"]), shift_pct(model)]
            cells += [interval(model.get(key)) for key in ("er", "er_in", "er_out")]
            lines.append("| " + " | ".join(cells) + " |")
        lines += ["", "ER: effective robustness in accuracy points with its 95 % interval (line uncertainty).", ""]
    lines += remedies_view.markdown_lines(results, md_escape)

    if gate is not None:
        lines += ["| Check | Status | Detail |", "|---|---|---|"]
        for check in gate.checks:
            icon = _STATUS_ICONS[check.status]
            lines.append(f"| {check.name} | {icon} {check.status} | {md_escape(check.message)} |")
        lines += ["", f"**Gate: {_STATUS_ICONS[gate.status]} {gate.status}** (exit {gate.exit_code})", ""]

    warnings = collect_warnings(results)
    if warnings:
        lines += [f"**Warnings ({len(warnings)})**", ""] + [f"- {md_escape(w)}" for w in warnings] + [""]

    data = results["data"]
    lines.append(
        f"<sub>ptdiag {md_escape(results['ptdiag_version'])} · run {md_escape(results['created'])} · "
        f"fingerprints reference {md_escape(data['reference']['fingerprint'])}, "
        f"shift {md_escape(data['shift']['fingerprint'])}</sub>"
    )
    return "\n".join(lines) + "\n"
