"""The `remedies` section of results.json and the measured recommendations that cite it.

Rows follow the `remedies` contract of results.json: name, method (last-layer | reweight), data (labelled-shift |
reference-reweighted), base, n_shift_labelled, held_out, applicable, note, ref/shift/in/out accuracy, er/er_in/er_out
({lower, mid, upper} or null), recovered ({gap, bias, extrapolation}, each an interval or null) and, for last-layer
remedies, label_budget (list of {n_per_class, shift_acc, in_acc, out_acc}).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
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


@dataclass(frozen=True)
class RemedyRow:
    """One measured remedy as results.json reports it (`to_dict` is the contract's row)."""

    name: str
    method: str
    data: str
    variant: str
    base: str
    base_kind: str
    n_shift_labelled: int
    held_out: bool
    applicable: bool
    note: str
    accuracies: Mapping[str, float | None]  # ref_acc, shift_acc, in_acc, out_acc (None when not applicable)
    effects: Mapping[str, dict[str, float] | None]  # er, er_in, er_out intervals
    recovered: Mapping[str, dict[str, float] | None]  # gap, bias, extrapolation shares
    label_budget: tuple[Mapping[str, Any], ...] | None = None  # last-layer remedies only
    extra: Mapping[str, Any] = field(default_factory=dict)  # ess_share, coverage, folds when measured

    def to_dict(self) -> dict[str, Any]:
        row: dict[str, Any] = {"name": self.name, "method": self.method, "data": self.data, "variant": self.variant,
                               "base": self.base, "base_kind": self.base_kind,
                               "n_shift_labelled": self.n_shift_labelled, "held_out": self.held_out,
                               "applicable": self.applicable, "note": self.note}
        row |= {key: self.accuracies.get(key) for key in ACCURACY_KEYS}
        row |= {key: self.effects.get(key) for key in _ER_KEYS}
        row["recovered"] = dict(self.recovered)
        if self.label_budget is not None:
            row["label_budget"] = [dict(point) for point in self.label_budget]
        return row | dict(self.extra)


ACCURACY_KEYS = ("ref_acc", "shift_acc", "in_acc", "out_acc")


def remedy_row(descriptor: dict[str, Any], acc: dict[str, float | None] | None,
               budget: list[dict[str, Any]] | None, scored: dict[str, Any] | None) -> RemedyRow:
    """One remedy from its descriptor (what was run and why), accuracies, and the scored intervals."""
    applicable = bool(descriptor["applicable"])
    acc = acc if applicable and acc is not None else {}
    scored = scored or {}
    return RemedyRow(
        name=descriptor.get("name"), method=descriptor.get("method"), data=descriptor.get("data"),
        variant=descriptor.get("variant"), base=descriptor.get("base"), base_kind=descriptor.get("base_kind"),
        n_shift_labelled=int(descriptor.get("n_shift_labelled", 0)), held_out=bool(descriptor["held_out"]),
        applicable=applicable, note=str(descriptor.get("note", "")),
        accuracies={key: acc.get(key) for key in ACCURACY_KEYS},
        effects={key: scored.get(key) for key in _ER_KEYS},
        recovered=scored.get("recovered") or {name: None for name in COMPONENTS},
        label_budget=tuple(budget if applicable and budget else ()) if descriptor.get("method") == "last-layer"
        else None,
        extra={key: descriptor[key] for key in ("ess_share", "coverage", "folds") if key in descriptor},
    )
