"""Job kind `baseline`: one from-scratch training run on a fraction of the reference train split, evaluated at
several epoch checkpoints (the points of accuracy on the line)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ptdiag.config import AnalyzeConfig
from ptdiag.engine.features import extract_features
from ptdiag.engine.jobs import JobOutput, JobParams, JobSpec
from ptdiag.engine.models import create_baseline, normalization
from ptdiag.engine.rundata import Context, step_reporter, take_rows
from ptdiag.engine.train import ArraySet, Normalizer, TrainConfig, train_model
from ptdiag.errors import ResourceError


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
    (``e{epoch}_test`` / ``e{epoch}_shift``, with their confidence scores ``..._scores``) and, with
    `store_features`, its penultimate features."""
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
    scores: dict[int, dict[str, np.ndarray]] = {}
    try:
        preds = train_model(model, train, cfg, normalize, eval_sets=eval_sets, eval_epochs=tuple(p.eval_epochs),
                            on_step=step_reporter(ctx, spec), scores=scores)
    except FloatingPointError as exc:
        raise ResourceError(f"baseline {spec.name}: {exc}", hint="lower --baseline-lr") from None
    arrays = {f"e{epoch}_{name}": pred.astype(np.int16) for epoch, sets in preds.items() for name, pred in sets.items()}
    arrays |= {f"e{epoch}_{name}_scores": s for epoch, sets in scores.items() for name, s in sets.items()}
    if p.store_features:
        arrays.update(penultimate_features(model, normalize, data, p.image_size))
    return JobOutput({"n_train": n_keep}, arrays)


def penultimate_features(model, normalize: Normalizer, data, size: int) -> dict[str, np.ndarray]:
    """The trained model's pooled penultimate features (float16) on the reference splits and the shifted set."""
    return {f"feat_{name}": extract_features(model, data.part(name, size).images, normalize).astype(np.float16)
            for name in ("train", "val", "test", "shift")}
