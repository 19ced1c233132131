"""`ptdiag check` and `ptdiag report` through the CLI: every exit code, outputs, and bad inputs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from _reporting import fixture, write_run
from typer.testing import CliRunner

from ptdiag.cli import app
from ptdiag.cli.report_cmd import split_paths
from ptdiag.errors import UsageError

runner = CliRunner()


@pytest.fixture
def runs(tmp_path, monkeypatch):
    """A working directory with ptdiag-runs/ holding a 'both' run and an inconclusive one (the newest)."""
    monkeypatch.chdir(tmp_path)
    both = write_run(tmp_path / "ptdiag-runs" / "1-both", fixture("basic"))
    inconclusive = write_run(tmp_path / "ptdiag-runs" / "2-inconclusive", fixture("inconclusive"))
    import os

    os.utime(both / "results.json", (1_000_000, 1_000_000))
    return {"both": both, "inconclusive": inconclusive}


def check(*args):
    return runner.invoke(app, ["check", *args])


def test_exit_0_when_the_gate_passes(runs):
    result = check(str(runs["both"]), "--fail-on", "dataset-bias,inconclusive", "--min-er-out", "5")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[1].startswith("PASS  verdict") and lines[2].startswith("PASS  er-out")
    assert lines[-1] == "gate: PASS (exit 0)"


def test_exit_1_when_a_check_fails(runs):
    result = check(str(runs["both"]), "--fail-on", "both")
    assert result.exit_code == 1
    assert "FAIL  verdict" in result.output and result.output.rstrip().endswith("gate: FAIL (exit 1)")
    assert check(str(runs["both"]), "--max-bias-component", "5").exit_code == 1
    assert check(str(runs["both"]), "--fail-if-warning").exit_code == 1


def test_negative_threshold_is_a_number_not_an_option(runs):
    assert check(str(runs["both"]), "--min-er-out", "-5").exit_code == 0


@pytest.mark.parametrize(
    "args, message",
    [
        (["--fail-on", "dataset_bias"], "unknown verdict kind 'dataset_bias'"),
        ([], "nothing to check"),
        (["--fail-on", "both", "--min-er-out", "500"], "--min-er-out"),
        (["--fail-on", "both", "--max-bias-component", "-1"], "--max-bias-component"),
        (["--fail-on", "both", "--bogus"], "No such option"),
    ],
)
def test_exit_2_on_usage_errors(runs, args, message):
    result = check(*args)
    assert result.exit_code == 2
    assert message in result.output


def test_exit_3_on_missing_unreadable_or_wrong_schema_results(runs, tmp_path):
    missing = check(str(tmp_path / "nope"), "--fail-on", "both")
    assert missing.exit_code == 3 and "nope: no such run directory or results file" in missing.output

    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    result = check(str(broken), "--fail-on", "both")
    assert result.exit_code == 3 and f"{broken}: not valid JSON" in result.output

    future = fixture("basic") | {"schema_version": 3}
    run = write_run(tmp_path / "future", future)
    result = check(str(run), "--fail-on", "both")
    assert result.exit_code == 3 and "schema_version 3 is not supported" in result.output

    invalid = fixture("basic")
    invalid["verdict"]["kind"] = "great"
    run = write_run(tmp_path / "invalid", invalid)
    result = check(str(run), "--fail-on", "both")
    assert result.exit_code == 3 and str(run / "results.json") in result.output


def test_exit_4_when_inconclusive_and_asked_to_fail_on_it(runs):
    result = check("--fail-on", "inconclusive")  # default RUN: the newest run, which is inconclusive
    assert result.exit_code == 4
    assert "2-inconclusive" in result.output and "gate: INCONCLUSIVE (exit 4)" in result.output


def test_check_as_a_subprocess(runs, tmp_path):
    # One real process (each start imports the whole CLI): the exit code reaches the shell, no traceback.
    command = [sys.executable, "-m", "ptdiag", "check", str(runs["both"]), "--fail-on", "both,inconclusive"]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    assert "gate: FAIL (exit 1)" in proc.stdout and "Traceback" not in proc.stderr


# ---- ptdiag report ----------------------------------------------------------------------------------


def test_report_defaults_to_the_terminal_report_of_the_newest_run(runs):
    result = runner.invoke(app, ["report"])
    assert result.exit_code == 0, result.output
    assert "Inconclusive" in result.output and "Effective robustness" in result.output


def test_report_html_flag_alone_writes_into_the_run(runs):
    result = runner.invoke(app, ["report", "--html"])
    assert result.exit_code == 0, result.output
    report = runs["inconclusive"] / "report.html"
    assert report.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert f"wrote {Path('ptdiag-runs/2-inconclusive/report.html')}" in result.output


@pytest.mark.parametrize("order", ["run-first", "file-first"])
def test_report_html_with_file_and_run_in_any_order(runs, tmp_path, order):
    out = tmp_path / "out" / "r.html"
    args = [str(runs["both"]), "--html", str(out)] if order == "run-first" else ["--html", str(out), str(runs["both"])]
    result = runner.invoke(app, ["report", *args])
    assert result.exit_code == 0, result.output
    assert "Dataset bias and extrapolation" in out.read_text(encoding="utf-8")
    assert not (runs["both"] / "report.html").exists()


def test_report_md_to_stdout_and_to_file(runs, tmp_path):
    result = runner.invoke(app, ["report", str(runs["both"]), "--md"])
    assert result.exit_code == 0 and result.output.startswith("## ptdiag: Dataset bias and extrapolation")
    target = tmp_path / "summary.md"
    result = runner.invoke(app, ["report", str(runs["both"]), "--md", str(target)])
    assert result.exit_code == 0
    assert target.read_text(encoding="utf-8").startswith("## ptdiag:")


def test_report_json_reemits_the_results(runs):
    result = runner.invoke(app, ["report", str(runs["both"] / "results.json"), "--json"])
    assert result.exit_code == 0
    assert json.loads(result.output) == fixture("basic")


def test_report_usage_and_results_errors(runs, tmp_path):
    both = runner.invoke(app, ["report", "--json", "--md"])
    assert both.exit_code == 2 and "give --md a FILE" in both.output
    two = runner.invoke(app, ["report", "a.html", "b.html"])
    assert two.exit_code == 2 and "at most one HTML FILE" in two.output
    missing = runner.invoke(app, ["report", str(tmp_path / "missing-run")])
    assert missing.exit_code == 3 and "missing-run: no such run directory or results file" in missing.output


def test_report_without_any_run_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["report", "--html"])
    assert result.exit_code == 3 and "ptdiag-runs/: no run with a results.json found" in result.output


def test_split_paths_sorts_run_and_files(tmp_path):
    run = tmp_path / "run.html"  # a directory wins over its suffix
    run.mkdir()
    assert split_paths([]) == (None, None, None)
    assert split_paths(["out.html"]) == (None, "out.html", None)
    assert split_paths([str(run), "s.md", "x/results.json"][:2]) == (str(run), None, "s.md")
    assert split_paths(["x/results.json", "page.HTM"]) == ("x/results.json", "page.HTM", None)
    with pytest.raises(UsageError, match="at most one RUN"):
        split_paths(["a", "b"])
