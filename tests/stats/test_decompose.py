"""Gap decomposition (ptdiag.stats.decompose.components, the code every replicate runs) and the ER check."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ptdiag.stats.decompose import components, er_consistency


def _out(rng: np.random.Generator, n_models: int, pi_in: float) -> dict[str, np.ndarray]:
    """One replicate row: accuracies with acc_shift = π_in·acc_in + π_out·acc_out, as on the same examples."""
    acc_in, acc_out = rng.random((1, n_models)), rng.random((1, n_models))
    pred_in, pred_out = rng.random((1, n_models)), rng.random((1, n_models))
    out = {"ref": rng.random((1, n_models)), "pi_in": np.full((1, 1), pi_in),
           "acc_in_support": acc_in, "acc_out_of_support": acc_out,
           "acc_shift": pi_in * acc_in + (1 - pi_in) * acc_out,
           "pred_in_support": pred_in, "pred_out_of_support": pred_out,
           "pred_shift": pi_in * pred_in + (1 - pi_in) * pred_out}
    for split in ("shift", "in_support", "out_of_support"):
        out[f"er_{split}"] = out[f"acc_{split}"] - out[f"pred_{split}"]
    return out


@settings(max_examples=50, deadline=None)
@given(seed=st.integers(0, 10_000), n_models=st.integers(1, 5), pi_in=st.floats(0.0, 1.0))
def test_the_decomposition_that_runs_is_exact(seed, n_models, pi_in):
    out = _out(np.random.default_rng(seed), n_models, pi_in)
    components(out, split=True)
    np.testing.assert_allclose(out["remaining_bias"] + out["remaining_extrapolation"], out["remaining_gap"],
                               atol=1e-12)
    np.testing.assert_allclose(out["bias"] + out["extrapolation"], out["gap"], atol=1e-12)  # a line linear in acc
    np.testing.assert_allclose(out["recovered_bias"] + out["recovered_extrapolation"], out["recovered_gap"],
                               atol=1e-12)
    np.testing.assert_allclose(out["recovered_bias"], pi_in * out["er_in_support"], atol=1e-12)


def test_without_a_support_split_only_the_whole_gap_is_computed():
    out = _out(np.random.default_rng(0), 2, 0.5)
    components(out, split=False)
    assert "gap" in out and "share_gap" in out and "bias" not in out and "recovered_extrapolation" not in out


def test_er_consistency():
    check = er_consistency(0.10, 0.01, 0.30, 0.7, 0.3)
    assert check["weighted_sum"] == pytest.approx(0.097) and check["difference"] == pytest.approx(0.003)
    assert er_consistency(0.1, None, 0.3, 0.7, 0.3) is None
    assert er_consistency(0.1, None, 0.3, 0.0, 1.0)["weighted_sum"] == pytest.approx(0.3)
