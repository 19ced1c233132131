"""Split-wise accuracies and the gap decomposition into a bias and an extrapolation component.

For any model, with π_in/π_out the in-/out-of-support shares of the shifted set, the reference-to-shift gap
splits *exactly* (because acc_shift = π_in·acc_in + π_out·acc_out on the same examples):

    acc_ref − acc_shift = π_in·(acc_ref − acc_in) + π_out·(acc_ref − acc_out)
                        =      bias component     +   extrapolation component

For the baseline line at a candidate's reference accuracy, the split lines (refitted per split, x = reference-test
accuracy) predict acc_in and acc_out. The benefit of pre-training then splits approximately as
ER ≈ π_in·ER_in + π_out·ER_out (exact in accuracy space only for lines linear in accuracy; the probit fit makes it
approximate, and `er_check` reports how close it is).

Pure numpy: no torch import.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ptdiag.stats.line import LineFit, comparable_baselines


def split_accuracies(correct: np.ndarray, in_support: np.ndarray | None) -> tuple[float | None, float | None]:
    """Accuracy on the in-support and out-of-support shifted examples (None for an empty or missing split)."""
    if in_support is None:
        return None, None
    correct = np.asarray(correct, dtype=float)
    mask = np.asarray(in_support, dtype=bool)
    acc_in = float(correct[mask].mean()) if mask.any() else None
    acc_out = float(correct[~mask].mean()) if (~mask).any() else None
    return acc_in, acc_out


@dataclass(frozen=True)
class GapDecomposition:
    """gap = bias_component + extrapolation_component (None where a split is empty or cannot be estimated).

    `method` says where the split accuracies came from: "observed" (the model's own accuracies), "line" (the
    per-split baseline lines at `ref_acc`) or "nearest-baselines" (the comparable baselines' own drops, used when
    a split's line is too weak to trust).
    """

    name: str
    ref_acc: float
    gap: float
    bias_component: float | None
    extrapolation_component: float | None
    method: str
    er_check: dict[str, float] | None = None

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {
            "name": self.name, "ref_acc": self.ref_acc, "gap": self.gap, "bias_component": self.bias_component,
            "extrapolation_component": self.extrapolation_component, "method": self.method,
        }
        if self.er_check is not None:
            out["er_check"] = self.er_check
        return out


def decompose_gap(name: str, ref_acc: float, acc_in: float | None, acc_out: float | None, pi_in: float,
                  pi_out: float, method: str = "observed") -> GapDecomposition:
    """Exact decomposition of a model's gap from its split accuracies (an empty split contributes 0)."""
    bias = None if acc_in is None else pi_in * (ref_acc - acc_in)
    extrap = None if acc_out is None else pi_out * (ref_acc - acc_out)
    gap = (bias or 0.0) + (extrap or 0.0)
    return GapDecomposition(name, float(ref_acc), float(gap), _opt(bias), _opt(extrap), method)


def decompose_baseline(
    name: str,
    ref_acc: float,
    *,
    pi_in: float,
    pi_out: float,
    fit_in: LineFit | None,
    fit_out: LineFit | None,
    use_line: dict[str, bool],
    baseline_ref: np.ndarray,
    baseline_in: np.ndarray | None,
    baseline_out: np.ndarray | None,
    n_nearest: int = 3,
) -> GapDecomposition:
    """Decompose the gap the baselines would show at `ref_acc`.

    Each split uses its baseline line when `use_line[split]`, else the mean own drop (ref − split accuracy) of
    the baselines comparable in reference accuracy (at or above `ref_acc`, or the nearest ones).
    """
    drops, methods = {}, []
    for split, fit, accs in (("in_support", fit_in, baseline_in), ("out_of_support", fit_out, baseline_out)):
        if fit is not None and use_line.get(split, False):
            drops[split] = float(ref_acc - fit.predict(ref_acc))
            methods.append("line")
        elif accs is not None and np.isfinite(accs).all():
            idx, _ = comparable_baselines(baseline_ref, ref_acc, n_nearest)
            drops[split] = float(np.mean(np.asarray(baseline_ref)[idx] - np.asarray(accs)[idx]))
            methods.append("nearest-baselines")
        else:
            drops[split] = None
    bias = None if drops["in_support"] is None else pi_in * drops["in_support"]
    extrap = None if drops["out_of_support"] is None else pi_out * drops["out_of_support"]
    method = "+".join(sorted(set(methods))) or "none"
    return GapDecomposition(name, float(ref_acc), float((bias or 0.0) + (extrap or 0.0)), _opt(bias), _opt(extrap),
                            method)


def er_consistency(er: float | None, er_in: float | None, er_out: float | None, pi_in: float,
                   pi_out: float) -> dict[str, float] | None:
    """Compare ER on the whole shift with π_in·ER_in + π_out·ER_out (approximate identity under probit)."""
    if er is None or (er_in is None and pi_in > 0) or (er_out is None and pi_out > 0):
        return None
    weighted = pi_in * (er_in or 0.0) + pi_out * (er_out or 0.0)
    return {"er": float(er), "weighted_sum": float(weighted), "difference": float(er - weighted)}


def _opt(value: float | None) -> float | None:
    return None if value is None else float(value)
