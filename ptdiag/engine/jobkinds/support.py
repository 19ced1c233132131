"""Job kind `support`: the support split — a cross-fitted, calibrated domain classifier on a backbone's features
gives each shifted image's density ratio p_ref(x)/p_shift(x)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ptdiag.config import AnalyzeConfig
from ptdiag.engine.jobs import JobOutput, JobParams, JobSpec
from ptdiag.engine.rundata import Context
from ptdiag.stats.support import SupportConfig, SupportSplit, estimate_support


@dataclass(frozen=True)
class SupportParams(JobParams):
    """The cross-fitted, calibrated domain classifier on a backbone's features (the support split)."""

    backbone: str
    features: str
    folds: int
    seed: int
    max_reference: int
    assignments: int


def support_job(config: AnalyzeConfig, backbone: str, features: str) -> JobSpec:
    return JobSpec.of("support", backbone, SupportParams(backbone=backbone, features=features, folds=config.folds,
                                                         seed=config.seed, max_reference=config.support_max_reference,
                                                         assignments=SupportConfig.assignments))


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
