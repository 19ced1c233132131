"""Run directories and the `--dry-run` plan.

A run directory holds config.json, split.json, jobs/, predictions.parquet, results.json and ptdiag.log. Without
`--out`, rerunning the same command finds the run with the same resolved config and resumes it.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
import torch

from ptdiag.config import AnalyzeConfig, result_identity
from ptdiag.engine.models import BackboneSpec, create_baseline, create_pretrained, normalization, pick_device
from ptdiag.engine.train import ArraySet, Normalizer, TrainConfig, train_model

RUNS_ROOT = Path("ptdiag-runs")


def default_name(config: AnalyzeConfig) -> str:
    name = config.name or f"{Path(config.train).resolve().name}-vs-{Path(config.shift).resolve().name}"
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def resolve_run_dir(config: AnalyzeConfig, root: Path = RUNS_ROOT) -> tuple[Path, bool]:
    """(run dir, resumed?): `--out` if given, else the newest run with the same config, else a new timestamped one."""
    if config.out:
        out = Path(config.out)
        return out, (out / "config.json").exists()
    wanted = result_identity(config.to_dict())
    if root.is_dir():
        for candidate in sorted(root.iterdir(), reverse=True):
            saved = candidate / "config.json"
            try:
                if saved.exists() and result_identity(json.loads(saved.read_text())) == wanted:
                    return candidate, True
            except (ValueError, OSError):
                continue
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return root / f"{stamp}-{default_name(config)}", False


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
    probes: int
    device: str
    seconds_per_baseline_image: float
    seconds_per_finetune_image: float
    estimated_seconds: float


def make_plan(config: AnalyzeConfig, n_reference: int, n_shift: int, n_classes: int) -> Plan:
    """Count the jobs and time a few training steps of each model here to estimate the wall time."""
    n_ref = min(n_reference, config.max_reference or n_reference)
    n_sh = min(n_shift, config.max_shift or n_shift)
    n_test, n_val = int(round(n_ref * config.test_fraction)), int(round(n_ref * config.val_fraction))
    n_train = n_ref - n_test - n_val
    device = pick_device(config.device)
    runs = len(config.baseline_fractions) * len(config.baseline_seeds)
    base_images = sum(f * n_train for f in config.baseline_fractions) * len(config.baseline_seeds)
    base_images *= config.baseline_epochs
    ft_strategies = [s for s in config.strategies if s != "lp"]
    ft_runs = len(config.model) * len(ft_strategies) * (len(config.ft_lrs) + config.ft_seeds - 1)
    base_rate = _time_per_image(create_baseline(n_classes, config.baseline_arch, config.baseline_width),
                                config.baseline_image_size, 64, device)
    ft_rate = _time_per_image(create_pretrained(BackboneSpec(config.model[0], (config.weights or (None,))[0]),
                                                n_classes), config.image_size, config.batch_size, device)
    evals = (n_test + n_sh) * (runs * len(config.baseline_eval_epochs)) * base_rate / 3
    features = (n_ref + n_sh) * len(config.model) * ft_rate / 3
    estimate = base_images * base_rate + ft_runs * n_train * config.ft_epochs * ft_rate + evals + features + 10
    return Plan(n_ref, n_sh, {"train": n_train, "val": n_val, "test": n_test}, runs,
                runs * len(config.baseline_eval_epochs) + (len(config.model) * len(config.baseline_eval_epochs)
                                                           if config.scratch_same_arch else 0),
                config.baseline_epochs, ft_runs, config.ft_epochs, len(config.model), str(device),
                base_rate, ft_rate, estimate)


def _time_per_image(model: torch.nn.Module, size: int, batch: int, device: torch.device) -> float:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, (batch * 3, size, size, 3), dtype=np.uint8)
    data = ArraySet(images, rng.integers(0, 2, len(images)))
    normalize = Normalizer(*normalization(model), device)
    train_model(model, data.subset(np.arange(batch)), TrainConfig(epochs=1, lr=1e-4, batch_size=batch), normalize)
    start = time.perf_counter()
    train_model(model, data, TrainConfig(epochs=1, lr=1e-4, batch_size=batch), normalize)
    return (time.perf_counter() - start) / len(images)
