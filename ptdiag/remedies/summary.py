"""The `remedies` section of results.json and the measured recommendations that cite it.

Rows follow the `remedies` contract of results.json: name, method (last-layer | reweight | curated-finetune), data
(labelled-shift | reference-reweighted | curated-shift | random-shift), base, n_shift_labelled, held_out,
applicable, note, ref/shift/in/out accuracy, er/er_in/er_out ({lower, mid, upper} or null), recovered ({gap, bias,
extrapolation}, each an interval or null) and, for last-layer remedies, label_budget (list of {n_per_class,
shift_acc, in_acc, out_acc}); for curated-finetune ones, size_curve (list of {n_images, shift_acc, in_acc, out_acc}).
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


def size_curve(sizes: list[int], curve_preds: np.ndarray, shift_y: np.ndarray, in_support: np.ndarray | None,
               judged: np.ndarray, against: np.ndarray | None = None) -> list[dict[str, Any]]:
    """One point per curated-set size: held-out accuracy of the models fine-tuned on that many shifted images, the
    95 % Wilson interval of the accuracy the set is judged by (over the `judged` images), and, with `against` (the
    random sets' predictions, same sizes), the paired difference on the same images (normal interval). Image
    sampling only: each point is one training seed."""
    points = []
    for s, (n, preds) in enumerate(zip(sizes, curve_preds, strict=True)):
        acc = accuracies(np.zeros(0), np.zeros(0), preds, shift_y, in_support)
        point = {"n_images": int(n), **{k: v for k, v in acc.items() if k != "ref_acc"}}
        correct = (preds == shift_y)[judged]
        point["interval"] = wilson(int(correct.sum()), len(correct))
        if against is not None:
            point["minus_random"] = paired_difference(correct, (against[s] == shift_y)[judged])
        points.append(point)
    return points


def wilson(k: int, n: int) -> dict[str, float] | None:
    """A proportion with its 95 % Wilson interval, as {lower, mid, upper}."""
    if n == 0:
        return None
    from scipy.stats import binomtest

    ci = binomtest(k, n).proportion_ci(0.95, method="wilson")
    return {"lower": float(ci.low), "mid": k / n, "upper": float(ci.high)}


def paired_difference(a: np.ndarray, b: np.ndarray) -> dict[str, float] | None:
    """Mean of a − b over the same examples with its 95 % normal interval, as {lower, mid, upper}."""
    if len(a) < 2:
        return None
    d = a.astype(float) - b.astype(float)
    half = 1.96 * float(d.std(ddof=1)) / np.sqrt(len(d))
    return {"lower": float(d.mean()) - half, "mid": float(d.mean()), "upper": float(d.mean()) + half}


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
    label_budget: tuple[Mapping[str, Any], ...] | None = None  # last-layer remedies: per n_per_class
    size_curve: tuple[Mapping[str, Any], ...] | None = None  # curated-finetune remedies: per n_images
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
        if self.size_curve is not None:
            row["size_curve"] = [dict(point) for point in self.size_curve]
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
        size_curve=tuple(budget if applicable and budget else ()) if descriptor.get("method") == "curated-finetune"
        else None,
        extra={key: descriptor[key] for key in ("ess_share", "coverage", "folds", "judged_by") if key in descriptor},
    )


def curated_advice(rows: list[RemedyRow], pretrained: list[Mapping[str, Any]]) -> str | None:
    """The recommendation that cites the curated-finetune measurements: accuracy of the curated set (alone and with
    the reference) against the same recipe trained on the reference alone and against random images of the same
    size, and the smallest curated size that matched the reference-trained recipe. None when nothing was measured.
    Intervals: image sampling only (one training seed per model; see `size_curve`)."""
    measured = {(r.data, r.variant): r for r in rows if r.method == "curated-finetune" and r.applicable}
    curated = measured.get(("curated-shift", "shift-only"))
    if curated is None or not curated.size_curve:
        return None
    key = curated.extra.get("judged_by", "shift_acc")
    where = "in-support" if key == "in_acc" else "shifted"
    recipe = next((p for s in ("lpft", "ft") for p in pretrained
                   if p.get("model") == curated.base and p.get("strategy") == s and p.get(key) is not None), None)
    n = curated.n_shift_labelled
    last = curated.size_curve[-1]
    text = (f"Measured: fine-tuning {curated.base} on {n} shifted images chosen by `ptdiag curate --from shift "
            f"--n {n}` and labelled gave {where} accuracy {_acc(last.get('interval'))}")
    if recipe is not None:
        base = recipe[key]
        text += f" ({_points(curated.accuracies[key] - base)} against {100 * base:.1f}% for {recipe['name']} " \
                "trained on the reference alone)"
    with_ref = measured.get(("curated-shift", "reference+shift"))
    if with_ref is not None and with_ref.size_curve:
        text += f"; with the reference added {_acc(with_ref.size_curve[-1].get('interval'))}"
    random = measured.get(("random-shift", "shift-only"))
    if random is not None and random.accuracies.get(key) is not None:
        diff = last.get("minus_random")
        text += f"; {n} random shifted images gave {100 * random.accuracies[key]:.1f}%" + (
            f" (curated − random {_points(diff['mid'])} [{100 * diff['lower']:+.1f}, {100 * diff['upper']:+.1f}]"
            f"{_which_to_label(diff)})" if diff else "")
    if recipe is not None:
        matched = [p["n_images"] for p in curated.size_curve if p.get(key) is not None and p[key] >= recipe[key]]
        text += (f". Curated sets matched the reference-trained recipe from {matched[0]} images" if matched else
                 f". No curated size up to {n} matched the reference-trained recipe")
    return text + " (held out: each model scored on the half of the shifted set it was not chosen from)."


def accuracy_key(in_acc: float | None, n_in: int, n_shift: int) -> str:
    """Which accuracy a curated set is judged by (its rows' `judged_by`): in-support (the bias part it is meant to
    fix) when most shifted images are in support, else the whole shifted set's."""
    return "in_acc" if in_acc is not None and 2 * n_in >= n_shift else "shift_acc"


def _which_to_label(diff: Mapping[str, float]) -> str:
    if diff["upper"] < 0:
        return ": a random sample did better here, label one (`ptdiag curate --from shift --random`)"
    if diff["lower"] > 0:
        return ": the curated selection did better than random here"
    return ""


def _acc(interval: Mapping[str, float] | None) -> str:
    if interval is None:
        return "—"
    return f"{100 * interval['mid']:.1f}% [{100 * interval['lower']:.1f}, {100 * interval['upper']:.1f}]"


def _points(diff: float) -> str:
    return f"{100 * diff:+.1f} points"
