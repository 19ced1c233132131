"""The verdict: every rule that turns the statistics into an answer, in one module.

The rule of thumb (Cohen-Wang et al. 2024): pre-training can mitigate poor extrapolation (out-of-support shift)
but not dataset bias (in-support shift). The verdict answers the user's question — does *some* pre-training recipe
help, and what remains? — recipe by recipe. For each recipe (backbone × strategy, its learning rate chosen on
reference validation) it reads, at that recipe's reference accuracy, the baseline line's gap split into a bias
component π_in·(ref − line_in) and an extrapolation component π_out·(ref − line_out), and what the recipe leaves
(its own components) and recovers (π·ER) of each. Nothing is pooled across recipes.

Every effect is an interval from one resampling scheme (ptdiag.stats.resampling) classified against a margin in
accuracy (``VerdictConfig.material_margin``, the `--material-points` flag; ptdiag.stats.effects): components and
remaining bias two-sided (material, negligible, unresolved), recoveries one-sided (material, not material,
unresolved), because "does it recover a material amount?" is a one-sided question. Recoveries are read at level 1 −
α/J for J recipes (Bonferroni), so looking at several recipes does not inflate false "helps". The share of a gap
recovered drives the wording only.

Kinds:

* ``no-shift``: the reference-to-shift gap aimed at the recipes (per recipe, its own gap averaged with the baseline
  line's gap at its reference accuracy; then over recipes) is negligible (an equivalence test, never from failing to
  find a difference), the line's gap at every recipe is negligible too, and no recipe's own drop is shown material;
* ``pretraining-helps``: some *admissible* recipe (its out-of-support accuracy not below the best-reference
  recipe's) recovers a material amount of a material extrapolation component (beyond the baselines' prediction
  band), and bias does not remain; the confidence drops a level when the helping recipe's remaining bias is not
  shown negligible;
* ``both``: a recipe helps, and material bias remains for every recipe whose in-support accuracy is not below the
  best-reference recipe's (an intersection–union test);
* ``dataset-bias``: bias remains (the same intersection–union test) and the extrapolation component is shown
  negligible;
* ``inconclusive``: otherwise, always with the failed check named — including a split too small to judge
  (``unknown`` blocks both kinds), fewer shifted examples than ``min_split_examples``, and fewer baseline training
  runs than ``min_runs``.

Confidence is stability: the share of resamples whose point estimates give the same kind (≥ 95 % high, ≥ 80 %
medium), capped at medium below ``recommended_runs`` baseline runs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ptdiag.stats.effects import classify, classify_point
from ptdiag.stats.intervals import Check, Interval
from ptdiag.stats.thresholds import VerdictConfig
from ptdiag.stats.verdict_text import (
    components_reason,
    dedupe,
    effect_dict,
    failed_text,
    gap_reason,
    kind_reasons,
    pts,
    recipe_lines,
    recommendations,
)
from ptdiag.stats.verdict_types import CandidateEvidence, RecipeCall, Verdict, VerdictInputs

KINDS = ("pretraining-helps", "dataset-bias", "both", "no-shift", "inconclusive")
CONFIDENCE = ("low", "medium", "high")
JUDGED = ("bias", "extrapolation", "remaining_bias", "recovered_bias", "recovered_extrapolation", "recovered_gap")
RECOVERIES = ("recovered_bias", "recovered_extrapolation", "recovered_gap")




# --- classes and the rule ------------------------------------------------------------------------------------------


def judge(values: Mapping[str, Interval | float | None], beyond_band: Mapping[str, bool], config: VerdictConfig,
          pooled_gap: Interval | float | None, n_in: int | None = None, n_out: int | None = None,
          pi_in: float | None = None, pi_out: float | None = None,
          adjusted: Mapping[str, Interval | None] | None = None) -> dict[str, str]:
    """Class of every quantity the rule reads; intervals (the decision) or plain values (one resample).

    Recoveries are one-sided ('material', 'not-material', 'unresolved'), read from ``adjusted`` (their
    multiplicity-corrected intervals) where given; a recovery inside the baselines' prediction band is not credited.
    """
    m = config.material_margin
    out = {name: _cls(values.get(name), m) for name in JUDGED}
    out["pooled_gap"] = _cls(pooled_gap, m)
    out["line_gap"] = _cls((adjusted or {}).get("gap_tost") or values.get("gap"), m)  # the line's gap at this recipe
    out["own_gap"] = _cls((adjusted or {}).get("own_gap_tost") or values.get("remaining_gap"), m)  # the recipe's
    for name in RECOVERIES:
        value = (adjusted or {}).get(name) or values.get(name)
        out[name] = recovery_class(value, m)
    for name, split in (("recovered_extrapolation", "out_of_support"), ("recovered_gap", "shift")):
        if out[name] == "material" and not beyond_band.get(split, True):
            out[name] = "unresolved"
    for part, n, pi in (("bias", n_in, pi_in), ("extrapolation", n_out, pi_out)):
        if pi is not None and pi < m:  # π·(ref − acc) ≤ π: a split this small cannot carry a material component
            out[part] = "negligible"
        elif n is not None and n < config.min_split_examples:
            out[part] = "unknown"
    return out


def recovery_class(value: Interval | float | None, margin: float) -> str:
    """One-sided: 'material' (clears the margin), 'not-material' (stays below it), 'unresolved', 'unknown'."""
    if value is None:
        return "unknown"
    lower, upper = (value.lower, value.upper) if isinstance(value, Interval) else (float(value), float(value))
    if lower != lower:  # NaN
        return "unknown"
    if lower >= margin:
        return "material"
    if upper < margin:
        return "not-material"
    return "unresolved"


def _cls(value: Interval | float | None, margin: float) -> str:
    if value is None or isinstance(value, Interval):
        return classify(value, margin)
    return classify_point(float(value), margin)


def rule(c: Mapping[str, str], support: bool) -> tuple[str, str | None]:
    """(kind, failed check or None) for one recipe from the classes of `judge`."""
    if c["pooled_gap"] == "negligible":
        line_ok = c.get("line_gap", "negligible") in ("negligible", "unknown")
        if line_ok and c.get("own_gap") not in ("material", "material-negative"):  # the recipe's own drop not shown
            return "no-shift", None
        return "inconclusive", "gap-at-recipes"
    if c["pooled_gap"] == "material-negative":
        return "inconclusive", "shift-easier"
    if not support:
        return ("pretraining-helps", None) if c["recovered_gap"] == "material" else ("inconclusive", "support-split")
    bias_left = bias_remains(c)
    extrap = c["extrapolation"] == "material"
    if extrap and c["recovered_extrapolation"] == "material":  # an unknown bias lowers confidence (decide)
        return ("both" if bias_left else "pretraining-helps"), None
    if c["bias"] == "material" and c["remaining_bias"] == "negligible" and c["recovered_bias"] == "material":
        return "pretraining-helps", None
    if bias_left and c["extrapolation"] in ("negligible", "material-negative"):
        return "dataset-bias", None
    if "unknown" in (c["bias"], c["extrapolation"]):  # absent only when shown absent: a tiny split claims nothing
        return "inconclusive", "split-size"
    if extrap:
        return "inconclusive", ("extrapolation-recovery" if c["recovered_extrapolation"] == "unresolved"
                                else "pretrained-recovery")
    if bias_left:
        return "inconclusive", "extrapolation-size"
    if c["bias"] == "material":
        return "inconclusive", "remaining-bias"
    if c["pooled_gap"] in ("material", "material-negative"):
        return "inconclusive", "components"
    return "inconclusive", "shift-size"


def bias_remains(c: Mapping[str, str]) -> bool:
    """The recipe's own in-support drop is material and the baselines' bias component is not negligible."""
    return c["remaining_bias"] == "material" and c["bias"] not in ("negligible", "material-negative", "unknown")


def combine(calls: Sequence[RecipeCall], support: bool) -> tuple[str, str | None, RecipeCall | None]:
    """(kind, failed check, the recipe the kind rests on) over all recipes; nothing is pooled.

    Some admissible recipe helps → `pretraining-helps`, or `both` when bias remains for every in-support
    admissible recipe (intersection–union); no recipe helps → `dataset-bias` when bias remains that way and the
    extrapolation component is negligible for every recipe; else the best-reference recipe's failed check.
    """
    if not calls:
        return "inconclusive", "pretrained", None
    best_ref = calls[0]  # callers order recipes best reference accuracy first
    if best_ref.failed == "shift-easier":  # read off the pooled gap, the same for every recipe
        return best_ref.kind, best_ref.failed, best_ref
    if all(c.kind == "no-shift" for c in calls):  # the pooled gap and the line's gap at every recipe negligible
        return "no-shift", None, best_ref
    if any(c.failed == "gap-at-recipes" for c in calls):
        return "inconclusive", "gap-at-recipes", next(c for c in calls if c.failed == "gap-at-recipes")
    helping = [c for c in calls if c.admissible_out and c.kind in ("pretraining-helps", "both")]
    in_adm = [c for c in calls if c.admissible_in] or [best_ref]
    remains = support and all(bias_remains(c.classes) for c in in_adm)
    if helping:
        chosen = max(helping, key=_recovery_strength)
        return ("both" if remains else "pretraining-helps"), None, chosen
    if remains and all(c.classes["extrapolation"] in ("negligible", "material-negative") for c in calls):
        return "dataset-bias", None, best_ref
    recovery = {c.classes["recovered_extrapolation"] for c in calls if c.classes["extrapolation"] == "material"}
    if best_ref.failed in ("extrapolation-recovery", "pretrained-recovery") and recovery:
        failed = "extrapolation-recovery" if "unresolved" in recovery else "pretrained-recovery"
        return "inconclusive", failed, best_ref
    if best_ref.kind == "dataset-bias":  # bias remains for it, but not shown for every in-support admissible recipe
        return "inconclusive", "remaining-bias", best_ref
    return "inconclusive", best_ref.failed, best_ref


def _recovery_strength(call: RecipeCall) -> float:
    q = call.evidence.judged("recovered_extrapolation") or call.evidence.quantities.get("recovered_gap")
    return q.lower if q is not None else float("-inf")


def confidence_from(stability: float | None) -> str:
    if stability is None:
        return "low"
    return "high" if stability >= 0.95 else "medium" if stability >= 0.80 else "low"


# --- decide --------------------------------------------------------------------------------------------------------


def recipe_calls(inputs: VerdictInputs, config: VerdictConfig,
                 values: Sequence[Mapping[str, Interval | float | None]] | None = None,
                 pooled_gap: Interval | float | None = None) -> list[RecipeCall]:
    """Each recipe's classes and kind, best reference accuracy first. ``values``/``pooled_gap`` replace the
    intervals by one resample's point values (for the stability of the verdict); admissibility stays the point's."""
    order = sorted(range(len(inputs.candidates)), key=lambda i: -_selection(inputs.candidates[i]))
    split_args = dict(n_in=inputs.n_in, n_out=inputs.n_out, pi_in=inputs.pi_in, pi_out=inputs.pi_out)
    gap = inputs.pooled_gap if pooled_gap is None else pooled_gap
    best = inputs.candidates[order[0]] if order else None
    calls = []
    for i in order:
        c = inputs.candidates[i]
        q = c.quantities if values is None else values[i]
        classes = judge(q, c.beyond_band, config, gap, adjusted=None if values is not None else c.adjusted,
                        **split_args)
        kind, failed = rule(classes, inputs.support_available)
        out_key = "acc_out_of_support" if inputs.support_available else "acc_shift"
        # May carry "helps": out-of-support accuracy not materially below the best-reference recipe's (a recipe
        # that merely sits above the line at a low accuracy cannot). Enters "bias remains for every recipe": in-support
        # accuracy not below it at all (a wider set only makes that claim harder).
        calls.append(RecipeCall(c, classes, kind, failed, _not_below(c, best, out_key, config.material_margin),
                                _not_below(c, best, "acc_in_support")))
    return calls


def _selection(c: CandidateEvidence) -> float:
    return c.selection_acc + 1e-9 * c.ref_acc


def _not_below(c: CandidateEvidence, best: CandidateEvidence | None, key: str, tolerance: float = 0.0) -> bool:
    """c's accuracy on a split is not below the best-reference recipe's by more than ``tolerance`` (unknown counts
    as not below)."""
    if best is None or c is best:
        return True
    mine, theirs = c.quantities.get(key), best.quantities.get(key)
    if mine is None or theirs is None:
        return True
    return mine.mid >= theirs.mid - tolerance


def decide(inputs: VerdictInputs, config: VerdictConfig = VerdictConfig(),
           remedies: Sequence[Mapping[str, Any]] | None = None) -> Verdict:
    """Judge every recipe on its own evidence, combine them, and return the verdict with reasons and advice.

    Args:
        remedies: measured remedy recoveries, one dict per remedy in the `remedy_scores` format of
            `Scores.to_dict()` (keys `name` and `recovered` = {"gap"|"bias"|"extrapolation": {lower, mid, upper}
            or None}). They are quoted in the recommendations only; they never change the kind or confidence.
    """
    checks = list(inputs.checks)
    calls = recipe_calls(inputs, config)
    kind, failed, chosen = combine(calls, inputs.support_available)
    kind, failed = gates(kind, failed, inputs, config)
    if not inputs.support_available and failed != "support-split":
        checks.append(Check("support-split", "WARN", "no support split: the shifted gap is judged whole, without "
                                                     "telling dataset bias from poor extrapolation"))
    classes = chosen.classes if chosen is not None else judge({}, {}, config, inputs.pooled_gap)
    reasons = [gap_reason(inputs.pooled_gap, classes["pooled_gap"])]
    if chosen is not None and inputs.support_available:
        reasons.append(components_reason(chosen.evidence, classes, inputs.pi_in, inputs.pi_out))
    reasons += kind_reasons(kind, chosen, config)
    reasons += recipe_lines(calls) if len(calls) > 1 else []
    if failed is not None:
        if not any(c.name == failed and c.status == "FAIL" for c in checks):
            checks.append(Check(failed, "FAIL", failed_text(failed, inputs, config)))
        reasons.append(failed_text(failed, inputs, config))
    if inputs.n_in is None or inputs.n_in >= config.min_split_examples:
        checks += _in_support_er_checks(calls, config)
    confidence = "low" if kind == "inconclusive" else confidence_from(inputs.stability)
    if kind == "pretraining-helps" and chosen is not None and not chosen.bias_shown_absent:
        confidence = CONFIDENCE[max(CONFIDENCE.index(confidence) - 1, 0)]  # remaining bias not shown absent
    if (kind != "inconclusive" and inputs.n_runs is not None and inputs.n_runs < config.recommended_runs
            and confidence == "high"):
        confidence = "medium"
        reasons.append(f"confidence capped at medium: {inputs.n_runs} baseline training run(s), fewer than the "
                       f"{config.recommended_runs} recommended")
    margin = equivalence_margin(inputs.pooled_gap, calls)
    if margin is not None and (kind == "no-shift" or failed in ("shift-size", "gap-at-recipes")):
        reasons.append(f"with this data, equivalence (no shift) could be shown at ± {100 * margin:.1f} points "
                       f"(the margin is ± {100 * config.material_margin:g})")
    if inputs.stability:  # 0: no resample reached a kind (e.g. a failed check), which says nothing
        reasons.append(f"the same kind in {100 * inputs.stability:.0f}% of resamples (runs, examples, seeds and "
                       "the support mask redrawn)")
    effects = _effects(chosen, classes, config)
    effects["pooled_gap"] = effect_dict(inputs.pooled_gap, classes["pooled_gap"])
    coded = recommendations(kind, failed, chosen, calls, config, remedies)
    helping = chosen.evidence.name if chosen is not None and kind in ("pretraining-helps", "both") else None
    primary = chosen.evidence.name if chosen is not None else None
    return Verdict(kind, confidence, "resampling", dedupe(reasons), coded, checks, primary,
                   [c.evidence.name for c in calls if c.admissible_out], inputs.stability, effects,
                   [_recipe_dict(c) for c in calls], helping, margin)


def equivalence_margin(pooled_gap: Interval | None, calls: Sequence[RecipeCall]) -> float | None:
    """The smallest ± margin inside which the pooled gap and the line's gap at every recipe lie (90 % intervals)."""
    intervals = [pooled_gap] + [c.evidence.adjusted.get("gap_tost") for c in calls]
    bounds = [max(abs(i.lower), abs(i.upper)) for i in intervals if i is not None]
    return max(bounds) if bounds else None


