"""Writing a scenario to disk: PNGs per class, truth.csv, and an atomic rename so a folder is complete or absent."""

from __future__ import annotations

import csv
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ptdiag.errors import UsageError
from ptdiag.scenarios.building import FORMAT_VERSION, REFERENCE_SPLIT, SHIFT_SPLIT, Side

# Writing

WRITE_THREADS = 4  # PNG writers: creating small files waits on the file system more than on the CPU


def class_folder_names(class_names: list[str]) -> list[str]:
    """Folder-safe class names ("T-shirt/top" → "T-shirt_top"), unique and in label order."""
    folders = [name.replace("/", "_").replace("\\", "_").strip() or f"class_{k}" for k, name in enumerate(class_names)]
    if len(set(folders)) != len(folders):
        folders = [f"{k:02d}_{name}" for k, name in enumerate(folders)]
    return folders


def write_pngs(side_dir: Path, images: np.ndarray, labels: np.ndarray, folders: list[str]) -> list[Path]:
    for folder in folders:
        (side_dir / folder).mkdir(parents=True, exist_ok=True)
    paths = [side_dir / folders[label] / f"{i:05d}.png" for i, label in enumerate(labels)]

    def save(i: int) -> None:
        # compress_level=1: at 28 px the files are as small as at level 6 and faster to write
        Image.fromarray(np.ascontiguousarray(images[i])).save(paths[i], compress_level=1)

    # Creating thousands of small files waits on the file system more than on the CPU, so a few threads help
    # (1.5-2x on a busy 2-core machine); each file is independent, so the output does not depend on the order.
    with ThreadPoolExecutor(max_workers=WRITE_THREADS) as pool:
        list(pool.map(save, range(len(paths)), chunksize=256))
    return paths


def truth_rows(side_name: str, side: Side, paths: list[str], folders: list[str]) -> list[dict[str, Any]]:
    """truth.csv rows of one side: where each image came from and its known density ratio."""
    rows = []
    for i, path in enumerate(paths):
        label = int(side.sample.labels[i])
        row = {
            "path": path,
            "side": side_name,
            "class": folders[label],
            "label": label,
            "source_split": REFERENCE_SPLIT if side_name == "reference" else SHIFT_SPLIT,
            "source_index": int(side.sample.source_index[i]),
            "true_density_ratio": float(side.true_ratio[i]),
        }
        row.update({key: plain(values[i]) for key, values in side.columns.items()})
        rows.append(row)
    return rows


def write_truth_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    fieldnames = list(dict.fromkeys(key for row in rows for key in row))
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=fieldnames, restval="")
        writer.writeheader()
        writer.writerows(rows)


def write_atomically(out: Path, write: Callable[[Path], None]) -> None:
    """Run ``write(tmp)`` on a fresh folder beside ``out`` and swap it into place; ``out`` is complete or absent."""
    if out.exists() and not out.is_dir():
        raise UsageError(f"{out} is a file; give a folder for the scenario")
    if out.is_dir() and any(out.iterdir()) and not (out / "scenario.json").is_file():
        raise UsageError(f"refusing to overwrite {out}: it is not empty and holds no scenario.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent))
    old = None
    try:
        write(tmp)
        if out.exists():  # an empty folder or an older scenario with other parameters
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".old", dir=out.parent))
            os.replace(out, old / "scenario")
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


def existing_scenario(out: Path) -> dict[str, Any] | None:
    try:
        return json.loads((out / "scenario.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def matches_existing(meta: dict[str, Any], name: str, resolved: dict[str, Any], out: Path) -> bool:
    """Same format, scenario and parameters, and every PNG it lists still there (a cheap count per folder)."""
    if meta.get("format_version") != FORMAT_VERSION or meta.get("scenario") != name:
        return False
    if meta.get("params") != json.loads(json.dumps(resolved)):
        return False
    for side, counts in meta.get("counts", {}).items():
        for folder, n in counts.items():
            class_dir = out / side / folder
            if not class_dir.is_dir() or sum(1 for e in os.scandir(class_dir) if e.name.endswith(".png")) != n:
                return False
    return bool(meta.get("counts"))


def plain(value: Any) -> Any:
    """numpy → JSON/CSV-friendly Python values."""
    if isinstance(value, dict):
        return {key: plain(v) for key, v in value.items()}
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value
