"""ATC (ptdiag.stats.atc): confidence scores, the threshold and the label-free accuracy estimate."""

from __future__ import annotations

import numpy as np
import pytest

from ptdiag.stats.atc import atc_estimate, atc_threshold, confidence_scores


def test_confidence_scores_by_hand():
    logits = np.array([[0.0, 0.0], [10.0, 0.0]])
    max_softmax, neg_entropy = confidence_scores(logits).astype(float)
    assert max_softmax[0] == pytest.approx(0.5) and max_softmax[1] == pytest.approx(1 / (1 + np.exp(-10)), abs=1e-3)
    assert neg_entropy[0] == pytest.approx(-np.log(2), abs=1e-3)
    assert neg_entropy[1] > neg_entropy[0]  # a confident prediction has higher negative entropy


def test_threshold_reproduces_the_reference_accuracy():
    rng = np.random.default_rng(0)
    scores = rng.random(1000)
    correct = rng.random(1000) < 0.73
    t = atc_threshold(scores, correct)
    assert np.mean(scores > t) == pytest.approx(np.mean(correct), abs=1e-3)
    assert atc_estimate(scores, correct, scores) == pytest.approx(np.mean(correct), abs=1e-3)
    assert atc_threshold(scores, np.ones(1000, bool)) < scores.min()
    assert atc_estimate(scores, np.zeros(1000, bool), scores) == 0.0


def test_estimate_follows_a_shift_when_confidence_separates_right_from_wrong():
    """Correctness decided by the score up to a little noise: on a harder shifted set (scores lower) ATC predicts the
    shifted accuracy within two points, from the reference threshold alone."""
    rng = np.random.default_rng(1)
    ref_conf, shift_conf = rng.beta(6, 2, 20000), rng.beta(3, 2, 20000)
    ref_correct = ref_conf + rng.normal(0, 0.03, 20000) > 0.6
    shift_correct = shift_conf + rng.normal(0, 0.03, 20000) > 0.6
    estimate = atc_estimate(ref_conf, ref_correct, shift_conf)
    assert abs(estimate - shift_correct.mean()) < 0.02 and abs(ref_correct.mean() - shift_correct.mean()) > 0.2


def test_a_calibrated_model_is_not_enough():
    """With P(correct | score) = score on both sets (perfect calibration), ATC is not exact: the threshold reproduces
    the reference accuracy, not the shifted one (here 42 % against 61 %). The validation on real shifts measures
    how far off it is (docs/VALIDATION.md)."""
    rng = np.random.default_rng(1)
    ref_conf, shift_conf = rng.beta(6, 2, 20000), rng.beta(3, 2, 20000)
    estimate = atc_estimate(ref_conf, rng.random(20000) < ref_conf, shift_conf)
    assert abs(estimate - (rng.random(20000) < shift_conf).mean()) > 0.1
