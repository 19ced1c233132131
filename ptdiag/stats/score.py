"""From per-example correctness to the statistics sections of results.json (fit, ER, decomposition, verdict).

`score(evals, support, config)` is the one code path `ptdiag analyze` and `ptdiag score` share:

* baselines (from scratch) define the line; checkpoints of one training run (`ModelEval.run`) are resampled
  together; evaluations of kind "pretrained" (or "remedy") sharing a name are seeds of one candidate;
* every interval comes from one resampling scheme (ptdiag.stats.resampling): runs, examples (paired, reference
  and shifted separately), seeds and the support mask redrawn, lines refitted, everything recomputed;
* the verdict (ptdiag.stats.verdict) judges every pre-trained recipe on its own evidence (recoveries at the
  Bonferroni level over recipes) and combines them without pooling; remedies are scored the same way but never
  enter it (`remedy_scores`).

Pure numpy/scipy: no torch import.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

from ptdiag.errors import DataError
from ptdiag.stats import score_sections as sections
from ptdiag.stats.estimated import ESTIMATOR, estimate_shift, summary
from ptdiag.stats.intervals import Check, Interval
from ptdiag.stats.resampling import Design, Replicates, fold_matching_weights, resample
from ptdiag.stats.support import SupportSplit
from ptdiag.stats.thresholds import VerdictConfig
from ptdiag.stats.verdict import (
    RECOVERIES,
    CandidateEvidence,
    Verdict,
    VerdictInputs,
    combine,
    decide,
    gates,
    recipe_calls,
)
from ptdiag.stats.verdict_types import Recommendation

KINDS = ("baseline", "pretrained", "remedy")
SPLITS = ("shift", "in_support", "out_of_support")


@dataclass
class ModelEval:
    """One evaluated model.

    Attributes:
        name: e.g. "smallcnn-f0.5-s1-e4" or "tf_efficientnet_lite0/lp"; pre-trained/remedy evals sharing a name
            are seeds of one candidate.
        kind: "baseline" (from scratch), "pretrained" (decides the verdict) or "remedy" (scored, never decides).
        ref_correct: bool (or [0, 1]) per reference-test example, same order for every model.
        shift_correct: the same per shifted example.
        meta: copied into the results row (baselines: arch, fraction, epoch, seed; pre-trained: model, strategy,
            lr, seed, val_acc, optional n_val).
        run: training run a baseline checkpoint belongs to (its checkpoints are resampled together); default name.
        seed: fine-tuning seed; default meta["seed"].
        ref_pred, shift_pred: the predicted classes (optional; written to predictions.parquet, never scored).
        ref_scores, shift_scores: (2, n) confidence scores of those predictions (``ptdiag.stats.atc.SCORES``;
            optional, for label-free estimates).
    """

    name: str
    kind: str
    ref_correct: np.ndarray
    shift_correct: np.ndarray
    meta: dict[str, Any] = field(default_factory=dict)
    run: str | None = None
    seed: int | None = None
    ref_pred: np.ndarray | None = field(default=None, repr=False)
    shift_pred: np.ndarray | None = field(default=None, repr=False)
    ref_scores: np.ndarray | None = field(default=None, repr=False)
    shift_scores: np.ndarray | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.run is None:
            self.run = self.name
        if self.seed is None:
            self.seed = self.meta.get("seed")


@dataclass(frozen=True)
class StatsConfig:
    """Statistics settings.

    Attributes:
        scale: "probit" (the paper's) or "logit".
        epsilon: out-of-support threshold; None keeps the support split's own.
        bootstrap: resampling replicates (0: no intervals, the verdict is inconclusive).
        seed: seeds the resampling.
        verdict: thresholds of the rules.
        few_runs_widening: widen intervals that rest on few baseline runs (jackknife over runs, Welch–Satterthwaite
            t; `effects.small_cluster_factor`). Off only to measure what it changes.
    """

    scale: str = "probit"
    epsilon: float | None = 0.2
    bootstrap: int = 1000
    seed: int = 0
    verdict: VerdictConfig = field(default_factory=VerdictConfig)
    few_runs_widening: bool = True


@dataclass(frozen=True)
class Group:
    """A pre-trained candidate or a remedy: its seeds (rows) of per-example correctness."""

    name: str
    kind: str
    ref: np.ndarray  # seeds × n_ref
    shift: np.ndarray  # seeds × n_shift
    meta: dict[str, Any]


@dataclass
class Scores:
    baselines: list[dict[str, Any]]
    pretrained: list[dict[str, Any]]
    remedy_scores: list[dict[str, Any]]
    fits: dict[str, dict[str, Any] | None]
    support: SupportSplit | None
    decomposition: dict[str, Any]
    verdict: Verdict
    checks: list[Check]
    warnings: list[str]
    settings: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {
            "baselines": self.baselines, "pretrained": self.pretrained, "remedy_scores": self.remedy_scores,
            "fit": dict(self.fits), "support": self.support.to_dict() if self.support is not None else None,
            "decomposition": self.decomposition, "verdict": self.verdict.to_dict(), "warnings": list(self.warnings),
            "statistics": self.settings,
        }


def score(evals: list[ModelEval], support: SupportSplit | None, config: StatsConfig = StatsConfig(),
          shift_labelled: np.ndarray | None = None) -> Scores:
    """Resample, compute every quantity with its interval, and decide the verdict.

    `shift_labelled` (bool per shifted example) marks a random labelled subset when the rest of the shifted set
    has no labels: every shifted accuracy is then a prediction-powered estimate (``ptdiag.stats.estimated``), the
    split sizes the verdict reads count labelled images, and difficulty matching (§4.7) is not done.

    Raises:
        DataError: unknown kind, mismatched example counts, a support split of the wrong length, fewer than 3
            baselines, or baselines without any spread in reference accuracy.
    """
    vcfg = config.verdict
    labels_section = None
    if shift_labelled is not None:
        evals, labels_section = _estimated(evals, shift_labelled)
    baselines, groups, n_ref, n_shift = _prepare(evals)
    support = _support_at(support, n_shift, config.epsilon)
    design = _design(baselines, groups, support, config.scale, matching=labels_section is None)
    reps = resample(design, config.bootstrap, config.seed, jackknife=config.few_runs_widening)
    fits = sections.fits(baselines, design, reps, support, config)
    level = vcfg.confidence_level
    quantities = [{name: reps.interval(name, g, level) for name in reps.values} for g in range(len(groups))]
    bands = [sections.prediction_bands(reps, g, config.scale, level) for g in range(len(groups))]
    cands = [i for i, g in enumerate(groups) if g.kind == "pretrained"]
    # Recoveries of J recipes are read at level 1 − α/J (Bonferroni): "some recipe helps" is a union of J claims.
    adjusted_level = 1 - (1 - level) / max(len(cands), 1)
    evidence = [_evidence(groups[i], quantities[i], bands[i], _adjusted(reps, i, adjusted_level, 2 * level - 1))
                for i in cands]
    # An equivalence test (TOST) at level α uses the 1 − 2α interval: 90 % for the default 95 %.
    pooled_gap = reps.pooled_interval(2 * level - 1)
    checks = sections.checks(baselines, groups, design, reps, fits, support, vcfg, config.bootstrap)
    split_args = _split_args(support, shift_labelled if labels_section is not None else None)
    inputs = VerdictInputs(candidates=evidence, pooled_gap=pooled_gap, support_available=support is not None,
                           n_runs=_n_runs(baselines), checks=checks, **split_args)
    remedy_rows = [sections.remedy_row(groups[i], reps, quantities[i], i) for i, g in enumerate(groups)
                   if g.kind == "remedy"]
    verdict = decide(inputs, vcfg)
    if evidence and config.bootstrap > 0:
        stability = _stability(reps, cands, inputs, verdict.kind, vcfg)
        verdict = decide(replace(inputs, stability=stability), vcfg, remedy_rows)
    else:
        verdict = decide(inputs, vcfg, remedy_rows)
    if labels_section is not None:
        verdict = _with_sample_notes(verdict, labels_section["labelled"], n_shift)
    admissible = set(verdict.decided_on)
    primary = verdict.primary
    rows = [sections.candidate_row(groups[i], reps, quantities[i], bands[i], i, groups[i].name in admissible,
                                   primary, fits, support, config) for i in cands]
    warnings = [c.message for c in checks if c.status in ("WARN", "FAIL")]
    warnings += _matched_ess(design, rows)
    warnings += _perfect_baselines(baselines, n_ref)
    warnings += [f"{r['name']}: reference accuracy {100 * r['ref_acc']:.1f}% is {r['extrapolation_distance']:.2f} "
                 f"{config.scale} units outside the baselines' range: the line is extrapolated there"
                 for r in rows if r["extrapolated"]]
    settings = {"scale": config.scale, "epsilon": support.epsilon if support else config.epsilon,
                "bootstrap": config.bootstrap, "seed": config.seed, "verdict_config": asdict(vcfg),
                "n_reference_test": n_ref, "n_shift": n_shift, "n_runs": _n_runs(baselines),
                "n_mask_draws": 0 if design.masks is None else design.masks.shape[0] - 1,
                "resampling": "runs (clusters), reference-test and shifted examples (paired across models), "
                              "fine-tuning seeds, support-mask fold assignment; lines refitted per replicate with "
                              "the errors-in-x slope correction; percentile intervals re-centred on the point and "
                              "widened for few runs (jackknife over runs, Welch-Satterthwaite t)",
                "run_heterogeneity": {split: round(share, 4) for split, share in reps.run_share.items()}}
    base_rows = [sections.baseline_row(b, design, i) for i, b in enumerate(baselines)]
    if labels_section is not None:  # every shifted accuracy is an estimate: say so beside it
        settings["shift_labels"] = labels_section
        warnings.append(f"shifted accuracies are estimated: {labels_section['labelled']} of {n_shift} shifted "
                        f"images are labelled ({ESTIMATOR}: the models' confidence, corrected on the labelled "
                        "images; the labelled images must be a random sample of the shifted set)"
                        + _atc_errors(labels_section))
        for row in base_rows + rows + remedy_rows:
            row |= {"estimated": True, "estimator": ESTIMATOR}
    return Scores(
        baselines=base_rows, pretrained=rows,
        remedy_scores=remedy_rows, fits=fits, support=support,
        decomposition=sections.decomposition(groups, cands, reps, quantities, support, pooled_gap),
        verdict=verdict, checks=checks, warnings=warnings, settings=settings,
    )


# --- preparation -----------------------------------------------------------------------------------------------


def _prepare(evals: list[ModelEval]) -> tuple[list[ModelEval], list[Group], int, int]:
    if not evals:
        raise DataError("no model evaluations to score")
    n_ref, n_shift = np.size(evals[0].ref_correct), np.size(evals[0].shift_correct)
    for e in evals:
        if e.kind not in KINDS:
            raise DataError(f"model {e.name!r}: kind must be one of {', '.join(KINDS)} (got {e.kind!r})")
        if np.size(e.ref_correct) != n_ref or np.size(e.shift_correct) != n_shift:
            raise DataError(f"model {e.name!r}: evaluated on {np.size(e.ref_correct)} reference / "
                            f"{np.size(e.shift_correct)} shifted examples, expected {n_ref} / {n_shift}")
    if n_ref == 0 or n_shift == 0:
        raise DataError("models were evaluated on an empty reference test set or shifted set")
    baselines = [e for e in evals if e.kind == "baseline"]
    if not any(e.kind == "pretrained" for e in evals):
        raise DataError("no pre-trained model evaluations (kind = pretrained): the verdict judges pre-trained "
                        "recipes against the baselines' line, so give at least one")
    if len(baselines) < 3:
        raise DataError(f"need at least 3 baseline models to fit the line (got {len(baselines)})")
    if np.ptp([np.mean(b.ref_correct) for b in baselines]) <= 0:
        raise DataError("the baseline models all have the same reference accuracy: the line cannot be fitted")
    members: OrderedDict[tuple[str, str], list[ModelEval]] = OrderedDict()
    for e in evals:
        if e.kind != "baseline":
            members.setdefault((e.kind, e.name), []).append(e)
    return baselines, [_group(kind, name, seeds) for (kind, name), seeds in members.items()], int(n_ref), int(n_shift)


def _group(kind: str, name: str, seeds: list[ModelEval]) -> Group:
    meta = dict(seeds[0].meta)
    if len(seeds) > 1:
        meta["seed"] = None  # several seeds: see "seeds"
        meta["seeds"] = [s.seed for s in seeds]
        if all("val_acc" in s.meta for s in seeds):
            meta["val_acc"] = float(np.mean([s.meta["val_acc"] for s in seeds]))
    return Group(name, kind, np.vstack([np.asarray(s.ref_correct, dtype=float) for s in seeds]),
                 np.vstack([np.asarray(s.shift_correct, dtype=float) for s in seeds]), meta)


def _support_at(support: SupportSplit | None, n_shift: int, epsilon: float | None) -> SupportSplit | None:
    if support is None:
        return None
    if support.rho_shift.shape != (n_shift,):
        raise DataError(f"support split covers {support.rho_shift.size} shifted examples, the evaluations {n_shift}")
    return support.at_epsilon(epsilon) if epsilon is not None and epsilon != support.epsilon else support


def _estimated(evals: list[ModelEval], labelled: np.ndarray) -> tuple[list[ModelEval], dict[str, Any] | None]:
    """Prediction-powered shifted correctness when only `labelled` shifted examples carry labels (None: all do)."""
    mask = np.asarray(labelled, dtype=bool)
    n_shift = np.size(evals[0].shift_correct) if evals else 0
    if mask.shape != (n_shift,):
        raise DataError(f"the labelled-shift mask covers {mask.size} shifted examples, the evaluations {n_shift}")
    if mask.all():
        return evals, None
    if not mask.any():
        raise DataError("no shifted example is labelled: effective robustness needs the from-scratch baselines' "
                        "shifted accuracy, which no label-free estimate recovers (docs/VALIDATION.md §7)")
    estimated, notes = estimate_shift(evals, mask)
    return estimated, summary(notes, [e.kind for e in evals], int(mask.sum()), n_shift)


def _with_sample_notes(verdict: Verdict, labelled: int, n_shift: int) -> Verdict:
    """The verdict of a run with a labelled sample: says so first; when inconclusive, more labels come first in
    what to do (the estimates' intervals narrow about as one over the square root of the labelled count)."""
    reasons = [f"shifted accuracies are estimated from {labelled} labelled shifted images (a random sample) and the "
               "models' confidence on the rest; the intervals include the estimate's error", *verdict.reasons]
    recommendations = list(verdict.recommendations)
    if verdict.kind == "inconclusive" and labelled < n_shift:
        gain = (f"{4 * labelled} labels would about halve them" if 4 * labelled < n_shift
                else f"labelling all {n_shift} measures them")
        recommendations.insert(0, Recommendation(
            "label-more-shift", f"Label more shifted images at random ({labelled} of {n_shift} are labelled): where "
            f"the labelled sample dominates the intervals, they narrow as one over its square root, so {gain} "
            "(`ptdiag curate --from shift --random` lists a sample).", (("labelled", str(labelled)),)))
    return replace(verdict, reasons=reasons, recommendations=recommendations)


def _atc_errors(section: dict[str, Any]) -> str:
    """ATC's mean error on the labelled images per family: how far the confidence alone would have been off."""
    errors = {k: v for k, v in section["atc_mean_abs_error"].items() if v is not None}
    if not errors:
        return ""
    named = {"baseline": "the baselines", "pretrained": "the pre-trained models"}
    return ("; on the labelled images the confidence alone (ATC) is off by " +
            ", ".join(f"{100 * v:.1f} points for {named[k]}" for k, v in errors.items()))


def _design(baselines: list[ModelEval], groups: list[Group], support: SupportSplit | None, scale: str,
            matching: bool = True) -> Design:
    runs = list(dict.fromkeys(str(b.run) for b in baselines))
    run_index = np.array([runs.index(str(b.run)) for b in baselines])
    fold = run_index % 2  # difficulty-matching folds: alternate runs
    base_ref = np.vstack([np.asarray(b.ref_correct, dtype=float) for b in baselines])
    base_shift = np.vstack([np.asarray(b.shift_correct, dtype=float) for b in baselines])
    n_ref, n_shift = base_ref.shape[1], base_shift.shape[1]
    masks = matched = None
    if support is not None:
        masks = np.vstack([support.in_support[None, :], support.in_support_draws()])
        if matching and len(runs) >= 2:  # cross-fitted over two folds of runs (one run cannot be)
            ones = np.ones((masks.shape[0], len(baselines)))
            matched = 0.5 * sum(fold_matching_weights(base_shift, fold, ones, masks))
    return Design(
        base_ref=base_ref, base_shift=base_shift, run_index=run_index,
        seed_ref=np.vstack([g.ref for g in groups]) if groups else np.zeros((0, n_ref)),
        seed_shift=np.vstack([g.shift for g in groups]) if groups else np.zeros((0, n_shift)),
        group_index=np.concatenate([[i] * g.ref.shape[0] for i, g in enumerate(groups)]).astype(int)
        if groups else np.zeros(0, dtype=int),
        pooled=np.array([g.kind == "pretrained" for g in groups], dtype=bool), masks=masks, matched=matched,
        matched_fold=None if matched is None else fold,
        scale=scale,
    )


def _n_runs(baselines: list[ModelEval]) -> int:
    return len({str(b.run) for b in baselines})


def _split_args(support: SupportSplit | None, labelled: np.ndarray | None = None) -> dict[str, Any]:
    """Split sizes and shares for the verdict; with a labelled subset the sizes count its images, which is what
    the in- and out-of-support estimates rest on."""
    if support is None:
        return {}
    n_in, n_out = support.n_in, support.n_out
    if labelled is not None:
        n_in = int((support.in_support & labelled).sum())
        n_out = int((~support.in_support & labelled).sum())
    return {"n_in": n_in, "n_out": n_out, "pi_in": support.pi_in, "pi_out": support.pi_out}


def _perfect_baselines(baselines: list[ModelEval], n_ref: int) -> list[str]:
    """Baselines at 0 % or 100 % reference accuracy: their probit is infinite, so it is clipped (at half an example
    from the edge), and such an extreme point sets the line's slope."""
    edge = [b.name for b in baselines if np.mean(b.ref_correct) in (0.0, 1.0)]
    if not edge:
        return []
    named = ", ".join(edge[:3]) + (f" and {len(edge) - 3} more" if len(edge) > 3 else "")
    return [f"{len(edge)} baseline model(s) scored 0 % or 100 % on the {n_ref} reference test images ({named}): "
            "their transformed accuracy is clipped at half an image from the edge and weighs heavily on the line's "
            "slope; a larger or harder reference test set (--test-fraction) gives the line real points there"]


# Below this effective sample size (share of the out-of-support images) the §4.7 difficulty-matched ER_out rests on
# a handful of heavily weighted images and is not reported.
MIN_MATCHED_ESS = 0.10


def _matched_ess(design: Design, rows: list[dict[str, Any]]) -> list[str]:
    """Report the difficulty weights' effective sample size on each row; suppress the matched ER_out below the
    minimum (returns the warning that says so)."""
    if design.matched is None or design.masks is None:
        return []
    weights, n_out = design.matched[0], int((~design.masks[0]).sum())
    total = float(weights.sum())
    ess = total**2 / float((weights**2).sum()) / max(n_out, 1) if total > 0 else 0.0
    for row in rows:
        row["er_out_matched_ess"] = ess
        if ess < MIN_MATCHED_ESS:
            row["er_out_matched"] = None
    if ess >= MIN_MATCHED_ESS:
        return []
    return [f"difficulty-matched ER_out not reported: its weights rest on {100 * ess:.0f} % of the out-of-support "
            f"images (effective sample size; at least {100 * MIN_MATCHED_ESS:.0f} % needed)"]


# --- the recipes ---------------------------------------------------------------------------------------------


def _adjusted(reps: Replicates, g: int, level: float, tost_level: float) -> dict[str, Interval | None]:
    """A recipe's recoveries at the multiplicity-corrected level; the line's gap at it and its own gap at the TOST
    level."""
    out = {name: reps.interval(name, g, level) for name in RECOVERIES if name in reps.values}
    for name, key in (("gap", "gap_tost"), ("remaining_gap", "own_gap_tost")):
        out[key] = reps.interval(name, g, tost_level) if name in reps.values else None
    return out


def _evidence(group: Group, q: dict[str, Interval | None], band: dict[str, dict[str, Any]],
              adjusted: dict[str, Interval | None]) -> CandidateEvidence:
    ref = q["ref"].mid if q.get("ref") else float(group.ref.mean())
    selection = float(group.meta.get("val_acc", ref))
    return CandidateEvidence(group.name, str(group.meta.get("strategy", "")), ref, selection, q,
                             {s: b["beyond"] for s, b in band.items()}, adjusted)


def _stability(reps: Replicates, cands: list[int], inputs: VerdictInputs, kind: str, vcfg: VerdictConfig) -> float:
    """Share of resamples whose point estimates (re-centred and stretched like the intervals) give the same kind."""
    names = [n for n in reps.values
             if n == "gap" or n.startswith(("bias", "extrapolation", "remaining_", "recovered_", "share_"))]
    level = vcfg.confidence_level
    columns = [{n: reps.spread(n, g, level) for n in names} for g in cands]
    gap = reps.pooled_spread(2 * level - 1)
    same = 0
    for r in range(gap.size):
        values = [{name: col[r] for name, col in recipe.items()} for recipe in columns]
        calls = recipe_calls(inputs, vcfg, values, float(gap[r]))
        same += gates(combine(calls, inputs.support_available)[0], None, inputs, vcfg)[0] == kind
    return same / max(gap.size, 1)
