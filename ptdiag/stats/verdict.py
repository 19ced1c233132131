"""The verdict: every rule and threshold that turns the statistics into an answer, in one module.

The rule of thumb (Cohen-Wang et al. 2024): pre-training can mitigate poor extrapolation (out-of-support shift)
but not dataset bias (in-support shift). The verdict reads

* the *gap decomposition* of the baseline line at the primary candidate's reference accuracy:
  bias component π_in·(ref − in) and extrapolation component π_out·(ref − out);
* the primary candidate's effective robustness on each split, judged by **size** (points and share of the
  baseline drop recovered), not only by whether its interval excludes zero.

Thresholds live in `VerdictConfig`; change them there. Defaults are principled, not tuned: 2 accuracy points is
about the binomial 95 % half-width of a 2,500-example test set, and 25 % of a drop is the smallest share a
practitioner would act on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from ptdiag.stats.intervals import Check, Interval, difference_interval
from ptdiag.stats.thresholds import VerdictConfig

KINDS = ("pretraining-helps", "dataset-bias", "both", "no-shift", "inconclusive")
CONFIDENCE = ("low", "medium", "high")
SPLITS = ("shift", "in_support", "out_of_support")


# ---------------------------------------------------------------------------------------------------------------
# Inputs (built by ptdiag.stats.score; plain data so the rules can be tested on their own)
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SplitEffect:
    """A candidate's effect on one split.

    Attributes:
        er: ER with the interval used for decisions (line band, widened by the bootstrap interval if any).
        share: ER divided by the baseline line's drop at the candidate's reference accuracy (None: no drop).
        evidence: "line" (r² ≥ min_r2), "nonparametric" (weak line, compared with baselines) or "none".
        comparison: candidate minus the best comparable baseline, with a binomial interval (nonparametric).
        comparison_matched: a baseline reached the candidate's reference accuracy (a fair comparison).
    """

    er: Interval | None
    share: float | None
    evidence: str
    comparison: Interval | None = None
    comparison_matched: bool = True

    def effect(self, config: VerdictConfig) -> str:
        """'helps', 'hurts', 'none' (not material) or 'unknown' (no usable evidence)."""
        if self.evidence == "line" and self.er is not None:
            return _classify(self.er, self.share, config)
        if self.evidence == "nonparametric" and self.comparison is not None:
            return _classify(self.comparison, None, config)
        return "unknown"

    def estimate(self) -> Interval | None:
        """The interval the decision used: the line's ER, or the nonparametric difference."""
        return self.er if self.evidence == "line" else self.comparison


def _classify(estimate: Interval, share: float | None, config: VerdictConfig) -> str:
    share_ok = share is None or abs(share) >= config.material_share
    if estimate.lower > 0 and estimate.mid >= config.material_points and share_ok:
        return "helps"
    if estimate.upper < 0 and estimate.mid <= -config.material_points and share_ok:
        return "hurts"
    return "none"


@dataclass(frozen=True)
class Components:
    """Gap decomposition of the baseline line at a reference accuracy (bias/extrapolation None if unknown)."""

    gap: float
    bias: float | None
    extrapolation: float | None


@dataclass(frozen=True)
class CandidateEvidence:
    """One pre-trained candidate (seeds already averaged)."""

    name: str
    strategy: str
    ref_acc: float
    selection_acc: float  # reference-only accuracy used to pick the primary candidate (val_acc, else ref_acc)
    effects: dict[str, SplitEffect]
    baseline_components: Components | None = None
    extrapolation_distance: float = 0.0


@dataclass(frozen=True)
class GapObservation:
    """A model's reference and shifted accuracy, with the example counts behind them (None: unknown)."""

    name: str
    ref_acc: float
    shift_acc: float
    ref_n: float | None = None
    shift_n: float | None = None


@dataclass(frozen=True)
class VerdictInputs:
    candidates: Sequence[CandidateEvidence]
    gaps: Sequence[GapObservation]
    support_available: bool
    n_in: int | None = None
    n_out: int | None = None
    pi_in: float | None = None
    pi_out: float | None = None
    n_baselines: int | None = None
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

    def to_dict(self) -> dict[str, object]:
        return {
            "kind": self.kind, "confidence": self.confidence, "evidence": self.evidence, "primary": self.primary,
            "reasons": list(self.reasons), "recommendations": list(self.recommendations),
            "checks": [c.to_dict() for c in self.checks],
        }


