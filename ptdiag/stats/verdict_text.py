"""The verdict's words: its recommendations, the failed checks' sentences and the reason lines (ptdiag.stats.verdict
decides; this module only phrases what it decided)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ptdiag.schema import GAP_NAMES, share_is_quotable
from ptdiag.stats.intervals import Interval
from ptdiag.stats.thresholds import VerdictConfig
from ptdiag.stats.verdict_types import CandidateEvidence, RecipeCall, Recommendation, VerdictInputs

REMEDIES = {
    "pretrain": "Fine-tune with {recipe}: it recovers {amount} points of the extrapolation gap ({words}; {share}), "
                "the part caused by inputs the reference data never shows.{rest}",
    "pretrain-whole": "Fine-tune with {recipe}: it recovers {amount} points of the baseline gap on the shifted set "
                      "({share}).",
    "debias": "De-bias the reference data, which pre-training does not fix: reweight groups or examples by the "
              "density ratio so under-represented cases count more; retrain only the last layer on a small "
              "group-balanced set (DFR, Kirichenko et al. 2022); or collect a small de-biased set that covers the "
              "shifted conditions (`ptdiag curate RUN --n 200` lists shifted images to label, spread over classes "
              "and density-ratio bands; rerunning the analysis with `--curated-sizes 50,200,500` measures what "
              "fine-tuning on such a set buys, reusing the finished jobs).",
    "no-action": "No shift-specific remedy is needed: the pooled reference-to-shift gap is within ± {margin} points.",
    "more-baselines": "Train more, and more varied, baseline runs (data fractions, `--baseline-seeds`) so the "
                      "baseline line covers the recipes' reference accuracy and its interval narrows.",
    "more-shift-data": "Evaluate on more examples: the evidence cannot yet separate a material gap from none. Both "
                       "sides count: more shifted images, and more reference test images (`--max-reference`, which "
                       "the quick budget sets to 4,000, or `--test-fraction`).",
    "try-other-pretrained": "The gap is extrapolation, which pre-training can address, but no recipe recovers a "
                            "material amount of it ({recipes}): try another pre-trained backbone (`--model`), LP-FT "
                            "or full fine-tuning (`--strategies`), or collect data that covers the shifted inputs.",
    "resolve-recovery": "Whether {recipes} recover a material amount of the extrapolation gap is unresolved. More "
                        "baseline runs (`--baseline-seeds`, or the standard budget) narrow the line's interval, "
                        "more fine-tuning seeds (`--ft-seeds`) the recipes', and more shifted images both.{size}",
    "support-split": "Run the support split (reference and shifted features) to tell dataset bias from poor "
                     "extrapolation.",
    "check-shift": "Nothing to fix for this shift: models do better on it than on the reference. Check that the "
                   "shifted set is the data you meant (labels, classes).",
    "check-bias": "Part of the bias may remain after pre-training ({amount} points with {recipe}, not shown "
                  "negligible): check it with more shifted images, or de-bias as well.",
}
_FAILED = {
    "support-split": "support split not available: dataset bias cannot be told apart from poor extrapolation",
    "pretrained-recovery": "the extrapolation component is material, which pre-training can address, but no "
                           "recipe recovers a material amount of it",
    "extrapolation-recovery": "the extrapolation component is material but whether a recipe recovers a material "
                              "amount of it is unresolved",
    "remaining-bias": "the bias component is material but whether a material part remains after pre-training is "
                      "unresolved",
    "extrapolation-size": "bias remains, but the extrapolation component is not shown negligible: part of the gap "
                          "may be extrapolation",
    "split-size": "a support split is too small to assess its component",
    "components": "the gap is material but neither its bias nor its extrapolation component is resolved as material",
    "shift-size": "the pooled gap's interval neither excludes nor stays within the margin: too little data to tell "
                  "a material shift from none",
    "few-shifted": "too few shifted examples to judge the shift",
    "gap-at-recipes": "the gap pooled over all models is negligible, but the baseline line's gap at the recipes' "
                      "reference accuracy is not shown negligible: the shift may matter for models this accurate",
    "shift-easier": "the shifted set is easier than the reference (the gap is materially negative): there is no drop "
                    "for pre-training to recover",
    "baselines": "too few baseline training runs: the line's interval cannot be trusted",
    "pretrained": "no pre-trained recipe was evaluated",
    "resampling": "no resampling replicates (bootstrap 0): no interval to decide on",
}



def failed_text(failed: str, inputs: VerdictInputs, config: VerdictConfig) -> str:
    text = _FAILED[failed]
    if failed == "few-shifted":
        text += f" ({inputs.n_in + inputs.n_out} < {config.min_split_examples})"
    elif failed == "baselines":
        text += f" ({inputs.n_runs} < {config.min_runs}; checkpoints of one run count once)"
    return text



def recommendations(kind: str, failed: str | None, chosen: RecipeCall | None, calls: Sequence[RecipeCall],
                    config: VerdictConfig,
                    remedies: Sequence[Mapping[str, Any]] | None = None) -> list[Recommendation]:
    """What to do for a kind: codes are `REMEDIES` keys, or `measured-<method>` for a measured remedy quoted with
    the share it recovers (remedy_scores dicts)."""
    names = ", ".join(c.evidence.name for c in calls) or "the recipes"
    q = chosen.evidence.quantities if chosen is not None else {}
    recs: list[Recommendation] = []
    if kind in ("pretraining-helps", "both") and chosen is not None:
        code = "pretrain" if q.get("recovered_extrapolation") is not None else "pretrain-whole"
        recs.append(Recommendation(code, _pretrain_line(chosen, config)))
        if kind == "pretraining-helps" and not chosen.bias_shown_absent:
            recs.append(_advice("check-bias", amount=pts(q.get("remaining_bias")), recipe=chosen.evidence.name))
    if kind in ("dataset-bias", "both"):
        recs.append(_advice("debias"))
    if kind == "no-shift":
        recs.append(_advice("no-action", margin=f"{100 * config.material_margin:g}"))
    if failed == "pretrained-recovery":
        recs.append(_advice("try-other-pretrained", recipes=names))
    elif failed == "extrapolation-recovery":
        unresolved = [c for c in calls if c.classes["recovered_extrapolation"] == "unresolved"]
        recs.append(_advice("resolve-recovery", recipes=", ".join(c.evidence.name for c in unresolved) or names,
                            size=_evidence_needed(unresolved, config)))
    elif failed == "support-split":
        recs.append(_advice("support-split"))
    elif failed in ("shift-size", "split-size", "remaining-bias", "few-shifted", "extrapolation-size",
                    "gap-at-recipes"):
        recs.append(_advice("more-shift-data"))
    elif failed == "shift-easier":
        recs.append(_advice("check-shift"))
    elif failed in ("components", "baselines", "pretrained"):
        recs.append(_advice("more-baselines"))
    for remedy in remedies or []:  # curated fine-tunes are cited with their size curve (remedies.summary)
        if remedy.get("method") == "curated-finetune":
            continue
        line = _remedy_line(remedy, kind)
        if line is not None:
            recs.append(Recommendation(f"measured-{remedy.get('method') or 'remedy'}", line))
    return list(dict.fromkeys(recs))


def _evidence_needed(unresolved: Sequence[RecipeCall], config: VerdictConfig) -> str:
    """How much more evidence would clear the margin for the most promising unresolved recovery, if its estimate
    held and every source of the interval's width shrank as 1/√n (a rough size, said as such)."""
    intervals = [c.evidence.judged("recovered_extrapolation") for c in unresolved]
    best = max((i for i in intervals if i is not None), key=lambda i: i.mid, default=None)
    margin = config.material_margin
    if best is None or best.mid - best.lower <= 0:
        return ""
    if best.mid <= margin:
        return (f" The best estimate, {pts(best)} points, is below the {100 * margin:g}-point margin: more data is "
                "more likely to show the recovery not material than material.")
    times = ((best.mid - best.lower) / (best.mid - margin)) ** 2
    return (f" If the best estimate ({pts(best)} points) holds, about {times:.1f}× the evidence (runs, seeds and "
            f"shifted images alike; a rough size) would clear the {100 * margin:g}-point margin.")


