"""Split-wise accuracies and the gap decomposition into a bias and an extrapolation component.

For any model, with π_in/π_out the in-/out-of-support shares of the shifted set, the reference-to-shift gap
splits *exactly* (because acc_shift = π_in·acc_in + π_out·acc_out on the same examples):

    acc_ref − acc_shift = π_in·(acc_ref − acc_in) + π_out·(acc_ref − acc_out)
                        =      bias component     +   extrapolation component

For the baseline line at a candidate's reference accuracy, the split lines (refitted per split, x = reference-test
accuracy) predict acc_in and acc_out. The benefit of pre-training then splits approximately as
ER ≈ π_in·ER_in + π_out·ER_out (exact in accuracy space only for lines linear in accuracy; the probit fit makes it
approximate, and `er_check` reports how close it is).

The decomposition that runs is `components`, applied by `ptdiag.stats.resampling` to the point estimate and
every replicate; `er_consistency` reports how close ER is to π_in·ER_in + π_out·ER_out. Pure numpy: no torch import.
"""

from __future__ import annotations

import numpy as np


def components(out: dict[str, np.ndarray], split: bool) -> None:
    """Add the gap, its bias and extrapolation components, and what each model leaves and recovers of each.

    ``out`` holds, per replicate (rows) and model (columns): ``ref`` (reference accuracy), ``acc_*`` (its
    accuracy), ``pred_*`` (the baseline line's prediction at its reference accuracy) and ``er_*`` (acc − pred) for
    the splits ``shift``, ``in_support``, ``out_of_support``, and ``pi_in``. Adds ``gap`` / ``bias`` /
    ``extrapolation`` (the line's drop at the model's reference accuracy, split), ``remaining_*`` (the model's
    own drop), ``recovered_*`` (π·ER) and ``share_*`` (ER over the line's drop). ``remaining_bias +
    remaining_extrapolation == remaining_gap`` exactly.
    """
    ref = out["ref"]
    out["gap"] = ref - out["pred_shift"]
    out["remaining_gap"] = ref - out["acc_shift"]
    out["recovered_gap"] = out["er_shift"]
    with np.errstate(invalid="ignore", divide="ignore"):
        out["share_gap"] = out["er_shift"] / out["gap"]
        if not split:
            return
        pi_in = out["pi_in"]
        for part, split_name, pi in (("bias", "in_support", pi_in), ("extrapolation", "out_of_support", 1 - pi_in)):
            drop = ref - out[f"pred_{split_name}"]
            out[part] = pi * drop
            out[f"remaining_{part}"] = pi * (ref - out[f"acc_{split_name}"])
            out[f"recovered_{part}"] = pi * out[f"er_{split_name}"]
            out[f"share_{part}"] = out[f"er_{split_name}"] / drop


def er_consistency(er: float | None, er_in: float | None, er_out: float | None, pi_in: float,
                   pi_out: float) -> dict[str, float] | None:
    """Compare ER on the whole shift with π_in·ER_in + π_out·ER_out (approximate identity under probit)."""
    if er is None or (er_in is None and pi_in > 0) or (er_out is None and pi_out > 0):
        return None
    weighted = pi_in * (er_in or 0.0) + pi_out * (er_out or 0.0)
    return {"er": float(er), "weighted_sum": float(weighted), "difference": float(er - weighted)}