# ---------------------------------------------------------------------------------------------------------------
# Remedies: what each recommendation is, in one place
# ---------------------------------------------------------------------------------------------------------------

REMEDIES = {
    "pretrain": "Fine-tune a pre-trained model ({primary}): it recovers {share} of the out-of-support drop, the part "
                "of the gap caused by inputs the reference data never shows.",
    "pretrain-whole": "Fine-tune a pre-trained model ({primary}): it recovers {share} of the baseline drop on the "
                      "shifted set.",
    "debias": "De-bias the reference data, which pre-training does not fix: reweight groups or examples by the "
              "density ratio so under-represented cases count more; retrain only the last layer on a small "
              "group-balanced set (DFR, Kirichenko et al. 2022); or collect a small de-biased set that covers the "
              "shifted conditions.",
    "no-action": "No shift-specific remedy is needed: the shifted accuracy is within noise of the reference accuracy.",
    "other-strategy": "Strategies disagree: {best} keeps more robustness than {primary} on the {split} split. "
                      "Confirm it on held-out shifted data before switching (picking by shifted accuracy overfits).",
    "more-baselines": "Train more, and more varied, baselines (data fractions, epochs, seeds) so the baseline line "
                      "covers the candidates' reference accuracy and r² can be checked.",
    "more-shift-data": "Collect more shifted examples: the {split} split has only {n} examples (< {min}).",
    "partial-in-support": "Pre-training recovered part of an in-support (dataset-bias) gap here, which the rule of "
                          "thumb does not expect at scale (at small scale pre-trained features can lean less on a "
                          "spurious cue). Treat it as a partial fix: fine-tuning helps, but the rest of the gap is "
                          "bias, so de-bias the data too.",
    "try-other-pretrained": "The gap is extrapolation, which pre-training can address, but no candidate recovered it: "
                            "try a linear probe or LP-FT, a lower learning rate, or a different pre-trained backbone.",
}


# ---------------------------------------------------------------------------------------------------------------
# The rules
# ---------------------------------------------------------------------------------------------------------------


def choose_primary(candidates: Sequence[CandidateEvidence]) -> CandidateEvidence:
    """The candidate with the best *reference-only* accuracy; never chosen by shifted accuracy (that overfits)."""
    return max(candidates, key=lambda c: (c.selection_acc, c.ref_acc))


def decide(inputs: VerdictInputs, config: VerdictConfig = VerdictConfig()) -> Verdict:
    """Apply the rules to the statistics and return the verdict with confidence, reasons and recommendations."""
    checks = list(inputs.checks)
    if _gaps_within_noise(inputs.gaps, config):
        return _no_shift(inputs, checks, config)
    if not inputs.candidates:
        checks.append(Check("pretrained", "FAIL", "no pre-trained candidate was evaluated"))
        return Verdict("inconclusive", "low", "none", ["no pre-trained candidate to compare with the baselines",
                                                       _largest_gap_reason(inputs.gaps)],
                       [REMEDIES["try-other-pretrained"]], checks)
    primary = choose_primary(inputs.candidates)
    if not inputs.support_available:
        return _without_support(inputs, primary, checks, config)
    return _with_support(inputs, primary, checks, config)


