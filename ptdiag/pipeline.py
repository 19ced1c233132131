"""`analyze`: train and evaluate everything the method needs on the user's data, then score it.

Stages: ingest → decode → baselines (from scratch) → features (per pre-trained backbone) → linear probe →
fine-tunes (FT / LP-FT, LR chosen on the reference validation split) → support split → statistics → results.json.
Each unit of work is a job (`ptdiag.jobs`), so a rerun skips what is finished and an interrupted run resumes.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import timm
import torch

from ptdiag import __version__
from ptdiag._io import atomic_write, write_bytes_atomic, write_json_atomic
from ptdiag.config import AnalyzeConfig, result_identity
from ptdiag.decode_cache import DecodeCache
from ptdiag.errors import DataError, PtdiagError, ResourceError
from ptdiag.features import extract_features, fit_linear_probe, load_head
from ptdiag.ingest import DatasetPair, load_pair
from ptdiag.jobs import JobOutput, JobSpec, JobStore, LocalExecutor
from ptdiag.models import BackboneSpec, create_baseline, create_pretrained, normalization, pick_device
from ptdiag.schema import validate_results
from ptdiag.score import ModelEval, StatsConfig, score
from ptdiag.splits import load_or_create_split
from ptdiag.support import SupportConfig, SupportSplit, estimate_support
from ptdiag.train import ArraySet, Normalizer, TrainConfig, predict, resize_images, train_model
from ptdiag.verdict import VerdictConfig

log = logging.getLogger("ptdiag")

Progress = Callable[[str, Any], None]  # (event, payload) — the CLI turns events into rich progress bars


@dataclass
class RunData:
    """The analysed images in memory (uint8, at the pre-trained resolution) and how they were chosen."""

    pair: DatasetPair
    ref_index: np.ndarray  # indices into pair.reference (the subsample analysed)
    shift_index: np.ndarray  # indices into pair.shift
    split: dict[str, np.ndarray]  # train/val/test -> positions into ref_index
    reference: ArraySet
    shift: ArraySet
    fingerprint: str
    _resized: dict[int, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    _parts: dict[tuple[str, int | None], ArraySet] = field(default_factory=dict)

    def part(self, name: str, size: int | None = None) -> ArraySet:
        """The reference train/val/test part (or 'shift') at `size` px (built once, then reused)."""
        key = (name, size)
        if key not in self._parts:
            ref_images, shift_images = self.at_size(size)
            if name == "shift":
                self._parts[key] = ArraySet(shift_images, self.shift.labels)
            else:
                idx = self.split[name]
                self._parts[key] = ArraySet(ref_images[idx], self.reference.labels[idx])
        return self._parts[key]

    def at_size(self, size: int | None) -> tuple[np.ndarray, np.ndarray]:
        if size is None or size == self.reference.images.shape[1]:
            return self.reference.images, self.shift.images
        if size not in self._resized:
            self._resized[size] = (resize_images(self.reference.images, size), resize_images(self.shift.images, size))
        return self._resized[size]


@dataclass
class Context:
    config: AnalyzeConfig
    data: RunData
    device: torch.device
    progress: Progress
    checkpoint_dir: Path | None = None  # set when --save-checkpoints: fine-tuned weights land here
    features: dict[str, JobOutput] = field(default_factory=dict)
    probes: dict[str, JobOutput] = field(default_factory=dict)
    predictions: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)  # aligned with the evals

    def add_eval(self, evals: list[ModelEval], pred_test: np.ndarray, pred_shift: np.ndarray, **kwargs) -> None:
        """Record a model's predictions and its correctness on the reference test and shifted sets."""
        test_labels, shift_labels = self.data.part("test").labels, self.data.shift.labels
        evals.append(ModelEval(ref_correct=pred_test == test_labels, shift_correct=pred_shift == shift_labels,
                               **kwargs))
        self.predictions.append((pred_test, pred_shift))


# ----------------------------------------------------------------------------------------------------- ingest


