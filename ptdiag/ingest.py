"""Find the images of a reference (train) set and a shifted set, validate them, and align their classes.

Two sources are accepted, auto-detected from the argument (``fmt`` overrides):

* an ImageFolder tree, ``root/<class>/**/<image>`` (sub-folders inside a class are walked, symlinks are followed
  but a folder is never entered twice, hidden entries are skipped);
* a CSV or Parquet manifest with columns ``path,label`` and optional ``group`` and ``split``; relative paths are
  resolved against the manifest's folder.

Validation never raises for bad content: every problem becomes a :class:`Finding` (``error`` ones are fatal),
so ``ptdiag inspect`` can show all of them at once. :func:`load_pair` raises :class:`DataError` on the first
fatal finding; only a missing or unreadable source raises straight away. Nothing is ever written into the
data folders.
"""

from __future__ import annotations

import hashlib
import os
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ptdiag.decode_cache import DecodeCache, FileResult, scan_files
from ptdiag.errors import DataError

# torchvision's IMG_EXTENSIONS plus GIF.
IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp", ".gif"})
FORMATS = ("imagefolder", "csv", "parquet")
SPLIT_NAMES = ("train", "val", "test")
_SPLIT_ALIASES = {"validation": "val", "valid": "val", "dev": "val", "training": "train", "testing": "test"}
_MANIFEST_SUFFIXES = {".csv": "csv", ".tsv": "csv", ".parquet": "parquet", ".pq": "parquet"}
_MAX_LISTED = 5  # names quoted in one message before "and N more"

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
    paths: list[Path]
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
        """Images per class, for every class in ``classes`` (zeros included)."""
        counts = np.bincount(self.labels, minlength=len(self.classes)) if len(self) else np.zeros(len(self.classes))
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
        out.fingerprint = _fingerprint(out)
        return out


@dataclass
class DatasetPair:
    """Reference and shifted sets restricted to their shared classes, plus everything validation found.

    ``leaked`` lists (reference path, shift path) pairs with identical content.
    ``listed_counts`` has the per-class file counts before validation and restriction, per role.
    ``n_scanned`` files were hashed, of which ``n_decoded`` were decoded (the rest came from the decode cache).
    """

    reference: ImageSet
    shift: ImageSet
    classes: list[str]
    findings: list[Finding]
    leaked: list[tuple[str, str]]
    listed_counts: dict[str, dict[str, int]] = field(default_factory=dict)
    within_duplicates: dict[str, int] = field(default_factory=dict)
    n_scanned: int = 0
    n_decoded: int = 0

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


@dataclass
class _Listing:
    """What discovery finds before any file is opened."""

    role: str
    source: Path
    format: str
    root: Path
    paths: list[Path]
    class_names: list[str]
    groups: list[str] | None = None
    splits: list[str] | None = None
    n_non_image: int = 0
    empty_classes: list[str] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)

    def classes(self) -> list[str]:
        return sorted(set(self.class_names))

    def keep(self, mask: Sequence[bool]) -> None:
        keep = [i for i, k in enumerate(mask) if k]
        self.paths = [self.paths[i] for i in keep]
        self.class_names = [self.class_names[i] for i in keep]
        self.groups = None if self.groups is None else [self.groups[i] for i in keep]
        self.splits = None if self.splits is None else [self.splits[i] for i in keep]


# ----------------------------------------------------------------------------------------------------- discovery


def detect_format(path: Path) -> str:
    """ "imagefolder" for a folder, "csv"/"parquet" by a manifest's suffix; DataError otherwise."""
    if path.is_dir():
        return "imagefolder"
    fmt = _MANIFEST_SUFFIXES.get(path.suffix.lower())
    if fmt is None:
        raise DataError(
            f"{path} is neither a folder nor a .csv/.parquet manifest",
            hint="pass --format csv or --format parquet if the manifest has another suffix",
        )
    return fmt


