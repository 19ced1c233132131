"""CI output: whole lines in logs, JUnit XML from `check --junit`, GitHub Actions annotations and job summary."""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest
from _imagegen import make_image_folder
from _reporting import fixture, write_run
from rich.console import Console
from typer.testing import CliRunner

from ptdiag.cli import app
from ptdiag.data.inspection import inspect_pair
from ptdiag.report.ci import summary_lines
from ptdiag.report.inspect_view import render_report

runner = CliRunner()
# The elements and attributes of the common JUnit XML schema (Jenkins/Ant junit-10.xsd, the subset GitLab,
# Azure DevOps and the GitHub test-report actions read).
SUITE_ATTRS = {"name", "tests", "failures", "errors", "skipped", "time", "timestamp", "hostname", "id", "package"}
CASE_ATTRS = {"name", "classname", "time", "assertions", "status"}
CASE_CHILDREN = {"failure", "error", "skipped", "system-out", "system-err"}


@pytest.fixture
def run(tmp_path):
    return write_run(tmp_path / "run", fixture("basic"))  # verdict 'both', with warnings


def _validate_junit(root: ET.Element) -> list[ET.Element]:
    """Check the document against the common JUnit schema; return the testcases."""
    assert root.tag == "testsuites"
    suites = root.findall("testsuite")
    assert suites and {child.tag for child in root} == {"testsuite"}
    cases = []
    for suite in suites:
        assert set(suite.attrib) <= SUITE_ATTRS and {"name", "tests", "failures"} <= set(suite.attrib)
        assert {child.tag for child in suite} <= {"properties", "testcase", "system-out", "system-err"}
        for prop in suite.iter("property"):
            assert set(prop.attrib) == {"name", "value"}
        suite_cases = suite.findall("testcase")
        assert int(suite.get("tests")) == len(suite_cases)
        assert int(suite.get("failures")) == sum(len(c.findall("failure")) for c in suite_cases)
        for case in suite_cases:
            assert set(case.attrib) <= CASE_ATTRS and case.get("name") and case.get("classname")
            assert {child.tag for child in case} <= CASE_CHILDREN
            for failure in case.findall("failure"):
                assert failure.get("message")
            float(case.get("time", "0"))
        cases += suite_cases
    assert int(root.get("tests")) == len(cases)
    return cases


def test_check_junit_is_valid_with_one_testcase_per_check(run, tmp_path):
    out = tmp_path / "reports" / "ptdiag.xml"
    result = runner.invoke(app, ["check", str(run), "--fail-on", "both", "--min-er-out", "5", "--junit", str(out)])
    assert result.exit_code == 1, result.output
    cases = _validate_junit(ET.parse(out).getroot())
    assert [c.get("name") for c in cases] == ["verdict", "er-out", "warnings"]
    verdict = cases[0].find("failure")
    assert verdict is not None and "verdict is 'both'" in verdict.get("message")
    assert cases[1].find("failure") is None  # a passing check has no failure element
    assert out.read_text(encoding="utf-8").startswith('<?xml version="1.0" encoding="UTF-8"?>')


def test_check_junit_all_passing(run, tmp_path):
    out = tmp_path / "junit.xml"
    result = runner.invoke(app, ["check", str(run), "--fail-on", "dataset-bias", "--junit", str(out)])
    assert result.exit_code == 0, result.output
    root = ET.parse(out).getroot()
    _validate_junit(root)
    assert root.get("failures") == "0" and not root.findall(".//failure")


def test_github_actions_annotations_and_step_summary(run, tmp_path, monkeypatch):
    summary = tmp_path / "step_summary.md"
    summary.write_text("earlier step\n", encoding="utf-8")
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    result = runner.invoke(app, ["check", str(run), "--fail-on", "both"])
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert any(line.startswith("::error title=ptdiag verdict::verdict is 'both'") for line in lines)
    assert any(line.startswith("::warning title=ptdiag warnings::") for line in lines)
    text = summary.read_text(encoding="utf-8")
    assert text.startswith("earlier step\n")  # appended, not overwritten
    assert "## ptdiag check: FAIL" in text and "| FAIL | verdict |" in text


def test_no_annotations_outside_github_actions(run, monkeypatch):
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    result = runner.invoke(app, ["check", str(run), "--fail-on", "both"])
    assert result.exit_code == 1 and "::error" not in result.output


def test_analyze_summary_lines_are_whole():
    results = fixture("basic")
    lines = summary_lines(results, "/some/run/results.json")
    assert lines[0] == f"verdict: {results['verdict']['kind']} (confidence {results['verdict']['confidence']})"
    assert all("\n" not in line for line in lines)
    assert any(line.startswith("model ") and "er_out" in line for line in lines)


def test_inspect_piped_to_a_file_keeps_every_path_on_one_line(tmp_path):
    base = tmp_path / ("a-much-longer-temporary-directory-name-" * 3) / "t1"
    make_image_folder(base / "ref", {"cat": 12, "dog": 12})
    make_image_folder(base / "shift", {"cat": 10, "dog": 10}, seed=5)
    broken = base / "ref" / "cat" / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    log = tmp_path / "inspect.log"
    env = {**os.environ, "COLUMNS": "80", "PTDIAG_CACHE_DIR": str(tmp_path / "cache")}
    with open(log, "w", encoding="utf-8") as fh:
        proc = subprocess.run(
            [sys.executable, "-m", "ptdiag", "inspect", "--train", str(base / "ref"), "--shift", str(base / "shift")],
            stdout=fh, stderr=subprocess.PIPE, text=True, timeout=120, env=env, cwd=tmp_path,
        )
    assert proc.returncode == 0, proc.stderr
    lines = log.read_text(encoding="utf-8").splitlines()
    assert len(str(broken)) > 120
    assert any(str(broken) in line and line.startswith("WARNING corrupt-image:") for line in lines)
    assert f"train source: {base / 'ref'}" in lines
    assert not any(ch in line for line in lines for ch in "│┃━─")  # no table borders in a log


def test_inspect_keeps_tables_on_a_terminal(tmp_path):
    make_image_folder(tmp_path / "ref", {"cat": 12, "dog": 12})
    make_image_folder(tmp_path / "shift", {"cat": 10, "dog": 10}, seed=5)
    report = inspect_pair(tmp_path / "ref", tmp_path / "shift")
    console = Console(force_terminal=True, width=100, record=True)
    render_report(report, console)
    text = console.export_text()
    assert "Classes (2 shared)" in text and "Findings" in text and "│" in text