def _stratified_subsample(labels: np.ndarray, limit: int | None, seed: int) -> np.ndarray:
    n = len(labels)
    if limit is None or limit >= n:
        return np.arange(n)
    from sklearn.model_selection import train_test_split

    try:
        keep, _ = train_test_split(np.arange(n), train_size=limit, stratify=labels, random_state=seed)
    except ValueError:  # a class too small to stratify: plain seeded draw
        keep = np.random.default_rng(seed).permutation(n)[:limit]
    return np.sort(keep)


def prepare_data(config: AnalyzeConfig, run_dir: Path, progress: Progress) -> RunData:
    """Ingest and validate both sets, subsample, split the reference (persisted), decode once into the cache."""
    cache = DecodeCache(Path(config.cache_dir) if config.cache_dir else None)
    progress("stage", "ingest")
    pair = load_pair(config.train, config.shift, fmt=config.format, strict=config.strict,
                     min_per_class=config.min_per_class, image_size=config.image_size, cache=cache)
    ref_index = _stratified_subsample(pair.reference.labels, config.max_reference, config.seed)
    shift_index = _stratified_subsample(pair.shift.labels, config.max_shift, config.seed)
    labels = pair.reference.labels[ref_index]
    manifest = pair.reference.splits[ref_index] if pair.reference.splits is not None else None
    split_id = f"{pair.reference.fingerprint}|{config.val_fraction}|{config.test_fraction}|{config.seed}"
    subsample_fp = hashlib.sha256(split_id.encode() + ref_index.tobytes()).hexdigest()[:16]
    split = load_or_create_split(run_dir / "split.json", labels, fingerprint=subsample_fp, val=config.val_fraction,
                                 test=config.test_fraction, seed=config.seed, manifest_splits=manifest)
    progress("stage", "decode")
    ref_images = cache.load([pair.reference.paths[i] for i in ref_index],
                            [pair.reference.hashes[i] for i in ref_index], config.image_size)
    shift_images = cache.load([pair.shift.paths[i] for i in shift_index],
                              [pair.shift.hashes[i] for i in shift_index], config.image_size)
    digest = hashlib.sha256()
    for part in (pair.reference.fingerprint, pair.shift.fingerprint, ref_index, shift_index,
                 *(split[k] for k in sorted(split))):
        digest.update(part.tobytes() if isinstance(part, np.ndarray) else str(part).encode())
    return RunData(pair, ref_index, shift_index, split, ArraySet(np.asarray(ref_images), labels),
                   ArraySet(np.asarray(shift_images), pair.shift.labels[shift_index]), digest.hexdigest()[:16])


# ------------------------------------------------------------------------------------------------------- jobs


def baseline_jobs(config: AnalyzeConfig) -> list[JobSpec]:
    """One job per (fraction, seed) training run, each evaluated at several epoch checkpoints."""
    jobs = []
    common = dict(epochs=config.baseline_epochs, eval_epochs=list(config.baseline_eval_epochs),
                  batch_size=max(64, config.batch_size), seed_base=config.seed,
                  source_size=config.image_size)  # baseline images are resized from the decoded resolution
    for fraction in config.baseline_fractions:
        for seed in config.baseline_seeds:
            params = dict(common, arch=config.baseline_arch, width=config.baseline_width, fraction=fraction,
                          seed=seed, lr=config.baseline_lr, image_size=config.baseline_image_size)
            jobs.append(JobSpec("baseline", f"{config.baseline_arch}-w{config.baseline_width}-f{fraction}-s{seed}",
                                params))
    if config.scratch_same_arch:
        for model in config.model:
            params = dict(common, arch=model, width=0, fraction=1.0, seed=0, lr=1e-3, image_size=config.image_size,
                          batch_size=config.batch_size)
            jobs.append(JobSpec("baseline", f"{model}-scratch-f1.0-s0", params))
    return jobs


