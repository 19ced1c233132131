"""Effective robustness: the line, its band against a hand computation, clipping and fallbacks."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import special, stats

from ptdiag.errors import DataError
from ptdiag.stats.line import (
    clip_accuracy,
    compare_nonparametric,
    diagnose_fit,
    effective_robustness,
    fit_line,
    share_of_drop_recovered,
    transform,
)
from ptdiag.stats.thresholds import VerdictConfig

REF = np.array([0.55, 0.61, 0.64, 0.70, 0.73, 0.78, 0.81, 0.84])


def on_line(ref, slope=0.9, intercept=-0.4, scale="probit"):
    u = transform(ref, scale)
    v = slope * u + intercept
    return stats.norm.cdf(v) if scale == "probit" else special.expit(v)


def test_points_on_a_probit_line_give_zero_er():
    fit = fit_line(REF, on_line(REF))
    assert fit.slope == pytest.approx(0.9) and fit.intercept == pytest.approx(-0.4)
    assert fit.r2 == pytest.approx(1.0) and fit.residual_se == pytest.approx(0.0, abs=1e-12)
    model_ref = 0.9
    er = effective_robustness(fit, model_ref, float(on_line(model_ref)))
    assert er.mid == pytest.approx(0.0, abs=1e-12)
    assert er.lower == pytest.approx(0.0, abs=1e-9) and er.upper == pytest.approx(0.0, abs=1e-9)


def test_interval_matches_hand_computation_with_t_n_minus_2():
    rng = np.random.default_rng(3)
    shift = np.clip(on_line(REF) + rng.normal(0, 0.02, REF.size), 0.01, 0.99)
    fit = fit_line(REF, shift)
    # Hand computation, textbook formulas.
    u, v = stats.norm.ppf(REF), stats.norm.ppf(shift)
    n = u.size
    b1 = np.sum((u - u.mean()) * (v - v.mean())) / np.sum((u - u.mean()) ** 2)
    b0 = v.mean() - b1 * u.mean()
    s = np.sqrt(np.sum((v - b0 - b1 * u) ** 2) / (n - 2))
    u0 = stats.norm.ppf(0.88)
    half = stats.t.ppf(0.975, n - 2) * s * np.sqrt(1 / n + (u0 - u.mean()) ** 2 / np.sum((u - u.mean()) ** 2))
    v0 = b0 + b1 * u0
    acc_shift = 0.8
    er = effective_robustness(fit, 0.88, acc_shift)
    assert fit.t_star == pytest.approx(stats.t.ppf(0.975, n - 2))
    assert fit.residual_se == pytest.approx(s)
    assert er.mid == pytest.approx(acc_shift - stats.norm.cdf(v0))
    assert er.lower == pytest.approx(acc_shift - stats.norm.cdf(v0 + half))
    assert er.upper == pytest.approx(acc_shift - stats.norm.cdf(v0 - half))
    # Same result as scipy's linregress for slope/intercept/r².
    lr = stats.linregress(u, v)
    assert (fit.slope, fit.intercept, fit.r2) == pytest.approx((lr.slope, lr.intercept, lr.rvalue**2))


def test_logit_scale_fits_logit_lines_exactly_and_differs_from_probit():
    shift = on_line(REF, scale="logit")
    logit_fit = fit_line(REF, shift, scale="logit")
    assert logit_fit.r2 == pytest.approx(1.0)
    model_ref = 0.92
    assert effective_robustness(logit_fit, model_ref, float(on_line(model_ref, scale="logit"))).mid == pytest.approx(
        0.0, abs=1e-12)
    probit_fit = fit_line(REF, shift, scale="probit")
    assert probit_fit.r2 < 1.0
    with pytest.raises(ValueError, match="scale"):
        transform(0.5, "arcsine")


def test_clipping_keeps_zero_and_one_finite():
    assert clip_accuracy([0.0, 1.0], n=100).tolist() == [0.005, 0.995]
    assert transform(0.0, "probit", n=100) == pytest.approx(stats.norm.ppf(0.005))
    assert transform(1.0, "logit", n=100) == pytest.approx(special.logit(0.995))
    assert np.isfinite(transform([0.0, 1.0])).all()  # unknown n: tiny fixed clip
    fit = fit_line([0.5, 0.7, 0.9, 1.0], [0.2, 0.4, 0.6, 1.0], ref_n=200, y_n=200)
    assert np.isfinite([fit.slope, fit.intercept, fit.r2, fit.residual_se]).all()


def test_fit_refuses_too_few_or_flat_baselines():
    with pytest.raises(DataError, match="at least 3"):
        fit_line([0.5, 0.6], [0.4, 0.5])
    with pytest.raises(DataError, match="same reference accuracy"):
        fit_line([0.6, 0.6, 0.6], [0.4, 0.5, 0.45])


def test_extrapolation_distance_and_share():
    fit = fit_line(REF, on_line(REF))
    assert fit.extrapolation_distance(0.7) == 0.0
    assert fit.extrapolation_distance(0.95) == pytest.approx(stats.norm.ppf(0.95) - stats.norm.ppf(0.84))
    drop = 0.95 - float(fit.predict(0.95))
    assert share_of_drop_recovered(fit, 0.95, drop / 2) == pytest.approx(0.5)


def test_diagnostics_flag_few_baselines_weak_line_and_narrow_spread():
    rng = np.random.default_rng(0)
    ref = np.linspace(0.70, 0.72, 6)
    fit = fit_line(ref, rng.uniform(0.3, 0.6, 6))
    checks = {c.name: c for c in diagnose_fit(fit, VerdictConfig())}
    assert checks["baselines"].status == "WARN" and "< 10" in checks["baselines"].message
    assert checks["line-fit"].status == "WARN"
    assert checks["ref-spread"].status == "WARN"
    good = {c.name: c.status for c in diagnose_fit(fit_line(np.linspace(0.5, 0.9, 25), on_line(
        np.linspace(0.5, 0.9, 25))), VerdictConfig())}
    assert good == {"baselines": "PASS", "line-fit": "PASS"}


def _correctness(rng, acc, n):
    return (rng.random((len(acc), n)) < np.asarray(acc)[:, None]).astype(float)


def test_nonparametric_comparison_matched_and_nearest():
    names = [f"b{i}" for i in range(REF.size)]
    shift = on_line(REF)
    above = compare_nonparametric(names, REF, shift, 0.95, 0.95, y_n=1000)
    assert not above.matched and above.direction == "above"
    assert set(above.comparators) == {"b7", "b6", "b5"}  # the 3 nearest
    assert above.comparator_y_acc == pytest.approx(shift.max())
    inside = compare_nonparametric(names, REF, shift, 0.72, float(on_line(0.72)), y_n=200)
    assert inside.matched and set(inside.comparators) == {"b4", "b5", "b6", "b7"}  # every baseline at or above
    assert inside.direction == "below"  # compared with the best of them (b7, far higher reference accuracy)
    unknown = compare_nonparametric(names, REF, shift, 0.72, 0.9)
    assert unknown.direction == "unknown" and unknown.difference is None


# --- properties ----------------------------------------------------------------------------------------------

accs = st.lists(st.floats(0.05, 0.95), min_size=4, max_size=12, unique=True)


@settings(max_examples=40, deadline=None)
@given(ref=accs, noise=st.lists(st.floats(-0.3, 0.3), min_size=12, max_size=12), model_ref=st.floats(0.05, 0.99),
       model_shift=st.floats(0.0, 1.0), seed=st.integers(0, 1000))
def test_er_is_invariant_to_baseline_order(ref, noise, model_ref, model_shift, seed):
    ref = np.array(ref)
    shift = stats.norm.cdf(0.8 * stats.norm.ppf(ref) - 0.3 + np.array(noise[: ref.size]))
    perm = np.random.default_rng(seed).permutation(ref.size)
    a = effective_robustness(fit_line(ref, shift), model_ref, model_shift)
    b = effective_robustness(fit_line(ref[perm], shift[perm]), model_ref, model_shift)
    assert (a.lower, a.mid, a.upper) == pytest.approx((b.lower, b.mid, b.upper), abs=1e-10)
    assert a.lower <= a.mid <= a.upper


@settings(max_examples=40, deadline=None)
@given(ref=accs, noise=st.lists(st.floats(-0.3, 0.3), min_size=12, max_size=12), model_ref=st.floats(0.05, 0.99),
       offset=st.floats(-1.0, 1.0))
def test_moving_every_shifted_accuracy_along_probit_axis_keeps_slope_r2_and_residual(ref, noise, model_ref, offset):
    ref = np.array(ref)
    v = 0.8 * stats.norm.ppf(ref) - 0.3 + np.array(noise[: ref.size])
    fit_a = fit_line(ref, stats.norm.cdf(v))
    fit_b = fit_line(ref, stats.norm.cdf(v + offset))
    assert fit_b.slope == pytest.approx(fit_a.slope, abs=1e-8)
    assert fit_b.intercept == pytest.approx(fit_a.intercept + offset, abs=1e-8)
    assert fit_b.r2 == pytest.approx(fit_a.r2, abs=1e-8)
    # A model on the line stays on the line: ER = 0 whatever the offset.
    on = float(fit_b.predict(model_ref))
    assert effective_robustness(fit_b, model_ref, on).mid == pytest.approx(0.0, abs=1e-12)


@settings(max_examples=30, deadline=None)
@given(ref=accs, slope=st.floats(0.3, 1.5), intercept=st.floats(-1.0, 0.5))
def test_adding_a_baseline_on_the_line_does_not_move_it(ref, slope, intercept):
    ref = np.array(ref)
    shift = on_line(ref, slope, intercept)
    extra_ref = np.r_[ref, 0.5]
    fit = fit_line(extra_ref, np.r_[shift, on_line(0.5, slope, intercept)])
    assert (fit.slope, fit.intercept) == pytest.approx((slope, intercept), abs=1e-6)
