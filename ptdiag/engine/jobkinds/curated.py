"""Job kind `curated`: does a small curated set of labelled shifted images, fine-tuned on, beat the large biased
reference? (the paper's second implication; issue 26)

The shifted set is split into the remedies job's two halves (`ptdiag.remedies.heads.crossfit_folds`, same seed).
From one half, `ptdiag curate`'s selection (`ptdiag.remedies.curate.select_shift`: predicted class × density-ratio
band strata, k-center on the frozen features) and a uniform random subset of the same size are labelled, and the
pre-trained model is fine-tuned on each with the analysis' own recipe (LP-FT when it runs, else FT; the learning
rate chosen on reference validation; top blocks on the cached activations in the quick budget); every model is
scored on the *other* half only, and the halves swap, so every shifted image gets one held-out prediction per size.
The largest size is also fine-tuned with the reference training set added. Predicted classes for the selection are
the linear probe's (no shifted label is read to choose).

The same job measures last-layer retraining (DFR) on the *fine-tuned* candidate's features: the recipe is trained on
the reference alone (its seed), and heads are fitted on its penultimate features over the same halves, alone and with
the reference (`ptdiag.remedies.lastlayer.crossfit_last_layer`), beside the remedies job's frozen-feature heads.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ptdiag.config import AnalyzeConfig
from ptdiag.engine.features import LinearProbe, extract_features, load_head
from ptdiag.engine.jobkinds.features import backbones
from ptdiag.engine.jobkinds.finetune import take
from ptdiag.engine.jobkinds.remedies import primary_features
from ptdiag.engine.jobkinds.support import support_from_job
from ptdiag.engine.jobs import JobOutput, JobParams, JobSpec
from ptdiag.engine.models import BackboneSpec, create_pretrained, normalization
from ptdiag.engine.partial import predict_upper, split_at, train_top, upper_features
from ptdiag.engine.rundata import Context
from ptdiag.engine.train import ArraySet, Normalizer, TrainConfig, predict, train_model
from ptdiag.remedies.curate import select_shift
from ptdiag.remedies.heads import DEFAULT_C, crossfit_folds, reduce_features
from ptdiag.remedies.lastlayer import CrossFit, crossfit_last_layer
from ptdiag.stats.score import ModelEval

CURATED_FOLDS = 2  # halves: select on one, score on the other
MIN_STEPS = 60  # a small set gets more epochs, so every fine-tune takes at least this many optimizer steps
VARIANTS = ("curated", "random", "curated+reference")


@dataclass(frozen=True)
class CuratedParams(JobParams):
    """Fine-tunes on curated and random shifted subsets of each size, cross-fitted over halves of the shifted set."""

    model: str
    weights: str | None
    backbone: str
    features: str  # the features job's key: selection features (and LP-FT's starting probe)
    support: str  # the support job's key: density ratios for the selection strata
    strategy: str  # lpft or ft: the analysis' recipe
    lr: float
    sizes: tuple[int, ...]
    epsilon: float
    seed: int
    epochs: int
    batch_size: int
    freeze_bn: bool
    from_block: int | None  # the top-block recipe (None: end to end)
    activations: str | None
    version: int


def curated_specs(config: AnalyzeConfig, ctx: Context, feat_specs: list[JobSpec], pretrained: list[ModelEval],
                  support: JobSpec | None, activation_keys: dict[str, str]) -> tuple[list[JobSpec], str | None]:
    """The curated-finetune job for the primary backbone, the one the remedies job uses, or none with the reason
    when --curated-sizes was asked for but cannot be measured."""
    if not config.curated_sizes:
        return [], None
    by_label = {b.label: b for b in backbones(config)}
    primary = primary_features(ctx, feat_specs)
    backbone, features = by_label[primary.name], primary.key(ctx.data.fingerprint)
    chosen_lr = {e.meta["strategy"]: e.meta["lr"] for e in pretrained
                 if e.meta.get("model") == backbone.label and e.meta.get("lr") is not None}
    strategy = next((s for s in ("lpft", "ft") if s in chosen_lr), None)
    reason = ("--no-remedies" if not config.remedies else
              "the shifted set is not fully labelled (fine-tuning on shifted images needs their labels; "
              "`ptdiag curate --from shift` lists images to label)" if ctx.data.shift_labelled is not None else
              "the support split did not run (the selection needs its density ratios)" if support is None else
              "no fine-tuning strategy in --strategies (lp only)" if strategy is None else None)
    if reason is not None:
        return [], f"--curated-sizes: curated fine-tuning not measured: {reason}"
    activations = activation_keys.get(backbone.label)
    top = activations is not None and bool(ctx.activations[backbone.label].meta.get("supported"))
    params = CuratedParams(model=backbone.name, weights=backbone.weights, backbone=backbone.label, features=features,
                           support=support.key(ctx.data.fingerprint), strategy=strategy, lr=chosen_lr[strategy],
                           sizes=tuple(sorted(set(config.curated_sizes))), epsilon=config.epsilon, seed=config.seed,
                           epochs=config.ft_epochs, batch_size=config.batch_size, freeze_bn=config.freeze_bn,
                           from_block=config.ft_from_block if top else None, activations=activations if top else None,
                           version=2)
    return [JobSpec.of("curated", backbone.label, params)], None


def run_curated(spec: JobSpec, ctx: Context) -> JobOutput:
    """Per half and size, fine-tune on a curated and on a random subset of the other half (see the module
    docstring): held-out shifted predictions per variant and size, and reference-test predictions at the largest
    size (test image i scored by the model of half i mod 2). A learning rate that diverges on the small sets marks
    the rows not applicable."""
    p, data = CuratedParams.of(spec), ctx.data
    shift_y = data.shift.labels
    folds = crossfit_folds(shift_y, None, CURATED_FOLDS, p.seed)
    smallest_half = int(np.bincount(folds, minlength=CURATED_FOLDS).min())
    sizes = [n for n in p.sizes if n <= smallest_half]
    dropped = [n for n in p.sizes if n > smallest_half]
    descriptors = _descriptors(p, sizes, dropped, smallest_half)
    if not sizes:
        return JobOutput({"remedies": descriptors}, {})
    n_test = len(data.split["test"])
    curves = {v: np.full((len(sizes), len(shift_y)), -1, dtype=np.int16) for v in VARIANTS}
    pred_test = {v: np.full(n_test, -1, dtype=np.int16) for v in VARIANTS}
    trained_on = {v: np.full(len(shift_y), -1, dtype=np.int16) for v in VARIANTS}  # largest size: by which half
    ctx.progress("job_steps", CURATED_FOLDS * (2 * len(sizes) + 1) + 1)
    try:
        _fit_halves(p, ctx, folds, sizes, curves, pred_test, trained_on)
    except FloatingPointError as exc:
        for d in descriptors:
            d.update(applicable=False, note=f"not measured: fine-tuning diverged at lr {p.lr:g} ({exc})")
        return JobOutput({"remedies": descriptors}, {})
    arrays: dict[str, np.ndarray] = {}
    for i, variant in enumerate(VARIANTS):
        arrays[f"r{i}_test"], arrays[f"r{i}_shift"] = pred_test[variant], curves[variant][-1]
        arrays[f"r{i}_scored_by"], arrays[f"r{i}_trained_by"] = folds.astype(np.int16), trained_on[variant]
        if variant != "curated+reference":
            arrays[f"r{i}_sizes"] = curves[variant]
    for j, (d, fit) in enumerate(_finetuned_last_layer(p, ctx, folds), start=len(VARIANTS)):
        descriptors.append(d)
        arrays[f"r{j}_test"], arrays[f"r{j}_shift"], arrays[f"r{j}_scored_by"] = fit.pred_test, fit.pred_shift, \
            fit.scored_by
        arrays[f"r{j}_budget"] = fit.budget_preds
    return JobOutput({"remedies": descriptors}, arrays)


def _finetuned_last_layer(p: CuratedParams, ctx: Context, folds: np.ndarray) -> list[tuple[dict[str, Any], CrossFit]]:
    """Last-layer retraining on the penultimate features of the recipe fine-tuned on the reference alone, without
    and with the reference set, cross-fitted over the same halves."""
    data = ctx.data
    tuned = _Trainer(p, ctx).fine_tune(np.zeros(0, dtype=np.int64), with_reference=True)
    ctx.progress("job_advance", 1)
    feats = reduce_features(tuned.features(), seed=p.seed)
    C = float(ctx.probes[p.backbone].meta.get("C", DEFAULT_C))
    base = f"{p.backbone}/{p.strategy}"
    out = []
    for with_ref in (False, True):
        fit = crossfit_last_layer(feats["shift"], data.shift.labels, feats["test"], folds,
                                  ref_x=feats["train"] if with_ref else None,
                                  ref_y=data.part("train").labels if with_ref else None, C=C, seed=p.seed)
        out.append((dict(name=f"{base}/last-layer" + ("+reference" if with_ref else ""), method="last-layer",
                         data="labelled-shift", variant="reference+shift" if with_ref else "shift-only", base=base,
                         base_kind="finetuned", held_out=True, applicable=True, folds=CURATED_FOLDS,
                         n_shift_labelled=fit.n_labelled, budgets=fit.budgets,
                         note=f"features of {base} fine-tuned on the reference alone (lr {p.lr:g}, seed {p.seed}); "
                              "2-fold cross-fitted over the labelled shifted set: every score is held out"), fit))
    return out


def _fit_halves(p: CuratedParams, ctx: Context, folds: np.ndarray, sizes: list[int], curves: dict[str, np.ndarray],
                pred_test: dict[str, np.ndarray], trained_on: dict[str, np.ndarray]) -> None:
    """Fill, per variant, `curves` (held-out shifted predictions per size), `pred_test` (largest size) and
    `trained_on` (the model, by the half it scores, that trained on each shifted image at the largest size)."""
    rho = support_from_job(ctx.support).rho_shift
    shift_features = ctx.features[p.backbone].arrays["shift"].astype(np.float32)
    predicted = ctx.probes[p.backbone].arrays["pred_shift"]
    classes = list(ctx.data.pair.classes)
    trainer = _Trainer(p, ctx)
    n_test = len(pred_test["curated"])
    for half in range(CURATED_FOLDS):
        pool, held = np.flatnonzero(folds != half), np.flatnonzero(folds == half)
        test_part = np.flatnonzero(np.arange(n_test) % CURATED_FOLDS == half)
        for s, n in enumerate(sizes):
            chosen = {"curated": pool[select_shift(shift_features[pool], predicted[pool], rho[pool], p.epsilon, n,
                                                   classes).index],
                      "random": np.random.default_rng([p.seed, n, half]).choice(pool, n, replace=False)}
            if s == len(sizes) - 1:
                chosen["curated+reference"] = chosen["curated"]
            for variant, picks in chosen.items():
                model = trainer.fine_tune(picks, with_reference=variant.endswith("+reference"))
                curves[variant][s, held] = model.predict_shift(held)
                if s == len(sizes) - 1:
                    pred_test[variant][test_part] = model.predict_test(test_part)
                    trained_on[variant][picks] = half
                ctx.progress("job_advance", 1)


def _descriptors(p: CuratedParams, sizes: list[int], dropped: list[int], half: int) -> list[dict[str, Any]]:
    recipe = (f"{p.strategy.upper()} at lr {p.lr:g}" + (f", blocks {p.from_block}.. on cached activations"
                                                        if p.from_block is not None else ", end to end"))
    held = (f"selected on one half of the labelled shifted set, scored on the other (both ways): every score is "
            f"held out; {recipe}")
    skipped = (f"; sizes {', '.join(map(str, dropped))} skipped (a half holds {half} shifted images)"
               if dropped and sizes else "")
    largest = sizes[-1] if sizes else 0
    out = []
    for variant in VARIANTS:
        source = "random" if variant == "random" else "curated"
        what = ("a uniform random sample of the same size" if source == "random"
                else "`ptdiag curate --from shift` selection (class × density-ratio strata, k-center)")
        out.append(dict(name=f"{p.backbone}/finetune-{variant}", method="curated-finetune",
                        data=f"{source}-shift", variant="reference+shift" if "+" in variant else "shift-only",
                        base=p.backbone, base_kind="pretrained", held_out=True, applicable=bool(sizes),
                        folds=CURATED_FOLDS, n_shift_labelled=largest,
                        sizes=[largest] if "+" in variant else sizes,
                        note=f"{what}; {held}{skipped}" if sizes else
                        f"not measured: --curated-sizes {', '.join(map(str, p.sizes))} all exceed the {half} "
                        "shifted images of a half (half selects, half scores)"))
    return out


class _Trainer:
    """Fine-tunes fresh copies of the pre-trained model with the analysis' recipe on chosen shifted images."""

    def __init__(self, p: CuratedParams, ctx: Context):
        self.p, self.ctx = p, ctx
        acts = ctx.activations.get(p.backbone) if p.activations else None
        self.acts = acts.arrays if acts is not None else None

    def fine_tune(self, picks: np.ndarray, with_reference: bool) -> _Tuned:
        p, data = self.p, self.ctx.data
        torch.manual_seed(p.seed)
        model = create_pretrained(BackboneSpec(p.model, p.weights), len(data.pair.classes))
        if p.strategy == "lpft":
            probe = self.ctx.probes[p.backbone].arrays
            load_head(model, LinearProbe(probe["weight"], probe["bias"], 0.0, 0.0, {}))
        labels = data.shift.labels[picks]
        if with_reference:
            labels = np.concatenate([data.part("train").labels, labels])
        cfg = TrainConfig(epochs=curated_epochs(p.epochs, len(labels), p.batch_size), lr=p.lr, batch_size=p.batch_size,
                          seed=p.seed, freeze_bn=p.freeze_bn, label_smoothing=0.0, weight_decay=0.1)
        if self.acts is not None:
            split = split_at(model, p.from_block)
            own = self.acts["shift"][picks]
            views = ([np.concatenate([self.acts[f"train_view{v}"], own.astype(self.acts[f"train_view{v}"].dtype)])
                      for v in range(sum(k.startswith("train_view") for k in self.acts))] if with_reference
                     else [own])
            train_top(split, views, labels, cfg, self.ctx.device)
            return _Tuned(self, split=split)
        normalize = Normalizer(*normalization(model), self.ctx.device)
        images = data.shift.images[picks]
        if with_reference:
            images = np.concatenate([data.part("train").images, images])
        train_model(model, ArraySet(images, labels), cfg, normalize)
        return _Tuned(self, model=model, normalize=normalize)


