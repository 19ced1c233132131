"""Gap decomposition: the exact identity, the baseline line's components and the ER consistency check."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ptdiag.stats.decompose import decompose_baseline, decompose_gap, er_consistency, split_accuracies
from ptdiag.stats.line import fit_line


@settings(max_examples=50, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(2, 400), p_in=st.floats(0.05, 0.95), ref_acc=st.floats(0, 1))
def test_decomposition_identity_is_exact(seed, n, p_in, ref_acc):
    rng = np.random.default_rng(seed)
    correct = rng.random(n) < rng.random()
    mask = rng.random(n) < p_in
    mask[0], mask[-1] = True, False  # both splits non-empty
    acc_in, acc_out = split_accuracies(correct, mask)
    pi_in = mask.mean()
    d = decompose_gap("m", ref_acc, acc_in, acc_out, pi_in, 1 - pi_in)
    assert d.bias_component + d.extrapolation_component == pytest.approx(ref_acc - correct.mean(), abs=1e-12)
    assert d.gap == pytest.approx(ref_acc - correct.mean(), abs=1e-12)


def test_split_accuracies_handle_empty_and_missing_splits():
    correct = np.array([1, 0, 1, 1])
    assert split_accuracies(correct, None) == (None, None)
    assert split_accuracies(correct, np.ones(4, bool)) == (0.75, None)
    assert split_accuracies(correct, np.array([True, True, False, False])) == (0.5, 1.0)
    d = decompose_gap("m", 0.9, 0.75, None, 1.0, 0.0)
    assert d.extrapolation_component is None and d.gap == pytest.approx(0.15)


def test_baseline_components_use_lines_or_nearest_baselines():
    ref = np.array([0.6, 0.65, 0.7, 0.75, 0.8])
    acc_in = ref - 0.10
    acc_out = ref - 0.30
    fit_in, fit_out = fit_line(ref, acc_in), fit_line(ref, acc_out)
    kwargs = dict(pi_in=0.7, pi_out=0.3, fit_in=fit_in, fit_out=fit_out, baseline_ref=ref, baseline_in=acc_in,
                  baseline_out=acc_out)
    line = decompose_baseline("at 0.7", 0.7, use_line={"in_support": True, "out_of_support": True}, **kwargs)
    assert line.method == "line"
    assert line.bias_component == pytest.approx(0.7 * 0.10, abs=2e-3)
    assert line.extrapolation_component == pytest.approx(0.3 * 0.30, abs=5e-3)
    assert line.gap == pytest.approx(line.bias_component + line.extrapolation_component)
    nearest = decompose_baseline("at 0.9", 0.9, use_line={"in_support": False, "out_of_support": True}, **kwargs)
    assert nearest.method == "line+nearest-baselines"
    assert nearest.bias_component == pytest.approx(0.7 * 0.10)  # the 3 nearest baselines' own in-support drop


def test_er_consistency():
    check = er_consistency(0.10, 0.01, 0.30, 0.7, 0.3)
    assert check["weighted_sum"] == pytest.approx(0.097) and check["difference"] == pytest.approx(0.003)
    assert er_consistency(0.1, None, 0.3, 0.7, 0.3) is None
    assert er_consistency(0.1, None, 0.3, 0.0, 1.0)["weighted_sum"] == pytest.approx(0.3)
