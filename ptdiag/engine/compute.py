"""The stages of `analyze` after ingest: jobs for baselines, features, probe, fine-tunes, support split and remedies,
then the statistics, results.json and predictions.parquet (`ptdiag.engine.pipeline.analyze` calls `run_stages`)."""

from __future__ import annotations

import dataclasses
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ptdiag._io import write_json_atomic
from ptdiag.config import AnalyzeConfig
from ptdiag.engine.executors import make_executor
from ptdiag.engine.jobkinds.baseline import BaselineParams, baseline_jobs, run_baseline
from ptdiag.engine.jobkinds.curated import curated_specs, run_curated
from ptdiag.engine.jobkinds.features import backbones, feature_jobs, run_features
from ptdiag.engine.jobkinds.finetune import activation_spec, finetune_spec, run_activations, run_finetune
from ptdiag.engine.jobkinds.probe import probe_job, run_probe
from ptdiag.engine.jobkinds.remedies import remedy_evals, remedy_frames, remedy_section, remedy_specs, run_remedies
from ptdiag.engine.jobkinds.support import run_support, support_from_job, support_job
from ptdiag.engine.jobs import JobOutput, JobSpec, JobStore
from ptdiag.engine.models import pick_device
from ptdiag.engine.results import assemble_results, write_predictions
from ptdiag.engine.rundata import Context, Progress, RunData, evaluation
from ptdiag.errors import DataError, ResourceError
from ptdiag.remedies.summary import curated_advice
from ptdiag.schema import validate_results
from ptdiag.stats.estimated import unlabelled_scores
from ptdiag.stats.score import ModelEval, StatsConfig, score
from ptdiag.stats.thresholds import VerdictConfig

log = logging.getLogger("ptdiag")