@dataclass
class _Tuned:
    """A fine-tuned model's predicted classes on chosen shifted and reference-test images."""

    trainer: _Trainer
    split: Any = None
    model: Any = None
    normalize: Any = None

    def features(self) -> dict[str, np.ndarray]:
        """Penultimate features of the reference train/test images (unaugmented) and of every shifted image."""
        data = self.trainer.ctx.data
        if self.split is not None:
            acts, device = self.trainer.acts, self.trainer.ctx.device
            parts = {name: take(acts["reference"], data.split[name]) for name in ("train", "test")}
            parts["shift"] = acts["shift"]
            return {name: upper_features(self.split, a, device).astype(np.float32) for name, a in parts.items()}
        images = {"train": data.part("train").images, "test": data.part("test").images, "shift": data.shift.images}
        return {name: extract_features(self.model, x, self.normalize).astype(np.float32) for name, x in images.items()}

    def predict_shift(self, index: np.ndarray) -> np.ndarray:
        acts = self.trainer.acts
        if self.split is not None:
            return self._upper(acts["shift"][index])
        return self._full(self.trainer.ctx.data.shift.images[index])

    def predict_test(self, index: np.ndarray) -> np.ndarray:
        data = self.trainer.ctx.data
        test = np.asarray(data.split["test"])[index]
        if self.split is not None:
            return self._upper(take(self.trainer.acts["reference"], test))
        return self._full(data.part("test").images[index])

    def _upper(self, activations: np.ndarray) -> np.ndarray:
        return predict_upper(self.split, activations, self.trainer.ctx.device).argmax(1).astype(np.int16)

    def _full(self, images: np.ndarray) -> np.ndarray:
        return predict(self.model, images, self.normalize).argmax(1).astype(np.int16)


def curated_epochs(min_epochs: int, n_images: int, batch_size: int) -> int:
    """At least `min_epochs`, and enough that training takes MIN_STEPS optimizer steps."""
    return max(min_epochs, math.ceil(MIN_STEPS / math.ceil(n_images / batch_size)))
