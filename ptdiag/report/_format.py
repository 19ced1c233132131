"""Number formatting and plain-language labels shared by the terminal, Markdown and HTML renderers.

Accuracies are stored as fractions; reports show accuracies in % and ER, gaps and components in
accuracy points (1 point = 1 %), signed.
"""

from __future__ import annotations

from typing import Any

from ptdiag.schema import share_is_quotable

DASH = "—"

VERDICT_TITLES = {
    "pretraining-helps": "Pre-training helps",
    "dataset-bias": "Dataset bias",
    "both": "Dataset bias and extrapolation",
    "no-shift": "No material shift",
    "inconclusive": "Inconclusive",
}

VERDICT_MEANINGS = {
    "pretraining-helps": "The drop comes from shifted images unlike anything in the reference data "
    "(extrapolation); a pre-trained model recovers part of it.",
    "dataset-bias": "The drop happens on shifted images that look like the reference data: the reference "
    "data is biased. Pre-training alone will not fix it.",
    "both": "Part of the drop is dataset bias (in-support), part is extrapolation (out-of-support).",
    "no-shift": "Models lose little or no accuracy on the shifted set.",
    "inconclusive": "The evidence is too weak for a verdict; see the reasons.",
}

SPLIT_LABELS = {"shift": "whole shift", "in_support": "in-support", "out_of_support": "out-of-support"}


def pct(value: float | None, digits: int = 1) -> str:
    """0.623 -> '62.3%'."""
    return DASH if value is None else f"{100 * value:.{digits}f}%"


def points(value: float | None, digits: int = 1, signed: bool = True) -> str:
    """An accuracy difference in points: 0.11 -> '+11.0'."""
    if value is None:
        return DASH
    return f"{100 * value:+.{digits}f}" if signed else f"{100 * value:.{digits}f}"


def interval(value: dict[str, float] | None, digits: int = 1) -> str:
    """An ER triple in points: '+11.0 [+8.0, +14.0]'."""
    if value is None:
        return DASH
    return f"{points(value['mid'], digits)} [{points(value['lower'], digits)}, {points(value['upper'], digits)}]"


def number(value: Any, digits: int = 2) -> str:
    """A plain number with fixed digits; integers keep thousands separators."""
    if value is None:
        return DASH
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def seconds(value: float | None) -> str:
    if value is None:
        return DASH
    if value < 60:
        return f"{value:.1f} s"
    minutes, secs = divmod(value, 60)
    return f"{int(minutes)} min {secs:02.0f} s"


def verdict_title(kind: str) -> str:
    return VERDICT_TITLES.get(kind, kind)


def share(count: int | None, total: int | None) -> str:
    if count is None or not total:
        return DASH
    return f"{100 * count / total:.1f}%"


def fit_summary(fit: dict[str, Any] | None) -> str:
    """'r² 0.99 over 6 baselines, slope 0.93, residual SE 0.010' or a dash."""
    if fit is None:
        return DASH
    line = f"r² {fit['r2']:.2f} over {fit['n']} baselines"
    return f"{line}, slope {fit['slope']:.2f}, residual SE {fit['residual_se']:.3f}"


def key_numbers(results: dict[str, Any]) -> list[tuple[str, str]]:
    """The handful of numbers a summary shows, as (label, value) pairs, read straight from the results."""
    rows: list[tuple[str, str]] = []
    data = results["data"]
    rows.append(("Images", f"reference {data['reference']['n']:,} · shift {data['shift']['n']:,}"))
    labels = shift_labels_text(results)
    if labels:
        rows.append(("Shifted labels", labels))
    fit = results["fit"]["shift"]
    rows.append(("Accuracy on the line", fit_summary(fit)))
    for row in results["decomposition"]["baseline"][:1]:
        rows.append(("Baseline gap (reference − shift)", f"{points(row['gap'], signed=False)} points"))
        rows.append(("  bias component (in-support)", _pts_or_dash(row.get("bias_component"))))
        rows.append(("  extrapolation component (out-of-support)", _pts_or_dash(row.get("extrapolation_component"))))
    support = results.get("support")
    if support:
        total = support["n_in"] + support["n_out"]
        rows.append(
            (
                f"Out-of-support at ε = {support['epsilon']:g}",
                f"{support['n_out']:,} of {total:,} ({share(support['n_out'], total)}), domain AUC "
                f"{support['domain_auc']:.2f}",
            )
        )
    else:
        rows.append(("Support split", "not available"))
    rows += verdict_numbers(results["verdict"])
    return rows


def shift_labels_text(results: dict[str, Any]) -> str | None:
    """How many shifted images are labelled, when not all are (shifted accuracies are then estimated)."""
    data = results["data"]
    if data.get("shift_labelled", "all") == "all":
        return None
    labelled, total = data["shift"].get("n_labelled", 0), data["shift"]["n"]
    if data["shift_labelled"] == "none":
        return (f"none of {total:,}: only the label-free part ran (the support split; the pre-trained models' "
                "shifted accuracy estimated (est.) from their confidence)")
    return (f"{labelled:,} of {total:,} (a random sample): every shifted accuracy is estimated (est.) from "
            "them and the models' confidence")


def shift_pct(model: dict[str, Any]) -> str:
    """A model's shifted accuracy, marked "est." when it is estimated rather than measured."""
    return pct(model["shift_acc"]) + (" est." if model.get("estimated") else "")


def verdict_numbers(verdict: dict[str, Any]) -> list[tuple[str, str]]:
    """Schema 2: confidence as stability, the pooled candidates, and each effect with its three-way class."""
    rows: list[tuple[str, str]] = []
    if verdict.get("stability"):  # 0 means no resample reached a kind: nothing to quote
        rows.append(("Confidence", f"{verdict['confidence']}: the same kind in {100 * verdict['stability']:.0f}% of "
                                   "resamples"))
    if verdict.get("helping_recipe"):
        rows.append(("Pre-training helps with", verdict["helping_recipe"]))
    if verdict.get("decided_on"):
        rows.append(("Recipes that may carry the claim", ", ".join(verdict["decided_on"])))
    effects = verdict.get("effects") or {}
    labels = (("pooled_gap", "Pooled gap", "points"), ("remaining_bias", "Bias left after pre-training", "points"),
              ("share_bias", "Share of the bias gap pre-training recovers", "share"),
              ("share_extrapolation", "Share of the extrapolation gap pre-training recovers", "share"))
    for key, label, unit in labels:
        effect = effects.get(key)
        if effect:
            rows.append((label, f"{effect_text(effect, unit)} ({effect.get('class', '?')})"))
    return rows


def share_interval(value: dict[str, float] | None, unquotable: str = DASH) -> str:
    """A share of a gap recovered, '78% [64, 90]', or ``unquotable`` when it is missing or means nothing."""
    if not share_is_quotable(value):
        return unquotable
    return f"{100 * value['mid']:.0f}% [{100 * value['lower']:.0f}, {100 * value['upper']:.0f}]"


def effect_text(effect: dict[str, Any], unit: str = "points") -> str:
    """'+3.1 [+0.4, +5.9] points' or '30% [0, 60]'."""
    if unit == "share":
        return share_interval(effect, "not quotable (the gap it divides by is too small or too uncertain)")
    return f"{100 * effect['mid']:+.1f} [{100 * effect['lower']:+.1f}, {100 * effect['upper']:+.1f}] points"


def _pts_or_dash(value: float | None) -> str:
    return DASH if value is None else f"{points(value, signed=False)} points"