def _with_support(inputs: VerdictInputs, primary: CandidateEvidence, checks: list[Check],
                  config: VerdictConfig) -> Verdict:
    comps = primary.baseline_components
    n_in, n_out = inputs.n_in or 0, inputs.n_out or 0
    pi_in, pi_out = inputs.pi_in or 0.0, inputs.pi_out or 0.0
    bias_mat = _component_material(comps.bias if comps else None, comps.gap if comps else 0.0, n_in, pi_in,
                                   primary.ref_acc, config)
    extrap_mat = _component_material(comps.extrapolation if comps else None, comps.gap if comps else 0.0, n_out,
                                     pi_out, primary.ref_acc, config)
    eff_in = primary.effects["in_support"].effect(config) if n_in >= config.min_split_examples else "unknown"
    eff_out = primary.effects["out_of_support"].effect(config) if n_out >= config.min_split_examples else "unknown"
    for split, n in (("in_support", n_in), ("out_of_support", n_out)):
        if n < config.min_split_examples:
            checks.append(Check(f"split-size ({split})", "WARN",
                                f"{n} shifted examples {split.replace('_', '-')} (< {config.min_split_examples}): "
                                "claims about this split are inconclusive"))

    reasons = [_components_reason(comps, pi_in, pi_out)]
    recs: list[str] = []
    helps_out = extrap_mat is True and eff_out == "helps"
    decisive: list[str] = []
    if helps_out and bias_mat is True and eff_in != "helps":
        kind, decisive = "both", ["in_support", "out_of_support"]
        recs += [_pretrain_rec(primary), REMEDIES["debias"]]
    elif helps_out:
        kind, decisive = "pretraining-helps", ["out_of_support"]
        recs.append(_pretrain_rec(primary))
    elif bias_mat is True and eff_in in ("none", "hurts"):
        kind, decisive = "dataset-bias", ["in_support"]
        recs.append(REMEDIES["debias"])
        if extrap_mat is True:  # material extrapolation the primary does not recover: show it too
            decisive.append("out_of_support")
            recs.append(REMEDIES["try-other-pretrained"])
    else:
        kind = "inconclusive"
        decisive = ["out_of_support"] if extrap_mat else ["in_support"] if bias_mat else ["shift"]
        failed = _failed_check(bias_mat, extrap_mat, eff_in, eff_out, n_in, n_out, primary, config)
        checks.append(failed)
        reasons.append(failed.message)
        recs += _inconclusive_recs(failed.name, n_in, n_out, config)

    if kind != "inconclusive":  # an inconclusive verdict's failed check already carries its numbers
        for split in decisive:
            label = {"in_support": "ER_in", "out_of_support": "ER_out", "shift": "ER"}[split]
            reasons.append(f"{primary.name}: {_effect_text(primary.effects[split], label, split)}")
    reasons += _disagreement(inputs.candidates, primary, decisive, config, recs)
    evidence = _evidence(primary, decisive)
    confidence = "low" if kind == "inconclusive" else _confidence(primary, decisive, inputs.n_baselines, config)
    return Verdict(kind, confidence, evidence, _dedupe(reasons)[:4], _dedupe(recs), checks, primary.name)


def _without_support(inputs: VerdictInputs, primary: CandidateEvidence, checks: list[Check],
                     config: VerdictConfig) -> Verdict:
    checks.append(Check("support-split", "FAIL",
                        "support split not available: dataset bias cannot be told apart from poor extrapolation"))
    whole = primary.effects["shift"]
    effect = whole.effect(config)
    reasons = [f"{primary.name}: {_effect_text(whole, 'ER', 'shift')}", _largest_gap_reason(inputs.gaps),
               "without the support split the gap cannot be decomposed into bias and extrapolation"]
    recs: list[str] = []
    reasons += _disagreement(inputs.candidates, primary, ["shift"], config, recs)
    if effect == "helps":
        confidence = _lower(_confidence(primary, ["shift"], inputs.n_baselines, config))
        return Verdict("pretraining-helps", confidence, _evidence(primary, ["shift"]), _dedupe(reasons)[:4],
                       [_pretrain_rec(primary, split="shift")] + recs, checks, primary.name)
    return Verdict("inconclusive", "low", _evidence(primary, ["shift"]), _dedupe(reasons)[:4],
                   ["Run the support split (reference and shifted features) to tell dataset bias from poor "
                    "extrapolation."] + recs, checks, primary.name)


def _no_shift(inputs: VerdictInputs, checks: list[Check], config: VerdictConfig) -> Verdict:
    has_counts = all(g.ref_n and g.shift_n for g in inputs.gaps)
    checks.append(Check("gap", "PASS", "the reference-to-shift gap is within noise for every model"))
    reasons = [_largest_gap_reason(inputs.gaps),
               f"every model's gap is below {100 * config.material_points:.1f} points or within its binomial "
               f"{100 * config.confidence_level:.0f}% interval" + ("" if has_counts else " (example counts unknown: "
                                                                   "judged by size only)")]
    primary = choose_primary(inputs.candidates).name if inputs.candidates else None
    return Verdict("no-shift", "high" if has_counts else "medium", "binomial", reasons, [REMEDIES["no-action"]],
                   checks, primary)


# --- helpers ---------------------------------------------------------------------------------------------------


def _gaps_within_noise(gaps: Sequence[GapObservation], config: VerdictConfig) -> bool:
    if not gaps:
        return False
    for g in gaps:
        gap = g.ref_acc - g.shift_acc
        if abs(gap) < config.material_points:
            continue
        if g.ref_n and g.shift_n:
            if difference_interval(g.ref_acc, g.ref_n, g.shift_acc, g.shift_n, config.confidence_level).excludes_zero():
                return False
        else:
            return False
    return True


