"""The `remedies` section of results.json and the measured recommendations that cite it.

Rows follow the `remedies` contract of results.json: name, method (last-layer | reweight), data (labelled-shift |
reference-reweighted), base, n_shift_labelled, held_out, applicable, note, ref/shift/in/out accuracy, er/er_in/er_out
({lower, mid, upper} or null), recovered ({gap, bias, extrapolation}, each an interval or null) and, for last-layer
remedies, label_budget (list of {n_per_class, shift_acc, in_acc, out_acc}).
"""

from __future__ import annotations

from typing import Any

import numpy as np

_ER_KEYS = ("er", "er_in", "er_out")
COMPONENTS = ("gap", "bias", "extrapolation")  # keys of `recovered`


def accuracies(pred_test: np.ndarray, test_y: np.ndarray, pred_shift: np.ndarray, shift_y: np.ndarray,
               in_support: np.ndarray | None) -> dict[str, float | None]:
    """Reference-test, shifted, in-support and out-of-support accuracy (None for an empty split)."""
    correct = pred_shift == shift_y

    def mean(mask: np.ndarray) -> float | None:
        return float(correct[mask].mean()) if mask.any() else None

    everything = np.ones(len(shift_y), dtype=bool)
    return {"ref_acc": float((pred_test == test_y).mean()) if len(test_y) else None,
            "shift_acc": mean(everything),
            "in_acc": mean(in_support) if in_support is not None else None,
            "out_acc": mean(~in_support) if in_support is not None else None}


def label_budget(budgets: list[int], budget_preds: np.ndarray, shift_y: np.ndarray,
                 in_support: np.ndarray | None) -> list[dict[str, Any]]:
    """One point per per-class budget: held-out accuracy of heads fitted on that many labelled shifted images."""
    points = []
    for n_per_class, preds in zip(budgets, budget_preds, strict=True):
        acc = accuracies(np.zeros(0), np.zeros(0), preds, shift_y, in_support)
        points.append({"n_per_class": int(n_per_class), "shift_acc": acc["shift_acc"], "in_acc": acc["in_acc"],
                       "out_acc": acc["out_acc"]})
    return points


def remedy_row(descriptor: dict[str, Any], acc: dict[str, float | None] | None,
               budget: list[dict[str, Any]] | None, scored: dict[str, Any] | None) -> dict[str, Any]:
    """One results.json row: the descriptor (what was run and why), accuracies, and the scored intervals."""
    row = {key: descriptor.get(key) for key in ("name", "method", "data", "variant", "base", "base_kind")}
    row.update(n_shift_labelled=int(descriptor.get("n_shift_labelled", 0)), held_out=bool(descriptor["held_out"]),
               applicable=bool(descriptor["applicable"]), note=str(descriptor.get("note", "")))
    acc = acc if row["applicable"] and acc is not None else {}
    row.update({key: acc.get(key) for key in ("ref_acc", "shift_acc", "in_acc", "out_acc")})
    scored = scored or {}
    row.update({key: scored.get(key) for key in _ER_KEYS})
    row["recovered"] = scored.get("recovered") or {name: None for name in COMPONENTS}
    if row["method"] == "last-layer":
        row["label_budget"] = budget if row["applicable"] and budget else []
    for key in ("ess_share", "coverage", "folds"):
        if key in descriptor:
            row[key] = descriptor[key]
    return row
