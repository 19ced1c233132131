"""`--json` renderer: the stored results, validated, re-emitted unchanged."""

from __future__ import annotations

import json

import pytest
from _reporting import FIXTURE_NAMES, assert_golden, fixture

from ptdiag.errors import ResultsError
from ptdiag.report import render_json


def test_json_matches_golden():
    assert_golden("json_basic.json", render_json(fixture("basic")))


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_json_round_trips_every_fixture(name):
    results = fixture(name)
    assert json.loads(render_json(results)) == results


def test_json_refuses_results_that_break_the_schema():
    results = fixture("basic")
    del results["verdict"]["kind"]
    with pytest.raises(ResultsError, match="run-x/results.json: invalid results at verdict"):
        render_json(results, source="run-x/results.json")
