"""The data model of a loaded pair: one validation finding, one image set, and the aligned reference/shift pair."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ptdiag.data.sources import ImageSource
from ptdiag.errors import DataError

# torchvision's IMG_EXTENSIONS plus GIF.
IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp", ".gif"})
MAX_LISTED = 5  # names quoted in one message before "and N more"

ProgressFn = Callable[[int], None]


@dataclass(frozen=True)
class Finding:
    """One validation result. ``level`` is "error" (fatal), "warning" or "info"; ``code`` is stable for tools."""

    level: str
    code: str
    message: str
    path: str | None = None

    def to_dict(self) -> dict:
        return {"level": self.level, "code": self.code, "message": self.message, "path": self.path}


UNLABELLED_NAME = ""  # the class name of a shifted image without a label, in a listing
UNLABELLED = -1  # its label once the classes are aligned (ImageSet.subset maps unknown classes to -1)


def unlabelled_finding(class_names: Sequence[str], unit: str, source: str, note: str = "") -> list[Finding]:
    """The info finding that a shifted listing holds unlabelled images (none when every one has a label)."""
    n = list(class_names).count(UNLABELLED_NAME)
    if not n:
        return []
    return [Finding("info", "shift-unlabelled", f"shift: {n} of {len(class_names)} {unit} have no label: read as "
                    f"unlabelled{note}", source)]


@dataclass
class Listing:
    """What discovery finds before any image is opened. ``paths`` holds files, or :class:`ImageSource` references
    (rows of a dataset table, members of a tar shard) for sources that are not files of their own."""

    role: str
    source: Path
    format: str
    root: Path
    paths: list[Path | ImageSource]
    class_names: list[str]
    groups: list[str] | None = None
    splits: list[str] | None = None
    n_non_image: int = 0
    empty_classes: list[str] = field(default_factory=list)
    non_image_examples: list[str] = field(default_factory=list)  # the first few non-image files, for findings
    n_root_images: int = 0  # images directly in an ImageFolder's root, outside any class folder
    findings: list[Finding] = field(default_factory=list)

    def classes(self) -> list[str]:
        return sorted(set(self.class_names))

    def keep(self, mask: Sequence[bool]) -> None:
        keep = [i for i, k in enumerate(mask) if k]
        self.paths = [self.paths[i] for i in keep]
        self.class_names = [self.class_names[i] for i in keep]
        self.groups = None if self.groups is None else [self.groups[i] for i in keep]
        self.splits = None if self.splits is None else [self.splits[i] for i in keep]


@dataclass(frozen=True)
class SourceOptions:
    """How to read a dataset table or shard set: its split, and the image and label columns (None: found)."""

    split: str | None = None
    image_column: str | None = None
    label_column: str | None = None
    label_map: dict[str, str] | None = None  # raw label -> class name (ptdiag.data.label_map)


@dataclass
class ImageSet:
    """The usable images of one set, in a stable order (class, then path; manifest order for manifests).

    ``labels`` index into ``classes``; ``hashes`` are sha1 of the file bytes; ``widths``/``heights`` are the stored
    (pre-EXIF-rotation) sizes and ``modes``/``formats`` the PIL mode and format before conversion to RGB.
    ``fingerprint`` identifies order, labels and contents (not the folder location).
    """

    role: str
    source: Path
    format: str
    root: Path
    paths: list[Path | ImageSource]
    labels: np.ndarray
    classes: list[str]
    hashes: list[str]
    groups: np.ndarray | None = None
    splits: np.ndarray | None = None
    n_non_image: int = 0
    n_bad: int = 0
    widths: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    heights: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    modes: list[str] = field(default_factory=list)
    formats: list[str] = field(default_factory=list)
    fingerprint: str = ""

    def __len__(self) -> int:
        return len(self.paths)

    def class_counts(self) -> dict[str, int]:
        """Images per class, for every class in ``classes`` (zeros included; unlabelled images, -1, in none)."""
        known = self.labels[self.labels >= 0]
        counts = np.bincount(known, minlength=len(self.classes)) if known.size else np.zeros(len(self.classes))
        return {name: int(n) for name, n in zip(self.classes, counts, strict=True)}

    def subset(self, keep: np.ndarray, classes: list[str] | None = None) -> ImageSet:
        """The images where ``keep`` is True, optionally relabelled into ``classes`` (a subset of ours)."""
        idx = np.flatnonzero(keep)
        labels = self.labels[idx]
        if classes is not None:
            remap = np.array([classes.index(c) if c in classes else -1 for c in self.classes], dtype=np.int64)
            labels = remap[labels] if len(labels) else labels
        out = ImageSet(
            role=self.role,
            source=self.source,
            format=self.format,
            root=self.root,
            paths=[self.paths[i] for i in idx],
            labels=labels.astype(np.int64),
            classes=list(classes if classes is not None else self.classes),
            hashes=[self.hashes[i] for i in idx],
            groups=None if self.groups is None else self.groups[idx],
            splits=None if self.splits is None else self.splits[idx],
            n_non_image=self.n_non_image,
            n_bad=self.n_bad,
            widths=self.widths[idx],
            heights=self.heights[idx],
            modes=[self.modes[i] for i in idx],
            formats=[self.formats[i] for i in idx],
        )
        out.fingerprint = fingerprint(out)
        return out


@dataclass
class DatasetPair:
    """Reference and shifted sets restricted to their shared classes, plus everything validation found.

    ``leaked`` lists (reference path, shift path) pairs with identical content.
    ``listed_counts`` has the per-class file counts before validation and restriction, per role.
    ``n_decoded`` files were decoded by the scan (the others came from the decode cache).
    """

    reference: ImageSet
    shift: ImageSet
    classes: list[str]
    findings: list[Finding]
    leaked: list[tuple[str, str]]
    listed_counts: dict[str, dict[str, int]] = field(default_factory=dict)
    within_duplicates: dict[str, int] = field(default_factory=dict)
    n_decoded: int = 0
    n_readable: dict[str, int] = field(default_factory=dict)  # decodable images per role, before class restriction

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.level == "error"]

    def raise_for_errors(self) -> None:
        """Raise DataError with the first fatal finding (and how many more there are)."""
        errors = self.errors
        if errors:
            more = len(errors) - 1
            hint = f"{more} more error(s); run `ptdiag inspect` to list them all" if more else None
            raise DataError(errors[0].message, hint=hint)



def fingerprint(image_set: ImageSet) -> str:
    digest = hashlib.sha1(usedforsecurity=False)
    for path, label, content in zip(image_set.paths, image_set.labels, image_set.hashes, strict=True):
        rel = path.rel if isinstance(path, ImageSource) else os.path.relpath(path, image_set.root)
        name = image_set.classes[label] if label >= 0 else ""  # an unlabelled shifted image
        digest.update(f"{rel}\t{name}\t{content}\n".encode("utf-8", "surrogateescape"))
    return digest.hexdigest()[:16]


def quote_names(names: Sequence[str]) -> str:
    shown = ", ".join(f"'{n}'" for n in list(names)[:MAX_LISTED])
    return shown + (f" and {len(names) - MAX_LISTED} more" if len(names) > MAX_LISTED else "")


@dataclass(frozen=True)
class ArraySet:
    """Images (N, H, W, 3) uint8 and integer labels (N,)."""

    images: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, index: np.ndarray) -> ArraySet:
        return ArraySet(self.images[index], self.labels[index])
