"""Find the images of a reference (train) set and a shifted set, validate them, and align their classes.

Sources are auto-detected from the argument (``fmt`` overrides): an ImageFolder tree, a CSV/Parquet manifest, a
Hugging Face dataset or WebDataset shards; the two sets may be of different kinds (see ``discovery``).

Discovery lives in ``discovery``, the data model in ``types``, cross-set checks in ``alignment``.
Validation never raises for bad content: every problem becomes a :class:`Finding` (``error`` ones are fatal),
so ``ptdiag inspect`` can show all of them at once. :func:`load_pair` raises :class:`DataError` on the first
fatal finding; only a missing or unreadable source raises straight away. Nothing is ever written into the
data folders.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np

from ptdiag.data.alignment import align_classes, conversion_findings, leakage, size_findings, within_duplicates
from ptdiag.data.decode_cache import DecodeCache, FileResult, drop_damaged_chunks, scan_files
from ptdiag.data.discovery import Listing, discover
from ptdiag.data.types import UNLABELLED_NAME, DatasetPair, Finding, ImageSet, ProgressFn, SourceOptions, fingerprint

__all__ = ["DatasetPair", "Finding", "ImageSet", "ProgressFn", "discover", "load_pair", "scan_pair"]


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
    image_column: str | None = None,
    label_column: str | None = None,
    train_split: str | None = None,
    shift_split: str | None = None,
    label_map: dict[str, str] | None = None,
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
        image_column, label_column: columns of a Hugging Face dataset (default: from its features), or for
            WebDataset shards the label member or json field.
        train_split, shift_split: the split of a Hugging Face DatasetDict (or hub dataset) to read.
        label_map: raw label -> class name, applied to both sets (``ptdiag.data.label_map``).

    Raises:
        DataError: a source is missing or unreadable (everything else is returned as findings).
    """
    columns = {"image_column": image_column, "label_column": label_column, "label_map": label_map}
    ref_list = discover(train, role="train", fmt=fmt, options=SourceOptions(train_split, **columns))
    shift_list = discover(shift, role="shift", fmt=fmt, options=SourceOptions(shift_split, **columns))
    findings = ref_list.findings + shift_list.findings
    listed = {lst.role: dict(Counter(lst.class_names)) for lst in (ref_list, shift_list)}
    for lst in (ref_list, shift_list):
        findings += listing_findings(lst)
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
    # Only when the sets share a class: with none, both stay whole so the mismatch is reported with all names.
    shift_classes = set(shift_list.class_names)
    # Unlabelled shifted images may be of any class: then the whole reference stays.
    if shift_classes & set(ref_list.class_names) and UNLABELLED_NAME not in shift_classes:
        ref_list.keep([c in shift_classes for c in ref_list.class_names])

    if cache is not None:
        findings += damaged_cache_findings(drop_damaged_chunks(cache.root))
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
    ref_set, ref_bad = build_set(ref_list, results[:n_ref], strict)
    shift_set, shift_bad = build_set(shift_list, results[n_ref:], strict)
    findings += ref_bad + shift_bad
    findings += conversion_findings(ref_set) + conversion_findings(shift_set)

    unlabelled = np.array([shift_set.classes[y] == UNLABELLED_NAME for y in shift_set.labels], dtype=bool)
    classes, align_findings = align_classes(ref_set, shift_set.subset(~unlabelled), listed)
    if unlabelled.any():  # unlabelled images may be of any reference class: keep them all
        classes = [c for c, n in ref_set.class_counts().items() if n]
        align_findings = [f for f in align_findings if f.code != "train-classes-not-in-shift"]
    findings += align_findings
    reference = ref_set.subset(np.isin(ref_set.labels, [ref_set.classes.index(c) for c in classes]), classes)
    shift_keep = np.isin(shift_set.labels, [shift_set.classes.index(c) for c in classes if c in shift_set.classes])
    shifted = shift_set.subset(shift_keep | unlabelled, classes)  # unlabelled images get label -1

    within = {s.role: within_duplicates(s, findings) for s in (reference, shifted)}
    leaked, reference = leakage(reference, shifted, drop_leaked, findings)
    findings += size_findings(reference, shifted, min_per_class)
    n_decoded = sum(r.ok and not r.from_cache for r in results)
    readable = {"train": len(ref_set), "shift": len(shift_set)}
    return DatasetPair(reference, shifted, classes, findings, leaked, listed, within, n_decoded, readable)


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
    **source_options: str | dict[str, str] | None,
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
        **source_options,
    )
    pair.raise_for_errors()
    return pair

def damaged_cache_findings(damaged: list[tuple[Path, str]]) -> list[Finding]:
    if not damaged:
        return []
    path, why = damaged[0]
    more = f" (and {len(damaged) - 1} more)" if len(damaged) > 1 else ""
    return [Finding("warning", "decode-cache-damaged", f"decode cache: dropped damaged file {path}{more}: {why}; its "
                    "images are decoded again from the source files", str(path))]


def listing_findings(lst: Listing) -> list[Finding]:
    out = []
    where = f"{lst.role} ({lst.source})"
    if lst.n_non_image:
        examples = lst.non_image_examples
        named = f", e.g. {', '.join(examples)}" if examples else ""
        first = examples[0].split(" (row ")[0] if examples else str(lst.source)
        out.append(
            Finding("info", "non-image-files", f"{lst.role}: ignored {lst.n_non_image} non-image file(s){named}", first)
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
    if not lst.paths and lst.n_root_images:
        out.append(Finding("error", "no-class-folders",
                           f"{where} has no class folders: its {lst.n_root_images} images sit directly in {lst.root}. "
                           f"Put them in one sub-folder per class ({lst.root}/<class>/...), or give a CSV manifest "
                           "with columns path,label; the reference set needs a label for every image",
                           str(lst.source)))
    elif not lst.paths:
        hint = f" ({lst.n_non_image} non-image files ignored)" if lst.n_non_image else ""
        out.append(Finding("error", "empty-set", f"{where} has no images{hint}", str(lst.source)))
    return out


def build_set(lst: Listing, results: list[FileResult], strict: bool) -> tuple[ImageSet, list[Finding]]:
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
    image_set.fingerprint = fingerprint(image_set)
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
