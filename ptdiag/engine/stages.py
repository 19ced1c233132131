"""The jobs of an analysis: their specs (what decides a job's key) and the functions that run them.

baselines from scratch → features per pre-trained backbone → linear probe → fine-tunes → support split.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ptdiag.config import AnalyzeConfig
from ptdiag.engine.features import extract_features, fit_linear_probe
from ptdiag.engine.jobs import JobOutput, JobParams, JobSpec
from ptdiag.engine.models import BackboneSpec, create_baseline, create_pretrained, normalization
from ptdiag.engine.partial import split_at, upper_features
from ptdiag.engine.rundata import Context, take_rows
from ptdiag.engine.train import ArraySet, Normalizer, TrainConfig, train_model
from ptdiag.errors import ResourceError
from ptdiag.stats.support import SupportConfig, SupportSplit, estimate_support

log = logging.getLogger("ptdiag")



@dataclass(frozen=True)
class BaselineParams(JobParams):
    """One from-scratch training run on a fraction of the reference train split, evaluated at several epochs."""

    epochs: int
    eval_epochs: tuple[int, ...]
    batch_size: int
    seed_base: int  # the analysis seed; the run's seed is seed_base * 1000 + seed
    source_size: int  # the decoded resolution the baseline images are resized from
    store_features: bool  # keep the final model's penultimate features, for the remedies job
    arch: str
    width: int  # channels of the default CNN's first layer (0: not that CNN)
    fraction: float
    seed: int
    lr: float
    image_size: int


def baseline_jobs(config: AnalyzeConfig) -> list[JobSpec]:
    """One job per (fraction, seed) training run, each evaluated at several epoch checkpoints."""
    jobs = []
    common = dict(epochs=config.baseline_epochs, eval_epochs=tuple(config.baseline_eval_epochs),
                  batch_size=max(64, config.batch_size), seed_base=config.seed, source_size=config.image_size,
                  store_features=True)
    for fraction in config.baseline_fractions:
        for seed in config.baseline_seeds:
            params = BaselineParams(**common, arch=config.baseline_arch, width=config.baseline_width,
                                    fraction=fraction, seed=seed, lr=config.baseline_lr,
                                    image_size=config.baseline_image_size)
            jobs.append(JobSpec.of("baseline",
                                   f"{config.baseline_arch}-w{config.baseline_width}-f{fraction}-s{seed}", params))
    if config.scratch_same_arch:
        for model in config.model:
            params = BaselineParams(**dict(common, batch_size=config.batch_size), arch=model, width=0, fraction=1.0,
                                    seed=0, lr=1e-3, image_size=config.image_size)
            jobs.append(JobSpec.of("baseline", f"{model}-scratch-f1.0-s0", params))
    return jobs


def run_baseline(spec: JobSpec, ctx: Context) -> JobOutput:
    """Train one baseline run; its predictions on the reference-test and shifted sets at each evaluated epoch
    (``e{epoch}_test`` / ``e{epoch}_shift``) and, with `store_features`, its penultimate features."""
    p = BaselineParams.of(spec)
    data = ctx.data
    train = data.part("train", p.image_size)
    rng = np.random.default_rng(p.seed_base * 1000 + p.seed)
    n_keep = max(len(np.unique(train.labels)), int(round(p.fraction * len(train))))
    keep = np.sort(rng.permutation(len(train))[:n_keep])
    train = ArraySet(take_rows(train.images, keep), train.labels[keep])  # lazy on disk: no copy of the subset
    torch.manual_seed(p.seed_base * 1000 + p.seed)  # init depends on the job alone, not on earlier jobs
    model = create_baseline(len(data.pair.classes), arch=p.arch, width=p.width or 32)
    normalize = Normalizer(*normalization(model), ctx.device)
    batch_size = min(p.batch_size, max(8, n_keep // 10))  # tiny sets still get ~10 steps per epoch
    cfg = TrainConfig(epochs=p.epochs, lr=p.lr, batch_size=batch_size, seed=p.seed_base + p.seed)
    eval_sets = {"test": data.part("test", p.image_size).images, "shift": data.part("shift", p.image_size).images}
    try:
        preds = train_model(model, train, cfg, normalize, eval_sets=eval_sets, eval_epochs=tuple(p.eval_epochs),
                            on_step=step_reporter(ctx, spec))
    except FloatingPointError as exc:
        raise ResourceError(f"baseline {spec.name}: {exc}", hint="lower --baseline-lr") from None
    arrays = {f"e{epoch}_{name}": pred.astype(np.int16) for epoch, sets in preds.items() for name, pred in sets.items()}
    if p.store_features:
        arrays.update(penultimate_features(model, normalize, data, p.image_size))
    return JobOutput({"n_train": n_keep}, arrays)


def penultimate_features(model, normalize: Normalizer, data, size: int) -> dict[str, np.ndarray]:
    """The trained model's pooled penultimate features (float16) on the reference splits and the shifted set."""
    return {f"feat_{name}": extract_features(model, data.part(name, size).images, normalize).astype(np.float16)
            for name in ("train", "val", "test", "shift")}


