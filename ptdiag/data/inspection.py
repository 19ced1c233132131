"""`ptdiag inspect` as a library call: a data-only report on a (train, shift) pair, no training.

:func:`inspect_pair` scans both sets (see :mod:`ptdiag.data.ingest`) and returns an :class:`InspectReport`, a plain
dataclass whose ``to_dict()`` is what ``--json`` writes and what the terminal renderer reads.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ptdiag.data.decode_cache import DecodeCache
from ptdiag.data.ingest import DatasetPair, Finding, ImageSet, ProgressFn, scan_pair
from ptdiag.data.types import UNLABELLED_NAME

REPORT_KIND = "ptdiag.inspect"
REPORT_VERSION = 1


@dataclass(frozen=True)
class SetSummary:
    """Counts and image statistics of one set (after validation and class restriction)."""

    role: str
    source: str
    format: str
    n_listed: int
    n_usable: int
    n_unreadable: int
    n_outside_shared: int  # readable, but in a class the other set lacks (or all of them, when none is shared)
    n_non_image: int
    n_duplicates_within: int
    width: dict[str, float]
    height: dict[str, float]
    modes: dict[str, int]
    formats: dict[str, int]
    fingerprint: str


@dataclass(frozen=True)
class ClassRow:
    """One class: files listed and images used per set; status "shared", "train only", "shift only", "unusable",
    "unlabelled" (shifted images without a class)."""

    name: str
    train_listed: int
    train_used: int
    shift_listed: int
    shift_used: int
    status: str


@dataclass(frozen=True)
class CacheCoverage:
    """How many of the used images the decode cache holds at one resolution."""

    size: int
    cached: int
    total: int

    @property
    def fraction(self) -> float:
        return self.cached / self.total if self.total else 0.0


@dataclass
class InspectReport:
    """Everything `ptdiag inspect` shows; ``usable`` is False when a finding is an error (exit code 3)."""

    train: SetSummary
    shift: SetSummary
    classes: list[ClassRow]
    shared_classes: list[str]
    findings: list[Finding]
    leaked: list[tuple[str, str]]
    cache_dir: str | None
    cache: list[CacheCoverage] = field(default_factory=list)
    n_decoded: int = 0

    @property
    def usable(self) -> bool:
        return not any(f.level == "error" for f in self.findings)

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.level == "error"]

    def to_dict(self) -> dict:
        return {
            "kind": REPORT_KIND,
            "version": REPORT_VERSION,
            "usable": self.usable,
            "sets": {"train": asdict(self.train), "shift": asdict(self.shift)},
            "classes": [asdict(row) for row in self.classes],
            "shared_classes": list(self.shared_classes),
            "findings": [f.to_dict() for f in self.findings],
            "duplicates_across_sets": [{"train": a, "shift": b} for a, b in self.leaked],
            "cache": {
                "dir": self.cache_dir,
                "coverage": [{**asdict(c), "fraction": round(c.fraction, 4)} for c in self.cache],
                "decoded_now": self.n_decoded,
            },
        }


def inspect_pair(
    train: str | Path,
    shift: str | Path,
    *,
    fmt: str | None = None,
    strict: bool = False,
    min_per_class: int = 10,
    image_size: int | None = None,
    cache: DecodeCache | None = None,
    warm_cache: bool = False,
    progress: ProgressFn | None = None,
    **source_options: Any,
) -> InspectReport:
    """Scan both sets and summarise them; only a missing or unreadable source raises (DataError).

    The cache is only read unless ``warm_cache`` (then every image is stored at ``image_size``), so the reported
    coverage is what a later run would find. ``source_options`` (split and column names) go to ``scan_pair``.
    """
    pair = scan_pair(
        train,
        shift,
        fmt=fmt,
        strict=strict,
        min_per_class=min_per_class,
        image_size=image_size,
        cache=cache,
        fill_cache=warm_cache,
        progress=progress,
        **source_options,
    )
    return build_report(pair, cache, image_size)


def build_report(pair: DatasetPair, cache: DecodeCache | None, image_size: int | None = None) -> InspectReport:
    """Summarise a scanned pair: set statistics, class table and decode-cache coverage."""
    coverage = []
    if cache is not None:
        hashes = pair.reference.hashes + pair.shift.hashes
        sizes = sorted(set(cache.sizes()) | ({image_size} if image_size else set()))
        coverage = [CacheCoverage(size, *cache.status(hashes, size)) for size in sizes]
    return InspectReport(
        train=_summarise(pair.reference, pair, "train"),
        shift=_summarise(pair.shift, pair, "shift"),
        classes=_class_rows(pair),
        shared_classes=list(pair.classes),
        findings=list(pair.findings),
        leaked=list(pair.leaked),
        cache_dir=None if cache is None else str(cache.root),
        cache=coverage,
        n_decoded=pair.n_decoded if cache is not None and image_size else 0,
    )


def _summarise(image_set: ImageSet, pair: DatasetPair, role: str) -> SetSummary:
    return SetSummary(
        role=role,
        source=str(image_set.source),
        format=image_set.format,
        n_listed=sum(pair.listed_counts.get(role, {}).values()),
        n_usable=len(image_set),
        n_unreadable=image_set.n_bad,
        n_outside_shared=max(pair.n_readable.get(role, len(image_set)) - len(image_set), 0),
        n_non_image=image_set.n_non_image,
        n_duplicates_within=pair.within_duplicates.get(role, 0),
        width=_stats(image_set.widths),
        height=_stats(image_set.heights),
        modes=dict(Counter(image_set.modes).most_common()),
        formats=dict(Counter(image_set.formats).most_common()),
        fingerprint=image_set.fingerprint,
    )


def _stats(values: np.ndarray) -> dict[str, float]:
    if len(values) == 0:
        return {"min": 0, "median": 0, "max": 0}
    return {"min": int(values.min()), "median": float(np.median(values)), "max": int(values.max())}


def _class_rows(pair: DatasetPair) -> list[ClassRow]:
    listed_train = pair.listed_counts.get("train", {})
    listed_shift = pair.listed_counts.get("shift", {})
    used_train = pair.reference.class_counts()
    used_shift = pair.shift.class_counts()
    rows = []
    for name in sorted(set(listed_train) | set(listed_shift)):
        if name == UNLABELLED_NAME:  # unlabelled shifted images: one row, named so
            n_used = int((pair.shift.labels < 0).sum())
            rows.append(ClassRow("(unlabelled)", 0, 0, listed_shift[name], n_used, "unlabelled"))
            continue
        if name in pair.classes:
            status = "shared"
        elif listed_train.get(name) and listed_shift.get(name):
            status = "unusable"  # listed in both, but one side has no readable image
        else:
            status = "train only" if listed_train.get(name) else "shift only"
        rows.append(
            ClassRow(
                name,
                listed_train.get(name, 0),
                used_train.get(name, 0),
                listed_shift.get(name, 0),
                used_shift.get(name, 0),
                status,
            )
        )
    return rows