def _in_support_er_checks(calls: Sequence[RecipeCall], config: VerdictConfig) -> list[Check]:
    """A material in-support ER contradicts the rule of thumb: the support split may have misfiled images."""
    out = []
    for c in calls:
        er_in = c.evidence.quantities.get("er_in_support")
        if er_in is not None and er_in.lower >= config.material_margin:
            out.append(Check(f"er-in ({c.evidence.name})", "WARN",
                             f"{c.evidence.name} beats the line on in-support images (ER_in {pts(er_in)} points): "
                             "pre-training should not fix dataset bias, so the support split may have put "
                             "out-of-support images in-support (try a larger --epsilon, or look at the domain "
                             "classifier's calibration)"))
    return out


def gates(kind: str, failed: str | None, inputs: VerdictInputs, config: VerdictConfig) -> tuple[str, str | None]:
    """Conditions under which no kind can be claimed, whatever the intervals say."""
    n_shift = None if inputs.n_in is None or inputs.n_out is None else inputs.n_in + inputs.n_out
    if n_shift is not None and n_shift < config.min_split_examples:
        return "inconclusive", "few-shifted"
    if inputs.n_runs is not None and inputs.n_runs < config.min_runs and kind != "inconclusive":
        return "inconclusive", "baselines"
    return kind, failed


