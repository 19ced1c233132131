"""The `remedies` stage of `analyze`: measured de-biasing next to pre-training, on cached features.

One job fits every remedy (ptdiag.remedies does the fitting, torch-free): last-layer retraining on the labelled
shifted set for the primary pre-trained backbone's features and the strongest from-scratch baseline's penultimate
features, each alone and together with the reference training set, plus (x, y) reweighting of the reference
training set. All share one 2-fold cross-fitting of the shifted set, so no shifted example is scored by a head
(or weights) fitted with its label. The section, scorer and prediction-file helpers below also read the `curated`
job's rows (`ptdiag.engine.jobkinds.curated`), which follow the same descriptor and array layout.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ptdiag.config import AnalyzeConfig
from ptdiag.engine.jobkinds.baseline import BaselineParams
from ptdiag.engine.jobs import JobOutput, JobParams, JobSpec
from ptdiag.engine.rundata import Context
from ptdiag.remedies.heads import DEFAULT_C, MAX_DIM, crossfit_folds, reduce_features
from ptdiag.remedies.lastlayer import LABEL_BUDGETS, crossfit_last_layer
from ptdiag.remedies.reweight import NOT_REACHABLE, crossfit_reweighted_probe
from ptdiag.remedies.summary import RemedyRow, accuracies, accuracy_key, label_budget, remedy_row, size_curve
from ptdiag.stats.fits import single_threaded
from ptdiag.stats.score import ModelEval
from ptdiag.stats.support import SupportSplit

REMEDY_FOLDS = 2
MAX_OUT_OF_SUPPORT_FOR_REWEIGHT = 0.5  # above this share of out-of-support shifted images reweighting is moot


@dataclass(frozen=True)
class RemedyParams(JobParams):
    """Last-layer retraining and reweighting on the best-probe backbone's features (and on the best from-scratch
    run's features, `scratch`), cross-fitted over `folds` halves of the labelled shifted set."""

    backbone: str
    features: str
    C: float
    folds: int
    budgets: tuple[int, ...]
    seed: int
    max_dim: int
    version: int
    scratch: str | None
    scratch_key: str | None


def remedy_specs(config: AnalyzeConfig, ctx: Context, base_specs: list[JobSpec], base_outputs: list[JobOutput],
                 feat_specs: list[JobSpec]) -> tuple[list[JobSpec], dict[str, JobOutput]]:
    """The remedies job (none with --no-remedies) and the baseline outputs it reads (for its context)."""
    if not config.remedies or ctx.data.shift_labelled is not None:  # remedies train on labelled shifted images
        return [], {}
    with_features = [(s, o) for s, o in zip(base_specs, base_outputs, strict=True) if "feat_train" in o.arrays]
    bases = {s.name: o for s, o in with_features}
    scratch = max(with_features, key=lambda so: _last_ref_acc(ctx, *so), default=(None, None))[0]
    primary = primary_features(ctx, feat_specs)
    params = RemedyParams(backbone=primary.name, features=primary.key(ctx.data.fingerprint),
                          C=float(ctx.probes[primary.name].meta.get("C", DEFAULT_C)), folds=REMEDY_FOLDS,
                          budgets=LABEL_BUDGETS, seed=config.seed, max_dim=MAX_DIM, version=1,
                          scratch=scratch.name if scratch else None,
                          scratch_key=scratch.key(ctx.data.fingerprint) if scratch else None)
    return [JobSpec.of("remedies", primary.name, params)], bases


def primary_features(ctx: Context, feat_specs: list[JobSpec]) -> JobSpec:
    """The features job of the primary backbone, whose linear probe has the best reference validation accuracy: the
    backbone every remedy (and the curated fine-tunes) is measured on."""
    return max((s for s in feat_specs if s.name in ctx.probes), key=lambda s: ctx.probes[s.name].meta["val_acc"])


