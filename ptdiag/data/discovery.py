"""Discovery: list the images and labels of one set before any image is opened.

* an ImageFolder tree, ``root/<class>/**/<image>`` (sub-folders inside a class are walked, symlinks are followed
  but a folder is never entered twice, hidden entries are skipped);
* a CSV or Parquet manifest with columns ``path,label`` and optional ``group`` and ``split``; relative paths are
  resolved against the manifest's folder;
* for the shifted set also unlabelled images: a flat folder (no class folders), a manifest without a ``label``
  column or with empty labels (class name ``UNLABELLED_NAME``; see ``ptdiag.data.shift_labels``);
* a Hugging Face dataset (``save_to_disk`` folder, Parquet/Arrow file with an image column, hub id): see ``hf``;
* WebDataset tar shards (a .tar, a brace pattern, a folder of shards): see ``webdataset``.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np

from ptdiag.data.types import (
    IMAGE_EXTENSIONS,
    MAX_LISTED,
    UNLABELLED_NAME,
    Finding,
    Listing,
    SourceOptions,
    quote_names,
    unlabelled_finding,
)
from ptdiag.errors import DataError

FORMATS = ("imagefolder", "csv", "parquet", "hf", "webdataset")
SPLIT_NAMES = ("train", "val", "test")
_SPLIT_ALIASES = {"validation": "val", "valid": "val", "dev": "val", "training": "train", "testing": "test"}
_MANIFEST_SUFFIXES = {".csv": "csv", ".tsv": "csv", ".parquet": "parquet", ".pq": "parquet"}


# ----------------------------------------------------------------------------------------------------- discovery


def detect_format(path: Path) -> str:
    """The format of an existing source: a folder is "hf" (a ``save_to_disk`` folder), "webdataset" (tar shards,
    no sub-folders) or "imagefolder"; a file is "webdataset" (.tar), "hf" (.arrow, or Parquet with an image
    column) or a "csv"/"parquet" manifest. DataError otherwise."""
    from ptdiag.data import hf, webdataset  # deferred: only these sources need them

    if path.is_dir():
        if hf.is_saved_dataset(path):
            return "hf"
        return "webdataset" if webdataset.is_shard_folder(path) else "imagefolder"
    if webdataset.is_shard(path):
        return "webdataset"
    if hf.is_image_table(path):
        return "hf"
    fmt = _MANIFEST_SUFFIXES.get(path.suffix.lower())
    if fmt is None:
        raise DataError(
            f"{path} is not a folder, a .csv/.parquet manifest, a Hugging Face dataset or a .tar shard",
            hint="pass --format to say what it is",
        )
    return fmt


def discover(
    path: str | Path, *, role: str = "train", fmt: str | None = None, options: SourceOptions | None = None
) -> Listing:
    """List the candidate images of one set without opening them. DataError when the source is unusable.

    ``path`` may also be a hub id (``hf://datasets/ORG/NAME``), a shard brace pattern (``train-{000..009}.tar``)
    or a dataset folder with a split (``DIR:test``); ``options`` picks the split and columns of tables and shards.
    """
    from ptdiag.data.label_map import rename

    options = options or SourceOptions()
    listing = _discover(path, role, fmt, options)
    listing.class_names = rename(listing.class_names, options.label_map)
    return listing


def _discover(path: str | Path, role: str, fmt: str | None, options: SourceOptions) -> Listing:
    from ptdiag.data import hf, webdataset

    if fmt is not None and fmt not in FORMATS:
        raise DataError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
    text = str(path)
    if text.startswith(hf.HUB_PREFIX):
        return hf.discover_hf(text, role, options)
    if webdataset.is_pattern(text):
        return webdataset.discover_shards(text, role, options)
    path = Path(path).expanduser()
    if not path.exists() and ":" in path.name:
        base, split = text.rsplit(":", 1)
        if Path(base).expanduser().exists() and split:
            path, options = Path(base).expanduser(), dataclasses.replace(options, split=split)
    if not path.exists():
        kind = "folder or manifest" if fmt is None else ("folder" if fmt == "imagefolder" else f"{fmt} source")
        raise DataError(f"{role} {kind} does not exist: {path}")
    fmt = fmt or detect_format(path)
    if fmt == "hf":
        return hf.discover_hf(path, role, options)
    if fmt == "webdataset":
        return webdataset.discover_shards(str(path), role, options)
    if fmt == "imagefolder":
        if not path.is_dir():
            raise DataError(f"{role} path is not a folder: {path}", hint="drop --format to auto-detect a manifest")
        return _discover_folder(path.absolute(), role)
    if not path.is_file():
        raise DataError(f"{role} manifest is not a file: {path}")
    return _discover_manifest(path.absolute(), role, fmt)


def _is_hidden(name: str) -> bool:
    return name.startswith(".") or name in ("__MACOSX", "Thumbs.db", "desktop.ini")


def _discover_folder(root: Path, role: str) -> Listing:
    listing = Listing(role, root, "imagefolder", root, [], [])
    try:
        entries = sorted(os.scandir(root), key=lambda e: e.name)
    except OSError as exc:
        raise DataError(f"cannot read {role} folder {root}: {exc.strerror or exc}") from exc
    stray = [e.name for e in entries if not _is_hidden(e.name) and not e.is_dir()]
    if stray:
        n_img = sum(Path(n).suffix.lower() in IMAGE_EXTENSIONS for n in stray)
        listing.n_non_image += len(stray) - n_img
        listing.n_root_images = n_img
        listing.findings.append(
            Finding(
                "warning" if n_img else "info",
                "stray-files",
                f"{role}: ignored {len(stray)} file(s) directly in {root} ({n_img} images); images must sit in "
                f"<class>/ sub-folders, e.g. {quote_names(stray)}",
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
    if role == "shift" and not listing.paths and listing.n_root_images:
        return _unlabelled_folder(root, entries, listing)
    return listing


def _unlabelled_folder(root: Path, entries: list, listing: Listing) -> Listing:
    """A shifted set given as a flat folder of images: every image unlabelled (its class is not known)."""
    images = [Path(e.path) for e in entries
              if not _is_hidden(e.name) and not e.is_dir() and Path(e.name).suffix.lower() in IMAGE_EXTENSIONS]
    listing.paths, listing.class_names = images, [UNLABELLED_NAME] * len(images)
    listing.findings = [f for f in listing.findings if f.code != "stray-files"]
    listing.findings += unlabelled_finding(listing.class_names, "images (no class folders)", str(root),
                                           " (label a random sample and pass it with --shift-labels)")
    return listing


def _walk_class(class_dir: Path, role: str, visited: set[str], listing: Listing) -> list[Path]:
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
                if len(listing.non_image_examples) < MAX_LISTED:
                    listing.non_image_examples.append(str(Path(dirpath) / name))
    return found


def _discover_manifest(manifest: Path, role: str, fmt: str) -> Listing:
    frame = _read_manifest(manifest, fmt)
    columns = {str(c).strip().lower(): c for c in frame.columns}
    missing = [c for c in ("path", "label") if c not in columns and not (c == "label" and role == "shift")]
    if missing:
        raise DataError(
            f"{role} manifest {manifest} lacks column(s) {', '.join(missing)}; "
            f"found: {', '.join(map(str, frame.columns)) or 'none'}",
            hint="a manifest needs columns path,label (label optional for the shifted set) and optionally "
                 "group,split",
        )
    rel = [_cell(v) for v in frame[columns["path"]]]
    labels = [_cell(v) for v in frame[columns["label"]]] if "label" in columns else [UNLABELLED_NAME] * len(rel)
    groups = [_cell(v) for v in frame[columns["group"]]] if "group" in columns else None
    splits = [_cell(v).lower() for v in frame[columns["split"]]] if "split" in columns else None
    listing = Listing(role, manifest, fmt, manifest.parent, [], [])
    keep, seen, empty_rows, n_repeat = [], set(), [], 0
    for row, (p, y) in enumerate(zip(rel, labels, strict=True), start=1):
        path = (manifest.parent / p) if p else None
        if not p or (not y and role != "shift"):  # a shifted image may be unlabelled
            empty_rows.append(str(row))
        elif path.suffix.lower() not in IMAGE_EXTENSIONS:
            listing.n_non_image += 1
            if len(listing.non_image_examples) < MAX_LISTED:
                listing.non_image_examples.append(f"{path} (row {row})")
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
                f"{quote_names(empty_rows)})",
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
    listing.findings += unlabelled_finding(listing.class_names, "manifest rows", str(manifest),
                                           " (the labelled rows must be a random sample of the shifted set)")
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
            f"{role} manifest {manifest}: split column has value(s) {quote_names(bad)}; "
            f"every row needs one of {', '.join(SPLIT_NAMES)}"
        )
    return splits
