"""Tiny generated image datasets for tests (importable by every test module: ``from _imagegen import ...``).

Images are small, distinct per (class, index, seed) so content hashes never collide by accident, and cheap to
write (a few ms for dozens).
"""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image


def image_array(seed: int, size: tuple[int, int] = (24, 20), tint: tuple[int, int, int] | None = None) -> np.ndarray:
    """A (height, width, 3) uint8 image: a smooth gradient plus seeded noise, optionally tinted."""
    width, height = size
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    base = np.stack([xx * 255 / max(width - 1, 1), yy * 255 / max(height - 1, 1), np.full_like(xx, 128)], -1)
    img = base * 0.6 + rng.integers(0, 100, size=(height, width, 3))
    if tint is not None:
        img = img * 0.75 + np.asarray(tint) * 0.25
    return np.clip(img, 0, 255).astype(np.uint8)


def write_image(path: Path, array: np.ndarray, fmt: str | None = None, **save_kwargs) -> Path:
    """Save ``array`` to ``path`` (creating folders); the format follows the suffix unless ``fmt`` is given."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, format=fmt, **save_kwargs)
    return path


def make_image_folder(
    root: Path,
    counts: dict[str, int],
    *,
    seed: int = 0,
    ext: str = ".png",
    size: tuple[int, int] = (24, 20),
    tint: tuple[int, int, int] | None = None,
    nested: bool = False,
) -> list[Path]:
    """Write an ImageFolder tree ``root/<class>/img_<i><ext>`` with ``counts[class]`` images per class.

    Every image is distinct (seeded by ``seed``, class and index). With ``nested`` every other image goes into a
    ``<class>/sub/`` folder. Returns the written paths.
    """
    paths = []
    for c, (name, n) in enumerate(sorted(counts.items())):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            sub = Path("sub") if nested and i % 2 else Path()
            path = root / name / sub / f"img_{i:04d}{ext}"
            paths.append(write_image(path, image_array(seed * 1_000_003 + c * 10_007 + i, size, tint)))
    return paths


def make_pair(tmp_path: Path, classes: Sequence[str] = ("cat", "dog"), n_train: int = 12, n_shift: int = 6):
    """A (train, shift) pair of ImageFolder trees with the same classes; the shift set is tinted."""
    train = tmp_path / "train"
    shift = tmp_path / "shift"
    make_image_folder(train, {c: n_train for c in classes}, seed=1)
    make_image_folder(shift, {c: n_shift for c in classes}, seed=2, tint=(255, 0, 0))
    return train, shift


def write_manifest(path: Path, rows: Sequence[dict], fmt: str = "csv") -> Path:
    """Write a CSV or Parquet manifest from dict rows (keys become columns)."""
    import pandas as pd

    frame = pd.DataFrame(list(rows))
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "parquet":
        frame.to_parquet(path, index=False)
    else:
        frame.to_csv(path, index=False)
    return path


def png_bomb_header(path: Path, width: int = 40_000, height: int = 40_000) -> Path:
    """A tiny PNG whose header claims ``width x height`` pixels: PIL refuses it as a decompression bomb on open."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit greyscale
    body = (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(body)
    return path


def truncated_jpeg(path: Path, seed: int = 0) -> Path:
    """A JPEG cut in half: PIL opens it but fails while decoding."""
    buffer = io.BytesIO()
    Image.fromarray(image_array(seed, (64, 48))).save(buffer, "JPEG", quality=90)
    data = buffer.getvalue()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data[: len(data) // 2])
    return path


def tree_snapshot(root: Path) -> dict[str, tuple[int, int, bytes]]:
    """(size, mtime_ns, bytes) of every file under ``root`` (symlinks not followed), to prove nothing changed."""
    snapshot = {}
    for path in sorted(root.rglob("*")):
        if path.is_symlink():
            snapshot[str(path)] = (0, 0, str(path.readlink()).encode())
        elif path.is_file():
            stat = path.stat()
            snapshot[str(path)] = (stat.st_size, stat.st_mtime_ns, path.read_bytes())
        else:
            snapshot[str(path)] = (-1, path.stat().st_mtime_ns, b"")
    return snapshot


# `ptdiag analyze` flags for a whole analysis of a tiny generated pair in seconds (tests/cli/test_analyze.py).
TINY = ["--image-size", "32", "--baseline-fractions", "0.5,1.0", "--baseline-epochs", "4",
        "--baseline-eval-epochs", "2,3,4", "--ft-epochs", "1", "--ft-lrs", "0.001", "--folds", "3",
        "--bootstrap", "50", "--strategies", "lp,lpft", "--min-per-class", "2", "--seed", "0"]
