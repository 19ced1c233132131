"""Gate logic: every check's PASS / WARN / FAIL, thresholds in accuracy points, and the exit codes."""

from __future__ import annotations

import pytest
from _reporting import fixture

from ptdiag.errors import UsageError
from ptdiag.report.gate import collect_warnings, parse_fail_on, run_gate


def statuses(gate):
    return {check.name: check.status for check in gate.checks}


def test_parse_fail_on_accepts_comma_lists_with_spaces():
    assert parse_fail_on(" dataset-bias, both ,,INCONCLUSIVE") == {"dataset-bias", "both", "inconclusive"}
    assert parse_fail_on("") == set() and parse_fail_on(None) == set()


def test_parse_fail_on_rejects_unknown_kinds_with_a_suggestion():
    with pytest.raises(UsageError, match="unknown verdict kind 'dataset_bias'") as info:
        parse_fail_on("both,dataset_bias")
    assert info.value.hint == "did you mean 'dataset-bias'?"


def test_verdict_in_fail_on_fails_with_exit_1():
    gate = run_gate(fixture("basic"), {"both"})
    assert statuses(gate)["verdict"] == "FAIL" and gate.status == "FAIL" and gate.exit_code == 1


def test_verdict_not_in_fail_on_passes_and_warnings_only_warn():
    gate = run_gate(fixture("basic"), {"dataset-bias"})
    assert statuses(gate) == {"verdict": "PASS", "warnings": "WARN"}
    assert gate.exit_code == 0 and gate.status == "PASS"


def test_inconclusive_exits_4_only_when_asked():
    results = fixture("inconclusive")
    asked = run_gate(results, {"inconclusive"})
    assert asked.status == "INCONCLUSIVE" and asked.exit_code == 4
    # Another failing check does not hide the inconclusive code: the run answered nothing.
    assert run_gate(results, {"inconclusive"}, max_bias_component=1.0).exit_code == 4
    not_asked = run_gate(results, {"dataset-bias"})
    assert statuses(not_asked)["verdict"] == "WARN" and not_asked.exit_code == 0


def test_bias_threshold_is_in_accuracy_points():
    results = fixture("basic")  # baseline bias component 0.09 = 9.0 points
    assert statuses(run_gate(results, set(), max_bias_component=9.5))["bias-component"] == "PASS"
    failed = run_gate(results, set(), max_bias_component=8.5)
    assert statuses(failed)["bias-component"] == "FAIL" and failed.exit_code == 1
    assert "9.0 points" in failed.checks[1].message


def test_bias_threshold_judges_the_worst_baseline_row():
    results = fixture("basic")
    results["decomposition"]["baseline"].append({**results["decomposition"]["baseline"][0], "bias_component": 0.2})
    assert statuses(run_gate(results, set(), max_bias_component=10))["bias-component"] == "FAIL"


def test_er_out_threshold_uses_the_best_model_mid_estimate():
    results = fixture("basic")  # ER_out mid 0.38 = 38 points
    assert statuses(run_gate(results, set(), min_er_out=38))["er-out"] == "PASS"
    assert statuses(run_gate(results, set(), min_er_out=38.5))["er-out"] == "FAIL"
    results["pretrained"].append(
        {**results["pretrained"][0], "name": "better", "er_out": {"lower": 0.4, "mid": 0.5, "upper": 0.6}}
    )
    gate = run_gate(results, set(), min_er_out=45)
    assert statuses(gate)["er-out"] == "PASS" and "(better)" in gate.checks[1].message


def test_thresholds_without_a_support_split_warn_instead_of_passing():
    gate = run_gate(fixture("no_support"), set(), max_bias_component=5, min_er_out=1)
    assert statuses(gate)["bias-component"] == "WARN" and statuses(gate)["er-out"] == "WARN"
    assert gate.exit_code == 0


def test_fail_if_warning():
    results = fixture("basic")
    assert run_gate(results, set(), fail_if_warning=True).exit_code == 1
    results["warnings"], results["data"]["findings"] = [], []
    gate = run_gate(results, set(), fail_if_warning=True)
    assert statuses(gate)["warnings"] == "PASS" and gate.exit_code == 0


def test_collect_warnings_merges_sources_without_duplicates():
    results = fixture("inconclusive")
    results["data"]["findings"] = [
        {"level": "info", "code": "x", "message": "just info"},
        {"level": "error", "code": "y", "message": "only 4 baseline points (< 10): the line's interval is wide"},
    ]
    warnings = collect_warnings(results)
    assert "just info" not in warnings
    assert warnings[-1] == "domain AUC 0.55 is close to chance: the in/out split is weak"
    assert len(warnings) == len(set(warnings)) == 3


def test_to_dict_is_plain_data():
    data = run_gate(fixture("basic"), {"both"}).to_dict()
    assert data["exit_code"] == 1 and data["checks"][0] == {
        "name": "verdict",
        "status": "FAIL",
        "message": "verdict is 'both' (confidence medium), listed in --fail-on",
    }
