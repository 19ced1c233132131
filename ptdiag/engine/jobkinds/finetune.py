"""Job kinds `finetune` and `activations`: fine-tuning (FT and LP-FT), end to end or the top blocks on cached
activations of the frozen lower ones.

`--ft-from-block K` (quick budget: see `ptdiag.config.BUDGETS`) selects the top-block recipe: one `activations`
job per backbone computes the frozen lower blocks' outputs for the reference val/test, shifted and (augmented,
`ft_epochs` views) training images; every learning rate and seed then trains only blocks K.. and the head on them
(`ptdiag.engine.partial`). K = 0 is the end-to-end fine-tune, whose job keys are unchanged from earlier versions.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ptdiag._io import write_bytes_atomic
from ptdiag.config import AnalyzeConfig
from ptdiag.engine.features import LinearProbe, load_head
from ptdiag.engine.jobkinds.features import file_digest
from ptdiag.engine.jobs import JobOutput, JobParams, JobSpec
from ptdiag.engine.models import BackboneSpec, create_pretrained, normalization
from ptdiag.engine.partial import TopSplit, lower_activations, predict_upper, split_at, train_top
from ptdiag.engine.rundata import Context, step_reporter
from ptdiag.engine.train import Normalizer, TrainConfig, predict, train_model
from ptdiag.stats.atc import confidence_scores

log = logging.getLogger("ptdiag")


@dataclass(frozen=True)
class FinetuneParams(JobParams):
    """One fine-tuning run (FT or LP-FT) at one learning rate and seed; with `activations`, the top-block recipe
    (blocks `from_block`.. trained on the cached outputs of the frozen lower blocks)."""

    OPTIONAL = ("from_block", "activations")  # end-to-end jobs keep the keys they had before the top-block recipe
    model: str
    weights: str | None
    backbone: str
    features: str  # the features job's key (LP-FT starts from the probe fitted on them)
    strategy: str
    lr: float
    seed: int
    epochs: int
    batch_size: int
    freeze_bn: bool
    image_size: int
    probe_cs: tuple[float, ...]
    from_block: int | None = None
    activations: str | None = None


@dataclass(frozen=True)
class ActivationParams(JobParams):
    """The frozen lower blocks' outputs for every image and for `views` augmented views of the training images."""

    model: str
    weights: str | None
    weights_sha: str | None
    image_size: int
    from_block: int
    views: int
    seed: int
    all_images: bool


def finetune_spec(config: AnalyzeConfig, backbone: BackboneSpec, strategy: str, lr: float, seed: int,
                  features: str, activations: str | None = None) -> JobSpec:
    """One fine-tuning run; `activations` (the key of the backbone's activations job) selects the top-block recipe."""
    top = activations is not None
    params = FinetuneParams(model=backbone.name, weights=backbone.weights, backbone=backbone.label, features=features,
                            strategy=strategy, lr=lr, seed=seed, epochs=config.ft_epochs, batch_size=config.batch_size,
                            freeze_bn=config.freeze_bn, image_size=config.image_size, probe_cs=config.probe_cs,
                            from_block=config.ft_from_block if top else None, activations=activations)
    name = f"{backbone.label}-{strategy}-lr{lr:g}-s{seed}" + (f"-top{config.ft_from_block}" if top else "")
    return JobSpec.of("finetune", name, params)


def activation_spec(config: AnalyzeConfig, backbone: BackboneSpec) -> JobSpec:
    params = ActivationParams(model=backbone.name, weights=backbone.weights, weights_sha=file_digest(backbone.weights),
                              image_size=config.image_size, from_block=config.ft_from_block, views=config.ft_epochs,
                              seed=config.seed, all_images=True)
    return JobSpec.of("activations", f"{backbone.label}-top{config.ft_from_block}", params)


def run_activations(spec: JobSpec, ctx: Context) -> JobOutput:
    """Frozen lower-block outputs for every reference and shifted image (float32: the features job derives the
    backbone's features from them exactly) and every augmented view of the training images (float16)."""
    p = ActivationParams.of(spec)
    model = create_pretrained(BackboneSpec(p.model, p.weights), len(ctx.data.pair.classes))
    split = split_at(model, p.from_block)
    if split is None:
        log.warning("%s: no known block layout to cut at block %s; fine-tuning end to end", p.model,
                    p.from_block)
        return JobOutput({"supported": False})
    normalize = Normalizer(*normalization(model), ctx.device)
    ctx.progress("job_steps", p.views + 2)
    arrays = {}
    for name, images in (("reference", ctx.data.reference.images), ("shift", ctx.data.shift.images)):
        arrays[name] = lower_activations(split, images, normalize, dtype=torch.float32)
        ctx.progress("job_advance", 1)
    train = ctx.data.part("train").images
    for view in range(p.views):
        arrays[f"train_view{view}"] = lower_activations(split, train, normalize, view_seed=p.seed * 1000 + view)
        ctx.progress("job_advance", 1)
    return JobOutput({"supported": True, "shape": list(arrays["shift"].shape[1:]), "blocks": split.n_blocks,
                      "from_block": p.from_block}, arrays)