def _last_ref_acc(ctx: Context, spec: JobSpec, out: JobOutput) -> float:
    """Reference-test accuracy at the run's last evaluated epoch (reference data only: no shifted label used)."""
    epoch = max(BaselineParams.of(spec).eval_epochs)
    return float((out.arrays[f"e{epoch}_test"] == ctx.data.part("test").labels).mean())


def run_remedies(spec: JobSpec, ctx: Context) -> JobOutput:
    """Last-layer retraining and reweighting, cross-fitted over halves of the labelled shifted set: each remedy's
    held-out predictions, its label-budget curve, and the reference weights (see `_run_remedies`)."""
    # Small sklearn fits: one BLAS thread each (several threads on small matrices cost 10-50x in contention).
    with single_threaded():
        return _run_remedies(spec, ctx)


def _run_remedies(spec: JobSpec, ctx: Context) -> JobOutput:
    p, data = RemedyParams.of(spec), ctx.data
    shift_y, n_classes = data.shift.labels, len(data.pair.classes)
    groups = data.pair.shift.groups[data.shift_index] if data.pair.shift.groups is not None else None
    bases = {"pretrained": (p.backbone, _pretrained_features(ctx, p.backbone))}
    if p.scratch and p.scratch in ctx.baselines:
        bases["scratch"] = (p.scratch, reduce_features({k.removeprefix("feat_"): v.astype(np.float32)
                                                           for k, v in ctx.baselines[p.scratch].arrays.items()
                                                           if k.startswith("feat_")}, seed=p.seed))
    descriptors = _descriptors(p, bases)
    skip = _skip_reason(shift_y, n_classes)
    folds = None if skip else crossfit_folds(shift_y, groups, p.folds, p.seed)
    if skip:
        for d in descriptors:
            d.update(applicable=False, note=skip)
        return JobOutput({"remedies": descriptors}, {})
    arrays: dict[str, np.ndarray] = {"folds": folds.astype(np.int16)}
    train_y = data.part("train").labels
    for i, d in enumerate(descriptors):
        if not d["applicable"]:
            continue
        feats = bases[d["base_kind"]][1]
        if d["method"] == "last-layer":
            with_ref = d["variant"] == "reference+shift"
            fit = crossfit_last_layer(feats["shift"], shift_y, feats["test"], folds, groups=groups,
                                      ref_x=feats["train"] if with_ref else None, ref_y=train_y if with_ref else None,
                                      C=p.C, budgets=tuple(p.budgets), seed=p.seed)
            d.update(n_shift_labelled=fit.n_labelled, budgets=fit.budgets)
            arrays[f"r{i}_budget"] = fit.budget_preds
        else:
            fit = crossfit_reweighted_probe(feats["train"], train_y, feats["test"], feats["shift"], shift_y, folds,
                                            C=p.C, seed=p.seed)
            d.update(n_shift_labelled=int(round(np.mean([len(f) for f in fit.fitted_on]))),
                     applicable=not fit.degenerate, note=fit.note(), ess_share=fit.ess_share, coverage=fit.coverage)
            arrays["weights"] = fit.weights.astype(np.float32)
        arrays[f"r{i}_test"], arrays[f"r{i}_shift"] = fit.pred_test, fit.pred_shift
        arrays[f"r{i}_scored_by"] = fit.scored_by
    return JobOutput({"remedies": descriptors}, arrays)


def _pretrained_features(ctx: Context, backbone: str) -> dict[str, np.ndarray]:
    feats = ctx.features[backbone].arrays
    ref = feats["reference"].astype(np.float32)
    out = {name: ref[idx] for name, idx in ctx.data.split.items()}
    out["shift"] = feats["shift"].astype(np.float32)
    return reduce_features(out, seed=ctx.config.seed)


