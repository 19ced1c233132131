"""Rename labels to class names: a user's map for integer (or otherwise mismatched) labels.

Classes are matched across the two sets by name. When one set stores labels as integers (a WebDataset ``cls``
member, a Hugging Face column without ``ClassLabel`` names) and the other as folder names, ``--label-map FILE``
says which name each raw label stands for. The file is one of:

- CSV with two columns ``label,name`` (a header row with those names is optional);
- JSON object ``{"0": "bag", "1": "boot"}``;
- plain text with one class name per line: line *i* (from 0) names label ``i``.

Labels the map does not mention keep their own name, so one map serves both sets.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

from ptdiag.errors import UsageError


def read_label_map(path: str | Path) -> dict[str, str]:
    """Read a label map file (CSV, JSON or one name per line); UsageError naming the file and line when bad."""
    path = Path(path).expanduser()
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"--label-map {path}: cannot read ({getattr(exc, 'strerror', None) or exc})") from None
    suffix = path.suffix.lower()
    if suffix == ".json":
        mapping = _from_json(text, path)
    elif suffix == ".csv":
        mapping = _from_csv(text, path)
    else:
        mapping = {str(i): name.strip() for i, name in enumerate(text.splitlines()) if name.strip()}
    if not mapping:
        raise UsageError(f"--label-map {path}: no labels in the file")
    empty = [raw for raw, name in mapping.items() if not name]
    if empty:
        raise UsageError(f"--label-map {path}: label {empty[0]!r} maps to an empty name")
    return mapping


def _from_json(text: str, path: Path) -> dict[str, str]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"--label-map {path}: not valid JSON (line {exc.lineno}: {exc.msg})") from None
    if isinstance(data, list):
        return {str(i): str(name).strip() for i, name in enumerate(data)}
    if not isinstance(data, dict):
        raise UsageError(f"--label-map {path}: expected an object {{\"0\": \"name\", ...}} or a list of names")
    return {str(k).strip(): str(v).strip() for k, v in data.items()}


def _from_csv(text: str, path: Path) -> dict[str, str]:
    rows = [row for row in csv.reader(text.splitlines()) if any(cell.strip() for cell in row)]
    if rows and [c.strip().lower() for c in rows[0][:2]] == ["label", "name"]:
        rows = rows[1:]
    mapping: dict[str, str] = {}
    for number, row in enumerate(rows, start=1):
        if len(row) != 2:
            raise UsageError(f"--label-map {path}: row {number} has {len(row)} cells; expected 'label,name'")
        raw, name = row[0].strip(), row[1].strip()
        if raw in mapping and mapping[raw] != name:
            raise UsageError(f"--label-map {path}: label {raw!r} is mapped twice ({mapping[raw]!r}, {name!r})")
        mapping[raw] = name
    return mapping


def rename(class_names: list[str], mapping: dict[str, str] | None) -> list[str]:
    """Each raw label's class name under ``mapping`` (unmapped labels keep their own)."""
    if not mapping:
        return class_names
    return [mapping.get(name, name) for name in class_names]