def run_stages(config: AnalyzeConfig, run_dir: Path, data: RunData, progress: Progress, timings: dict[str, float],
               clock: float) -> dict[str, Any]:
    """Run (or reuse) every job of the analysis on prepared `data`; write and return the validated results."""
    torch.manual_seed(config.seed)
    device = pick_device(config.device)
    data.at_size(config.baseline_image_size)  # resized once here, not by each (possibly remote) baseline job
    ctx = Context(config, data, device, progress,
                  checkpoint_dir=run_dir / "checkpoints" if config.save_checkpoints else None)
    store = JobStore(run_dir / "jobs", data.fingerprint)
    executor = make_executor(config, run_dir, store, on_job=lambda spec, out: progress("job_done", (spec, out)))

    def stage(name: str, jobs: list[JobSpec], fn, context: Context) -> list[JobOutput]:
        """Run a stage's jobs with `context` (what they may read); record its compute seconds."""
        start = time.perf_counter()
        progress("stage", (name, len(jobs)))
        try:
            outputs = executor.run(jobs, fn, context)
        except torch.OutOfMemoryError:
            raise ResourceError(f"out of memory in stage {name!r} on {device}",
                                hint="lower --batch-size, --image-size or --max-reference") from None
        # Compute seconds of the stage's jobs, also when they were reused from an earlier invocation.
        spent = sum(o.seconds for o in outputs) if outputs else time.perf_counter() - start
        timings[name] = timings.get(name, 0.0) + spent
        return outputs

    # No shifted label at all: the label-free run (support split and pre-trained recipes; no baselines, remedies).
    label_free = data.shift_labelled is not None and not data.shift_labelled.any()
    base_specs = [] if label_free else baseline_jobs(config)
    executor.prefetch(base_specs, run_baseline, ctx)  # Ray: baselines train alongside the pre-trained stages
    activations, activation_keys = _activations(ctx, stage)  # top-block recipe: activations come first
    ctx = dataclasses.replace(ctx, activations=activations)
    feat_specs = feature_jobs(config, activation_keys)
    feat_outputs = stage("features", feat_specs, run_features, ctx)
    ctx = dataclasses.replace(ctx, features={s.name: o for s, o in zip(feat_specs, feat_outputs, strict=True)})
    support_spec = support_job(config, feat_specs[0].name, feat_specs[0].key(data.fingerprint))
    executor.prefetch([support_spec], run_support, ctx)  # the support split needs only the features
    pretrained, probes = _pretrained_evals(ctx, stage, feat_specs, activation_keys)
    ctx = dataclasses.replace(ctx, probes=probes)
    base_outputs = stage("baselines", base_specs, run_baseline, ctx) if base_specs else []
    evals = _baseline_evals(ctx, base_specs, base_outputs) + pretrained
    try:
        support_out = stage("support", [support_spec], run_support, ctx)[0]
        support = support_from_job(support_out).at_epsilon(config.epsilon)  # ε only thresholds: no refit
    except DataError as exc:  # e.g. too few shifted images to cross-fit: report ER without the split
        log.warning("support split skipped: %s", exc.message)
        support_out, support = None, None
    remedy_jobs, remedy_bases = remedy_specs(config, ctx, base_specs, base_outputs, feat_specs)
    ctx = dataclasses.replace(ctx, baselines=remedy_bases, support=support_out)
    remedy_outs = stage("remedies", remedy_jobs, run_remedies, ctx) if remedy_jobs else []
    curated_jobs, curated_skipped = curated_specs(config, ctx, feat_specs, pretrained,
                                                  support_spec if support else None, activation_keys)
    remedy_outs += stage("curated", curated_jobs, run_curated, ctx) if curated_jobs else []
    start = time.perf_counter()
    if label_free:
        score_dict = unlabelled_scores(evals, support, len(data.shift_index))
    else:
        verdict_config = VerdictConfig(material_margin=config.material_points / 100,
                                       material_share=config.material_share, min_r2=config.min_r2)
        stats_config = StatsConfig(scale=config.scale, epsilon=config.epsilon, bootstrap=config.bootstrap,
                                   seed=config.seed, verdict=verdict_config)
        scored = evals + remedy_evals(ctx, remedy_outs, support)
        score_dict = score(scored, support, stats_config, shift_labelled=data.shift_labelled).to_dict()
    timings["statistics"] = time.perf_counter() - start
    timings["total"] = sum(timings.values())
    timings["this_invocation"] = time.perf_counter() - clock  # wall time of this call (small when resuming)
    remedy_scores = score_dict.pop("remedy_scores", None)
    if support is None:
        score_dict["warnings"] = [*score_dict.get("warnings", []), "the support split could not run (see "
                                  "ptdiag.log): the gap is not decomposed into bias and extrapolation"]
    if curated_skipped:
        score_dict["warnings"].append(curated_skipped)
    if data.labelled_outside:
        score_dict["warnings"].append(
            f"{data.labelled_outside} labelled shifted image(s) lie outside the {len(data.shift_index)} analysed "
            "ones (--max-shift subsample) and were not used; label from `ptdiag curate --from shift --random`, "
            "which draws from the analysed images, or raise --max-shift")
    remedies = remedy_section(ctx, remedy_outs, support, remedy_scores)
    _cite_curated(score_dict, remedies)
    results = assemble_results(config, data, score_dict, support, support_out, evals, timings, device, remedies)
    write_predictions(run_dir, ctx.data, evals, support_out, extra=remedy_frames(ctx, remedy_outs, support))
    write_json_atomic(run_dir / "results.json", validate_results(results))
    return results




def _cite_curated(score_dict: dict[str, Any], remedies: list) -> None:
    """Add the recommendation that cites the curated-finetune measurements (when they were run) to the verdict."""
    advice = curated_advice(remedies, score_dict.get("pretrained") or [])
    verdict = score_dict.get("verdict") or {}
    if advice is not None and "recommendations" in verdict:
        verdict["recommendations"].append(advice)
        verdict["recommendation_codes"].append("measured-curated-finetune")


def _baseline_evals(ctx: Context, specs: list[JobSpec], outputs: list[JobOutput]) -> list[ModelEval]:
    """One evaluation per baseline checkpoint (its run named, so the resampling keeps checkpoints together)."""
    evals: list[ModelEval] = []
    for spec, out in zip(specs, outputs, strict=True):
        p = BaselineParams.of(spec)
        for epoch in p.eval_epochs:
            scores = (out.arrays.get(f"e{epoch}_test_scores"), out.arrays.get(f"e{epoch}_shift_scores"))
            evals.append(evaluation(ctx.data, out.arrays[f"e{epoch}_test"], out.arrays[f"e{epoch}_shift"], scores,
                                    name=f"{spec.name}-e{epoch}", kind="baseline", run=spec.name,
                                    meta=dict(arch=p.arch, fraction=p.fraction, epoch=epoch, seed=p.seed)))
    return evals