def _descriptors(p: RemedyParams, bases: dict[str, tuple[str, Any]]) -> list[dict[str, Any]]:
    folds_note = f"{p.folds}-fold cross-fitted over the labelled shifted set: every score is held out"
    out = []
    for kind, (base, _) in bases.items():
        for variant in ("shift-only", "reference+shift"):
            suffix = "last-layer" if variant == "shift-only" else "last-layer+reference"
            out.append(dict(name=f"{base}/{suffix}", method="last-layer", data="labelled-shift", variant=variant,
                            base=base, base_kind=kind, held_out=True, applicable=True, folds=p.folds,
                            note=f"{'frozen pre-trained' if kind == 'pretrained' else 'from-scratch'} features; "
                                 f"{folds_note}"))
    out.append(dict(name=f"{p.backbone}/reweight", method="reweight", data="reference-reweighted",
                    variant="reference-only", base=p.backbone, base_kind="pretrained", held_out=True,
                    applicable=True, folds=p.folds, note=""))
    if "scratch" not in bases:
        out.append(dict(name="from-scratch/last-layer", method="last-layer", data="labelled-shift",
                        variant="shift-only", base=p.scratch or "none", base_kind="scratch", held_out=True,
                        applicable=False, folds=p.folds,
                        note="no from-scratch baseline with stored penultimate features in this run"))
    return out


def _skip_reason(shift_y: np.ndarray, n_classes: int) -> str | None:
    present = len(np.unique(shift_y))
    if len(shift_y) < max(n_classes, 2 * REMEDY_FOLDS):
        return (f"skipped: only {len(shift_y)} labelled shifted images for {n_classes} classes; remedies fitted on "
                f"labelled shifted images need at least one per class ({present} present) and "
                f"{REMEDY_FOLDS} folds to keep every score held out")
    return None


# ------------------------------------------------------------------------------------------- after the job


def descriptors(out: JobOutput, support: SupportSplit | None) -> list[dict[str, Any]]:
    """The job's remedy descriptors, with reweighting marked not applicable for a mostly out-of-support shift."""
    rows = []
    for d in out.meta["remedies"]:
        d = dict(d)
        if d["method"] == "reweight" and support is not None and support.pi_out > MAX_OUT_OF_SUPPORT_FOR_REWEIGHT:
            d.update(applicable=False, note=f"not applicable: {100 * support.pi_out:.0f} % of the shifted images are "
                                            f"out of the reference support; {NOT_REACHABLE}")
        rows.append(d)
    return rows


def remedy_evals(ctx: Context, outs: list[JobOutput], support: SupportSplit | None) -> list[ModelEval]:
    """Applicable remedies (of the remedies and curated-finetune jobs) as kind="remedy" evaluations for the scorer
    (held-out shifted predictions)."""
    test_y, shift_y = ctx.data.part("test").labels, ctx.data.shift.labels
    return [ModelEval(name=d["name"], kind="remedy", ref_correct=out.arrays[f"r{i}_test"] == test_y,
                      shift_correct=out.arrays[f"r{i}_shift"] == shift_y,
                      meta={k: d[k] for k in ("method", "data", "variant", "base")})
            for out in outs for i, d in enumerate(descriptors(out, support))
            if d["applicable"] and f"r{i}_shift" in out.arrays]


def remedy_section(ctx: Context, outs: list[JobOutput], support: SupportSplit | None,
                   remedy_scores: list[dict[str, Any]] | None) -> list[RemedyRow]:
    """Every remedy measured (or not applicable, with the reason), as results.json's `remedies` rows."""
    test_y, shift_y = ctx.data.part("test").labels, ctx.data.shift.labels
    mask = support.in_support if support is not None else None
    scored = {s["name"]: s for s in remedy_scores or []}
    rows = []
    for out in outs:
        for i, d in enumerate(descriptors(out, support)):
            acc = budget = None
            if f"r{i}_shift" in out.arrays:
                acc = accuracies(out.arrays[f"r{i}_test"], test_y, out.arrays[f"r{i}_shift"], shift_y, mask)
            if f"r{i}_budget" in out.arrays:
                budget = label_budget(d.get("budgets", []), out.arrays[f"r{i}_budget"], shift_y, mask)
            if d["method"] == "curated-finetune" and d["applicable"]:
                d, budget = _curated_curve(out, i, d, acc, shift_y, mask)
            rows.append(remedy_row(d, acc, budget, scored.get(d["name"])))
    return rows


