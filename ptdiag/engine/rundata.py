"""The analysed images in memory and the per-run context every job reads (device, progress sink, cached outputs)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ptdiag.config import AnalyzeConfig
from ptdiag.data.decode_cache import DecodeCache
from ptdiag.data.diskarray import DiskImages, write_npy
from ptdiag.data.ingest import DatasetPair, load_pair
from ptdiag.data.shift_labels import UNLABELLED, read_shift_labels
from ptdiag.data.splits import load_or_create_split
from ptdiag.data.types import ArraySet
from ptdiag.engine.jobs import JobOutput, JobSpec
from ptdiag.errors import UsageError

if TYPE_CHECKING:  # torch is imported only when a job computes (a finished rerun never needs it)
    import torch

    from ptdiag.stats.score import ModelEval

Progress = Callable[[str, Any], None]  # (event, payload) — the CLI turns events into rich progress bars


@dataclass
class RunData:
    """The analysed images (uint8, at the pre-trained resolution) and how they were chosen.

    Images are `DiskImages` over the decode cache (read by batch, never loaded whole; they pickle as file rows, so
    jobs on other machines reopen them); resized copies for the baselines are written under `arrays_dir`.
    """

    pair: DatasetPair
    ref_index: np.ndarray  # indices into pair.reference (the subsample analysed)
    shift_index: np.ndarray  # indices into pair.shift
    split: dict[str, np.ndarray]  # train/val/test -> positions into ref_index
    reference: ArraySet
    shift: ArraySet
    fingerprint: str
    arrays_dir: Path | None = None  # where resized copies go (the run dir's arrays/); None: kept in memory
    # Which analysed shifted images carry a label (None: all do); the others' label is UNLABELLED (-1).
    shift_labelled: np.ndarray | None = None
    labelled_outside: int = 0  # labelled shifted images left out by the --max-shift subsample
    _resized: dict[int, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    _parts: dict[tuple[str, int | None], ArraySet] = field(default_factory=dict)

    @property
    def shift_labels_digest(self) -> str:
        """Identifies the shifted labels the statistics used (they key no job: new labels only rescore)."""
        return hashlib.sha256(np.asarray(self.shift.labels, dtype=np.int64).tobytes()).hexdigest()[:16]

    def part(self, name: str, size: int | None = None) -> ArraySet:
        """The reference train/val/test part (or 'shift') at `size` px (built once, then reused)."""
        key = (name, size)
        if key not in self._parts:
            ref_images, shift_images = self.at_size(size)
            if name == "shift":
                self._parts[key] = ArraySet(shift_images, self.shift.labels)
            else:
                idx = self.split[name]
                self._parts[key] = ArraySet(take_rows(ref_images, idx), self.reference.labels[idx])
        return self._parts[key]

    def at_size(self, size: int | None) -> tuple[np.ndarray, np.ndarray]:
        if size is None or size == self.reference.images.shape[1]:
            return self.reference.images, self.shift.images
        if size not in self._resized:
            self._resized[size] = (self._resize(self.reference.images, size, "reference"),
                                   self._resize(self.shift.images, size, "shift"))
        return self._resized[size]

    def _resize(self, images, size: int, name: str):
        """`images` at `size` px: in memory, or written once to `arrays_dir` in blocks and read back lazily."""
        from ptdiag.engine.train import resize_images  # torch: only when a job needs resized images

        if self.arrays_dir is None or not isinstance(images, DiskImages):
            return resize_images(np.asarray(images), size)
        path = self.arrays_dir / f"{name}-{self.fingerprint}-{images.shape[1]}to{size}px.npy"
        if not path.exists():
            blocks = (resize_images(images[i:i + 1024], size) for i in range(0, len(images), 1024))
            write_npy(path, blocks, (len(images), size, size, 3))
        return DiskImages.open(path)


def take_rows(images, index: np.ndarray):
    """`images[index]`, lazily when the images are on disk (nothing is read until a batch is)."""
    return images.rows(index) if isinstance(images, DiskImages) else images[index]


@dataclass(frozen=True)
class Context:
    """What every job of a stage may read: the settings, the prepared data, the device, the progress callback, and
    the finished upstream jobs' outputs it consumes. Frozen: the driver (`ptdiag.engine.compute`) makes a new one
    with `dataclasses.replace` when a stage's outputs are ready, so a job never sees a half-filled context."""

    config: AnalyzeConfig
    data: RunData
    device: torch.device
    progress: Progress
    checkpoint_dir: Path | None = None  # set when --save-checkpoints: fine-tuned weights land here
    features: Mapping[str, JobOutput] = field(default_factory=dict)  # per backbone
    probes: Mapping[str, JobOutput] = field(default_factory=dict)  # per backbone
    baselines: Mapping[str, JobOutput] = field(default_factory=dict)  # baseline runs the remedies job reads
    activations: Mapping[str, JobOutput] = field(default_factory=dict)  # per backbone, top-block fine-tuning
    support: JobOutput | None = None  # the support split's job (density ratios), for the curated-finetune job