def discover(path: str | Path, *, role: str = "train", fmt: str | None = None) -> _Listing:
    """List the candidate images of one set without opening them. DataError when the source is unusable."""
    path = Path(path).expanduser()
    if fmt is not None and fmt not in FORMATS:
        raise DataError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
    if not path.exists():
        kind = "folder or manifest" if fmt is None else ("folder" if fmt == "imagefolder" else f"{fmt} manifest")
        raise DataError(f"{role} {kind} does not exist: {path}")
    fmt = fmt or detect_format(path)
    if fmt == "imagefolder":
        if not path.is_dir():
            raise DataError(f"{role} path is not a folder: {path}", hint="drop --format to auto-detect a manifest")
        return _discover_folder(path.absolute(), role)
    if not path.is_file():
        raise DataError(f"{role} manifest is not a file: {path}")
    return _discover_manifest(path.absolute(), role, fmt)


def _is_hidden(name: str) -> bool:
    return name.startswith(".") or name in ("__MACOSX", "Thumbs.db", "desktop.ini")


def _discover_folder(root: Path, role: str) -> _Listing:
    listing = _Listing(role, root, "imagefolder", root, [], [])
    try:
        entries = sorted(os.scandir(root), key=lambda e: e.name)
    except OSError as exc:
        raise DataError(f"cannot read {role} folder {root}: {exc.strerror or exc}") from exc
    stray = [e.name for e in entries if not _is_hidden(e.name) and not e.is_dir()]
    if stray:
        n_img = sum(Path(n).suffix.lower() in IMAGE_EXTENSIONS for n in stray)
        listing.n_non_image += len(stray)
        listing.findings.append(
            Finding(
                "warning" if n_img else "info",
                "stray-files",
                f"{role}: ignored {len(stray)} file(s) directly in {root} ({n_img} images); images must sit in "
                f"<class>/ sub-folders, e.g. {_quote(stray)}",
                str(root),
            )
        )
    # Real paths of the root and of every class folder: a link back to one of them is a loop (or a second route
    # into another class) and is never followed.
    visited = {os.path.realpath(root)} | {os.path.realpath(e.path) for e in entries if e.is_dir()}
    for entry in entries:
        if _is_hidden(entry.name) or not entry.is_dir():
            continue
        found = _walk_class(Path(entry.path), role, visited, listing)
        if found:
            listing.paths.extend(found)
            listing.class_names.extend([entry.name] * len(found))
        else:
            listing.empty_classes.append(entry.name)
    return listing


def _walk_class(class_dir: Path, role: str, visited: set[str], listing: _Listing) -> list[Path]:
    """All image files below one class folder, sorted; counts the rest. Never enters a folder twice."""
    found: list[Path] = []
    root_real = os.path.realpath(listing.root)
    for dirpath, dirnames, filenames in os.walk(class_dir, followlinks=True):
        kept = []
        for name in sorted(d for d in dirnames if not _is_hidden(d)):
            real = os.path.realpath(os.path.join(dirpath, name))
            # Already seen (a loop, or a second link to one folder), or an ancestor of the dataset itself.
            if real in visited or root_real.startswith(real.rstrip(os.sep) + os.sep):
                listing.findings.append(
                    Finding(
                        "warning",
                        "symlink-loop",
                        f"{role}: skipped {os.path.join(dirpath, name)}: it leads to a folder already scanned ({real})",
                        os.path.join(dirpath, name),
                    )
                )
                continue
            visited.add(real)
            kept.append(name)
        dirnames[:] = kept
        for name in sorted(filenames):
            if _is_hidden(name):
                continue
            if Path(name).suffix.lower() in IMAGE_EXTENSIONS:
                found.append(Path(dirpath) / name)
            else:
                listing.n_non_image += 1
    return found


