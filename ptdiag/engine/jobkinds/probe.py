"""Job kind `probe`: the linear probe (LP) on a backbone's features, its strength chosen on reference validation."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ptdiag.config import AnalyzeConfig
from ptdiag.engine.features import fit_linear_probe
from ptdiag.engine.jobs import JobOutput, JobParams, JobSpec
from ptdiag.engine.rundata import Context
from ptdiag.stats.atc import confidence_scores


@dataclass(frozen=True)
class ProbeParams(JobParams):
    """A linear probe on a backbone's features, its strength chosen on the reference validation split."""

    backbone: str
    features: str  # the features job's key
    cs: tuple[float, ...]
    seed: int


def probe_job(config: AnalyzeConfig, backbone: str, features: str) -> JobSpec:
    return JobSpec.of("probe", backbone, ProbeParams(backbone=backbone, features=features, cs=config.probe_cs,
                                                     seed=config.seed))


def run_probe(spec: JobSpec, ctx: Context) -> JobOutput:
    """Fit the linear probe on the backbone's reference-train features (strength chosen on validation); its
    weights and predictions on the reference-test and shifted sets."""
    p = ProbeParams.of(spec)
    feats = ctx.features[p.backbone].arrays
    ref = feats["reference"].astype(np.float32)
    split, labels = ctx.data.split, ctx.data.reference.labels
    probe = fit_linear_probe(ref[split["train"]], labels[split["train"]], ref[split["val"]], labels[split["val"]],
                             len(ctx.data.pair.classes), cs=p.cs, seed=p.seed)
    logits = {"test": probe.logits(ref[split["test"]]), "shift": probe.logits(feats["shift"].astype(np.float32))}
    arrays = {"pred_test": logits["test"].argmax(1).astype(np.int16),
              "pred_shift": logits["shift"].argmax(1).astype(np.int16),
              "scores_test": confidence_scores(logits["test"]), "scores_shift": confidence_scores(logits["shift"]),
              "weight": probe.weight, "bias": probe.bias}
    return JobOutput({"val_acc": probe.val_acc, "C": probe.C, "grid": {str(k): v for k, v in probe.grid.items()}},
                     arrays)
