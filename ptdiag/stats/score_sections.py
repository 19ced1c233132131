"""The results.json sections `score()` writes from the resampled quantities: rows, fits, decomposition, checks.

Pure numpy/scipy: no torch import.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import stats

from ptdiag.errors import DataError
from ptdiag.stats.decompose import er_consistency
from ptdiag.stats.effects import classify
from ptdiag.stats.intervals import Check, Interval
from ptdiag.stats.line import fit_line, transform
from ptdiag.stats.resampling import MIN_RELIABILITY, Design, Replicates
from ptdiag.stats.support import SupportSplit
from ptdiag.stats.thresholds import VerdictConfig

# score.Group, score.ModelEval and score.StatsConfig are passed in; typed Any here (score imports this module).
Group = ModelEval = StatsConfig = Any

FIT_SPLITS = {"shift": "shift", "in_support": "in_support", "out_of_support": "out_of_support",
              "out_matched": "out_of_support_matched"}
_POINTS = ("gap", "bias", "extrapolation", "remaining_gap", "remaining_bias", "remaining_extrapolation",
           "recovered_gap", "recovered_bias", "recovered_extrapolation")
_SHARES = ("share_gap", "share_bias", "share_extrapolation")


def _d(interval: Interval | None) -> dict[str, float] | None:
    return None if interval is None else interval.to_dict()


def _point(reps: Replicates, name: str, g: int) -> float | None:
    col = reps.values.get(name)
    if col is None or not np.isfinite(col[0, g]):
        return None
    return float(col[0, g])


# --- rows ------------------------------------------------------------------------------------------------------


def baseline_row(model: ModelEval, design: Design, i: int) -> dict[str, Any]:
    shift = design.base_shift[i]
    row = {"name": model.name, **model.meta, "run": model.run, "ref_acc": float(design.base_ref[i].mean()),
           "shift_acc": float(shift.mean()), "in_acc": None, "out_acc": None}
    if design.masks is not None:
        mask = design.masks[0]
        row["in_acc"] = float(shift[mask].mean()) if mask.any() else None
        row["out_acc"] = float(shift[~mask].mean()) if (~mask).any() else None
    return row


def candidate_row(group: Group, reps: Replicates, q: dict[str, Interval | None], band: dict[str, dict[str, Any]],
                  g: int, decided: bool, primary: str | None, fits: dict[str, dict[str, Any] | None],
                  support: SupportSplit | None, config: StatsConfig) -> dict[str, Any]:
    vcfg = config.verdict
    ref = float(reps.values["ref"][0, g])
    k = group.ref.shape[0]
    row: dict[str, Any] = {
        "name": group.name, **group.meta, "ref_acc": ref, "shift_acc": _point(reps, "acc_shift", g),
        "in_acc": _point(reps, "acc_in_support", g), "out_acc": _point(reps, "acc_out_of_support", g),
        "n_seeds": k, "seed_spread": _seed_spread(group) if k > 1 else None,
        "predicted_shift_acc": _point(reps, "pred_shift", g),
        "er": _d(q.get("er_shift")), "er_in": _d(q.get("er_in_support")), "er_out": _d(q.get("er_out_of_support")),
        "er_out_matched": _d(q.get("er_out_matched")),
        "effects": {n: _effect(q.get(n), vcfg.material_margin) for n in _POINTS}
        | {n: _effect(q.get(n), vcfg.material_share) for n in _SHARES},
        "recovered": recovered(q), "prediction_band": {s: b["half_width"] for s, b in band.items()},
        "beyond_band": {s: b["beyond"] for s, b in band.items()}, "decided": decided, "primary": group.name == primary,
        "evidence": "resampling",
        "share_recovered": {s: _mid(q.get(n)) for s, n in (("shift", "share_gap"), ("in_support", "share_bias"),
                                                            ("out_of_support", "share_extrapolation"))},
    }
    distance = _extrapolation_distance(fits.get("shift"), ref, config.scale)
    row["extrapolated"], row["extrapolation_distance"] = distance > 0, distance
    if support is not None and support.backbone is not None:
        row["support_backbone_shared"] = group.meta.get("model") == support.backbone
    return row


def remedy_row(group: Group, reps: Replicates, q: dict[str, Interval | None], g: int) -> dict[str, Any]:
    """The `remedy_scores` contract: accuracies, ER intervals and the share of each gap component recovered."""
    return {
        "name": group.name, "method": group.meta.get("method"), "ref_acc": _point(reps, "ref", g),
        "shift_acc": _point(reps, "acc_shift", g), "in_acc": _point(reps, "acc_in_support", g),
        "out_acc": _point(reps, "acc_out_of_support", g),
        "er": _d(q.get("er_shift")), "er_in": _d(q.get("er_in_support")), "er_out": _d(q.get("er_out_of_support")),
        "recovered": recovered(q),
    }


def recovered(q: dict[str, Interval | None]) -> dict[str, dict[str, float] | None]:
    """Share of each baseline-line gap component (at the model's reference accuracy) the model recovers."""
    return {"gap": _d(q.get("share_gap")), "bias": _d(q.get("share_bias")),
            "extrapolation": _d(q.get("share_extrapolation"))}


def _effect(interval: Interval | None, margin: float) -> dict[str, object] | None:
    return None if interval is None else {**interval.to_dict(), "class": classify(interval, margin)}


def _mid(interval: Interval | None) -> float | None:
    return None if interval is None else interval.mid


def _seed_spread(group: Group) -> dict[str, float]:
    """1.96·SD/√k over seeds (the paper's seed error bar; the intervals resample the seeds themselves)."""
    k = group.ref.shape[0]
    return {"ref_acc": float(1.96 * np.std(group.ref.mean(axis=1), ddof=1) / np.sqrt(k)),
            "shift_acc": float(1.96 * np.std(group.shift.mean(axis=1), ddof=1) / np.sqrt(k))}


def _extrapolation_distance(fit: dict[str, Any] | None, ref: float, scale: str) -> float:
    if fit is None:
        return 0.0
    n = fit.get("ref_n")
    u0 = float(transform(ref, scale, n))  # type: ignore[arg-type]
    lo, hi = (float(v) for v in transform(np.array(fit["ref_range"]), scale, n))  # type: ignore[arg-type]
    return max(0.0, lo - u0, u0 - hi)


# --- prediction band -------------------------------------------------------------------------------------------


def prediction_bands(reps: Replicates, g: int, scale: str, level: float) -> dict[str, dict[str, Any]]:
    """Per split: half-width (accuracy) of the baselines' prediction band at the candidate's reference accuracy
    (line uncertainty from the replicates plus one model's residual scatter), its scatter part, and whether ER
    lies beyond the scatter (`beyond`, used by the verdict) and inside the whole band (`inside_band`, reported)."""
    z = float(stats.norm.ppf(0.5 + level / 2))
    out: dict[str, dict[str, Any]] = {}
    for split in ("shift", "in_support", "out_of_support"):
        pred = reps.values.get(f"pred_{split}")
        if pred is None or not np.isfinite(pred[0, g]):
            continue
        line = reps.spread(f"pred_{split}", g, level)
        line = line[np.isfinite(line)]
        p = float(np.clip(pred[0, g], 1e-6, 1 - 1e-6))
        density = stats.norm.pdf(stats.norm.ppf(p)) if scale == "probit" else p * (1 - p)
        scatter = reps.residual_sd.get(split, np.nan) * density
        var_line = float(np.var(line)) if line.size > 1 else 0.0
        scatter = z * (scatter if np.isfinite(scatter) else 0.0)
        half = float(np.sqrt(z**2 * var_line + scatter**2))
        er = float(reps.values[f"er_{split}"][0, g])
        # The ER interval already carries the line's own uncertainty; beyond that, the candidate must lie outside
        # the scatter of single from-scratch models around the line to be credited with an effect.
        out[split] = {"half_width": half, "scatter": float(scatter), "beyond": bool(abs(er) > scatter),
                      "inside_band": bool(abs(er) <= half)}
    return out


# --- fits ------------------------------------------------------------------------------------------------------


def fits(baselines: list[ModelEval], design: Design, reps: Replicates, support: SupportSplit | None,
         config: StatsConfig) -> dict[str, dict[str, Any] | None]:
    """The point line per split (errors-in-x corrected slope) with its OLS statistics and the slope's interval."""
    ref = design.base_ref.mean(axis=1)
    n_ref, n_shift = design.base_ref.shape[1], design.base_shift.shape[1]
    out: dict[str, dict[str, Any] | None] = {}
    for split, key in FIT_SPLITS.items():
        weights = _split_weights(design, split)
        if split not in reps.lines or weights is None or weights.sum() <= 0:
            out[key] = None
            continue
        y = design.base_shift @ weights / weights.sum()
        try:
            ols = fit_line(ref, y, scale=config.scale, ref_n=n_ref, y_n=float((weights > 0).sum()) or n_shift,
                           confidence=config.verdict.confidence_level)
        except DataError:
            out[key] = None
            continue
        slope, intercept, reliability = (float(v) for v in reps.lines[split][0])
        fit = ols.to_dict() | {"slope": slope, "intercept": intercept, "slope_ols": ols.slope,
                               "intercept_ols": ols.intercept, "reliability": reliability,
                               "n_runs": int(design.run_index.max()) + 1, "ref_n": n_ref}
        interval = reps.slope_interval(split, config.verdict.confidence_level)
        fit["slope_interval"] = _d(interval)
        out[key] = fit
    return out


def _split_weights(design: Design, split: str) -> np.ndarray | None:
    if split == "shift":
        return np.ones(design.base_shift.shape[1])
    if design.masks is None:
        return None
    if split == "in_support":
        return design.masks[0].astype(float)
    if split == "out_of_support":
        return 1.0 - design.masks[0]
    return None if design.matched is None else design.matched[0]


# --- decomposition ---------------------------------------------------------------------------------------------


def decomposition(groups: list[Group], cands: list[int], reps: Replicates, quantities: list[dict],
                  support: SupportSplit | None, pooled_gap: Interval | None) -> dict[str, Any]:
    """gap = bias + extrapolation for the baseline line at each candidate, and each candidate's own."""
    gap_row = _d(pooled_gap)
    if support is None:
        return {"pi_in": None, "pi_out": None, "baseline": [], "pretrained": [], "pooled_gap": gap_row,
                "note": "support split not available: the gap cannot be decomposed"}
    base_rows, own_rows = [], []
    for g in cands:
        name, q = groups[g].name, quantities[g]
        ref = float(reps.values["ref"][0, g])
        base_rows.append({
            "name": f"baseline line at {name}", "ref_acc": ref, "gap": _point(reps, "gap", g) or 0.0,
            "bias_component": _point(reps, "bias", g), "extrapolation_component": _point(reps, "extrapolation", g),
            "method": "line", "intervals": {k: _d(q.get(k)) for k in ("gap", "bias", "extrapolation")},
        })
        own = {"name": name, "ref_acc": ref, "gap": _point(reps, "remaining_gap", g) or 0.0,
               "bias_component": _point(reps, "remaining_bias", g),
               "extrapolation_component": _point(reps, "remaining_extrapolation", g), "method": "observed",
               "intervals": {k: _d(q.get(f"remaining_{k}")) for k in ("gap", "bias", "extrapolation")}}
        check = er_consistency(_point(reps, "er_shift", g), _point(reps, "er_in_support", g),
                               _point(reps, "er_out_of_support", g), support.pi_in, support.pi_out)
        if check is not None:
            own["er_check"] = check
        own_rows.append(own)
    return {"pi_in": support.pi_in, "pi_out": support.pi_out, "n_in": support.n_in, "n_out": support.n_out,
            "epsilon": support.epsilon, "baseline": base_rows, "pretrained": own_rows, "pooled_gap": gap_row}


# --- checks ----------------------------------------------------------------------------------------------------


def _line_fit_check(fit_rows: dict[str, dict[str, Any] | None], vcfg: VerdictConfig) -> Check:
    """One check over every split's line: WARN when any r² is below --min-r2 (trust is judged by the band)."""
    fits = {key: fit for key, fit in fit_rows.items() if fit is not None and key != "out_of_support_matched"}
    names = {"shift": "whole shift", "in_support": "in-support", "out_of_support": "out-of-support"}
    r2 = ", ".join(f"{fit['r2']:.2f} ({names.get(key, key)})" for key, fit in fits.items())
    n = next(iter(fits.values()))["n"] if fits else 0
    low = [key for key, fit in fits.items() if fit["r2"] < vcfg.min_r2]
    detail = (f" (< --min-r2 {vcfg.min_r2:g}): the baselines scatter widely around the line or it is flat; each "
              "model's prediction band shows whether its ER stands out of that scatter" if low
              else " (trust is judged by the prediction band)")
    return Check("line-fit", "WARN" if low else "PASS", f"r² = {r2} over {n} checkpoints{detail}")


def checks(baselines: list[ModelEval], groups: list[Group], design: Design, reps: Replicates,
           fit_rows: dict[str, dict[str, Any] | None], support: SupportSplit | None, vcfg: VerdictConfig,
           n_boot: int) -> list[Check]:
    n_runs = int(design.run_index.max()) + 1
    runs = f"{n_runs} baseline training runs ({len(baselines)} checkpoints)"
    if n_runs < vcfg.min_runs:
        out = [Check("baselines", "FAIL", f"only {runs}: the run-level resampling has almost nothing to draw from")]
    elif n_runs < vcfg.recommended_runs:
        share = max(reps.run_share.values(), default=0.0)
        widened = (f"intervals are widened for so few runs (runs' own deviations off the lines: up to "
                   f"{100 * share:.0f} % of their run-level scatter)" if share >= 0.05 else
                   "the runs sit on the lines, so the intervals need little widening for so few")
        out = [Check("baselines", "WARN", f"{runs} (< {vcfg.recommended_runs} recommended): the interval over runs "
                                          f"is coarse; {widened}")]
    else:
        out = [Check("baselines", "PASS", runs)]
    whole = fit_rows.get("shift")
    if whole is not None:
        spread = whole["ref_range"][1] - whole["ref_range"][0]
        if spread < vcfg.min_ref_spread:
            out.append(Check("ref-spread", "WARN", f"baselines span only {100 * spread:.1f} points of reference "
                                                   f"accuracy (< {100 * vcfg.min_ref_spread:.0f})"))
        capped = whole["reliability"] <= MIN_RELIABILITY + 1e-9
        out.append(Check("x-noise", "WARN" if capped else "PASS",
                         f"slope corrected for reference-test noise: reliability {whole['reliability']:.2f}, slope "
                         f"{whole['slope_ols']:.3f} (OLS) → {whole['slope']:.3f}"
                         + (" (correction capped: noise dominates the baselines' spread)" if capped else "")))
    out.append(_line_fit_check(fit_rows, vcfg))
    for g in groups:
        if g.kind == "pretrained" and g.ref.shape[0] < 2:
            out.append(Check(f"seeds ({g.name})", "WARN", f"{g.name}: one fine-tuning seed: seed noise is not in "
                                                          "its interval"))
    if support is not None:
        if support.n_draws == 0:
            out.append(Check("support-mask", "WARN", "one fold assignment: the support mask's variation is not in "
                                                     "the intervals"))
        if support.backbone is not None and any(g.meta.get("model") == support.backbone for g in groups):
            out.append(Check("support-backbone", "WARN", f"the domain classifier is a probe on {support.backbone}'s "
                                                         "features, the backbone of a candidate it judges (the paper "
                                                         "uses a separate CLIP ViT-L/14)"))
    if n_boot <= 0:
        out.append(Check("resampling", "FAIL", "bootstrap 0: no intervals"))
    return out