def _discover_manifest(manifest: Path, role: str, fmt: str) -> _Listing:
    frame = _read_manifest(manifest, fmt)
    columns = {str(c).strip().lower(): c for c in frame.columns}
    missing = [c for c in ("path", "label") if c not in columns]
    if missing:
        raise DataError(
            f"{role} manifest {manifest} lacks column(s) {', '.join(missing)}; "
            f"found: {', '.join(map(str, frame.columns)) or 'none'}",
            hint="a manifest needs columns path,label and optionally group,split",
        )
    rel = [_cell(v) for v in frame[columns["path"]]]
    labels = [_cell(v) for v in frame[columns["label"]]]
    groups = [_cell(v) for v in frame[columns["group"]]] if "group" in columns else None
    splits = [_cell(v).lower() for v in frame[columns["split"]]] if "split" in columns else None
    listing = _Listing(role, manifest, fmt, manifest.parent, [], [])
    keep, seen, empty_rows, n_repeat = [], set(), [], 0
    for row, (p, y) in enumerate(zip(rel, labels, strict=True), start=1):
        path = (manifest.parent / p) if p else None
        if not p or not y:
            empty_rows.append(str(row))
        elif path.suffix.lower() not in IMAGE_EXTENSIONS:
            listing.n_non_image += 1
        elif path in seen:
            n_repeat += 1
        else:
            seen.add(path)
            listing.paths.append(path)
            keep.append(True)
            continue
        keep.append(False)
    if empty_rows:
        listing.findings.append(
            Finding(
                "warning",
                "manifest-empty-cells",
                f"{role}: ignored {len(empty_rows)} manifest row(s) with an empty path or label (data rows "
                f"{_quote(empty_rows)})",
                str(manifest),
            )
        )
    if n_repeat:
        listing.findings.append(
            Finding(
                "warning",
                "manifest-repeated-path",
                f"{role}: {n_repeat} manifest row(s) repeat a path; kept the first",
                str(manifest),
            )
        )
    listing.class_names = [y for y, k in zip(labels, keep, strict=True) if k]
    if groups is not None:
        groups = [g or f"<row {i + 1}>" for i, (g, k) in enumerate(zip(groups, keep, strict=True)) if k]
    listing.groups = groups
    if splits is not None:
        listing.splits = _check_splits([s for s, k in zip(splits, keep, strict=True) if k], manifest, role)
    return listing


def _read_manifest(manifest: Path, fmt: str):
    import pandas as pd  # deferred: pandas costs ~0.3 s to import and folders do not need it

    try:
        if fmt == "parquet":
            return pd.read_parquet(manifest)
        sep = "\t" if manifest.suffix.lower() == ".tsv" else ","
        return pd.read_csv(manifest, dtype=str, keep_default_na=False, sep=sep)
    except Exception as exc:  # noqa: BLE001  pandas/pyarrow raise many types for a bad file
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(f"cannot read {fmt} manifest {manifest}: {reason}") from exc


