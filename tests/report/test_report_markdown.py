"""Markdown summary: golden output, escaping of user strings, the optional gate table."""

from __future__ import annotations

import pytest
from _reporting import FIXTURE_NAMES, HOSTILE, assert_golden, fixture

from ptdiag.report import render_markdown
from ptdiag.report.gate import run_gate
from ptdiag.report.markdown import md_escape


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_markdown_matches_golden(name):
    assert_golden(f"markdown_{name}.md", render_markdown(fixture(name)))


def test_markdown_has_verdict_key_numbers_and_er_table():
    text = render_markdown(fixture("basic"))
    assert text.startswith("## ptdiag: Dataset bias and extrapolation (`both`, confidence medium)")
    assert "| Out-of-support at ε = 0.2 | 300 of 1,000 (30.0%), domain AUC 0.81 |" in text
    assert "| tf\\_efficientnet\\_lite0/lp | 86.0% | 78.0% | +11.0 [+8.0, +14.0] |" in text


def test_hostile_strings_are_escaped_and_tables_keep_their_shape():
    text = render_markdown(fixture("hostile"))
    assert HOSTILE not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "<img" not in text
    # A '|' in a model name must not add a table column: every ER-table row has the header's cell count.
    rows = [line for line in text.splitlines() if line.startswith("| evil")]
    assert rows and all(line.replace("\\|", "").count("|") == 7 for line in rows)


def test_md_escape_neutralises_markdown_and_html():
    assert md_escape("a|b*c_d[e](f)") == "a\\|b\\*c\\_d\\[e\\](f)"
    assert md_escape("<b>&") == "&lt;b&gt;&amp;"
    assert md_escape("two\nlines") == "two lines"


def test_gate_table_is_appended_when_given():
    results = fixture("basic")
    text = render_markdown(results, gate=run_gate(results, {"both"}))
    assert "| verdict | ❌ FAIL |" in text
    assert "**Gate: ❌ FAIL** (exit 1)" in text
