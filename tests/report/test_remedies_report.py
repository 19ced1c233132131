"""The remedies section of results.json through the schema, the gate, `ptdiag check` and every renderer."""

from __future__ import annotations

import numpy as np
import pytest
from _reporting import HOSTILE, console_text, fixed_console, fixture, write_run
from _reporting import remedy_results as _results
from typer.testing import CliRunner

from ptdiag.cli import app
from ptdiag.config import resolve_config
from ptdiag.engine.jobkinds.remedies import _skip_reason, remedy_specs
from ptdiag.errors import ResultsError
from ptdiag.report.gate import run_gate
from ptdiag.report.html import render_html
from ptdiag.report.markdown import render_markdown
from ptdiag.report.terminal import render_summary, render_terminal
from ptdiag.schema import validate_results


def test_schema_accepts_the_contract_and_rejects_a_broken_row():
    validate_results(_results())
    broken = _results()
    del broken["remedies"][0]["label_budget"]  # required for last-layer remedies
    with pytest.raises(ResultsError, match="remedies"):
        validate_results(broken)
    broken = _results()
    broken["remedies"][0]["method"] = "magic"
    with pytest.raises(ResultsError, match="remedies"):
        validate_results(broken)


@pytest.mark.parametrize(("threshold", "status"), [(50.0, "PASS"), (90.0, "FAIL")])
def test_gate_min_remedy_recovery(threshold, status):
    gate = run_gate(_results(), min_remedy_recovery=threshold)
    check = next(c for c in gate.checks if c.name == "remedy-recovery")
    assert check.status == status and "78 % [68, 88]" in check.message and "lite0/last-layer" in check.message
    assert gate.exit_code == (0 if status == "PASS" else 1)


def test_gate_warns_when_no_recovery_was_measured():
    for results in (_results(gap=None), fixture("basic")):
        check = next(c for c in run_gate(results, min_remedy_recovery=10).checks if c.name == "remedy-recovery")
        assert check.status == "WARN"


def test_check_cli_min_remedy_recovery(tmp_path):
    run = write_run(tmp_path / "run", _results())
    runner = CliRunner()
    passed = runner.invoke(app, ["check", str(run), "--min-remedy-recovery", "50"])
    failed = runner.invoke(app, ["check", str(run), "--min-remedy-recovery", "95"])
    bad = runner.invoke(app, ["check", str(run), "--min-remedy-recovery", "150"])
    assert passed.exit_code == 0 and "remedy-recovery" in passed.output
    assert failed.exit_code == 1 and "FAIL" in failed.output
    assert bad.exit_code == 2


def test_renderers_show_remedies_and_escape_user_strings():
    results = _results(name=f"{HOSTILE}/last-layer")
    html = render_html(results)
    assert HOSTILE not in html and "&lt;script&gt;" in html
    assert 'id="remedies"' in html and 'id="label-budget"' in html and "78% [68, 88]" in html
    assert "reweighting cannot reach inputs the reference never shows" in html
    markdown = render_markdown(results)
    assert HOSTILE not in markdown and "78% [68, 88]" in markdown
    for render in (render_terminal, render_summary):
        console = fixed_console()
        render(results, console)
        text = console_text(console)
        assert "last-layer retraining on 200" in text and "78% [68, 88]" in text
        assert "not applicable" in text


def test_results_without_remedies_render_as_before():
    console = fixed_console()
    render_terminal(fixture("basic"), console)
    assert "remedies" not in console_text(console).lower()
    assert "Remedies were not measured in this run." in render_html(fixture("basic"))


def test_no_remedies_flag_plans_no_job():
    config = resolve_config({"train": "a", "shift": "b", "remedies": False})
    assert config.remedies is False and remedy_specs(config, None, [], [], []) == ([], {})  # never touches the run


def test_tiny_shifted_set_gets_a_clear_skip_reason():
    reason = _skip_reason(np.array([0, 1, 2]), n_classes=10)
    assert reason is not None and "only 3 labelled shifted images for 10 classes" in reason
    assert _skip_reason(np.repeat(np.arange(10), 3), n_classes=10) is None