def _cell(value) -> str:
    """A manifest cell as a stripped string; NaN/None become ''."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    return str(value).strip()


def _check_splits(splits: list[str], manifest: Path, role: str) -> list[str]:
    splits = [_SPLIT_ALIASES.get(s, s) for s in splits]
    bad = sorted({s for s in splits if s not in SPLIT_NAMES})
    if bad:
        raise DataError(
            f"{role} manifest {manifest}: split column has value(s) {_quote(bad)}; "
            f"every row needs one of {', '.join(SPLIT_NAMES)}"
        )
    return splits


# ------------------------------------------------------------------------------------------------- validation


def scan_pair(
    train: str | Path,
    shift: str | Path,
    *,
    fmt: str | None = None,
    strict: bool = False,
    min_per_class: int = 10,
    image_size: int | None = None,
    cache: DecodeCache | None = None,
    fill_cache: bool = True,
    drop_leaked: bool = True,
    progress: ProgressFn | None = None,
) -> DatasetPair:
    """Discover, hash and decode both sets once, and collect every finding without raising for bad content.

    Args:
        train: reference set (folder or manifest); its classes define the label space.
        shift: shifted set; its classes must be a subset of ``train``'s.
        fmt: force "imagefolder", "csv" or "parquet" for both; default auto-detect each.
        strict: make unreadable images fatal instead of skipped.
        min_per_class: warn about classes with fewer usable images than this.
        image_size: with ``cache`` and ``fill_cache``, store every image decoded at this size so that a later
            ``cache.load`` is a pure read.
        cache: decode cache; images it already holds are only hashed, not decoded again.
        drop_leaked: remove reference images whose content also appears in the shift set.
        progress: called with the number of files finished, as the scan goes.

    Raises:
        DataError: a source is missing or unreadable (everything else is returned as findings).
    """
    ref_list = discover(train, role="train", fmt=fmt)
    shift_list = discover(shift, role="shift", fmt=fmt)
    findings = ref_list.findings + shift_list.findings
    listed = {lst.role: dict(Counter(lst.class_names)) for lst in (ref_list, shift_list)}
    for lst in (ref_list, shift_list):
        findings += _listing_findings(lst)
    if shift_list.splits is not None:
        findings.append(
            Finding(
                "info",
                "shift-split-ignored",
                "shift: the manifest's split column is ignored; the whole shifted set is evaluated",
                str(shift_list.source),
            )
        )
        shift_list.splits = None
    # Decode only what can be used: e.g. ImageNet-R covers 200 of 1000 train classes.
    shift_classes = set(shift_list.class_names)
    if shift_classes:
        ref_list.keep([c in shift_classes for c in ref_list.class_names])

    fill = bool(fill_cache and cache is not None and image_size is not None)
    results = scan_files(
        ref_list.paths + shift_list.paths,
        size=image_size if fill else None,
        cache_root=None if cache is None else cache.root,
        fill=fill,
        workers=None if cache is None else cache.workers,
        progress=progress,
    )
    n_ref = len(ref_list.paths)
    ref_set, ref_bad = _build_set(ref_list, results[:n_ref], strict)
    shift_set, shift_bad = _build_set(shift_list, results[n_ref:], strict)
    findings += ref_bad + shift_bad
    findings += _conversion_findings(ref_set) + _conversion_findings(shift_set)

    classes, align_findings = _align(ref_set, shift_set, listed)
    findings += align_findings
    reference = ref_set.subset(np.isin(ref_set.labels, [ref_set.classes.index(c) for c in classes]), classes)
    shift_keep = np.isin(shift_set.labels, [shift_set.classes.index(c) for c in classes if c in shift_set.classes])
    shifted = shift_set.subset(shift_keep, classes)

    within = {s.role: _within_duplicates(s, findings) for s in (reference, shifted)}
    leaked, reference = _leakage(reference, shifted, drop_leaked, findings)
    findings += _size_findings(reference, shifted, min_per_class)
    n_decoded = sum(r.ok and not r.from_cache for r in results)
    return DatasetPair(reference, shifted, classes, findings, leaked, listed, within, len(results), n_decoded)


def load_pair(
    train: str | Path,
    shift: str | Path,
    *,
    fmt: str | None = None,
    strict: bool = False,
    min_per_class: int = 10,
    image_size: int | None = None,
    cache: DecodeCache | None = None,
    drop_leaked: bool = True,
    progress: ProgressFn | None = None,
) -> DatasetPair:
    """:func:`scan_pair`, then raise DataError on the first fatal finding. See scan_pair for the arguments."""
    pair = scan_pair(
        train,
        shift,
        fmt=fmt,
        strict=strict,
        min_per_class=min_per_class,
        image_size=image_size,
        cache=cache,
        drop_leaked=drop_leaked,
        progress=progress,
    )
    pair.raise_for_errors()
    return pair


def _listing_findings(lst: _Listing) -> list[Finding]:
    out = []
    where = f"{lst.role} ({lst.source})"
    if lst.n_non_image:
        out.append(
            Finding(
                "info", "non-image-files", f"{lst.role}: ignored {lst.n_non_image} non-image file(s)", str(lst.source)
            )
        )
    for name in lst.empty_classes:
        out.append(
            Finding(
                "warning",
                "empty-class",
                f"{lst.role}: class folder '{name}' has no images; class ignored",
                str(lst.root / name),
            )
        )
    if not lst.paths:
        hint = f" ({lst.n_non_image} non-image files ignored)" if lst.n_non_image else ""
        out.append(Finding("error", "empty-set", f"{where} has no images{hint}", str(lst.source)))
    return out


def _build_set(lst: _Listing, results: list[FileResult], strict: bool) -> tuple[ImageSet, list[Finding]]:
    """Keep the files that decoded; turn the others into findings (errors under ``strict``)."""
    level = "error" if strict else "warning"
    findings = [
        Finding(level, r.error_code, f"{lst.role}: {r.error}" + ("" if strict else "; skipped"), str(p))
        for p, r in zip(lst.paths, results, strict=True)
        if not r.ok
    ]
    ok = [i for i, r in enumerate(results) if r.ok]
    classes = lst.classes()
    class_index = {c: i for i, c in enumerate(classes)}
    metas = [results[i].meta for i in ok]
    image_set = ImageSet(
        role=lst.role,
        source=lst.source,
        format=lst.format,
        root=lst.root,
        paths=[lst.paths[i] for i in ok],
        labels=np.array([class_index[lst.class_names[i]] for i in ok], dtype=np.int64),
        classes=classes,
        hashes=[results[i].hash for i in ok],
        groups=None if lst.groups is None else np.array([lst.groups[i] for i in ok], dtype=object),
        splits=None if lst.splits is None else np.array([lst.splits[i] for i in ok], dtype=object),
        n_non_image=lst.n_non_image,
        n_bad=len(findings),
        widths=np.array([m.width for m in metas], dtype=np.int64),
        heights=np.array([m.height for m in metas], dtype=np.int64),
        modes=[m.mode for m in metas],
        formats=[m.format for m in metas],
    )
    image_set.fingerprint = _fingerprint(image_set)
    n_rotated = sum(m.exif_rotated for m in metas)
    if n_rotated:
        findings.append(
            Finding(
                "info",
                "exif-rotated",
                f"{lst.role}: applied the EXIF orientation of {n_rotated} image(s)",
                str(lst.source),
            )
        )
    if lst.paths and not ok:
        findings.append(
            Finding(
                "error", "empty-set", f"{lst.role}: none of the {len(lst.paths)} images can be read", str(lst.source)
            )
        )
    return image_set, findings


def _align(ref: ImageSet, shift: ImageSet, listed: dict[str, dict[str, int]]) -> tuple[list[str], list[Finding]]:
    """Shared class names in reference order; errors for shift-only classes, warnings for train-only ones."""
    findings = []
    ref_present = [c for c, n in ref.class_counts().items() if n]
    shift_present = [c for c, n in shift.class_counts().items() if n]
    if not ref_present or not shift_present:
        return ref_present if not shift_present else [], findings  # the empty set is reported already
    # A shift class that train lists but could not read (or that discovery restricted) is still "not in train".
    extra = [c for c in shift_present if c not in ref_present]
    if extra:
        never = [c for c in extra if c not in listed.get("train", {})]
        kind = "not in train" if len(never) == len(extra) else "with no usable train images"
        findings.append(
            Finding(
                "error",
                "shift-classes-not-in-train",
                f"shift has {len(extra)} class(es) {kind}: {_quote(extra)}",
                str(shift.source),
            )
        )
    absent = [c for c in listed.get("train", {}) if c not in shift_present]
    if absent:
        findings.append(
            Finding(
                "warning",
                "train-classes-not-in-shift",
                f"train has {len(absent)} class(es) absent from shift: {_quote(sorted(absent))}; the reference is "
                "restricted to the shared classes",
                str(ref.source),
            )
        )
    shared = [c for c in ref_present if c in shift_present]
    all_train = sorted(listed.get("train", {}))
    if len(all_train) == 1:
        findings.append(
            Finding(
                "error",
                "one-class",
                f"train has only one class ('{all_train[0]}'); a classifier needs at least two",
                str(ref.source),
            )
        )
    elif len(shared) == 1:
        findings.append(
            Finding(
                "error",
                "one-class",
                f"train and shift share only one class ('{shared[0]}'); at least two are needed",
                str(shift.source),
            )
        )
    elif not shared:
        findings.append(
            Finding("error", "no-shared-classes", "train and shift have no class name in common", str(shift.source))
        )
    return shared, findings


def _within_duplicates(image_set: ImageSet, findings: list[Finding]) -> int:
    """Count images whose content repeats inside one set; warn when the copies disagree on the label."""
    by_hash: dict[str, set[int]] = {}
    for digest, label in zip(image_set.hashes, image_set.labels, strict=True):
        by_hash.setdefault(digest, set()).add(int(label))
    n_dup = len(image_set) - len(by_hash)
    if n_dup:
        findings.append(
            Finding(
                "info",
                "duplicates-within",
                f"{image_set.role}: {n_dup} image(s) are exact copies of another image in the same set",
                str(image_set.source),
            )
        )
    conflicting = [d for d, labels in by_hash.items() if len(labels) > 1]
    if conflicting:
        example = image_set.paths[image_set.hashes.index(conflicting[0])]
        findings.append(
            Finding(
                "warning",
                "conflicting-labels",
                f"{image_set.role}: {len(conflicting)} image(s) appear under more than one class, e.g. {example}",
                str(example),
            )
        )
    return n_dup


def _leakage(reference: ImageSet, shift: ImageSet, drop: bool, findings: list[Finding]):
    """Pairs of identical files across the sets; optionally drop them from the reference (never from shift)."""
    shift_by_hash: dict[str, Path] = {}
    for path, digest in zip(shift.paths, shift.hashes, strict=True):
        shift_by_hash.setdefault(digest, path)
    leaked = [
        (str(p), str(shift_by_hash[d]))
        for p, d in zip(reference.paths, reference.hashes, strict=True)
        if d in shift_by_hash
    ]
    if not leaked:
        return leaked, reference
    action = (
        "removed from the reference so no shift image is trained on"
        if drop
        else "kept in both sets (drop_leaked=False)"
    )
    findings.append(
        Finding(
            "warning",
            "leakage",
            f"{len(leaked)} train image(s) also appear in shift (same bytes), e.g. {leaked[0][0]} = "
            f"{leaked[0][1]}; {action}",
            leaked[0][0],
        )
    )
    if drop:
        leaked_hashes = set(shift_by_hash)
        reference = reference.subset(np.array([d not in leaked_hashes for d in reference.hashes], dtype=bool))
    return leaked, reference


def _size_findings(reference: ImageSet, shift: ImageSet, min_per_class: int) -> list[Finding]:
    out = []
    for image_set in (reference, shift):
        small = {c: n for c, n in image_set.class_counts().items() if n < min_per_class}
        if small and len(image_set):
            listed = ", ".join(f"'{c}' ({n})" for c, n in list(small.items())[:_MAX_LISTED])
            more = f" and {len(small) - _MAX_LISTED} more" if len(small) > _MAX_LISTED else ""
            out.append(
                Finding(
                    "warning",
                    "small-class",
                    f"{image_set.role}: {len(small)} class(es) have fewer than {min_per_class} usable "
                    f"images: {listed}{more}",
                    str(image_set.source),
                )
            )
    return out


def _conversion_findings(image_set: ImageSet) -> list[Finding]:
    out = []
    converted = Counter(m for m in image_set.modes if m != "RGB")
    if converted:
        modes = ", ".join(f"{mode} {n}" for mode, n in converted.most_common())
        out.append(
            Finding(
                "info",
                "converted-to-rgb",
                f"{image_set.role}: converted to RGB: {modes} (alpha composited on white, 16-bit scaled to 8-bit)",
                str(image_set.source),
            )
        )
    return out


def _fingerprint(image_set: ImageSet) -> str:
    digest = hashlib.sha1(usedforsecurity=False)
    for path, label, content in zip(image_set.paths, image_set.labels, image_set.hashes, strict=True):
        rel = os.path.relpath(path, image_set.root)
        digest.update(f"{rel}\t{image_set.classes[label]}\t{content}\n".encode("utf-8", "surrogateescape"))
    return digest.hexdigest()[:16]


def _quote(names: Sequence[str]) -> str:
    shown = ", ".join(f"'{n}'" for n in list(names)[:_MAX_LISTED])
    return shown + (f" and {len(names) - _MAX_LISTED} more" if len(names) > _MAX_LISTED else "")
