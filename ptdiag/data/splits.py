"""The reference split: stratified, seeded train / val / test indices into the reference ImageSet.

The shifted set is never split: it is only evaluated. The split is saved as JSON with the run (with the
reference set's fingerprint) so that a rerun trains and selects models on exactly the same images.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ptdiag._io import write_json_atomic
from ptdiag.errors import DataError, UsageError

SPLIT_VERSION = 1
PARTS = ("train", "val", "test")


def reference_split(
    labels: np.ndarray,
    *,
    val: float | int = 0.15,
    test: float | int = 0.2,
    seed: int = 0,
    manifest_splits: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Split indices ``0..len(labels)-1`` into train / val / test, stratified by label.

    Args:
        labels: class index per reference image.
        val: validation size, a fraction in [0, 1) of all images or a count.
        test: test size, same convention.
        seed: seed of the shuffle; the same (labels, sizes, seed) always gives the same split.
        manifest_splits: per-image "train"/"val"/"test" from a manifest; those assignments are kept, and a part
            the manifest leaves empty is carved out of its "train" rows with the sizes above.

    Returns:
        ``{"train": idx, "val": idx, "test": idx}``, sorted int64 index arrays that partition the images.

    Raises:
        DataError: a class is too small for a stratified split of these sizes.
    """
    labels = np.asarray(labels)
    n = len(labels)
    n_val, n_test = _count(val, n, "val"), _count(test, n, "test")
    if n_val + n_test >= n:
        raise DataError(f"val ({n_val}) + test ({n_test}) leave no training images out of {n}")
    if manifest_splits is None:
        pool = np.arange(n)
        parts = {}
    else:
        manifest_splits = np.asarray(manifest_splits, dtype=object)
        parts = {p: np.flatnonzero(manifest_splits == p) for p in PARTS}
        pool = parts.pop("train")
        parts = {p: idx for p, idx in parts.items() if len(idx)}  # empty parts are carved out of train below
    for part, size in (("test", n_test), ("val", n_val)):
        if part in parts:
            continue
        pool, parts[part] = _carve(pool, labels, size, seed, part)
    parts["train"] = pool
    return {p: np.sort(parts[p]).astype(np.int64) for p in PARTS}


def _count(size: float | int, n: int, name: str) -> int:
    if isinstance(size, bool) or size < 0:
        raise UsageError(f"{name} size must be a fraction in [0, 1) or a count >= 0; got {size!r}")
    if isinstance(size, float) or isinstance(size, np.floating):
        if size >= 1:
            raise UsageError(f"{name} size {size} must be < 1 as a fraction (pass an int for a count)")
        return int(round(size * n))
    return int(size)


def _carve(pool: np.ndarray, labels: np.ndarray, size: int, seed: int, part: str):
    """Move ``size`` indices out of ``pool``, stratified by label; returns (rest, carved)."""
    if size == 0:
        return pool, np.zeros(0, dtype=np.int64)
    from sklearn.model_selection import train_test_split  # 1-2 s to import; a rerun reads split.json

    try:
        rest, carved = train_test_split(pool, test_size=size, stratify=labels[pool], random_state=seed)
    except ValueError as exc:
        smallest = int(np.unique(labels[pool], return_counts=True)[1].min()) if len(pool) else 0
        raise DataError(
            f"cannot split off a stratified {part} set of {size} images from {len(pool)}: {exc}",
            hint=f"the smallest class has {smallest} image(s); add images or lower the {part} size",
        ) from exc
    return rest, carved


def save_split(
    path: str | Path, split: dict[str, np.ndarray], *, fingerprint: str = "", seed: int | None = None
) -> Path:
    """Write the split as JSON (atomic), tagged with the reference fingerprint it belongs to."""
    payload = {"version": SPLIT_VERSION, "fingerprint": fingerprint, "seed": seed}
    payload.update({p: [int(i) for i in split[p]] for p in PARTS})
    return write_json_atomic(path, payload)


def load_split(path: str | Path, *, fingerprint: str | None = None) -> dict[str, np.ndarray]:
    """Read a split written by :func:`save_split`; with ``fingerprint``, refuse one made for other data."""
    path = Path(path)
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
        split = {p: np.asarray(payload[p], dtype=np.int64) for p in PARTS}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DataError(f"cannot read the reference split {path}: {exc}") from exc
    saved = payload.get("fingerprint")
    if fingerprint is not None and saved and saved != fingerprint:
        raise DataError(
            f"the reference split {path} was made for other data (fingerprint {saved}, now {fingerprint})",
            hint="the train set changed since that run; use a new run folder",
        )
    return split


def load_or_create_split(
    path: str | Path,
    labels: np.ndarray,
    *,
    fingerprint: str,
    val: float | int = 0.15,
    test: float | int = 0.2,
    seed: int = 0,
    manifest_splits: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Reuse the split saved at ``path`` (same data only), or make one with :func:`reference_split` and save it."""
    path = Path(path)
    if path.exists():
        split = load_split(path, fingerprint=fingerprint)
        if sum(len(v) for v in split.values()) == len(labels):
            return split
        raise DataError(f"the reference split {path} covers {sum(map(len, split.values()))} images, not {len(labels)}")
    split = reference_split(labels, val=val, test=test, seed=seed, manifest_splits=manifest_splits)
    save_split(path, split, fingerprint=fingerprint, seed=seed)
    return split