def evaluation(data: RunData, pred_test: np.ndarray, pred_shift: np.ndarray,
               scores: tuple[np.ndarray | None, np.ndarray | None] = (None, None), **kwargs: Any) -> ModelEval:
    """A model's evaluation from its predicted classes (and their confidence scores, when the job stored them) on
    the reference-test and shifted sets."""
    from ptdiag.stats.score import ModelEval  # scipy: imported when models are evaluated, not on a rerun

    return ModelEval(ref_correct=pred_test == data.part("test").labels, shift_correct=pred_shift == data.shift.labels,
                     ref_pred=pred_test, shift_pred=pred_shift, ref_scores=scores[0], shift_scores=scores[1],
                     **kwargs)


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
    progress("stage", ("ingest", None))
    pair = load_pair(config.train, config.shift, fmt=config.format, strict=config.strict,
                     min_per_class=config.min_per_class, image_size=config.image_size, cache=cache,
                     **config.source_options())
    ref_index = _stratified_subsample(pair.reference.labels, config.max_reference, config.seed)
    # Stratified by the set's own labels, not --shift-labels: a rerun with a labelled sample analyses the same images
    # (and reuses every job) as the run its sample was drawn from.
    shift_index = _stratified_subsample(pair.shift.labels, config.max_shift, config.seed)
    all_shift_labels = analysed_shift_labels(config, pair)
    shift_labels = all_shift_labels[shift_index]
    labels = pair.reference.labels[ref_index]
    manifest = pair.reference.splits[ref_index] if pair.reference.splits is not None else None
    split_id = f"{pair.reference.fingerprint}|{config.val_fraction}|{config.test_fraction}|{config.seed}"
    subsample_fp = hashlib.sha256(split_id.encode() + ref_index.tobytes()).hexdigest()[:16]
    split = load_or_create_split(run_dir / "split.json", labels, fingerprint=subsample_fp, val=config.val_fraction,
                                 test=config.test_fraction, seed=config.seed, manifest_splits=manifest)
    progress("stage", ("decode", None))
    ref_images = cache.open([pair.reference.paths[i] for i in ref_index],
                            [pair.reference.hashes[i] for i in ref_index], config.image_size)
    shift_images = cache.open([pair.shift.paths[i] for i in shift_index],
                              [pair.shift.hashes[i] for i in shift_index], config.image_size)
    digest = hashlib.sha256()
    for part in (pair.reference.fingerprint, pair.shift.fingerprint, ref_index, shift_index,
                 *(split[k] for k in sorted(split))):
        digest.update(part.tobytes() if isinstance(part, np.ndarray) else str(part).encode())
    labelled = shift_labels != UNLABELLED
    data = RunData(pair, ref_index, shift_index, split, ArraySet(ref_images, labels),
                   ArraySet(shift_images, shift_labels), digest.hexdigest()[:16],
                   arrays_dir=run_dir / "arrays", shift_labelled=None if labelled.all() else labelled,
                   labelled_outside=0 if labelled.all() else
                   int((all_shift_labels != UNLABELLED).sum() - labelled.sum()))
    return data


def analysed_shift_labels(config: AnalyzeConfig, pair: DatasetPair) -> np.ndarray:
    """The shifted images' labels as the analysis may use them: the set's own (UNLABELLED where it has none), none
    with --ignore-shift-labels, completed by --shift-labels FILE."""
    labels = pair.shift.labels.copy()
    if config.ignore_shift_labels:
        labels[:] = UNLABELLED
    if not config.shift_labels:
        return labels
    if (labels != UNLABELLED).all():
        raise UsageError("--shift-labels is for a shifted set without labels; this one has its own",
                         hint="add --ignore-shift-labels to use only the file's labels (e.g. to validate the "
                              "estimates against the full labels)")
    from_file = read_shift_labels(config.shift_labels, pair.shift, pair.classes, config.source_options()["label_map"])
    known = from_file != UNLABELLED
    clash = known & (labels != UNLABELLED) & (labels != from_file)
    if clash.any():
        raise UsageError(f"--shift-labels {config.shift_labels}: {int(clash.sum())} image(s) get another class than "
                         f"the shifted set gives them, e.g. {pair.shift.paths[int(np.argmax(clash))]}")
    labels[known] = from_file[known]
    return labels


def step_reporter(ctx: Context, spec: JobSpec) -> Callable[[int, int], None]:
    """A training loop's (step, total) callback that reports the job's progress."""
    def report(step: int, total: int) -> None:
        if step == 1:
            ctx.progress("job_steps", total)
        ctx.progress("job_advance", 1)

    return report