def run_finetune(spec: JobSpec, ctx: Context) -> JobOutput:
    """Fine-tune one recipe at one learning rate and seed (LP-FT starts from the backbone's probe), end to end or
    the top blocks on the cached activations; its validation accuracy and its predictions (with their confidence
    scores) on the reference-test and shifted sets. A diverged run returns `val_acc` −1 so the grid skips it."""
    p = FinetuneParams.of(spec)
    torch.manual_seed(p.seed)  # the fresh head's init depends on the job alone
    model = create_pretrained(BackboneSpec(p.model, p.weights), len(ctx.data.pair.classes))
    if p.strategy == "lpft":
        probe = ctx.probes[p.backbone].arrays
        load_head(model, LinearProbe(probe["weight"], probe["bias"], 0.0, 0.0, {}))
    cfg = TrainConfig(epochs=p.epochs, lr=p.lr, batch_size=p.batch_size, seed=p.seed,
                      freeze_bn=p.freeze_bn, label_smoothing=0.0, weight_decay=0.1)
    acts = ctx.activations.get(p.backbone) if p.activations else None
    if p.activations and acts is None:  # never silently change the recipe a job's key stands for
        raise RuntimeError(f"{spec.name}: its activations job did not run in this context")
    split = split_at(model, p.from_block) if acts is not None and acts.meta.get("supported") else None
    try:
        if split is not None:
            preds = _train_top_and_predict(split, acts.arrays, cfg, spec, ctx)
        else:
            preds = _train_full_and_predict(model, cfg, spec, ctx)
    except FloatingPointError as exc:  # this LR diverged: the grid skips it (val_acc -1)
        log.warning("%s: %s", spec.name, exc)
        empty = np.full(0, -1, dtype=np.int16)
        return JobOutput({"val_acc": -1.0, "diverged": True}, {"pred_test": empty, "pred_shift": empty})
    if ctx.checkpoint_dir is not None:
        _save_checkpoint(model, spec, ctx)
    val_acc = float((preds["val"].argmax(1) == ctx.data.part("val").labels).mean())
    recipe = f"top{split.k}" if split is not None else "full"
    return JobOutput({"val_acc": val_acc, "recipe": recipe},
                     {"pred_test": preds["test"].argmax(1).astype(np.int16),
                      "pred_shift": preds["shift"].argmax(1).astype(np.int16),
                      "scores_test": confidence_scores(preds["test"]),
                      "scores_shift": confidence_scores(preds["shift"])})


def _train_full_and_predict(model: nn.Module, cfg: TrainConfig, spec: JobSpec, ctx: Context) -> dict[str, np.ndarray]:
    normalize = Normalizer(*normalization(model), ctx.device)
    train_model(model, ctx.data.part("train"), cfg, normalize, on_step=step_reporter(ctx, spec))
    return {name: predict(model, ctx.data.part(name).images, normalize) for name in ("val", "test", "shift")}


def _train_top_and_predict(split: TopSplit, arrays: dict[str, np.ndarray], cfg: TrainConfig, spec: JobSpec,
                           ctx: Context) -> dict[str, np.ndarray]:
    views = [arrays[f"train_view{v}"] for v in range(sum(k.startswith("train_view") for k in arrays))]
    train_top(split, views, ctx.data.part("train").labels, cfg, ctx.device, on_step=step_reporter(ctx, spec))
    sets = {name: take(arrays["reference"], ctx.data.split[name]) for name in ("val", "test")}
    sets["shift"] = arrays["shift"]
    return {name: predict_upper(split, acts, ctx.device) for name, acts in sets.items()}


def take(array: np.ndarray, index: np.ndarray) -> np.ndarray:
    return array[np.asarray(index)]


def _save_checkpoint(model: nn.Module, spec: JobSpec, ctx: Context) -> None:
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)  # plain tensors: loadable with torch.load(..., weights_only=True)
    write_bytes_atomic(ctx.checkpoint_dir / f"{spec.stage}-{spec.key(ctx.data.fingerprint)}.pt", buffer.getvalue())
