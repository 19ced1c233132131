"""Hugging Face datasets and WebDataset shards holding the same images as ``make_image_folder`` (same seeds)."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

from _imagegen import image_array
from PIL import Image


def encoded_images(counts: dict[str, int], *, seed: int = 0, size=(24, 20)) -> list[tuple[str, int, bytes]]:
    """(class, index, PNG bytes) in ImageFolder order; byte-identical to ``make_image_folder``'s files."""
    out = []
    for c, (name, n) in enumerate(sorted(counts.items())):
        for i in range(n):
            buffer = io.BytesIO()
            Image.fromarray(image_array(seed * 1_000_003 + c * 10_007 + i, size)).save(buffer, format="PNG")
            out.append((name, i, buffer.getvalue()))
    return out


def hf_dataset(counts: dict[str, int], *, seed: int = 0, corrupt_rows=(), unlabelled_rows=()):
    """A ``datasets.Dataset`` with ``Image`` and ``ClassLabel`` features."""
    import datasets

    items = encoded_images(counts, seed=seed)
    names = sorted(counts)
    images = [{"bytes": b"not an image" if r in corrupt_rows else data, "path": None} for r, (_, _, data) in
              enumerate(items)]
    labels = [-1 if r in unlabelled_rows else names.index(c) for r, (c, _, _) in enumerate(items)]
    features = datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(names=names)})
    return datasets.Dataset.from_dict({"image": images, "label": labels}, features=features)


def make_saved_dataset(root: Path, counts: dict[str, int], **kwargs) -> Path:
    hf_dataset(counts, **kwargs).save_to_disk(str(root))
    return root


def make_parquet_dataset(path: Path, counts: dict[str, int], **kwargs) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    hf_dataset(counts, **kwargs).to_parquet(str(path))
    return path


def make_shards(root: Path, counts: dict[str, int], *, seed: int = 0, n_shards: int = 2, label: str = "cls",
                drop_label=(), drop_image=(), corrupt=()) -> list[Path]:
    """Write ``root/shard-00000{k}.tar`` with samples ``<class>_<i>.{png,cls}`` round-robin over the shards.

    ``label`` is "cls" (class name as text), "cls-int" (class index) or "json" (``{"label": name}``); keys in
    ``drop_label`` / ``drop_image`` lack that member and those in ``corrupt`` hold bytes that are no image.
    """
    root.mkdir(parents=True, exist_ok=True)
    names = sorted(counts)
    paths = [root / f"shard-{k:06d}.tar" for k in range(n_shards)]
    tars = [tarfile.open(p, "w") for p in paths]
    for n, (name, i, data) in enumerate(encoded_images(counts, seed=seed)):
        key = f"{name}_{i:04d}"
        members = {}
        if key not in drop_image:
            members["png"] = b"\x89PNG broken" if key in corrupt else data
        if key not in drop_label:
            if label == "json":
                members["json"] = json.dumps({"label": name}).encode()
            else:
                members["cls"] = str(names.index(name) if label == "cls-int" else name).encode()
        for ext, payload in members.items():
            info = tarfile.TarInfo(f"{key}.{ext}")
            info.size = len(payload)
            tars[n % n_shards].addfile(info, io.BytesIO(payload))
    for tar in tars:
        tar.close()
    return paths


def _folder_items(folder: Path) -> list[tuple[str, str, bytes]]:
    """(class, file stem, bytes) of an ImageFolder tree, in ImageFolder order."""
    return [(p.parent.name, p.stem, p.read_bytes()) for p in sorted(folder.glob("*/*")) if p.is_file()]


def folder_to_saved_dataset(folder: Path, out: Path) -> Path:
    """The same images (same bytes) as a ``save_to_disk`` dataset with Image and ClassLabel features."""
    import datasets

    items = _folder_items(folder)
    names = sorted({c for c, _, _ in items})
    features = datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(names=names)})
    data = {"image": [{"bytes": b, "path": None} for _, _, b in items], "label": [names.index(c) for c, _, _ in items]}
    datasets.Dataset.from_dict(data, features=features).save_to_disk(str(out))
    return out


def folder_to_shards(folder: Path, out: Path, n_shards: int = 2) -> Path:
    """The same images as WebDataset shards ``<class>_<stem>.{png,cls}`` (class names as text)."""
    out.mkdir(parents=True, exist_ok=True)
    tars = [tarfile.open(out / f"part-{k:04d}.tar", "w") for k in range(n_shards)]
    for n, (name, stem, data) in enumerate(_folder_items(folder)):
        for ext, payload in (("png", data), ("cls", name.encode())):
            info = tarfile.TarInfo(f"{name}_{stem}.{ext}")
            info.size = len(payload)
            tars[n % n_shards].addfile(info, io.BytesIO(payload))
    for tar in tars:
        tar.close()
    return out
