"""The `--dry-run` plan: what an analysis will run, and how long it should take on this machine.

Budgets are defined by what they measure (models, runs, epochs, images), not by one machine's speed. The time
estimate is calibrated here and now: a few training steps of each model, a forward pass of the pre-trained
backbone, and one logistic-regression fit are timed on this device (a few seconds in all), then multiplied by the
work each stage does. `benchmarks/bench_demo.py` checks the estimate against the actual run.
"""

from __future__ import annotations

import os
import resource
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from ptdiag.config import AnalyzeConfig
from ptdiag.engine.jobkinds.curated import curated_epochs
from ptdiag.engine.models import BackboneSpec, create_baseline, create_pretrained, normalization, pick_device
from ptdiag.engine.partial import lower_activations, split_at, train_top
from ptdiag.engine.train import ArraySet, Normalizer, TrainConfig, predict, train_model
from ptdiag.stats.fits import fit_workers, single_threaded
from ptdiag.stats.support import SupportConfig

# Logistic-regression fits per stage, in units of one multinomial fit on the same rows (counted from the code:
# probe = one fit per C; support = C grid on one holdout + folds × assignments cross-fits, binary fits are ~1/3
# of a multinomial one; remedies = label-budget heads on small slices, two cross-fit folds, reweighting).
# Stage constants calibrated against measured stage times relative to the synthetic logistic-regression fit timed
# on the machine itself with one BLAS thread, as the analysis fits run (docs/VALIDATION.md has the measurements).
# Real features take several times the synthetic fit's iterations (the probe walks three Cs to max_iter 300; the
# remedies fit many small heads, whose fixed costs the per-row rate does not see).
_SUPPORT_FITS_PER_FOLD = 0.35
_REMEDY_FITS = 20.0
_PROBE_ITERATIONS = 9.0
_UPPER_SHARE = 0.1  # an upper-block forward pass (top-block recipe) costs about this share of a lower-block one
_FIXED_SECONDS = 6.0  # start-up and imports (~4 s), ingest, statistics, writing results (measured 5-7 s)
BUSY_CORES = 0.25  # other processes' CPU use (in cores) above which the dry-run says the machine is busy


@dataclass(frozen=True)
class Rates:
    """Seconds per image (or per row) measured on this device."""

    baseline_train: float
    baseline_predict: float
    pretrained_predict: float
    finetune_train: float  # per image per epoch: end to end, or the top blocks on cached activations
    lower_predict: float  # frozen lower blocks, per image (0 when fine-tuning end to end)
    lr_fit_per_row: float  # one multinomial logistic-regression fit (one BLAS thread) on backbone features, per row
    train_step: float  # one end-to-end fine-tuning step of the backbone on 32 images: the machine's speed
    fit_workers: int = 1  # logistic-regression fits that run side by side (ptdiag.stats.fits)
    other_load: float | None = None  # cores other processes kept busy while these were measured (None: unknown)
    measure_seconds: float = 0.0  # how long the measurement took

    @property
    def busy(self) -> bool:
        """Other processes used at least a quarter of a core while measuring: the estimate assumes they go on."""
        return self.other_load is not None and self.other_load >= BUSY_CORES


@dataclass(frozen=True)
class Plan:
    """What an analysis will do, and an estimate of how long on this device."""

    n_reference: int
    n_shift: int
    split: dict[str, int]
    baseline_runs: int
    baseline_points: int
    baseline_epochs: int
    finetune_runs: int
    finetune_epochs: int
    finetune_recipe: str
    probes: int
    device: str
    rates: Rates
    stage_seconds: dict[str, float] = field(default_factory=dict)

    @property
    def estimated_seconds(self) -> float:
        return sum(self.stage_seconds.values())


def make_plan(config: AnalyzeConfig, n_reference: int, n_shift: int, n_classes: int) -> Plan:
    """Count the work of every stage and time a few steps of each kind here to estimate the wall time."""
    n_ref = min(n_reference, config.max_reference or n_reference)
    n_sh = min(n_shift, config.max_shift or n_shift)
    n_test, n_val = int(round(n_ref * config.test_fraction)), int(round(n_ref * config.val_fraction))
    n_train = n_ref - n_test - n_val
    device = pick_device(config.device)
    rates = measure_rates(config, n_classes, device)
    runs = len(config.baseline_fractions) * len(config.baseline_seeds)
    ft_strategies = [s for s in config.strategies if s != "lp"]
    ft_runs = len(config.model) * len(ft_strategies) * (len(config.ft_lrs) + config.ft_seeds - 1)
    stages = _stage_seconds(config, rates, n_train=n_train, n_val=n_val, n_test=n_test, n_sh=n_sh, runs=runs,
                            ft_runs=ft_runs)
    points = runs * len(config.baseline_eval_epochs)
    if config.scratch_same_arch:
        points += len(config.model) * len(config.baseline_eval_epochs)
    recipe = f"top blocks from {config.ft_from_block}" if config.ft_from_block and rates.lower_predict else "end to end"
    return Plan(n_ref, n_sh, {"train": n_train, "val": n_val, "test": n_test}, runs, points, config.baseline_epochs,
                ft_runs, config.ft_epochs, recipe, len(config.model), str(device), rates, stages)