def _component_material(value: float | None, gap: float, n_split: int, pi: float, ref_acc: float,
                        config: VerdictConfig) -> bool | None:
    """True/False when the component is (not) material; None when it cannot be assessed.

    A split too small to measure still has a bounded component: π·(ref − acc) ≤ π·ref, so a tiny split whose
    bound is below the threshold is immaterial whatever its accuracy.
    """
    if pi * ref_acc < config.material_points:
        return False
    if value is None or n_split < config.min_split_examples:
        return None
    return value >= config.material_points and value >= config.material_share * max(gap, 0.0)


def _failed_check(bias_mat: bool | None, extrap_mat: bool | None, eff_in: str, eff_out: str, n_in: int, n_out: int,
                  primary: CandidateEvidence, config: VerdictConfig) -> Check:
    if extrap_mat is True and eff_out in ("none", "hurts"):
        return Check("pretrained-recovery", "FAIL",
                     "the gap is mostly extrapolation, which pre-training can address, but the primary candidate "
                     f"does not recover it ({_effect_text(primary.effects['out_of_support'], 'ER_out')})")
    # A split too small to measure only blocks the verdict when its component could be material (None); one
    # bounded below the threshold by its share of the shifted set (False) does not matter whatever its accuracy.
    if extrap_mat is None and n_out < config.min_split_examples:
        return Check("split-size", "FAIL", f"only {n_out} out-of-support examples: the extrapolation side cannot be "
                                           "assessed")
    if bias_mat is None and n_in < config.min_split_examples:
        return Check("split-size", "FAIL", f"only {n_in} in-support examples: the bias side cannot be assessed")
    if (eff_out == "unknown" and extrap_mat is not False) or (eff_in == "unknown" and bias_mat is not False):
        return Check("evidence", "FAIL", "neither the baseline line (r² too low) nor the nonparametric comparison "
                                         "supports a conclusion on the split that matters")
    if bias_mat is True and eff_in == "helps":
        return Check("in-support-er", "FAIL", "the candidate shows material in-support ER, which the rule of thumb "
                                              "does not expect; check hyperparameters and the support split")
    return Check("components", "FAIL", "neither the bias nor the extrapolation component is material "
                                       f"(≥ {100 * config.material_points:.0f} points and ≥ "
                                       f"{100 * config.material_share:.0f}% of the gap)")


def _inconclusive_recs(check_name: str, n_in: int, n_out: int, config: VerdictConfig) -> list[str]:
    if check_name == "pretrained-recovery":
        return [REMEDIES["try-other-pretrained"]]
    if check_name == "in-support-er":
        return [REMEDIES["partial-in-support"], REMEDIES["debias"]]
    if check_name == "split-size":
        split, n = ("out-of-support", n_out) if n_out < n_in else ("in-support", n_in)
        return [REMEDIES["more-shift-data"].format(split=split, n=n, min=config.min_split_examples)]
    return [REMEDIES["more-baselines"]]


def _disagreement(candidates: Sequence[CandidateEvidence], primary: CandidateEvidence, splits: Sequence[str],
                  config: VerdictConfig, recs: list[str]) -> list[str]:
    """Per-strategy results stay visible when candidates disagree on a decisive split (e.g. LP +44 vs FT −6)."""
    out: list[str] = []
    for split in splits:
        if split not in primary.effects:
            continue
        mine = primary.effects[split].effect(config)
        others = [c for c in candidates if c is not primary and split in c.effects
                  and c.effects[split].effect(config) not in (mine, "unknown")]
        if not others:
            continue
        label = {"in_support": "ER_in", "out_of_support": "ER_out", "shift": "ER"}[split]
        parts = [f"{c.strategy or c.name} {_points(c.effects[split].estimate())}" for c in [primary, *others]
                 if c.effects[split].estimate() is not None]
        out.append(f"strategies disagree on {label}: " + " vs ".join(parts)
                   + f"; the verdict uses {primary.name} (best reference accuracy)")
        best = max(others, key=lambda c: c.effects[split].estimate().mid if c.effects[split].estimate() else -1)
        if best.effects[split].effect(config) == "helps":
            recs.append(REMEDIES["other-strategy"].format(best=best.name, primary=primary.name,
                                                          split=split.replace("_", "-")))
    return out


