"""Calibration of score() + the verdict, measured on simulated data with known answers (tests/sim_verdict.py).

Each family draws fresh baselines (8 runs × 3 checkpoints with run-level deviations), 2 candidates × 3 seeds,
examples and a noisy support mask, and runs the real scoring and verdict. The thresholds are the issue's: a
method that reads "not significant" as "no effect", ignores runs or seeds, or double-counts noise fails them.
"""

from __future__ import annotations

import pytest
from sim_verdict import SCENARIOS, run

DRAWS = {"bias": 30, "extrapolation-flat": 30, "no-shift": 20, "small-gap": 20}  # 5,000-image sets: 20 draws


@pytest.fixture(scope="module")
def results():
    return {name: run(SCENARIOS[name], draws, seed=11, bootstrap=200) | {"draws": draws}
            for name, draws in DRAWS.items()}


def share(result, kind):
    return result["kinds"].get(kind, 0) / result["draws"]


def test_bias_without_in_support_er_is_dataset_bias_never_pretraining_helps(results):
    assert share(results["bias"], "pretraining-helps") == 0
    assert share(results["bias"], "dataset-bias") >= 0.9


def test_material_extrapolation_on_a_flat_line_is_pretraining_helps(results):
    assert share(results["extrapolation-flat"], "pretraining-helps") >= 0.9


def test_no_shift_is_shown_by_equivalence_and_a_material_gap_is_not_called_no_shift(results):
    assert share(results["no-shift"], "no-shift") >= 0.9
    assert share(results["small-gap"], "no-shift") <= 0.05


def test_intervals_cover_the_true_er(results):
    hits = total = 0
    for name in ("bias", "extrapolation-flat", "small-gap"):
        for rate, n in results[name]["coverage"].values():
            hits += rate * n
            total += n
    assert 0.90 <= hits / total <= 0.98, hits / total


@pytest.mark.slow
@pytest.mark.parametrize("name", list(SCENARIOS))
def test_bigger_sweep(name):
    result = run(SCENARIOS[name], 100, seed=5, bootstrap=400)
    expected = {"bias": "dataset-bias", "extrapolation-flat": "pretraining-helps",
                "extrapolation": "pretraining-helps", "no-shift": "no-shift", "small-gap": "dataset-bias"}[name]
    assert result["kinds"].get(expected, 0) >= 80 and result["kinds"].get("pretraining-helps" if name == "bias"
                                                                          else "none", 0) == 0
    for rate, _ in result["coverage"].values():
        assert rate >= 0.88, (name, result)
