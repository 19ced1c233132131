"""Support split: density-ratio recovery, cross-fitting without leakage, calibration, input errors."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from threadpoolctl import threadpool_limits

from ptdiag.errors import DataError
from ptdiag.stats.fits import fit_workers, map_fits
from ptdiag.stats.support import (
    EPSILON_GRID,
    SupportConfig,
    calibration_table,
    clopper_pearson,
    estimate_support,
    fit_temperature,
)

FAST = SupportConfig(folds=5)


def test_two_gaussians_density_ratio_recovered_within_factor_1_5_at_the_median():
    rng = np.random.default_rng(0)
    mu = np.array([1.5, 0.0, 0.0])
    ref, shift = rng.standard_normal((2000, 3)), rng.standard_normal((1000, 3)) + mu
    split = estimate_support(ref, shift, config=FAST)
    true_ratio = np.exp(-shift @ mu + mu @ mu / 2)  # N(0, I) / N(mu, I)
    median_factor = np.exp(np.median(np.abs(np.log(split.rho_shift / true_ratio))))
    assert median_factor < 1.5
    # The split agrees with the true ratio's split for the large majority of examples.
    assert np.mean(split.in_support == (true_ratio >= 0.2)) > 0.9
    assert 0.8 < split.domain_auc < 0.92  # Bayes AUC for a 1.5-sigma mean shift is Φ(1.5/√2) ≈ 0.86


def test_prior_correction_gives_ratio_one_for_identical_distributions_with_unequal_sizes():
    rng = np.random.default_rng(1)
    split = estimate_support(rng.standard_normal((1500, 4)), rng.standard_normal((500, 4)), config=FAST)
    assert np.median(split.rho_shift) == pytest.approx(1.0, rel=0.2)  # not n_ref/n_shift = 3
    assert split.n_out == 0


def test_cross_fitting_never_scores_an_example_with_a_model_trained_on_it():
    # Pure-noise features, same distribution, more dimensions than a weakly regularised model needs to memorise:
    # in-sample scoring separates the sets perfectly (everything would look out-of-support); out-of-fold cannot.
    rng = np.random.default_rng(2)
    ref, shift = rng.standard_normal((300, 700)), rng.standard_normal((300, 700))
    config = SupportConfig(folds=5, c_grid=(10.0,))
    split = estimate_support(ref, shift, config=config)
    assert split.domain_auc < 0.65
    assert split.n_in / (split.n_in + split.n_out) > 0.8
    x, y = np.vstack([ref, shift]), np.r_[np.zeros(300), np.ones(300)]
    in_sample = LogisticRegression(C=10.0).fit(x, y).decision_function(x)
    assert roc_auc_score(y, in_sample) > 0.95  # the leak this test would catch


def test_groups_keep_near_duplicates_in_one_fold():
    rng = np.random.default_rng(3)
    ref = rng.standard_normal((300, 150))
    unique = rng.standard_normal((100, 150))
    shift = np.repeat(unique, 3, axis=0) + 0.01 * rng.standard_normal((300, 150))
    groups = np.repeat(np.arange(100), 3)
    config = SupportConfig(folds=5, c_grid=(10.0,))
    grouped = estimate_support(ref, shift, shift_groups=groups, config=config)
    ungrouped = estimate_support(ref, shift, config=config)
    assert grouped.fold_kind == "group" and ungrouped.fold_kind == "stratified"
    assert grouped.domain_auc < 0.65
    assert ungrouped.domain_auc > grouped.domain_auc + 0.1  # duplicates across folds leak


def test_temperature_recovers_a_known_scale():
    rng = np.random.default_rng(4)
    f = rng.normal(0, 2, 20000)
    labels = (rng.random(f.size) < 1 / (1 + np.exp(-2.0 * f))).astype(int)
    assert fit_temperature(f, labels) == pytest.approx(2.0, rel=0.1)


def test_calibration_table_and_clopper_pearson():
    rng = np.random.default_rng(5)
    q = rng.random(4000)
    labels = (rng.random(q.size) < q).astype(int)
    rows, ece = calibration_table(q, labels, SupportConfig(calibration_bins=10))
    assert len(rows) == 10 and sum(r["n"] for r in rows) == 4000
    assert ece < 0.05
    assert all(r["lower"] <= r["frac"] <= r["upper"] for r in rows)
    exact = stats.binomtest(7, 40).proportion_ci(0.95, method="exact")
    assert clopper_pearson(7, 40) == pytest.approx((exact.low, exact.high))
    assert clopper_pearson(0, 10)[0] == 0.0 and clopper_pearson(10, 10)[1] == 1.0


def test_to_dict_has_the_results_support_keys_and_a_monotone_sweep():
    rng = np.random.default_rng(6)
    split = estimate_support(rng.standard_normal((400, 3)), rng.standard_normal((200, 3)) + [2.5, 0, 0], config=FAST)
    d = split.to_dict()
    for key in ("epsilon", "n_in", "n_out", "pi_in", "pi_out", "domain_auc", "temperature", "ece", "C", "folds",
                "n_reference_sample", "epsilon_sweep", "calibration", "log_ratio_histogram", "warnings"):
        assert key in d
    assert [row["epsilon"] for row in d["epsilon_sweep"]] == list(EPSILON_GRID)
    outs = [row["n_out"] for row in d["epsilon_sweep"]]
    assert outs == sorted(outs) and all(r["n_in"] + r["n_out"] == 200 for r in d["epsilon_sweep"])
    hist = d["log_ratio_histogram"]
    assert sum(hist["shift"]) == 200 and sum(hist["reference"]) == 400
    assert len(hist["edges"]) == len(hist["shift"]) + 1
    assert "rho_shift" not in d
    assert split.at_epsilon(0.5).n_out >= split.n_out
    assert d["n_in"] + d["n_out"] == 200 and d["pi_in"] + d["pi_out"] == pytest.approx(1.0)


def test_small_split_warns():
    rng = np.random.default_rng(7)
    split = estimate_support(rng.standard_normal((400, 2)), rng.standard_normal((100, 2)) + [6, 0], config=FAST)
    assert any("in-support" in w and "inconclusive" in w for w in split.to_dict()["warnings"])
    assert not any("in-support" in w for w in split.at_epsilon(0.0).all_warnings())


@pytest.mark.parametrize(
    ("ref", "shift", "groups", "match"),
    [
        (np.zeros((50, 3)), np.zeros((50, 4)), None, "same width"),
        (np.zeros((5, 3)), np.zeros((50, 3)), None, "at least"),
        (np.full((50, 3), np.nan), np.zeros((50, 3)), None, "NaN"),
        (np.zeros((50, 3)), np.zeros((50, 3)), np.arange(7), "one id per shifted example"),
    ],
)
def test_bad_inputs_raise_data_error(ref, shift, groups, match):
    with pytest.raises(DataError, match=match):
        estimate_support(ref, shift, shift_groups=groups, config=FAST)


def test_weak_classifier_shrinks_towards_the_prior_not_towards_one_half():
    """No shift, unequal pools, noise features a weakly regularised model overfits (α ≪ 1): ρ must stay ≈ 1.

    Scaling the whole logit (the paper's σ(α·f)) also scales the prior log-odds and gives median ρ ≈ n_shift/n_ref
    (0.68 measured on the Fashion-MNIST no-shift control); scaling only the evidence keeps ρ ≈ 1.
    """
    rng = np.random.default_rng(3)
    split = estimate_support(rng.standard_normal((1600, 200)), rng.standard_normal((1000, 200)),
                             config=SupportConfig(folds=5, c_grid=(1.0,)))
    assert split.temperature < 0.6  # the case that matters: the classifier's scores are mostly noise
    assert np.median(split.rho_shift) == pytest.approx(1.0, rel=0.15)
    assert np.median(split.rho_reference) == pytest.approx(1.0, rel=0.15)


def test_fits_side_by_side_give_the_numbers_of_fits_in_sequence():
    # Fold fits run on several threads with one BLAS thread each: the result must not depend on how many run at
    # once, or on their completion order (a mix-up of folds or assignments changes the logits).
    rng = np.random.default_rng(7)
    ref, shift = rng.standard_normal((400, 20)), rng.standard_normal((300, 20)) + 0.4
    config = SupportConfig(folds=5, assignments=3)
    side_by_side = estimate_support(ref, shift, config=config)
    with threadpool_limits(limits=1):  # one worker: the fits run one after another
        in_sequence = estimate_support(ref, shift, config=config)
    np.testing.assert_array_equal(side_by_side.logit_shift, in_sequence.logit_shift)
    np.testing.assert_array_equal(side_by_side.rho_shift_draws, in_sequence.rho_shift_draws)


def test_map_fits_keeps_order_and_restores_the_blas_pool():
    before = fit_workers()
    assert map_fits(lambda i: (i, fit_workers()), range(7), workers=3) == [(i, 1) for i in range(7)]
    assert map_fits(lambda i: i * i, [], workers=2) == []
    assert fit_workers() == before


def test_shared_blas_runs_fits_one_at_a_time_on_the_library_threads():
    import threading

    from ptdiag.stats.fits import shared_blas

    with shared_blas():
        names = map_fits(lambda i: threading.current_thread().name, range(4), workers=3)
    assert set(names) == {threading.main_thread().name}  # sequential, in this thread
    assert map_fits(lambda i: fit_workers(), range(2), workers=2) == [1, 1]  # one BLAS thread per fit again
