"""Which results.json a command reads: explicit run dir or file, or the newest run under ptdiag-runs/."""

from __future__ import annotations

import os

import pytest
from _reporting import fixture, write_run

from ptdiag.errors import ResultsError
from ptdiag.report import latest_run, load_run, locate_results


def test_latest_run_is_the_newest_results_file_at_any_depth(tmp_path):
    runs = tmp_path / "ptdiag-runs"
    old = write_run(runs / "20260101-old", fixture("basic")) / "results.json"
    new = write_run(runs / "demo" / "extrapolation", fixture("basic")) / "results.json"
    os.utime(old, (1_000_000, 1_000_000))
    os.utime(new, (2_000_000, 2_000_000))
    assert latest_run(runs) == new
    os.utime(old, (3_000_000, 3_000_000))
    assert latest_run(runs) == old


def test_no_runs_is_a_clear_error(tmp_path):
    (tmp_path / "ptdiag-runs" / "empty").mkdir(parents=True)
    with pytest.raises(ResultsError, match="no run with a results.json found"):
        latest_run(tmp_path / "ptdiag-runs")


def test_run_dir_and_file_both_resolve(tmp_path):
    run = write_run(tmp_path / "run", fixture("basic"))
    assert locate_results(run) == run / "results.json"
    assert locate_results(run / "results.json") == run / "results.json"


def test_dir_without_results_and_missing_path_are_errors(tmp_path):
    with pytest.raises(ResultsError, match="results.json: no such results file"):
        locate_results(tmp_path)
    with pytest.raises(ResultsError, match="no such run directory or results file"):
        locate_results(tmp_path / "missing")


def test_default_uses_the_current_directory(tmp_path, monkeypatch):
    run = write_run(tmp_path / "ptdiag-runs" / "r1", fixture("inconclusive"))
    monkeypatch.chdir(tmp_path)
    path, results = load_run()
    assert path.resolve() == (run / "results.json").resolve()
    assert results["verdict"]["kind"] == "inconclusive"
