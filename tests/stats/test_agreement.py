"""Agreement-on-the-line (ptdiag.stats.agreement) against hand-computed values, exact lines, and a shift where the
premise fails."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import norm

from ptdiag.stats.agreement import aline_d, estimate_shift_accuracy, fit_agreement_line, pairwise_agreement
from ptdiag.stats.line import transform


def test_pairwise_agreement_by_hand():
    preds = np.array([[0, 1, 2, 0], [0, 1, 1, 0], [2, 1, 2, 0]])
    expected = np.array([[1, 0.75, 0.75], [0.75, 1, 0.5], [0.75, 0.5, 1]])
    np.testing.assert_allclose(pairwise_agreement(preds), expected)


def test_exact_lines_are_recovered_by_both_estimators():
    """Accuracies and agreements built on the same probit line (slope 0.8, bias −0.5): ALine-S and ALine-D give the
    shifted accuracies back to float precision."""
    slope, bias = 0.8, -0.5
    x = np.array([-0.2, 0.3, 0.7, 1.1, 1.6])  # probit reference accuracies
    m = len(x)
    g = np.full((m, m), 5.0)
    for i in range(m):
        for j in range(i + 1, m):
            g[i, j] = g[j, i] = 0.5 * (x[i] + x[j]) + 0.4 + 0.05 * (i - j) ** 2  # probit reference agreements
    ref_agr, shift_agr = norm.cdf(g), norm.cdf(slope * g + bias)
    np.fill_diagonal(ref_agr, 1.0)
    np.fill_diagonal(shift_agr, 1.0)
    line = fit_agreement_line(ref_agr, shift_agr)
    assert line.slope == pytest.approx(slope) and line.intercept == pytest.approx(bias) and line.r2 == pytest.approx(1)
    assert line.n_pairs == 10
    truth = norm.cdf(slope * x + bias)
    np.testing.assert_allclose(norm.cdf(slope * x + line.intercept), truth, atol=1e-9)
    np.testing.assert_allclose(aline_d(norm.cdf(x), ref_agr, shift_agr, line.slope), truth, atol=1e-6)


def _simulate(skills, delta, slope, n=4000, classes=10, seed=0):
    """Probit latent model with shared example difficulty; a wrong answer is usually the example's one confusable
    class, so agreement is structured as in real models."""
    rng = np.random.default_rng(seed)
    out = {}
    for name in ("ref", "shift"):
        y = rng.integers(0, classes, n)
        e = rng.normal(0, 0.6, n)
        confuse = (y + 1 + rng.integers(0, classes - 1, n)) % classes
        preds = []
        for a in skills:
            s = a * slope - delta if name == "shift" else a
            correct = s + e + rng.normal(0, 0.8, n) > 0
            wrong = np.where(rng.random(n) < 0.7, confuse, rng.integers(0, classes, n))
            preds.append(np.where(correct, y, wrong))
        out[name] = (np.array(preds), y)
    return out


def test_no_shift_is_estimated_within_a_point():
    sim = _simulate(np.linspace(0.0, 1.5, 9), delta=0.0, slope=1.0)
    (ref_pred, ref_y), (shift_pred, shift_y) = sim["ref"], sim["shift"]
    est = estimate_shift_accuracy((ref_pred == ref_y).mean(1), ref_pred, shift_pred)
    truth = (shift_pred == shift_y).mean(1)
    assert est.line.r2 > 0.95
    assert np.abs(est.aline_s - truth).mean() < 0.01 and np.abs(est.aline_d - truth).mean() < 0.01


def test_a_good_agreement_fit_is_not_proof_the_lines_coincide():
    """A difficulty shift in this model keeps the agreement points on a line (r² ≥ 0.8) whose intercept differs from
    the accuracy line's: the estimates are off by several points. The diagnostic alone cannot tell; labelled
    validation can (docs/VALIDATION.md)."""
    sim = _simulate(np.linspace(0.0, 1.5, 9), delta=0.7, slope=1.0)
    (ref_pred, ref_y), (shift_pred, shift_y) = sim["ref"], sim["shift"]
    est = estimate_shift_accuracy((ref_pred == ref_y).mean(1), ref_pred, shift_pred)
    truth = (shift_pred == shift_y).mean(1)
    true_line = np.polyfit(transform((ref_pred == ref_y).mean(1)), transform(truth), 1)
    assert est.line.r2 > 0.8
    assert abs(est.line.intercept - true_line[1]) > 0.1
    assert np.abs(est.aline_d - truth).mean() > 0.03


def test_models_near_chance_on_the_shift_fix_no_line():
    sim = _simulate(np.linspace(0.0, 1.5, 9), delta=3.0, slope=0.05)
    (ref_pred, ref_y), (shift_pred, _) = sim["ref"], sim["shift"]
    est = estimate_shift_accuracy((ref_pred == ref_y).mean(1), ref_pred, shift_pred)
    assert est.line.r2 < 0.5


def test_fewer_than_three_models_is_refused():
    with pytest.raises(ValueError, match="at least 3"):
        estimate_shift_accuracy(np.array([0.8, 0.9]), np.zeros((2, 4), int), np.zeros((2, 4), int))