def _advice(code: str, **numbers: str) -> Recommendation:
    """The `REMEDIES` sentence of `code` with this run's numbers filled in."""
    return Recommendation(code, REMEDIES[code].format(**numbers), tuple(numbers.items()))


def _pretrain_line(call: RecipeCall, config: VerdictConfig) -> str:
    q = call.evidence.quantities
    if q.get("recovered_extrapolation") is None:
        return REMEDIES["pretrain-whole"].format(recipe=call.evidence.name, amount=pts(q.get("recovered_gap")),
                                                 share=share_text(q.get("share_gap")) + " of it")
    share = q.get("share_extrapolation")
    rest = q.get("remaining_extrapolation")
    left = (f" {pts(rest)} points of it remain: collect data that covers the shifted inputs for the rest."
            if rest is not None and rest.lower > 0 and share is not None and share.mid < 0.75 else "")
    return REMEDIES["pretrain"].format(recipe=call.evidence.name, amount=pts(q.get("recovered_extrapolation")),
                                       words=_share_words(share, config), share=share_text(share), rest=left)


def _share_words(share: Interval | None, config: VerdictConfig) -> str:
    if share is None or not _quotable(share):
        return "a share that cannot be quoted"
    return ("most of it" if share.mid >= 0.75 else "part of it" if share.mid >= config.material_share
            else "a little of it")


