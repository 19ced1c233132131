"""Choosing a small de-biased set (ptdiag.remedies.curate): strata, allocation, k-center and importance resampling."""

from __future__ import annotations

import numpy as np

from ptdiag.remedies.curate import (
    k_center,
    ratio_bands,
    select_reference,
    select_shift,
    sqrt_allocation,
)
from ptdiag.remedies.heads import effective_sample_share


def test_bands_split_out_of_support_then_in_support_terciles():
    rho = np.array([0.0, 0.1, 0.3, 0.5, 0.9, 1.0, 2.0, 3.0, 9.0])
    band = ratio_bands(rho, epsilon=0.2)
    assert list(band[:2]) == [0, 0] and set(band[2:]) == {1, 2, 3}
    assert (np.diff(band[2:]) >= 0).all()  # low ratio first


def test_allocation_sums_to_n_respects_sizes_and_favours_small_strata():
    sizes = np.array([400, 100, 4, 0])
    take = sqrt_allocation(sizes, 50)
    assert take.sum() == 50 and (take <= sizes).all() and take[3] == 0
    assert take[1] / sizes[1] > take[0] / sizes[0]  # √ allocation: small strata sampled at a higher rate
    assert sqrt_allocation(np.array([3, 2]), 10).tolist() == [3, 2]  # never more than there is


def test_k_center_covers_every_cluster_before_repeating_one():
    rng = np.random.default_rng(0)
    centres = np.array([[0, 0], [10, 0], [0, 10], [10, 10]], dtype=float)
    x = np.vstack([c + rng.normal(0, 0.1, (25, 2)) for c in centres])
    picks = k_center(x, 4, first=0)
    assert len({i // 25 for i in picks}) == 4


def test_shift_selection_spreads_over_classes_and_skips_duplicates():
    rng = np.random.default_rng(1)
    n = 300
    predicted = rng.integers(0, 3, n)
    rho = np.where(rng.random(n) < 0.3, 0.01, rng.lognormal(0, 0.5, n))
    features = rng.normal(size=(n, 8))
    chosen = select_shift(features, predicted, rho, 0.2, 24, ["a", "b", "c"])
    assert len(chosen.index) == len(set(chosen.index)) == 24
    assert set(predicted[chosen.index]) == {0, 1, 2}
    assert any("out of support" in s for s in chosen.stratum) and all(chosen.reason)
    same = np.zeros(n, dtype=int)  # one stratum: twenty copies of one image are labelled once at most
    features[1:20] = features[0]
    chosen = select_shift(features, same, np.ones(n), 0.2, 10, ["a"])
    assert sum(i < 20 for i in chosen.index) <= 1


def test_reference_resampling_follows_the_weights():
    weights = np.r_[np.zeros(50), np.ones(50), np.full(50, 9.0)]
    labels = np.repeat([0, 1, 2], 50)
    counts = np.zeros(150)
    for seed in range(200):
        chosen = select_reference(weights, labels, 10, ["a", "b", "c"], seed=seed)
        counts[chosen.index] += 1
        assert not (chosen.index < 50).any()  # zero weight: never
    assert counts[100:].sum() > 4 * counts[50:100].sum()
    again = select_reference(weights, labels, 10, ["a", "b", "c"], seed=3)
    assert (again.index == select_reference(weights, labels, 10, ["a", "b", "c"], seed=3).index).all()


def test_effective_sample_share():
    assert effective_sample_share(np.ones(10)) == 1.0
    assert effective_sample_share(np.r_[1.0, np.zeros(9)]) == 0.1