def run_baseline(spec: JobSpec, ctx: Context) -> JobOutput:
    p = spec.params
    data = ctx.data
    train = data.part("train", p["image_size"])
    rng = np.random.default_rng(p["seed_base"] * 1000 + p["seed"])
    n_keep = max(len(np.unique(train.labels)), int(round(p["fraction"] * len(train))))
    train = train.subset(np.sort(rng.permutation(len(train))[:n_keep]))
    torch.manual_seed(p["seed_base"] * 1000 + p["seed"])  # init depends on the job alone, not on earlier jobs
    model = create_baseline(len(data.pair.classes), arch=p["arch"], width=p["width"] or 32)
    normalize = Normalizer(*normalization(model), ctx.device)
    batch_size = min(p["batch_size"], max(8, n_keep // 10))  # tiny sets still get ~10 steps per epoch
    cfg = TrainConfig(epochs=p["epochs"], lr=p["lr"], batch_size=batch_size, seed=p["seed_base"] + p["seed"])
    eval_sets = {"test": data.part("test", p["image_size"]).images, "shift": data.part("shift", p["image_size"]).images}
    try:
        preds = train_model(model, train, cfg, normalize, eval_sets=eval_sets, eval_epochs=tuple(p["eval_epochs"]),
                            on_step=_step_reporter(ctx, spec))
    except FloatingPointError as exc:
        raise ResourceError(f"baseline {spec.name}: {exc}", hint="lower --baseline-lr") from None
    arrays = {f"e{epoch}_{name}": pred.astype(np.int16) for epoch, sets in preds.items() for name, pred in sets.items()}
    return JobOutput({"n_train": n_keep}, arrays)


def feature_jobs(config: AnalyzeConfig) -> list[JobSpec]:
    return [JobSpec("features", spec.label, dict(model=spec.name, weights=spec.weights,
                                                 weights_sha=_file_digest(spec.weights), image_size=config.image_size))
            for spec in backbones(config)]


def _file_digest(path: str | None) -> str | None:
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
    p = spec.params
    model = create_pretrained(BackboneSpec(p["model"], p["weights"]), len(ctx.data.pair.classes))
    normalize = Normalizer(*normalization(model), ctx.device)
    ctx.progress("job_steps", 2)
    ref = extract_features(model, ctx.data.reference.images, normalize)
    ctx.progress("job_advance", 1)
    shift = extract_features(model, ctx.data.shift.images, normalize)
    ctx.progress("job_advance", 1)
    arrays = {"reference": ref.astype(np.float16), "shift": shift.astype(np.float16)}
    return JobOutput({"dim": int(ref.shape[1])}, arrays)


def run_probe(spec: JobSpec, ctx: Context) -> JobOutput:
    feats = ctx.features[spec.params["backbone"]].arrays
    ref = feats["reference"].astype(np.float32)
    split, labels = ctx.data.split, ctx.data.reference.labels
    probe = fit_linear_probe(ref[split["train"]], labels[split["train"]], ref[split["val"]], labels[split["val"]],
                             len(ctx.data.pair.classes), cs=tuple(spec.params["cs"]), seed=spec.params["seed"])
    arrays = {"pred_test": probe.predict(ref[split["test"]]).astype(np.int16),
              "pred_shift": probe.predict(feats["shift"].astype(np.float32)).astype(np.int16),
              "weight": probe.weight, "bias": probe.bias}
    return JobOutput({"val_acc": probe.val_acc, "C": probe.C, "grid": {str(k): v for k, v in probe.grid.items()}},
                     arrays)


def run_finetune(spec: JobSpec, ctx: Context) -> JobOutput:
    p = spec.params
    torch.manual_seed(p["seed"])  # the fresh head's init depends on the job alone
    model = create_pretrained(BackboneSpec(p["model"], p["weights"]), len(ctx.data.pair.classes))
    if p["strategy"] == "lpft":
        from ptdiag.features import LinearProbe

        probe = ctx.probes[p["backbone"]].arrays
        load_head(model, LinearProbe(probe["weight"], probe["bias"], 0.0, 0.0, {}))
    normalize = Normalizer(*normalization(model), ctx.device)
    cfg = TrainConfig(epochs=p["epochs"], lr=p["lr"], batch_size=p["batch_size"], seed=p["seed"],
                      freeze_bn=p["freeze_bn"], label_smoothing=0.0, weight_decay=0.1)
    try:
        train_model(model, ctx.data.part("train"), cfg, normalize, on_step=_step_reporter(ctx, spec))
    except FloatingPointError as exc:  # this LR diverged: the grid skips it (val_acc -1)
        log.warning("%s: %s", spec.name, exc)
        empty = np.full(0, -1, dtype=np.int16)
        return JobOutput({"val_acc": -1.0, "diverged": True}, {"pred_test": empty, "pred_shift": empty})
    if ctx.checkpoint_dir is not None:
        buffer = io.BytesIO()
        torch.save(model.state_dict(), buffer)  # plain tensors: loadable with torch.load(..., weights_only=True)
        write_bytes_atomic(ctx.checkpoint_dir / f"{spec.stage}-{spec.key(ctx.data.fingerprint)}.pt", buffer.getvalue())
    val = ctx.data.part("val")
    val_acc = float((predict(model, val.images, normalize).argmax(1) == val.labels).mean())
    arrays = {"pred_test": predict(model, ctx.data.part("test").images, normalize).argmax(1).astype(np.int16),
              "pred_shift": predict(model, ctx.data.shift.images, normalize).argmax(1).astype(np.int16)}
    return JobOutput({"val_acc": val_acc}, arrays)


def run_support(spec: JobSpec, ctx: Context) -> JobOutput:
    feats = ctx.features[spec.params["backbone"]].arrays
    split = ctx.data.split
    pool = np.concatenate([split["train"], split["val"]])  # never the reference test set
    rng = np.random.default_rng(spec.params["seed"])
    sample = np.sort(rng.permutation(pool)[: spec.params["max_reference"]])
    groups = ctx.data.pair.shift.groups
    groups = groups[ctx.data.shift_index] if groups is not None else None
    result = estimate_support(feats["reference"][sample].astype(np.float32), feats["shift"].astype(np.float32),
                              shift_groups=groups,
                              config=SupportConfig(folds=spec.params["folds"], seed=spec.params["seed"]))
    meta = {name: getattr(result, name) for name in _SUPPORT_SCALARS}
    arrays = {name: np.asarray(getattr(result, name)) for name in _SUPPORT_ARRAYS}
    return JobOutput(meta, dict(arrays, sample=sample))


_SUPPORT_ARRAYS = ("rho_shift", "rho_reference", "logit_shift", "logit_reference")
_SUPPORT_SCALARS = ("epsilon", "domain_auc", "temperature", "C", "c_selection", "folds", "fold_kind", "ece",
                    "calibration", "log_ratio_histogram", "warnings", "seconds")


def support_from_job(out: JobOutput) -> SupportSplit:
    """Rebuild the SupportSplit from its stored job result (nothing is refitted)."""
    meta = dict(out.meta, c_selection=tuple(tuple(pair) for pair in out.meta["c_selection"]))
    return SupportSplit(**meta, **{name: out.arrays[name] for name in _SUPPORT_ARRAYS})


def _step_reporter(ctx: Context, spec: JobSpec) -> Callable[[int, int], None]:
    def report(step: int, total: int) -> None:
        if step == 1:
            ctx.progress("job_steps", total)
        ctx.progress("job_advance", 1)

    return report


# ------------------------------------------------------------------------------------------------- the run


def analyze(config: AnalyzeConfig, run_dir: Path, progress: Progress | None = None) -> dict[str, Any]:
    """Run (or resume) the whole analysis in `run_dir`; return the validated results dict."""
    progress = progress or (lambda event, payload: None)
    run_dir.mkdir(parents=True, exist_ok=True)
    write_json_atomic(run_dir / "config.json", config.to_dict())
    torch.manual_seed(config.seed)
    timings: dict[str, float] = {}
    clock = time.perf_counter()
    device = pick_device(config.device)
    data = prepare_data(config, run_dir, progress)
    timings["ingest"] = time.perf_counter() - clock
    finished = _finished_results(run_dir, config, data)
    if finished is not None:
        return finished  # same config, same data: the stored results are the answer (nothing is recomputed)
    ctx = Context(config, data, device, progress,
                  checkpoint_dir=run_dir / "checkpoints" if config.save_checkpoints else None)
    store = JobStore(run_dir / "jobs", data.fingerprint)
    executor = LocalExecutor(store, on_job=lambda spec, out: progress("job_done", (spec, out)))

    def stage(name: str, jobs: list[JobSpec], fn) -> list[JobOutput]:
        start = time.perf_counter()
        progress("stage", (name, len(jobs)))
        try:
            outputs = executor.run(jobs, fn, ctx)
        except torch.OutOfMemoryError:
            raise ResourceError(f"out of memory in stage {name!r} on {device}",
                                hint="lower --batch-size, --image-size or --max-reference") from None
        # Compute seconds of the stage's jobs, also when they were reused from an earlier invocation.
        spent = sum(o.seconds for o in outputs) if outputs else time.perf_counter() - start
        timings[name] = timings.get(name, 0.0) + spent
        return outputs

    base_specs = baseline_jobs(config)
    base_outputs = stage("baselines", base_specs, run_baseline)
    feat_specs = feature_jobs(config)
    for spec, out in zip(feat_specs, stage("features", feat_specs, run_features), strict=True):
        ctx.features[spec.name] = out
    evals = _baseline_evals(ctx, base_specs, base_outputs)
    evals += _pretrained_evals(ctx, stage)
    support_spec = JobSpec("support", feat_specs[0].name,
                           dict(backbone=feat_specs[0].name, features=feat_specs[0].key(data.fingerprint),
                                folds=config.folds, seed=config.seed, max_reference=config.support_max_reference))
    try:
        support_out = stage("support", [support_spec], run_support)[0]
        support = support_from_job(support_out).at_epsilon(config.epsilon)  # ε only thresholds: no refit
    except DataError as exc:  # e.g. too few shifted images to cross-fit: report ER without the split
        log.warning("support split skipped: %s", exc.message)
        support_out, support = None, None
    start = time.perf_counter()
    verdict_config = VerdictConfig(material_points=config.material_points / 100,
                                   material_share=config.material_share, min_r2=config.min_r2)
    scores = score(evals, support, StatsConfig(scale=config.scale, epsilon=config.epsilon,
                                               bootstrap=config.bootstrap, seed=config.seed, verdict=verdict_config))
    timings["statistics"] = time.perf_counter() - start
    timings["total"] = sum(timings.values())
    timings["this_invocation"] = time.perf_counter() - clock  # wall time of this call (small when resuming)
    results = _assemble(config, data, scores.to_dict(), support, support_out, evals, timings, device)
    if support is None:
        results.setdefault("warnings", []).append("the support split could not run (see ptdiag.log): the gap is "
                                                  "not decomposed into bias and extrapolation")
    _write_predictions(run_dir, ctx, evals, support_out)
    write_json_atomic(run_dir / "results.json", validate_results(results))
    return results


def _finished_results(run_dir: Path, config: AnalyzeConfig, data: RunData) -> dict[str, Any] | None:
    """The run's results.json when it was made from this config (gate aside) and this data, else None."""
    path = run_dir / "results.json"
    if not path.exists():
        return None
    try:
        old = validate_results(json.loads(path.read_text(encoding="utf-8")), source=str(path))
    except (ValueError, PtdiagError):
        return None
    same_config = result_identity(old["config"]) == result_identity(config.to_dict())
    same_data = old["data"].get("fingerprint") == data.fingerprint
    return old if same_config and same_data and old["ptdiag_version"] == __version__ else None


def _baseline_evals(ctx: Context, specs: list[JobSpec], outputs: list[JobOutput]) -> list[ModelEval]:
    evals: list[ModelEval] = []
    for spec, out in zip(specs, outputs, strict=True):
        p = spec.params
        for epoch in p["eval_epochs"]:
            ctx.add_eval(evals, out.arrays[f"e{epoch}_test"], out.arrays[f"e{epoch}_shift"],
                         name=f"{spec.name}-e{epoch}", kind="baseline",
                         meta=dict(arch=p["arch"], fraction=p["fraction"], epoch=epoch, seed=p["seed"]))
    return evals


def _pretrained_evals(ctx: Context, stage) -> list[ModelEval]:
    config = ctx.config
    evals: list[ModelEval] = []
    for backbone in backbones(config):
        name = backbone.label
        features = feature_jobs(config)[backbones(config).index(backbone)].key(ctx.data.fingerprint)
        probe_spec = JobSpec("probe", name, dict(backbone=name, features=features, cs=list(config.probe_cs),
                                                 seed=config.seed))
        ctx.probes[name] = probe = stage("probe", [probe_spec], run_probe)[0]
        if "lp" in config.strategies:
            ctx.add_eval(evals, probe.arrays["pred_test"], probe.arrays["pred_shift"], name=f"{name}/lp",
                         kind="pretrained", meta=dict(model=name, strategy="lp", lr=None, C=probe.meta["C"],
                                                      seed=config.seed, val_acc=probe.meta["val_acc"]))
        for strategy in (s for s in config.strategies if s != "lp"):
            # LR on the reference validation split only (never the test or shifted set), then more seeds.
            grid = [_finetune_spec(config, backbone, strategy, lr, config.seed, features) for lr in config.ft_lrs]
            grid_out = stage(f"finetune-{strategy}-lr", grid, run_finetune)
            if all(o.meta.get("diverged") for o in grid_out):
                raise ResourceError(f"{name}/{strategy}: every learning rate in --ft-lrs diverged",
                                    hint="use smaller --ft-lrs")
            best = int(np.argmax([o.meta["val_acc"] for o in grid_out]))
            lr = config.ft_lrs[best]
            seeds = [_finetune_spec(config, backbone, strategy, lr, config.seed + k, features)
                     for k in range(1, config.ft_seeds)]
            outs = [grid_out[best]] + stage(f"finetune-{strategy}-seeds", seeds, run_finetune)
            for k, out in enumerate(outs):
                ctx.add_eval(evals, out.arrays["pred_test"], out.arrays["pred_shift"], name=f"{name}/{strategy}",
                             kind="pretrained",
                             meta=dict(model=name, strategy=strategy, lr=lr, seed=config.seed + k,
                                       val_acc=out.meta["val_acc"],
                                       lr_grid={f"{g:g}": o.meta["val_acc"]
                                                for g, o in zip(config.ft_lrs, grid_out, strict=True)}))
    return evals


def _finetune_spec(config: AnalyzeConfig, backbone: BackboneSpec, strategy: str, lr: float, seed: int,
                   features: str) -> JobSpec:
    params = dict(model=backbone.name, weights=backbone.weights, backbone=backbone.label, features=features,
                  strategy=strategy, lr=lr,
                  seed=seed, epochs=config.ft_epochs, batch_size=config.batch_size, freeze_bn=config.freeze_bn,
                  image_size=config.image_size, probe_cs=list(config.probe_cs))
    return JobSpec("finetune", f"{backbone.label}-{strategy}-lr{lr:g}-s{seed}", params)


def _assemble(config, data: RunData, scores: dict, support: SupportSplit | None, support_out: JobOutput | None,
              evals, timings, device) -> dict:
    pair = data.pair

    def describe(image_set, index) -> dict[str, Any]:
        labels = image_set.labels[index]
        counts = {pair.classes[c]: int((labels == c).sum()) for c in range(len(pair.classes))}
        return {"n": int(len(index)), "n_total": len(image_set.labels), "root": str(image_set.root),
                "classes": list(pair.classes), "fingerprint": image_set.fingerprint, "class_counts": counts}

    return {
        "schema_version": 1,
        "ptdiag_version": __version__,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "config": config.to_dict(),
        "data": {
            "reference": describe(pair.reference, data.ref_index),
            "shift": describe(pair.shift, data.shift_index),
            "split": {k: int(len(v)) for k, v in data.split.items()},
            "findings": [f.to_dict() if hasattr(f, "to_dict") else dict(vars(f)) for f in pair.findings],
            "fingerprint": data.fingerprint,
        },
        **scores,
        "support": support.to_dict() if support is not None else None,
        "galleries": _galleries(data, evals, support, support_out) if support is not None else {},
        "timings": {k: round(v, 2) for k, v in timings.items()},
        "environment": {"python": platform.python_version(), "torch": torch.__version__, "timm": timm.__version__,
                        "numpy": np.__version__, "device": str(device), "platform": platform.platform(),
                        "threads": torch.get_num_threads()},
    }


def _galleries(data: RunData, evals: list[ModelEval], support: SupportSplit, support_out: JobOutput,
               k: int = 12) -> dict[str, list]:
    """Example lists for the report (paths are the user's files; the report reads them, never writes)."""
    pair, rho, rho_ref, in_support = data.pair, support.rho_shift, support.rho_reference, support.in_support
    base = [e.shift_correct for e in evals if e.kind == "baseline"]
    error_rate = 1.0 - np.mean(base, axis=0) if base else np.zeros(len(rho))

    def shift_item(i: int) -> dict[str, Any]:
        j = data.shift_index[i]
        return {"path": str(pair.shift.paths[j]), "label": pair.classes[pair.shift.labels[j]], "rho": float(rho[i]),
                "baseline_error_rate": float(error_rate[i])}

    most_out = [shift_item(i) for i in np.argsort(rho)[:k]]
    candidates = np.flatnonzero(in_support)
    wrong = [shift_item(i) for i in candidates[np.argsort(-error_rate[candidates], kind="stable")][:k]
             if error_rate[i] > 0.5]
    sample = support_out.arrays["sample"]
    ref_items = []
    for pos in np.argsort(rho_ref)[:k]:
        j = data.ref_index[sample[pos]]
        ref_items.append({"path": str(pair.reference.paths[j]), "label": pair.classes[pair.reference.labels[j]],
                          "rho": float(rho_ref[pos])})
    return {"most_out_of_support": most_out, "in_support_baseline_errors": wrong,
            "most_shift_like_reference": ref_items}


def _write_predictions(run_dir: Path, ctx: Context, evals: list[ModelEval], support_out: JobOutput | None) -> None:
    """Per-example predictions (long format): one row per model × evaluated example."""
    data = ctx.data
    pair = data.pair
    test_pos = data.split["test"]
    test_paths = [str(pair.reference.paths[data.ref_index[i]]) for i in test_pos]
    shift_paths = [str(pair.shift.paths[j]) for j in data.shift_index]
    rho = support_out.arrays["rho_shift"] if support_out is not None else np.full(len(shift_paths), np.nan)
    frames = []
    for e, (pred_test, pred_shift) in zip(evals, ctx.predictions, strict=True):
        for set_name, paths, labels, pred, correct, ratio in (
            ("reference", test_paths, data.part("test").labels, pred_test, e.ref_correct,
             np.full(len(test_paths), np.nan)),
            ("shift", shift_paths, data.shift.labels, pred_shift, e.shift_correct, rho),
        ):
            frames.append(pd.DataFrame({
                "model": e.name, "kind": e.kind, "seed": e.meta.get("seed"), "example_id": np.arange(len(paths)),
                "path": paths, "set": set_name, "split": "test" if set_name == "reference" else "shift",
                "label": labels, "prediction": pred, "correct": correct, "density_ratio": ratio,
            }))
    table = pd.concat(frames, ignore_index=True)
    atomic_write(run_dir / "predictions.parquet", lambda fh: table.to_parquet(fh, index=False), mode="wb")