def _remedy_line(remedy: Mapping[str, Any], kind: str) -> str | None:
    """One measured remedy: the shares of the gap components it recovers, or its ER when no share is meaningful."""
    shares = [(k, interval(v)) for k, v in (remedy.get("recovered") or {}).items()  # keys: gap, bias, extrapolation
              if v is not None and (k != "gap" or kind in ("no-shift", "inconclusive"))]
    measured = [f"{share_text(iv)} of the {GAP_NAMES[k]}" for k, iv in shares if _quotable(iv)]
    acc = remedy.get("shift_acc")
    head = f"Measured remedy {remedy['name']}" + (f" (shifted accuracy {100 * acc:.1f}%)" if acc is not None else "")
    if measured:
        return head + ": recovers " + ", ".join(measured) + "."
    er = interval(remedy.get("er"))
    if shares and er is not None:
        return (head + f": ER {100 * er.mid:+.1f} [{100 * er.lower:+.1f}, {100 * er.upper:+.1f}] points (no share "
                "quoted: at its own reference accuracy the baseline gap is too small to divide by).")
    return None


# --- text ----------------------------------------------------------------------------------------------------------


def recipe_lines(calls: Sequence[RecipeCall]) -> list[str]:
    """One line naming each recipe's own reading (nothing pooled)."""
    parts = []
    for c in calls:
        q = c.evidence.quantities
        er = q.get("er_out_of_support") or q.get("er_shift")
        label = "ER_out" if q.get("er_out_of_support") is not None else "ER"
        recovery = c.classes["recovered_extrapolation" if q.get("recovered_extrapolation") else "recovered_gap"]
        split = "out_of_support" if q.get("er_out_of_support") is not None else "shift"
        note = "" if c.evidence.beyond_band.get(split, True) else ", inside the from-scratch baselines' scatter"
        note += ("" if c.admissible_out else ", cannot carry the claim: its out-of-support accuracy is more than the "
                 "margin below the best-reference recipe's")
        parts.append(f"{c.evidence.strategy or c.evidence.name} → {c.kind} ({label} {pts(er)} points, recovery "
                     f"{recovery}{note})")
    return ["recipes, each on its own evidence: " + "; ".join(parts)]


def kind_reasons(kind: str, chosen: RecipeCall | None, config: VerdictConfig) -> list[str]:
    if chosen is None:
        return []
    q, name = chosen.evidence.quantities, chosen.evidence.name
    if kind in ("dataset-bias", "both"):
        return [f"bias remains after pre-training for every recipe ({name}: {pts(q.get('remaining_bias'))} points, "
                f"recovering {share_text(q.get('share_bias'))} of the bias gap): the rest needs de-biasing"]
    if kind == "pretraining-helps" and q.get("recovered_extrapolation") is not None:
        return [f"pre-training helps with {name}: ER_out {pts(q.get('er_out_of_support'))} points, recovering "
                f"{pts(q.get('recovered_extrapolation'))} points ({share_text(q.get('share_extrapolation'))}) of the "
                f"extrapolation gap; remaining bias {pts(q.get('remaining_bias'))} points "
                f"({chosen.classes['remaining_bias']})"]
    if kind == "pretraining-helps":
        return [f"pre-training helps with {name}: it recovers {share_text(q.get('share_gap'))} of the baseline gap "
                f"(ER {pts(q.get('er_shift'))} points)"]
    return []


def gap_reason(gap: Interval | None, cls: str) -> str:
    return f"pooled reference-to-shift gap {pts(gap)} points ({cls})"


def components_reason(recipe: CandidateEvidence, classes: Mapping[str, str], pi_in: float | None,
                       pi_out: float | None) -> str:
    q = recipe.quantities
    return (f"baseline gap at {recipe.name}'s reference accuracy {pts(q.get('gap'))} points = bias component "
            f"{pts(q.get('bias'))} ({classes['bias']}, in-support {100 * (pi_in or 0):.0f}% of the shifted set) + "
            f"extrapolation component {pts(q.get('extrapolation'))} ({classes['extrapolation']}, out-of-support "
            f"{100 * (pi_out or 0):.0f}%)")


def effect_dict(interval: Interval | None, cls: str | None) -> dict[str, object] | None:
    return None if interval is None else {**interval.to_dict(), "class": cls or "unknown"}


def interval(value: Any) -> Interval | None:
    if value is None or isinstance(value, Interval):
        return value
    return Interval(float(value["lower"]), float(value["mid"]), float(value["upper"]))


def pts(interval: Interval | None) -> str:
    if interval is None:
        return "n/a"
    return f"{100 * interval.mid:+.1f} [{100 * interval.lower:+.1f}, {100 * interval.upper:+.1f}]"


def _quotable(interval: Interval | None) -> bool:
    return interval is not None and share_is_quotable(
        {"lower": interval.lower, "mid": interval.mid, "upper": interval.upper})


def share_text(interval: Interval | None) -> str:
    if interval is None:
        return "an unknown share"
    if not _quotable(interval):
        return "an unquotable share (the gap it divides by is too small or too uncertain)"
    return f"{100 * interval.mid:.0f}% [{100 * interval.lower:.0f}, {100 * interval.upper:.0f}]"


def dedupe(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))
