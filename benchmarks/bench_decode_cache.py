"""Epoch read throughput: ptdiag's decode cache vs a plain torchvision ImageFolder + PIL DataLoader.

Generates a few thousand JPEG/PNG photos-sized images in a temp folder, then measures in one run:

* the one-time cost of hashing, decoding, resizing and storing them in the decode cache;
* one epoch through a torchvision ``ImageFolder`` (``Resize + CenterCrop + ToTensor``) ``DataLoader`` with one
  worker per core, after a warm-up epoch (so worker start-up and the OS file cache favour the baseline);
* one epoch from the cache: ``DecodeCache.load`` (a pure read) plus the same shuffled float batches;

and prints the ratio (target >= 10x).
Usage: ``python benchmarks/bench_decode_cache.py [--n 3000] [--size 64] [--data DIR]``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader
from torchvision import datasets, transforms

from ptdiag.data.decode_cache import DecodeCache, default_workers, scan_files


def make_images(root: Path, n: int, n_classes: int = 10, seed: int = 0) -> None:
    """Photo-like images (smooth colour fields plus noise), 85 % JPEG and 15 % PNG, 280-400 px wide."""
    rng = np.random.default_rng(seed)
    for i in range(n):
        w, h = int(rng.integers(280, 400)), int(rng.integers(210, 300))
        yy, xx = np.mgrid[0:h, 0:w] / max(w, h)
        phase = rng.random(3) * 6
        field = np.stack([np.sin(xx * 6 + phase[c]) * np.cos(yy * 4 + phase[c]) for c in range(3)], -1)
        img = ((field * 0.5 + 0.5) * 200 + rng.integers(0, 55, (h, w, 3))).astype(np.uint8)
        folder = root / f"class_{i % n_classes:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        if i % 7 == 0:
            Image.fromarray(img).save(folder / f"{i:05d}.png", optimize=False, compress_level=1)
        else:
            Image.fromarray(img).save(folder / f"{i:05d}.jpg", quality=90)


def baseline_epoch(root: Path, size: int, batch: int, workers: int) -> tuple[float, torch.Tensor]:
    tf = transforms.Compose([transforms.Resize(size), transforms.CenterCrop(size), transforms.ToTensor()])
    loader = DataLoader(
        datasets.ImageFolder(str(root), transform=tf),
        batch_size=batch,
        shuffle=True,
        num_workers=workers,
        persistent_workers=workers > 0,
    )
    for _ in loader:  # warm-up epoch: starts the workers and fills the OS file cache
        pass
    start = time.perf_counter()
    seen = 0
    for images, _labels in loader:
        seen += len(images)
    elapsed = time.perf_counter() - start
    first = datasets.ImageFolder(str(root), transform=tf)[0][0]
    return elapsed, first


def cache_epoch(cache: DecodeCache, paths, hashes, size: int, batch: int) -> tuple[float, float, torch.Tensor]:
    start = time.perf_counter()
    stored = cache.load(paths, hashes, size)  # a pure read: everything is cached already
    loaded = time.perf_counter()
    order = np.random.default_rng(0).permutation(len(stored))
    seen = 0
    for i in range(0, len(order), batch):
        images = torch.from_numpy(stored[np.sort(order[i : i + batch])]).permute(0, 3, 1, 2).float().div_(255)
        seen += len(images)
    done = time.perf_counter()
    first = torch.from_numpy(stored[0]).permute(2, 0, 1).float() / 255
    return loaded - start, done - loaded, first


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=3000, help="images to generate")
    parser.add_argument("--size", type=int, default=64, help="square training resolution")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--workers", type=int, default=default_workers())
    parser.add_argument("--data", type=Path, help="keep the generated images here and reuse them on later runs")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="ptdiag-bench-") as tmp:
        data, cache_dir = args.data or Path(tmp) / "data", Path(tmp) / "cache"
        t0 = time.perf_counter()
        made = "reused"
        if not data.is_dir():
            make_images(data, args.n)
            made = f"generated in {time.perf_counter() - t0:.0f}s"
        paths = sorted(p for p in data.rglob("*") if p.is_file())
        print(
            f"{len(paths)} images ({made}); size {args.size}px, "
            f"batch {args.batch}, {args.workers} worker(s), torch threads {torch.get_num_threads()}"
        )

        cache = DecodeCache(cache_dir, workers=args.workers)
        t0 = time.perf_counter()
        results = scan_files(paths, size=args.size, cache_root=cache_dir, fill=True, workers=args.workers)
        one_time = time.perf_counter() - t0
        hashes = [r.hash for r in results]
        assert all(r.ok for r in results)

        base_s, base_first = baseline_epoch(data, args.size, args.batch, args.workers)
        load_s, iterate_s, cache_first = cache_epoch(cache, paths, hashes, args.size, args.batch)
        cache_s = load_s + iterate_s
        n = len(paths)
        diff = (base_first - cache_first).abs().mean().item() * 255

        print(f"one-time decode into the cache : {one_time:7.2f} s  ({n / one_time:8.0f} img/s, hash+decode+store)")
        print(f"torchvision ImageFolder epoch  : {base_s:7.2f} s  ({n / base_s:8.0f} img/s)")
        print(
            f"decode-cache epoch             : {cache_s:7.3f} s  ({n / cache_s:8.0f} img/s; "
            f"load {load_s:.3f} s + batches {iterate_s:.3f} s)"
        )
        print(f"later epochs from memory       : {iterate_s:7.3f} s  ({n / iterate_s:8.0f} img/s)")
        print(f"speed-up per epoch             : {base_s / cache_s:7.1f}x  (target >= 10x)")
        print(f"break-even after               : {one_time / max(base_s - cache_s, 1e-9):7.2f} epoch(s)")
        print(f"pixel check, first image       : mean |torchvision - cache| = {diff:.2f} / 255")


if __name__ == "__main__":
    main()