@dataclass(frozen=True)
class FeatureParams(JobParams):
    """A pre-trained backbone's penultimate features of every reference and shifted image."""

    OPTIONAL = ("activations",)
    model: str
    weights: str | None
    weights_sha: str | None
    image_size: int
    activations: str | None = None  # key of the backbone's activations job: features from its cached outputs


@dataclass(frozen=True)
class ProbeParams(JobParams):
    """A linear probe on a backbone's features, its strength chosen on the reference validation split."""

    backbone: str
    features: str  # the features job's key
    cs: tuple[float, ...]
    seed: int


@dataclass(frozen=True)
class SupportParams(JobParams):
    """The cross-fitted, calibrated domain classifier on a backbone's features (the support split)."""

    backbone: str
    features: str
    folds: int
    seed: int
    max_reference: int
    assignments: int


def feature_jobs(config: AnalyzeConfig, activations: dict[str, str] | None = None) -> list[JobSpec]:
    """One features job per backbone; with `activations` (backbone label -> activations job key) the features are
    the upper blocks' output on those cached activations (the same numbers, without a second lower pass)."""
    return [JobSpec.of("features", spec.label,
                       FeatureParams(model=spec.name, weights=spec.weights, weights_sha=file_digest(spec.weights),
                                     image_size=config.image_size, activations=(activations or {}).get(spec.label)))
            for spec in backbones(config)]


def probe_job(config: AnalyzeConfig, backbone: str, features: str) -> JobSpec:
    return JobSpec.of("probe", backbone, ProbeParams(backbone=backbone, features=features, cs=config.probe_cs,
                                                     seed=config.seed))


def support_job(config: AnalyzeConfig, backbone: str, features: str) -> JobSpec:
    return JobSpec.of("support", backbone, SupportParams(backbone=backbone, features=features, folds=config.folds,
                                                         seed=config.seed, max_reference=config.support_max_reference,
                                                         assignments=SupportConfig.assignments))


def file_digest(path: str | None) -> str | None:
    """Content hash of a local checkpoint, so a changed file with the same name is not mistaken for the old one."""
    if path is None or not Path(path).is_file():
        return None
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


def backbones(config: AnalyzeConfig) -> list[BackboneSpec]:
    weights = config.weights or (None,) * len(config.model)
    return [BackboneSpec(name, w) for name, w in zip(config.model, weights, strict=True)]


def run_features(spec: JobSpec, ctx: Context) -> JobOutput:
    p = FeatureParams.of(spec)
    model = create_pretrained(BackboneSpec(p.model, p.weights), len(ctx.data.pair.classes))
    normalize = Normalizer(*normalization(model), ctx.device)
    acts = ctx.activations.get(spec.name) if p.activations else None
    if acts is not None and acts.meta.get("supported"):
        split = split_at(model, acts.meta["from_block"])
        ref, shift = (upper_features(split, acts.arrays[name], ctx.device).astype(np.float16)
                      for name in ("reference", "shift"))
        return JobOutput({"dim": int(ref.shape[1]), "from_activations": True}, {"reference": ref, "shift": shift})
    ctx.progress("job_steps", 2)
    ref = features_in_blocks(model, ctx.data.reference.images, normalize)
    ctx.progress("job_advance", 1)
    shift = features_in_blocks(model, ctx.data.shift.images, normalize)
    ctx.progress("job_advance", 1)
    return JobOutput({"dim": int(ref.shape[1])}, {"reference": ref, "shift": shift})