def _confidence(primary: CandidateEvidence, splits: Sequence[str], n_baselines: int | None,
                config: VerdictConfig) -> str:
    """Start high; each weakness lowers one level: nonparametric evidence, no baseline reaching the candidate's
    accuracy, fewer than `min_baselines` baselines, a candidate far beyond the baselines' range, and an effect
    judged "not material" whose interval still reaches a material size (absence of evidence is weaker evidence)."""
    level = 2
    if any(_inconclusive_null(primary.effects[s], config) for s in splits if s in primary.effects):
        level -= 1
    if any(primary.effects[s].evidence == "nonparametric" for s in splits if s in primary.effects):
        level -= 1
    if any(not primary.effects[s].comparison_matched for s in splits
           if s in primary.effects and primary.effects[s].evidence == "nonparametric"):
        level -= 1
    if n_baselines is not None and n_baselines < config.min_baselines:
        level -= 1
    if primary.extrapolation_distance > config.max_extrapolation:
        level -= 1
    return CONFIDENCE[max(level, 0)]


def _inconclusive_null(effect: SplitEffect, config: VerdictConfig) -> bool:
    """A 'none' effect whose interval cannot rule out a material one (upper end ≥ the materiality thresholds)."""
    estimate = effect.estimate()
    if estimate is None or effect.effect(config) != "none" or estimate.mid <= 0:
        return False
    upper_share = None if effect.share is None else effect.share * estimate.upper / estimate.mid
    return estimate.upper >= config.material_points and (upper_share is None or upper_share >= config.material_share)


def _lower(confidence: str) -> str:
    return CONFIDENCE[max(CONFIDENCE.index(confidence) - 1, 0)]


def _evidence(primary: CandidateEvidence, splits: Sequence[str]) -> str:
    kinds = sorted({primary.effects[s].evidence for s in splits if s in primary.effects})
    return "+".join(kinds) if kinds else "none"


def _points(interval: Interval | None) -> str:
    if interval is None:
        return "n/a"
    return f"{100 * interval.mid:+.1f} [{100 * interval.lower:+.1f}, {100 * interval.upper:+.1f}]"


def _effect_text(effect: SplitEffect, label: str, split: str = "out_of_support") -> str:
    drop = {"shift": "drop", "in_support": "in-support drop", "out_of_support": "out-of-support drop"}[split]
    if effect.evidence == "line" and effect.er is not None:
        share = "" if effect.share is None else f", {100 * effect.share:.0f}% of the baseline {drop}"
        return f"{label} {_points(effect.er)} points{share}"
    if effect.evidence == "nonparametric" and effect.comparison is not None:
        fair = "" if effect.comparison_matched else " (no baseline reaches its reference accuracy: nearest ones used)"
        return (f"{label}: weak line, shifted accuracy {_points(effect.comparison)} points vs the best comparable "
                f"baseline{fair}")
    return f"{label} could not be estimated"


def _components_reason(comps: Components | None, pi_in: float, pi_out: float) -> str:
    if comps is None:
        return "the gap could not be decomposed"
    bias = "n/a" if comps.bias is None else f"{100 * comps.bias:.1f}"
    extrap = "n/a" if comps.extrapolation is None else f"{100 * comps.extrapolation:.1f}"
    return (f"baseline gap {100 * comps.gap:.1f} points = bias component {bias} (in-support, {100 * pi_in:.0f}% of "
            f"the shifted set) + extrapolation component {extrap} (out-of-support, {100 * pi_out:.0f}%)")


def _largest_gap_reason(gaps: Sequence[GapObservation]) -> str:
    if not gaps:
        return "no model accuracies"
    g = max(gaps, key=lambda g: abs(g.ref_acc - g.shift_acc))
    return (f"largest reference-to-shift gap {100 * (g.ref_acc - g.shift_acc):+.1f} points ({g.name}: "
            f"{100 * g.ref_acc:.1f}% → {100 * g.shift_acc:.1f}%)")


def _pretrain_rec(primary: CandidateEvidence, split: str = "out_of_support") -> str:
    share = primary.effects[split].share
    share_text = f"{100 * share:.0f}%" if share is not None else "a material share"
    template = REMEDIES["pretrain"] if split == "out_of_support" else REMEDIES["pretrain-whole"]
    return template.format(primary=primary.name, share=share_text)


def _dedupe(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))
