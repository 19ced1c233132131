"""Labels for a sample of the shifted images (`--shift-labels FILE`) when the rest of the shifted set has none.

The file is a CSV with columns ``path,label`` (a header row is required; other columns, e.g. those
``ptdiag curate`` writes, are ignored). A path is matched to a shifted image by its full path (relative paths are
read against the CSV's folder), else by its path relative to the shifted set's root, else by its file name when
that is unique in the shifted set; labels are class names of the reference set (``--label-map`` applies). Rows
with an empty label are skipped (a curated list not labelled yet). Every other problem is a UsageError naming the
file and row.
"""

from __future__ import annotations

import csv
import os
from collections import Counter
from pathlib import Path

import numpy as np

from ptdiag.data.types import UNLABELLED, ImageSet
from ptdiag.errors import UsageError

__all__ = ["UNLABELLED", "read_shift_labels"]


def read_shift_labels(path: str | Path, shift: ImageSet, classes: list[str],
                      label_map: dict[str, str] | None = None) -> np.ndarray:
    """Labels (class indices, UNLABELLED where the file has none) for every image of `shift`, from `path`."""
    path = Path(path).expanduser()
    rows = _rows(path)
    lookup = _lookup(shift)
    labels = np.full(len(shift), UNLABELLED, dtype=np.int64)
    index = {c: i for i, c in enumerate(classes)}
    for line, (image, label) in rows:
        if not label:
            continue
        name = (label_map or {}).get(label, label)
        if name not in index:
            raise UsageError(f"--shift-labels {path}: row {line} has label {label!r}, which is not a class of the "
                             f"reference set ({', '.join(classes[:8])}{' ...' if len(classes) > 8 else ''})")
        position = _match(image, path.parent, lookup)
        if position is None:
            raise UsageError(f"--shift-labels {path}: row {line} names {image!r}, which is not an image of the "
                             f"shifted set {shift.source}")
        if labels[position] not in (UNLABELLED, index[name]):
            raise UsageError(f"--shift-labels {path}: row {line} labels {image!r} again, with another class")
        labels[position] = index[name]
    if not (labels != UNLABELLED).any():
        raise UsageError(f"--shift-labels {path}: no labelled rows (an empty label column?)")
    return labels


def _rows(path: Path) -> list[tuple[int, tuple[str, str]]]:
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            fields = {(f or "").strip().lower(): f for f in reader.fieldnames or []}
            missing = [c for c in ("path", "label") if c not in fields]
            if missing:
                raise UsageError(f"--shift-labels {path}: missing column(s) {', '.join(missing)} (need a header row "
                                 "with path,label)")
            return [(i, ((r.get(fields["path"]) or "").strip(), (r.get(fields["label"]) or "").strip()))
                    for i, r in enumerate(reader, start=2)]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise UsageError(f"--shift-labels {path}: cannot read ({getattr(exc, 'strerror', None) or exc})") from None


def _lookup(shift: ImageSet) -> dict[str, dict[str, int]]:
    """Shifted images by full path, by path relative to the set's root, and by (unique) file name."""
    full, relative, names = {}, {}, {}
    counts = Counter(Path(str(p)).name for p in shift.paths)
    root = Path(shift.root)
    for i, p in enumerate(shift.paths):
        text = str(p)
        full[_norm(text)] = i
        if isinstance(p, Path):
            try:
                relative[_norm(str(p.relative_to(root)))] = i
            except ValueError:
                pass
        name = Path(text).name
        if counts[name] == 1:
            names[name] = i
    return {"full": full, "relative": relative, "name": names}


def _match(image: str, base: Path, lookup: dict[str, dict[str, int]]) -> int | None:
    if not image:
        return None
    candidate = Path(image).expanduser()
    resolved = candidate if candidate.is_absolute() else base / candidate
    for key, table in ((_norm(str(resolved)), "full"), (_norm(image), "full"), (_norm(image), "relative"),
                       (Path(image).name, "name")):
        if key in lookup[table]:
            return lookup[table][key]
    return None


def _norm(text: str) -> str:
    return os.path.normpath(text) if Path(text).is_absolute() else text.replace("\\", "/")