def _stage_seconds(config: AnalyzeConfig, r: Rates, *, n_train: int, n_val: int, n_test: int, n_sh: int, runs: int,
                   ft_runs: int) -> dict[str, float]:
    n_ref = n_train + n_val + n_test
    backbones = len(config.model)
    base_images = sum(f * n_train for f in config.baseline_fractions) * len(config.baseline_seeds)
    base_evals = runs * len(config.baseline_eval_epochs) * (n_test + n_sh)
    stages = {
        "baselines": base_images * config.baseline_epochs * r.baseline_train + base_evals * r.baseline_predict,
        "features": backbones * (n_ref + n_sh) * r.pretrained_predict,
        "probe": backbones * len(config.probe_cs) / min(r.fit_workers, len(config.probe_cs)) * n_train
        * r.lr_fit_per_row * _PROBE_ITERATIONS,
        # The C grid is walked in sequence; the folds × assignments cross-fits run fit_workers at a time.
        "support": (len(SupportConfig.c_grid) + config.folds * SupportConfig.assignments / r.fit_workers)
        * _SUPPORT_FITS_PER_FOLD * min(n_ref, config.support_max_reference) * r.lr_fit_per_row * 2,
        "fixed": _FIXED_SECONDS,
    }
    per_image = r.lower_predict * _UPPER_SHARE if r.lower_predict else r.pretrained_predict
    predict_per_run = (n_val + n_test + n_sh) * per_image
    stages["finetune"] = ft_runs * (config.ft_epochs * n_train * r.finetune_train + predict_per_run)
    if r.lower_predict and ft_runs:  # one lower pass over every image (+ augmented views); features reuse it
        stages["activations"] = backbones * (n_ref + n_sh + config.ft_epochs * n_train) * r.lower_predict
        stages["features"] = backbones * (n_ref + n_sh) * max(r.pretrained_predict - r.lower_predict,
                                                               0.1 * r.pretrained_predict)
    if config.remedies:
        stages["remedies"] = backbones * _REMEDY_FITS * (n_sh + n_test) * r.lr_fit_per_row
    if config.remedies and config.curated_sizes and ft_runs:
        stages["curated"] = _curated_seconds(config, r, n_train=n_train, n_test=n_test, n_sh=n_sh,
                                             per_image=per_image)
    return stages


