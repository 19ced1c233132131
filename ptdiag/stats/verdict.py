"""The verdict: every rule that turns the statistics into an answer, in one module.

The rule of thumb (Cohen-Wang et al. 2024): pre-training can mitigate poor extrapolation (out-of-support shift)
but not dataset bias (in-support shift). The verdict reads, at the candidates' reference accuracy, the baseline
line's gap split into a bias component π_in·(ref − line_in) and an extrapolation component π_out·(ref − line_out),
and what the pre-trained candidates leave (their own components) and recover (π·ER) of each. Every quantity comes
with an interval from one resampling scheme (ptdiag.stats.resampling) and is classified three ways against the
materiality margin (ptdiag.stats.effects): material, negligible or unresolved.

Kinds:

* ``no-shift``: the pooled reference-to-shift gap is negligible (an equivalence test: its interval lies inside
  ± the margin), never from failing to find a difference;
* ``dataset-bias``: a material part of the bias remains after pre-training (the candidates' own in-support drop
  π_in·(ref − acc_in) is material, the baselines' bias component is not negligible), and the extrapolation
  component is not material;
* ``pretraining-helps``: the extrapolation component is material, pre-training recovers a material share of it
  (interval clears the margin, the share clears `material_share`, and the candidates lie outside the baselines'
  prediction band), and no material bias remains;
* ``both``: material bias remains and pre-training recovers a material extrapolation component;
* ``inconclusive``: otherwise, always with the failed check named.

The decision reads the pre-trained candidates whose selection accuracy is within noise of the best, pooled
(averaged per resample); remedies never enter it. Confidence is stability: the share of resamples whose point
estimates give the same kind (≥ 95 % high, ≥ 80 % medium), one level lower when the decided candidates disagree.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ptdiag.schema import GAP_NAMES, share_is_quotable
from ptdiag.stats.effects import classify, classify_point
from ptdiag.stats.intervals import Check, Interval
from ptdiag.stats.thresholds import VerdictConfig

KINDS = ("pretraining-helps", "dataset-bias", "both", "no-shift", "inconclusive")
CONFIDENCE = ("low", "medium", "high")
JUDGED = ("bias", "extrapolation", "remaining_bias", "recovered_bias", "recovered_extrapolation", "recovered_gap")


@dataclass(frozen=True)
class CandidateEvidence:
    """One pre-trained candidate (seeds averaged), or the pooled decision set.

    Attributes:
        quantities: name → interval, names as in `ptdiag.stats.resampling` (gap, bias, extrapolation,
            remaining_*, recovered_*, share_*, er_shift, er_in_support, er_out_of_support).
        beyond_band: split → the candidate's ER lies outside the baseline line's prediction band there (the
            line is trusted to separate it from a from-scratch model's own scatter).
        selection_acc: reference-only accuracy used to choose the decision set (val_acc, else ref_acc).
    """

    name: str
    strategy: str
    ref_acc: float
    selection_acc: float
    quantities: Mapping[str, Interval | None]
    beyond_band: Mapping[str, bool] = field(default_factory=dict)
    decided: bool = True


@dataclass(frozen=True)
class VerdictInputs:
    pooled: CandidateEvidence | None
    candidates: Sequence[CandidateEvidence]
    pooled_gap: Interval | None
    support_available: bool
    n_in: int | None = None
    n_out: int | None = None
    pi_in: float | None = None
    pi_out: float | None = None
    n_runs: int | None = None
    stability: float | None = None
    checks: Sequence[Check] = ()


@dataclass(frozen=True)
class Verdict:
    kind: str
    confidence: str
    evidence: str
    reasons: list[str]
    recommendations: list[str]
    checks: list[Check] = field(default_factory=list)
    primary: str | None = None
    decided_on: list[str] = field(default_factory=list)
    stability: float | None = None
    effects: dict[str, dict[str, object] | None] = field(default_factory=dict)

    def to_dict(self) -> dict[str, object]:
        return {
            "kind": self.kind, "confidence": self.confidence, "evidence": self.evidence, "primary": self.primary,
            "decided_on": list(self.decided_on), "stability": self.stability, "effects": dict(self.effects),
            "reasons": list(self.reasons), "recommendations": list(self.recommendations),
            "checks": [c.to_dict() for c in self.checks],
        }


REMEDIES = {
    "pretrain": "Fine-tune a pre-trained model ({names}): it recovers {share} of the extrapolation gap, the part "
                "caused by inputs the reference data never shows.",
    "pretrain-whole": "Fine-tune a pre-trained model ({names}): it recovers {share} of the baseline gap on the "
                      "shifted set.",
    "debias": "De-bias the reference data, which pre-training does not fix: reweight groups or examples by the "
              "density ratio so under-represented cases count more; retrain only the last layer on a small "
              "group-balanced set (DFR, Kirichenko et al. 2022); or collect a small de-biased set that covers the "
              "shifted conditions.",
    "no-action": "No shift-specific remedy is needed: the pooled reference-to-shift gap is within ± {margin} points.",
    "more-baselines": "Train more, and more varied, baseline runs (data fractions, seeds) so the baseline line covers "
                      "the candidates' reference accuracy and its prediction band narrows.",
    "more-shift-data": "Evaluate on more examples: the evidence cannot yet separate a material gap from none. Both "
                       "sides count: more shifted images, and more reference test images (`--max-reference`, which "
                       "the quick budget sets to 4,000, or `--test-fraction`).",
    "try-other-pretrained": "The gap is extrapolation, which pre-training can address, but no candidate recovered it: "
                            "try a linear probe or LP-FT, a lower learning rate, or a different pre-trained backbone.",
    "resolve-recovery": "The candidates ({names}) recover {share} of the extrapolation gap: too uncertain to call "
                        "material or negligible. More baseline runs (`--baseline-seeds`, or the standard budget) "
                        "narrow the line's interval, more fine-tuning seeds (`--ft-seeds`) the candidates', and more "
                        "shifted images both.",
    "support-split": "Run the support split (reference and shifted features) to tell dataset bias from poor "
                     "extrapolation.",
}
_FAILED = {
    "support-split": "support split not available: dataset bias cannot be told apart from poor extrapolation",
    "pretrained-recovery": "the extrapolation component is material, which pre-training can address, but the "
                           "candidates do not recover a material share of it",
    "extrapolation-recovery": "the extrapolation component is material but whether the candidates recover it is "
                              "unresolved",
    "remaining-bias": "the bias component is material but whether a material part remains after pre-training is "
                      "unresolved",
    "split-size": "a support split is too small to assess its component",
    "components": "the gap is material but neither its bias nor its extrapolation component is resolved as material",
    "shift-size": "the pooled gap's interval neither excludes nor stays within the margin: too little data to tell "
                  "a material shift from none",
    "pretrained": "no pre-trained candidate was evaluated",
    "resampling": "no resampling replicates (bootstrap 0): no interval to decide on",
}


# --- classes and the rule ------------------------------------------------------------------------------------------



def judge(values: Mapping[str, Interval | float | None], beyond_band: Mapping[str, bool], config: VerdictConfig,
          pooled_gap: Interval | float | None, n_in: int | None = None, n_out: int | None = None,
          pi_in: float | None = None, pi_out: float | None = None) -> dict[str, str]:
    """Class of every quantity the rule reads; intervals (the decision) or plain values (one resample)."""
    m = config.material_points
    out = {name: _cls(values.get(name), m) for name in JUDGED}
    out["pooled_gap"] = _cls(pooled_gap, m)
    share_ok = {part: _cls(values.get(f"share_{part}"), config.material_share) == "material"
                for part in ("gap", "extrapolation")}
    if out["recovered_extrapolation"] == "material" and not (share_ok["extrapolation"]
                                                            and beyond_band.get("out_of_support", True)):
        out["recovered_extrapolation"] = "unresolved"
    if out["recovered_gap"] == "material" and not (share_ok["gap"] and beyond_band.get("shift", True)):
        out["recovered_gap"] = "unresolved"
    for part, n, pi in (("bias", n_in, pi_in), ("extrapolation", n_out, pi_out)):
        if pi is not None and pi < m:  # π·(ref − acc) ≤ π: a split this small cannot carry a material component
            out[part] = "negligible"
        elif n is not None and n < config.min_split_examples:
            out[part] = "unknown"
    return out


def _cls(value: Interval | float | None, margin: float) -> str:
    if value is None or isinstance(value, Interval):
        return classify(value, margin)
    return classify_point(float(value), margin)


def rule(c: Mapping[str, str], support: bool) -> tuple[str, str | None]:
    """(kind, failed check or None) from the classes of `judge`."""
    if c["pooled_gap"] == "negligible":
        return "no-shift", None
    if not support:
        return ("pretraining-helps", None) if c["recovered_gap"] == "material" else ("inconclusive", "support-split")
    # The candidates' own in-support drop is material and the baselines' bias component is not negligible.
    bias_left = c["remaining_bias"] == "material" and c["bias"] not in ("negligible", "material-negative")
    extrap = c["extrapolation"] == "material"
    recovered = extrap and c["recovered_extrapolation"] == "material"
    if bias_left and recovered:
        return "both", None
    if recovered and c["remaining_bias"] != "material":
        return "pretraining-helps", None
    if bias_left and not extrap:
        return "dataset-bias", None
    if c["bias"] == "material" and c["remaining_bias"] == "negligible" and c["recovered_bias"] == "material":
        return "pretraining-helps", None
    if extrap:
        return "inconclusive", ("extrapolation-recovery" if c["recovered_extrapolation"] == "unresolved"
                                else "pretrained-recovery")
    if c["bias"] == "material":
        return "inconclusive", "remaining-bias"
    if "unknown" in (c["bias"], c["extrapolation"]):
        return "inconclusive", "split-size"
    if c["pooled_gap"] in ("material", "material-negative"):
        return "inconclusive", "components"
    return "inconclusive", "shift-size"


def confidence_from(stability: float | None) -> str:
    if stability is None:
        return "low"
    return "high" if stability >= 0.95 else "medium" if stability >= 0.80 else "low"


# --- decide --------------------------------------------------------------------------------------------------------


def decide(inputs: VerdictInputs, config: VerdictConfig = VerdictConfig(),
           remedies: Sequence[Mapping[str, Any]] | None = None) -> Verdict:
    """Apply the rule to the pooled decision set and return the verdict with reasons and recommendations.

    Args:
        remedies: measured remedy recoveries, one dict per remedy in the `remedy_scores` format of
            `Scores.to_dict()` (keys `name` and `recovered` = {"gap"|"bias"|"extrapolation": {lower, mid, upper}
            or None}). They are quoted in the recommendations only; they never change the kind or confidence.
    """
    checks = list(inputs.checks)
    primary = max(inputs.candidates, key=lambda c: (c.selection_acc, c.ref_acc)).name if inputs.candidates else None
    pooled = inputs.pooled
    split_args = dict(n_in=inputs.n_in, n_out=inputs.n_out, pi_in=inputs.pi_in, pi_out=inputs.pi_out)
    if pooled is None:
        classes = judge({}, {}, config, inputs.pooled_gap, **split_args)
        kind, failed = rule(classes, inputs.support_available)
        if kind != "no-shift":
            kind, failed = "inconclusive", "pretrained"
    else:
        classes = judge(pooled.quantities, pooled.beyond_band, config, inputs.pooled_gap, **split_args)
        kind, failed = rule(classes, inputs.support_available)
    decided = [c for c in inputs.candidates if c.decided]
    reasons = [_gap_reason(inputs.pooled_gap, classes["pooled_gap"])]
    if pooled is not None and inputs.support_available:
        reasons.append(_components_reason(pooled, classes, inputs.pi_in, inputs.pi_out))
    reasons += _kind_reasons(kind, pooled)
    if failed is not None:
        checks.append(Check(failed, "FAIL", _FAILED[failed]))
        reasons.append(_FAILED[failed])
    disagree = _disagreement(inputs.candidates, config, inputs.pooled_gap, inputs.support_available, split_args)
    reasons += disagree[0]
    confidence = "low" if kind == "inconclusive" else confidence_from(inputs.stability)
    if disagree[1] and kind != "inconclusive":
        confidence = CONFIDENCE[max(CONFIDENCE.index(confidence) - 1, 0)]
    if inputs.stability:  # 0: no resample reached a kind (e.g. a failed check), which says nothing
        reasons.append(f"the same kind in {100 * inputs.stability:.0f}% of resamples (runs, examples, seeds and "
                       "the support mask redrawn)")
    if len(decided) > 1:
        reasons.append("decided on " + ", ".join(c.name for c in decided)
                       + " (selection accuracy within noise of the best), pooled")
    effects = {} if pooled is None else {
        name: _effect_dict(pooled.quantities.get(name), classes.get(name) or _cls(
            pooled.quantities.get(name), config.material_share if name.startswith("share") else config.material_points))
        for name in ("gap", "bias", "extrapolation", "remaining_bias", "remaining_extrapolation", "recovered_bias",
                     "recovered_extrapolation", "recovered_gap", "share_bias", "share_extrapolation", "share_gap")}
    effects["pooled_gap"] = _effect_dict(inputs.pooled_gap, classes["pooled_gap"])
    recs = recommendations(kind, failed, pooled, config, remedies)
    return Verdict(kind, confidence, "resampling", _dedupe(reasons), recs, checks, primary,
                   [c.name for c in decided], inputs.stability, effects)


def recommendations(kind: str, failed: str | None, pooled: CandidateEvidence | None, config: VerdictConfig,
                    remedies: Sequence[Mapping[str, Any]] | None = None) -> list[str]:
    """What to do for a kind; measured remedies (remedy_scores dicts) are quoted with the share they recover."""
    names = pooled.name if pooled is not None else "the candidates"
    q = pooled.quantities if pooled is not None else {}
    recs: list[str] = []
    if kind in ("pretraining-helps", "both"):
        part = "extrapolation" if q.get("share_extrapolation") is not None else "gap"
        template = REMEDIES["pretrain"] if part == "extrapolation" else REMEDIES["pretrain-whole"]
        recs.append(template.format(names=names, share=_share(q.get(f"share_{part}"))))
    if kind in ("dataset-bias", "both"):
        recs.append(REMEDIES["debias"])
    if kind == "no-shift":
        recs.append(REMEDIES["no-action"].format(margin=f"{100 * config.material_points:g}"))
    if failed in ("pretrained-recovery", "pretrained"):
        recs.append(REMEDIES["try-other-pretrained"])
    elif failed == "extrapolation-recovery":
        recs.append(REMEDIES["resolve-recovery"].format(names=names, share=_share(q.get("share_extrapolation"))))
    elif failed == "support-split":
        recs.append(REMEDIES["support-split"])
    elif failed in ("shift-size", "split-size", "remaining-bias"):
        recs.append(REMEDIES["more-shift-data"])
    elif failed == "components":
        recs.append(REMEDIES["more-baselines"])
    recs += [line for remedy in remedies or [] if (line := _remedy_line(remedy, kind)) is not None]
    return _dedupe(recs)


def _remedy_line(remedy: Mapping[str, Any], kind: str) -> str | None:
    """One measured remedy: the shares of the gap components it recovers, or its ER when no share is meaningful."""
    shares = [(k, _interval(v)) for k, v in (remedy.get("recovered") or {}).items()  # keys: gap, bias, extrapolation
              if v is not None and (k != "gap" or kind in ("no-shift", "inconclusive"))]
    measured = [f"{_share(iv)} of the {GAP_NAMES[k]}" for k, iv in shares if _quotable(iv)]
    acc = remedy.get("shift_acc")
    head = f"Measured remedy {remedy['name']}" + (f" (shifted accuracy {100 * acc:.1f}%)" if acc is not None else "")
    if measured:
        return head + ": recovers " + ", ".join(measured) + "."
    er = _interval(remedy.get("er"))
    if shares and er is not None:
        return (head + f": ER {100 * er.mid:+.1f} [{100 * er.lower:+.1f}, {100 * er.upper:+.1f}] points (no share "
                "quoted: at its own reference accuracy the baseline gap is too small to divide by).")
    return None


# --- text ----------------------------------------------------------------------------------------------------------


def _disagreement(candidates: Sequence[CandidateEvidence], config: VerdictConfig, pooled_gap: Interval | None,
                  support: bool, split_args: dict[str, Any]) -> tuple[list[str], bool]:
    """Per-candidate kinds; (reason lines, whether the decided candidates disagree)."""
    kinds = {c.name: rule(judge(c.quantities, c.beyond_band, config, pooled_gap, **split_args), support)[0]
             for c in candidates}
    if len(set(kinds.values())) <= 1:
        return [], False
    decided = {kinds[c.name] for c in candidates if c.decided}
    text = "strategies disagree: " + "; ".join(f"{c.strategy or c.name} → {kinds[c.name]}"
                                               + ("" if c.decided else " (not decided on)") for c in candidates)
    return [text], len(decided) > 1


def _kind_reasons(kind: str, pooled: CandidateEvidence | None) -> list[str]:
    if pooled is None:
        return []
    q = pooled.quantities
    if kind in ("dataset-bias", "both"):
        return [f"pre-training ({pooled.name}) recovers {_share(q.get('share_bias'))} of the bias gap; "
                f"{_pts(q.get('remaining_bias'))} points of bias remain: the rest needs de-biasing"]
    if kind == "pretraining-helps" and q.get("recovered_extrapolation") is not None:
        return [f"pre-training ({pooled.name}) recovers {_share(q.get('share_extrapolation'))} of the extrapolation "
                f"gap (ER_out {_pts(q.get('er_out_of_support'))} points); remaining bias "
                f"{_pts(q.get('remaining_bias'))} points"]
    if kind == "pretraining-helps":
        return [f"pre-training ({pooled.name}) recovers {_share(q.get('share_gap'))} of the baseline gap "
                f"(ER {_pts(q.get('er_shift'))} points)"]
    return []


def _gap_reason(gap: Interval | None, cls: str) -> str:
    return f"pooled reference-to-shift gap {_pts(gap)} points ({cls})"


def _components_reason(pooled: CandidateEvidence, classes: Mapping[str, str], pi_in: float | None,
                       pi_out: float | None) -> str:
    q = pooled.quantities
    return (f"baseline gap at the candidates' reference accuracy {_pts(q.get('gap'))} points = bias component "
            f"{_pts(q.get('bias'))} ({classes['bias']}, in-support {100 * (pi_in or 0):.0f}% of the shifted set) + "
            f"extrapolation component {_pts(q.get('extrapolation'))} ({classes['extrapolation']}, out-of-support "
            f"{100 * (pi_out or 0):.0f}%)")


def _effect_dict(interval: Interval | None, cls: str | None) -> dict[str, object] | None:
    return None if interval is None else {**interval.to_dict(), "class": cls or "unknown"}


def _interval(value: Any) -> Interval | None:
    if value is None or isinstance(value, Interval):
        return value
    return Interval(float(value["lower"]), float(value["mid"]), float(value["upper"]))


def _pts(interval: Interval | None) -> str:
    if interval is None:
        return "n/a"
    return f"{100 * interval.mid:+.1f} [{100 * interval.lower:+.1f}, {100 * interval.upper:+.1f}]"


def _quotable(interval: Interval | None) -> bool:
    return interval is not None and share_is_quotable(
        {"lower": interval.lower, "mid": interval.mid, "upper": interval.upper})


def _share(interval: Interval | None) -> str:
    if interval is None:
        return "an unknown share"
    if not _quotable(interval):
        return "an unquotable share (the gap it divides by is too small or too uncertain)"
    return f"{100 * interval.mid:.0f}% [{100 * interval.lower:.0f}, {100 * interval.upper:.0f}]"


def _dedupe(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))