def _curated_curve(out: JobOutput, i: int, d: dict[str, Any], acc: dict[str, float | None], shift_y: np.ndarray,
                   mask: np.ndarray | None) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A curated-finetune row's descriptor with `judged_by`, and its size curve (the curated set's alone also paired
    with the random set of each size)."""
    key = accuracy_key(acc["in_acc"], int(mask.sum()) if mask is not None else 0, len(shift_y))
    judged = mask if key == "in_acc" else np.ones(len(shift_y), dtype=bool)
    curve = out.arrays.get(f"r{i}_sizes", out.arrays[f"r{i}_shift"][None])
    random = next((f"r{j}_sizes" for j, r in enumerate(out.meta["remedies"]) if r.get("data") == "random-shift"),
                  None)
    against = out.arrays.get(random) if d["data"] == "curated-shift" and d["variant"] == "shift-only" else None
    return {**d, "judged_by": key}, size_curve(d["sizes"], curve, shift_y, mask, judged, against)


def remedy_frames(ctx: Context, outs: list[JobOutput], support: SupportSplit | None) -> list[pd.DataFrame]:
    """predictions.parquet rows: applicable remedies' held-out predictions (with the fold that scored them) and the
    reference training weights (exported even when reweighting does not apply: results.json says why)."""
    return [frame for out in outs for frame in _remedy_frames(ctx, out, support)]


def _remedy_frames(ctx: Context, out: JobOutput, support: SupportSplit | None) -> list[pd.DataFrame]:
    data, pair = ctx.data, ctx.data.pair
    test_paths = [str(pair.reference.paths[data.ref_index[i]]) for i in data.split["test"]]
    shift_paths = [str(pair.shift.paths[j]) for j in data.shift_index]
    rho = support.rho_shift if support is not None else np.full(len(shift_paths), np.nan)
    frames = []
    for i, d in enumerate(descriptors(out, support)):
        if f"r{i}_shift" not in out.arrays or not d["applicable"]:
            continue
        for set_name, split, paths, labels, pred, fold, ratio in (
            ("reference", "test", test_paths, data.part("test").labels, out.arrays[f"r{i}_test"],
             np.arange(len(test_paths)) % d["folds"], np.full(len(test_paths), np.nan)),
            ("shift", "shift", shift_paths, data.shift.labels, out.arrays[f"r{i}_shift"],
             out.arrays[f"r{i}_scored_by"], rho),
        ):
            frames.append(pd.DataFrame({"model": d["name"], "kind": "remedy", "seed": None,
                                        "example_id": np.arange(len(paths)), "path": paths, "set": set_name,
                                        "split": split, "label": labels, "prediction": pred, "correct": pred == labels,
                                        "density_ratio": ratio, "remedy_fold": pd.array(fold, dtype="Int16")}))
    if "weights" in out.arrays:
        name = next(d["name"] for d in out.meta["remedies"] if d["method"] == "reweight")
        train = data.split["train"]
        frames.append(pd.DataFrame({"model": name, "kind": "remedy-weight", "seed": None,
                                    "example_id": np.arange(len(train)),
                                    "path": [str(pair.reference.paths[data.ref_index[i]]) for i in train],
                                    "set": "reference", "split": "train", "label": data.part("train").labels,
                                    "prediction": pd.array([None] * len(train), dtype="Int16"),
                                    "correct": pd.array([None] * len(train), dtype="boolean"),
                                    "weight": out.arrays["weights"].astype(np.float64)}))
    return frames