def _effects(chosen: RecipeCall | None, classes: Mapping[str, str],
             config: VerdictConfig) -> dict[str, dict[str, object] | None]:
    if chosen is None:
        return {}
    q = chosen.evidence.quantities
    out = {}
    for name in ("gap", "bias", "extrapolation", "remaining_bias", "remaining_extrapolation", "recovered_bias",
                 "recovered_extrapolation", "recovered_gap", "share_bias", "share_extrapolation", "share_gap"):
        margin = config.material_share if name.startswith("share") else config.material_margin
        out[name] = effect_dict(q.get(name), classes.get(name) or _cls(q.get(name), margin))
    return out


def _recipe_dict(call: RecipeCall) -> dict[str, object]:
    q = call.evidence.quantities
    return {"name": call.evidence.name, "strategy": call.evidence.strategy, "kind": call.kind,
            "failed": call.failed, "admissible": call.admissible_out, "admissible_in_support": call.admissible_in,
            "classes": dict(call.classes),
            "recovered_extrapolation": effect_dict(q.get("recovered_extrapolation"),
                                                    call.classes.get("recovered_extrapolation")),
            "recovered_extrapolation_adjusted": effect_dict(call.evidence.adjusted.get("recovered_extrapolation"),
                                                             call.classes.get("recovered_extrapolation"))}