def features_in_blocks(model, images, normalize: Normalizer, block: int = 2048) -> np.ndarray:
    """`extract_features` as float16, a block of images at a time: memory holds one block, not every image's
    float32 features. Blocks are a multiple of its 256-image batch, so the batches (and numbers) are unchanged."""
    out: np.ndarray | None = None
    for start in range(0, len(images), block):
        part = extract_features(model, take_rows(images, np.arange(start, min(start + block, len(images)))), normalize)
        if out is None:
            out = np.empty((len(images), part.shape[1]), dtype=np.float16)
        out[start:start + len(part)] = part
    return out if out is not None else np.zeros((0, 0), dtype=np.float16)


def run_probe(spec: JobSpec, ctx: Context) -> JobOutput:
    """Fit the linear probe on the backbone's reference-train features (strength chosen on validation); its
    weights and predictions on the reference-test and shifted sets."""
    p = ProbeParams.of(spec)
    feats = ctx.features[p.backbone].arrays
    ref = feats["reference"].astype(np.float32)
    split, labels = ctx.data.split, ctx.data.reference.labels
    probe = fit_linear_probe(ref[split["train"]], labels[split["train"]], ref[split["val"]], labels[split["val"]],
                             len(ctx.data.pair.classes), cs=p.cs, seed=p.seed)
    arrays = {"pred_test": probe.predict(ref[split["test"]]).astype(np.int16),
              "pred_shift": probe.predict(feats["shift"].astype(np.float32)).astype(np.int16),
              "weight": probe.weight, "bias": probe.bias}
    return JobOutput({"val_acc": probe.val_acc, "C": probe.C, "grid": {str(k): v for k, v in probe.grid.items()}},
                     arrays)


def run_support(spec: JobSpec, ctx: Context) -> JobOutput:
    """The support split: density ratios of every shifted image (and of a reference sample), cross-fitted."""
    p = SupportParams.of(spec)
    feats = ctx.features[p.backbone].arrays
    split = ctx.data.split
    pool = np.concatenate([split["train"], split["val"]])  # never the reference test set
    rng = np.random.default_rng(p.seed)
    sample = np.sort(rng.permutation(pool)[: p.max_reference])
    groups = ctx.data.pair.shift.groups
    groups = groups[ctx.data.shift_index] if groups is not None else None
    result = estimate_support(feats["reference"][sample].astype(np.float32), feats["shift"].astype(np.float32),
                              shift_groups=groups,
                              config=SupportConfig(folds=p.folds, seed=p.seed, assignments=p.assignments))
    meta = {name: getattr(result, name) for name in _SUPPORT_SCALARS}
    meta["backbone"] = p.backbone
    arrays = {name: np.asarray(getattr(result, name)) for name in _SUPPORT_ARRAYS}
    if result.rho_shift_draws is not None:
        arrays["rho_shift_draws"] = np.asarray(result.rho_shift_draws)
    return JobOutput(meta, dict(arrays, sample=sample))


_SUPPORT_ARRAYS = ("rho_shift", "rho_reference", "logit_shift", "logit_reference")
_SUPPORT_SCALARS = ("epsilon", "domain_auc", "temperature", "C", "c_selection", "folds", "fold_kind", "ece",
                    "calibration", "log_ratio_histogram", "warnings", "seconds")


def support_from_job(out: JobOutput) -> SupportSplit:
    """Rebuild the SupportSplit from its stored job result (nothing is refitted)."""
    meta = dict(out.meta, c_selection=tuple(tuple(pair) for pair in out.meta["c_selection"]))
    draws = out.arrays.get("rho_shift_draws")  # absent from support jobs stored before fold-assignment draws
    return SupportSplit(**meta, **{name: out.arrays[name] for name in _SUPPORT_ARRAYS},
                        rho_shift_draws=draws if draws is not None and np.ndim(draws) == 2 else None)


def step_reporter(ctx: Context, spec: JobSpec) -> Callable[[int, int], None]:
    def report(step: int, total: int) -> None:
        if step == 1:
            ctx.progress("job_steps", total)
        ctx.progress("job_advance", 1)

    return report