def _pretrained_evals(ctx: Context, stage, feat_specs: list[JobSpec],
                      activation_keys: dict[str, str]) -> tuple[list[ModelEval], dict[str, JobOutput]]:
    """Per backbone: the linear probe, then each fine-tuning strategy (LR chosen on the reference validation split
    only, never the test or shifted set, then more seeds). Returns the evaluations and the probes by backbone."""
    config = ctx.config
    evals: list[ModelEval] = []
    probes: dict[str, JobOutput] = {}
    for backbone, feat_spec in zip(backbones(config), feat_specs, strict=True):
        name = backbone.label
        features = feat_spec.key(ctx.data.fingerprint)
        probe_spec = probe_job(config, name, features)
        probes[name] = probe = stage("probe", [probe_spec], run_probe, ctx)[0]
        if "lp" in config.strategies:
            evals.append(evaluation(ctx.data, probe.arrays["pred_test"], probe.arrays["pred_shift"], _scores(probe),
                                    name=f"{name}/lp", kind="pretrained",
                                    meta=dict(model=name, strategy="lp", lr=None, C=probe.meta["C"],
                                              seed=config.seed, val_acc=probe.meta["val_acc"])))
        with_probe = dataclasses.replace(ctx, probes={**probes})
        for strategy in (s for s in config.strategies if s != "lp"):
            evals += _finetuned_evals(with_probe, stage, backbone, strategy, features, activation_keys.get(name))
    return evals, probes


def _finetuned_evals(ctx: Context, stage, backbone, strategy: str, features: str,
                     activations: str | None) -> list[ModelEval]:
    config, name = ctx.config, backbone.label
    grid = [finetune_spec(config, backbone, strategy, lr, config.seed, features, activations) for lr in config.ft_lrs]
    grid_out = stage(f"finetune-{strategy}-lr", grid, run_finetune, ctx)
    if all(o.meta.get("diverged") for o in grid_out):
        raise ResourceError(f"{name}/{strategy}: every learning rate in --ft-lrs diverged",
                            hint="use smaller --ft-lrs")
    best = int(np.argmax([o.meta["val_acc"] for o in grid_out]))
    lr = config.ft_lrs[best]
    seeds = [finetune_spec(config, backbone, strategy, lr, config.seed + k, features, activations)
             for k in range(1, config.ft_seeds)]
    outs = [grid_out[best]] + stage(f"finetune-{strategy}-seeds", seeds, run_finetune, ctx)
    lr_grid = {f"{g:g}": o.meta["val_acc"] for g, o in zip(config.ft_lrs, grid_out, strict=True)}
    return [evaluation(ctx.data, out.arrays["pred_test"], out.arrays["pred_shift"], _scores(out),
                       name=f"{name}/{strategy}", kind="pretrained",
                       meta=dict(model=name, strategy=strategy, lr=lr, seed=config.seed + k,
                                 val_acc=out.meta["val_acc"], lr_grid=lr_grid))
            for k, out in enumerate(outs)]


def _scores(out: JobOutput) -> tuple[np.ndarray | None, np.ndarray | None]:
    """A probe's or fine-tune's stored confidence scores (absent from jobs stored by earlier versions)."""
    return out.arrays.get("scores_test"), out.arrays.get("scores_shift")


def _activations(ctx: Context, stage) -> tuple[dict[str, JobOutput], dict[str, str]]:
    """Per backbone, the frozen lower-block activations job's output and key, when the top-block recipe
    fine-tunes (none otherwise)."""
    config = ctx.config
    if not config.ft_from_block or all(s == "lp" for s in config.strategies):
        return {}, {}
    specs = {backbone.label: activation_spec(config, backbone) for backbone in backbones(config)}
    outputs = {label: stage("activations", [spec], run_activations, ctx)[0] for label, spec in specs.items()}
    return outputs, {label: spec.key(ctx.data.fingerprint) for label, spec in specs.items()}
