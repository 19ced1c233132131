"""Terminal renderer: golden output on every fixture, the short summary, and no Rich markup injection."""

from __future__ import annotations

import pytest
from _reporting import FIXTURE_NAMES, assert_golden, console_text, fixed_console, fixture

from ptdiag.report import render_gate, render_summary, render_terminal
from ptdiag.report.gate import run_gate


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_terminal_report_matches_golden(name):
    console = fixed_console()
    render_terminal(fixture(name), console)
    assert_golden(f"terminal_{name}.txt", console_text(console))


@pytest.mark.parametrize("name", ["basic", "no_support"])
def test_summary_matches_golden(name):
    console = fixed_console()
    render_summary(fixture(name), console, source="ptdiag-runs/example")
    assert_golden(f"summary_{name}.txt", console_text(console))


def test_report_shows_every_section_and_key_number():
    console = fixed_console()
    render_terminal(fixture("basic"), console)
    text = console_text(console)
    for expected in (
        "Dataset bias and extrapolation",
        "confidence medium",
        "Fine-tune a pre-trained model",
        "+11.0 [+8.0, +14.0]",
        "+1.0 [-2.0, +4.0]",
        "+38.0 [+33.0, +43.0]",  # ER, ER_in, ER_out
        "AUC 0.810",
        "ε = 0.2: 700 in-support (70.0%)",
        "π_in 0.70",
        "only 6 baseline points",
    ):
        assert expected in text, expected


def test_user_strings_are_printed_literally_not_as_markup():
    console = fixed_console()
    render_terminal(fixture("hostile"), console)
    text = console_text(console)
    assert "[bold red]rich markup[/]" in text
    assert "<script>alert(1)</script>" in text  # a terminal shows text: nothing to escape, nothing lost


def test_missing_sections_say_not_available():
    console = fixed_console()
    render_terminal(fixture("no_support"), console)
    text = console_text(console)
    assert "not available: the support split did not run" in text
    assert text.count("not available") >= 3  # support section + the two per-split fits


def test_gate_lines_and_final_status():
    console = fixed_console()
    render_gate(run_gate(fixture("inconclusive"), {"inconclusive"}), console)
    lines = console_text(console).splitlines()
    assert lines[0].startswith("FAIL  verdict")
    assert lines[-1] == "gate: INCONCLUSIVE (exit 4)"


def test_model_notes_name_each_gap_component_recovered_once():
    results = fixture("basic")
    share = {"lower": 0.10, "mid": 0.51, "upper": 0.73}
    results["pretrained"][0]["recovered"] = {"gap": share, "bias": share, "extrapolation": None}
    console = fixed_console()
    render_terminal(results, console)
    text = " ".join(console_text(console).split())
    assert "of the whole accuracy drop" in text and "of the bias gap" in text
    assert "gap gap" not in text
