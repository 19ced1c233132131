"""Prediction-powered shifted accuracy from a labelled sample (ptdiag.stats.estimated), by hand and simulated."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from ptdiag.errors import DataError
from ptdiag.stats.estimated import atc_predictions, powered_values
from ptdiag.stats.score import StatsConfig, score
from ptdiag.stats.simulate import SCENARIOS, draw, run


def test_values_average_to_the_difference_estimator_by_hand():
    prediction = np.array([1, 1, 0, 0, 1, 0, 1, 0], dtype=float)
    correct = np.array([1, 0, 0, 1, 9, 9, 9, 9], dtype=float)  # the last four are unlabelled: never read
    labelled = np.array([True] * 4 + [False] * 4)
    values, coef = powered_values(prediction, correct, labelled)
    # On the labelled four: f = 1,1,0,0 and y = 1,0,0,1: no covariance, so the coefficient is 0 and the estimate is
    # the labelled accuracy, 0.5, wherever the prediction points.
    assert coef[0] == pytest.approx(0.0)
    assert values.mean() == pytest.approx(0.5)
    assert np.all(values[~labelled] == pytest.approx(0.5))


def test_a_perfect_prediction_is_trusted_and_a_biased_one_corrected():
    rng = np.random.default_rng(0)
    correct = (rng.random(4000) < 0.7).astype(float)
    labelled = np.zeros(4000, bool)
    labelled[rng.choice(4000, 400, replace=False)] = True
    values, coef = powered_values(correct, correct, labelled)
    assert coef[0] == pytest.approx(1.0) and values.mean() == pytest.approx(correct.mean())
    # A prediction that says "right" on every correct image and on 30 % of the wrong ones: biased upwards by ~9
    # points; the estimate removes the bias measured on the labelled sample.
    biased = np.maximum(correct, rng.random(4000) < 0.3)
    values, coef = powered_values(biased, correct, labelled)
    assert biased.mean() - correct.mean() > 0.07
    assert abs(values.mean() - correct.mean()) < 0.03
    assert 0.5 < coef[0] <= 1.0


def test_no_labelled_image_is_an_error():
    with pytest.raises(ValueError, match="no labelled"):
        powered_values(np.ones(5), np.ones(5), np.zeros(5, bool))
    evals, support = draw(SCENARIOS["labelled-300-extrapolation"], np.random.default_rng(0))
    with pytest.raises(DataError, match="no shifted example is labelled"):
        score(evals, support, StatsConfig(bootstrap=10), shift_labelled=np.zeros(len(evals[0].shift_correct), bool))


def test_atc_predictions_share_above_the_threshold_matches_reference_accuracy():
    rng = np.random.default_rng(1)
    ref_scores = rng.random(1000)
    ref_correct = ref_scores + rng.normal(0, 0.1, 1000) > 0.4
    assert atc_predictions(ref_scores, ref_correct, ref_scores).mean() == pytest.approx(ref_correct.mean(), abs=2e-3)


def test_estimated_rows_are_marked_and_the_prediction_narrows_the_interval():
    # Confidence that predicts correctness well (little score noise, no overconfidence).
    sc = replace(SCENARIOS["labelled-300-extrapolation"], score_noise=0.05, overconfidence=0.0)
    evals, support = draw(sc, np.random.default_rng(3))
    labelled = np.zeros(sc.n_shift, bool)
    labelled[np.random.default_rng(4).choice(sc.n_shift, sc.shift_labelled, replace=False)] = True
    config = StatsConfig(bootstrap=200)
    with_scores = score(evals, support, config, shift_labelled=labelled).to_dict()
    without = score([replace(e, ref_scores=None, shift_scores=None) for e in evals], support, config,
                    shift_labelled=labelled).to_dict()
    for row in with_scores["pretrained"] + with_scores["baselines"]:
        assert row["estimated"] is True and row["estimator"] == "ppi-atc"
    assert with_scores["statistics"]["shift_labels"]["labelled"] == sc.shift_labelled
    assert "estimated" in with_scores["verdict"]["reasons"][0]

    def width(out):
        return np.mean([r["er_out"]["upper"] - r["er_out"]["lower"] for r in out["pretrained"]])

    # The confidence predicts correctness: using it must narrow ER_out towards what full labels give (measured:
    # 0.057 against 0.081 from the labelled sample alone and 0.047 with every label).
    assert width(with_scores) < 0.8 * width(without)


def test_labelled_sample_families_keep_the_verdict_honest():
    """Simulated: 300 (or 100) labelled of 1,500 shifted images, confidence overconfident for the baselines out of
    support. The right kind where the labelled run decides it, never a claim on a null, coverage near 95 %."""
    helps = run(SCENARIOS["labelled-300-extrapolation"], 20, seed=5, bootstrap=200)
    null = run(SCENARIOS["labelled-300-null"], 20, seed=6, bootstrap=200)
    assert helps["kinds"].get("pretraining-helps", 0) >= 18
    assert not {"pretraining-helps", "both"} & set(null["kinds"])
    for result in (helps, null):
        rate, n = result["coverage"]["er_out"]
        assert n >= 40 and rate >= 0.85


def test_unlabelled_scores_estimate_the_pretrained_models_and_flag_disagreeing_scores():
    from ptdiag.stats.estimated import unlabelled_scores

    sc = SCENARIOS["labelled-300-extrapolation"]
    evals, support = draw(sc, np.random.default_rng(2))
    out = unlabelled_scores(evals, support, sc.n_shift)
    assert out["baselines"] == [] and out["verdict"]["kind"] == "inconclusive"
    rows = out["pretrained"]  # one per recipe, its seeds averaged
    assert [r["name"] for r in rows] == ["vit/s0", "vit/s1"] and all(r["n_seeds"] == 3 for r in rows)
    assert all(r["er"] is None and r["estimated"] for r in rows)
    truth = np.mean([np.mean(e.shift_correct) for e in evals if e.name == "vit/s0"])
    assert abs(rows[0]["shift_acc"] - truth) < 0.1
    assert not any("disagree" in w for w in out["warnings"])  # both score rows are alike in the simulator
    broken = [replace(e, shift_scores=np.vstack([e.shift_scores[0], e.shift_scores[1] + 3.0]))
              if e.kind == "pretrained" else e for e in evals]
    assert any("disagree" in w for w in unlabelled_scores(broken, support, sc.n_shift)["warnings"])