def _curated_seconds(config: AnalyzeConfig, r: Rates, *, n_train: int, n_test: int, n_sh: int,
                     per_image: float) -> float:
    """Per half: a curated and a random fine-tune per size (the largest also with the reference), each predicting
    the other half; then the recipe on the reference alone and its features (`ptdiag.engine.jobkinds.curated`)."""
    sizes = [n for n in config.curated_sizes if n <= n_sh // 2]
    if not sizes:
        return 0.0

    def fine_tune(n_images: int) -> float:
        epochs = curated_epochs(config.ft_epochs, n_images, config.batch_size)
        return epochs * n_images * r.finetune_train + n_sh / 2 * per_image

    per_half = sum(2 * fine_tune(n) for n in sizes) + fine_tune(n_train + sizes[-1]) + 3 * n_test / 2 * per_image
    return 2 * per_half + fine_tune(n_train) + (n_train + n_test + n_sh / 2) * per_image


def measure_rates(config: AnalyzeConfig, n_classes: int, device: torch.device) -> Rates:
    """Time a few steps of each model on this device (a few seconds), and how busy other processes kept it."""
    load = OtherLoad()
    rates = _measure_rates(config, n_classes, device)
    other, seconds = load.stop()
    return replace(rates, other_load=other, measure_seconds=seconds)


class OtherLoad:
    """CPU time other processes spend while this one measures, in cores, from /proc/stat and our own usage."""

    def __init__(self) -> None:
        self.start = time.perf_counter()
        self.cpu = _process_cpu()
        self.machine = _machine_busy()

    def stop(self) -> tuple[float | None, float]:
        wall = time.perf_counter() - self.start
        machine = _machine_busy()
        if self.machine is None or machine is None or wall <= 0:
            return None, wall
        ours = _process_cpu() - self.cpu
        return max(machine - self.machine - ours, 0.0) / wall, wall


def _process_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _machine_busy() -> float | None:
    """Busy CPU seconds of the whole machine since boot (all cores), or None where /proc/stat is missing."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except (OSError, IndexError):
        return None
    ticks = [int(v) for v in fields]
    idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)  # idle + iowait
    return (sum(ticks[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def _measure_rates(config: AnalyzeConfig, n_classes: int, device: torch.device) -> Rates:
    baseline = create_baseline(n_classes, config.baseline_arch, config.baseline_width)
    base_train, base_predict = _train_and_predict_rate(baseline, config.baseline_image_size, 64, device)
    spec = BackboneSpec(config.model[0], (config.weights or (None,))[0])
    model = create_pretrained(spec, n_classes)
    normalize = Normalizer(*normalization(model), device)
    full_train, full_predict = _train_and_predict_rate(model, config.image_size, config.batch_size, device)
    step32 = full_train * 32
    split = split_at(model, config.ft_from_block) if config.ft_from_block else None
    ft_train, lower = full_train, 0.0
    if split is not None:
        ft_train, lower = _top_rates(split, config.image_size, config.batch_size, normalize)
    dim = int(getattr(model, "num_features", 1280))
    return Rates(base_train, base_predict, full_predict, ft_train, lower, _lr_fit_rate(dim, n_classes), step32,
                 fit_workers())


def _images(n: int, size: int) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 255, (n, size, size, 3), dtype=np.uint8)


def _train_and_predict_rate(model: torch.nn.Module, size: int, batch: int, device: torch.device) -> tuple[float, float]:
    images = _images(batch * 6, size)
    normalize = Normalizer(*normalization(model), device)
    cfg = TrainConfig(epochs=1, lr=1e-4, batch_size=batch)

    def train(n: int) -> None:
        train_model(model, ArraySet(images[:n], np.arange(n) % 2), cfg, normalize)

    train(batch)  # warm-up: allocator, kernels
    train_rate, _ = _per_item(train, batch, batch * 4)
    predict_rate, _ = _per_item(lambda n: predict(model, images[:n], normalize), batch, batch * 6)
    return train_rate, predict_rate


def _typical(fn, repeats: int = 3) -> tuple[float, object]:
    """Median seconds of `repeats` calls (after the caller's warm-up), and the last call's result: one slow call
    (another process, a page-fault storm) does not move it, and unlike the fastest call it is not optimistic."""
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times)), result


def _per_item(fn, small: int, large: int, repeats: int = 3) -> tuple[float, object]:
    """Seconds per item of `fn(n)`, from its median timings at two sizes, and `fn(large)`'s result.

    The difference cancels what a call pays once whatever its size (optimizer state, a folded model copy, kernel
    set-up): on a few dozen images that doubled the per-image time of the frozen lower pass, which a real stage
    pays over thousands. Floored at a quarter of the large call's average per item, in case noise swamps the
    difference.
    """
    t_small, _ = _typical(lambda: fn(small), repeats)
    t_large, result = _typical(lambda: fn(large), repeats)
    return max((t_large - t_small) / (large - small), 0.25 * t_large / large), result


def _top_rates(split, size: int, batch: int, normalize: Normalizer) -> tuple[float, float]:
    images = _images(batch * 12, size)
    lower_activations(split, images[:batch], normalize)  # warm-up
    lower, activations = _per_item(lambda n: lower_activations(split, images[:n], normalize, view_seed=0),
                                   batch * 3, batch * 12)
    # Top-block steps are short: time runs of 3 and 12 steps, so a run's one-off costs (optimizer state) cancel.
    labels = np.arange(len(activations)) % 2
    cfg = TrainConfig(epochs=1, lr=1e-4, batch_size=batch, freeze_bn=True)
    train_top(split, [activations[:batch]], labels[:batch], cfg, normalize.device)  # warm-up
    top, _ = _per_item(lambda n: train_top(split, [activations[:n]], labels[:n], cfg, normalize.device),
                       batch * 3, batch * 12)
    return top, lower


def _lr_fit_rate(dim: int, n_classes: int, rows: int = 600, repeats: int = 3) -> float:
    """Seconds per row of one multinomial logistic-regression fit on `dim` standardised features, with one BLAS
    thread as the analysis runs them; the median of `repeats` (a single timing of a ~0.1 s fit is noisy)."""
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    y = np.arange(rows) % max(2, n_classes)
    x = rng.normal(size=(rows, dim)).astype(np.float32) + 0.3 * rng.normal(size=(max(2, n_classes), dim))[y]
    with single_threaded():
        seconds, _ = _typical(lambda: LogisticRegression(C=0.1, max_iter=300).fit(x, y), repeats)
    return seconds / rows
