"""Job kind `features`: a pre-trained backbone's penultimate features of every reference and shifted image (from its
cached lower-block activations when the top-block recipe computed them)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ptdiag.config import AnalyzeConfig
from ptdiag.engine.features import extract_features
from ptdiag.engine.jobs import JobOutput, JobParams, JobSpec
from ptdiag.engine.models import BackboneSpec, create_pretrained, normalization
from ptdiag.engine.partial import split_at, upper_features
from ptdiag.engine.rundata import Context, take_rows
from ptdiag.engine.train import Normalizer


@dataclass(frozen=True)
class FeatureParams(JobParams):
    """A pre-trained backbone's penultimate features of every reference and shifted image."""

    OPTIONAL = ("activations",)
    model: str
    weights: str | None
    weights_sha: str | None
    image_size: int
    activations: str | None = None  # key of the backbone's activations job: features from its cached outputs


def feature_jobs(config: AnalyzeConfig, activations: dict[str, str] | None = None) -> list[JobSpec]:
    """One features job per backbone; with `activations` (backbone label -> activations job key) the features are
    the upper blocks' output on those cached activations (the same numbers, without a second lower pass)."""
    return [JobSpec.of("features", spec.label,
                       FeatureParams(model=spec.name, weights=spec.weights, weights_sha=file_digest(spec.weights),
                                     image_size=config.image_size, activations=(activations or {}).get(spec.label)))
            for spec in backbones(config)]


def backbones(config: AnalyzeConfig) -> list[BackboneSpec]:
    weights = config.weights or (None,) * len(config.model)
    return [BackboneSpec(name, w) for name, w in zip(config.model, weights, strict=True)]


def file_digest(path: str | None) -> str | None:
    """Content hash of a local checkpoint, so a changed file with the same name is not mistaken for the old one."""
    if path is None or not Path(path).is_file():
        return None
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


def run_features(spec: JobSpec, ctx: Context) -> JobOutput:
    """The backbone's penultimate features (float16) of every reference and shifted image: from its cached
    lower-block activations when the top-block recipe computed them (the same numbers), else a full forward pass."""
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
