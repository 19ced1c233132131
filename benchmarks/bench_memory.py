"""Peak resident memory of decoding and feature extraction: bounded by the batch, not by the dataset.

Writes Fashion-MNIST (Debian's dataset-fashion-mnist; 60,000 train images as the reference, 10,000 test images as
the shifted set) as PNG ImageFolders, plus a 10,000-image subset (8,000 + 2,000), then for each, in fresh
processes with their own decode cache:

* ``decode``: ``ptdiag inspect --warm-cache --image-size SIZE`` (hash, decode, resize, store; worker processes);
* ``features``: what the features job does: ingest, open the cache on disk (``DecodeCache.open``), pooled
  EfficientNet-Lite0 features of every image (``stages.features_in_blocks``, float16).

Prints the peak RSS of each process (``VmHWM``; for the decode phase also its largest worker's ``ru_maxrss``) and
the ratios. Targets at 128 px: features on 70,000 images <= 3 GiB and <= 1.2x the 10,000-image figure.
Usage: ``python benchmarks/bench_memory.py [--size 128] [--data DIR] [--only subset|full] [--skip-features]``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

GIB = 1024**3
SETS = {"subset": (8000, 2000), "full": (60000, 10000)}


def write_sets(data: Path) -> None:
    from ptdiag.scenarios.sources import load_fashion_mnist
    from ptdiag.scenarios.writing import class_folder_names, write_pngs

    train, test = load_fashion_mnist("train", download=False), load_fashion_mnist("test", download=False)
    folders = class_folder_names(list(train[2]))
    for name, (n_ref, n_shift) in SETS.items():
        for side, (images, labels, _), n in (("reference", train, n_ref), ("shift", test, n_shift)):
            target = data / name / side
            if not (target / ".complete").exists():
                write_pngs(target, images[:n], labels[:n], folders)
                (target / ".complete").touch()


def peak() -> dict[str, float]:
    """This process' VmHWM (ru_maxrss would carry over the parent's peak at fork, across exec) and its largest
    child's ru_maxrss (the decoding workers, forked from this small process)."""
    status = Path("/proc/self/status").read_text().split("VmHWM:")[1].split()
    own = int(status[0]) * 1024
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    return {"main_gib": own / GIB, "largest_worker_gib": kids / GIB}


def child_decode(data: Path, cache: Path, size: int) -> dict:
    from typer.testing import CliRunner

    from ptdiag.cli import app

    result = CliRunner().invoke(app, ["inspect", "--train", str(data / "reference"), "--shift", str(data / "shift"),
                                      "--warm-cache", "--image-size", str(size), "--cache-dir", str(cache)])
    assert result.exit_code in (0, 3), result.output  # 3: findings (e.g. duplicates), still decoded
    return {}


def child_features(data: Path, cache: Path, size: int) -> dict:
    import torch

    from ptdiag.data.decode_cache import DecodeCache
    from ptdiag.data.ingest import load_pair
    from ptdiag.engine.jobkinds.features import features_in_blocks
    from ptdiag.engine.models import BackboneSpec, create_pretrained, normalization
    from ptdiag.engine.train import Normalizer

    store = DecodeCache(cache)
    pair = load_pair(data / "reference", data / "shift", image_size=size, cache=store, min_per_class=1)
    model = create_pretrained(BackboneSpec("tf_efficientnet_lite0", None), len(pair.classes))
    normalize = Normalizer(*normalization(model), torch.device("cpu"))
    dims = []
    for side in (pair.reference, pair.shift):
        images = store.open(side.paths, side.hashes, size)
        feats = features_in_blocks(model, images, normalize)
        dims.append(feats.shape)
        assert np.isfinite(feats[:: max(1, len(feats) // 100)].astype(np.float32)).all()
    return {"images": sum(d[0] for d in dims), "dim": int(dims[0][1])}


def run_child(phase: str, data: Path, cache: Path, size: int) -> dict:
    start = time.perf_counter()
    cmd = [sys.executable, __file__, "--child", phase, "--data", str(data), "--cache", str(cache), "--size", str(size)]
    out = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, HF_HUB_OFFLINE="1"))
    if out.returncode != 0:
        raise SystemExit(f"{phase} failed:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}")
    return dict(json.loads(out.stdout.strip().splitlines()[-1]), seconds=time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--data", type=Path, default=Path("/tmp/ptdiag-bench-memory"))
    parser.add_argument("--only", choices=list(SETS))
    parser.add_argument("--skip-features", action="store_true")
    parser.add_argument("--child", choices=["decode", "features"])
    parser.add_argument("--cache", type=Path)
    args = parser.parse_args()
    if args.child:
        info = (child_decode if args.child == "decode" else child_features)(args.data, args.cache, args.size)
        print(json.dumps(dict(info, **peak())))
        return
    write_sets(args.data)
    rows = {}
    for name in [args.only] if args.only else list(SETS):
        data, cache = args.data / name, args.data / f"cache-{name}-{args.size}"
        n = sum(SETS[name])
        decoded_gib = n * args.size * args.size * 3 / GIB
        rows[name] = {}
        for phase in ["decode"] + ([] if args.skip_features else ["features"]):
            row = rows[name][phase] = run_child(phase, data, cache, args.size)
            print(f"{name:6s} {n:6d} images ({decoded_gib:.2f} GiB decoded at {args.size} px) {phase:8s} "
                  f"peak RSS main {row['main_gib']:.2f} GiB, largest worker {row['largest_worker_gib']:.2f} GiB, "
                  f"{row['seconds']:.0f} s", flush=True)
    if "subset" in rows and "full" in rows:
        for phase in rows["full"]:
            ratio = rows["full"][phase]["main_gib"] / rows["subset"][phase]["main_gib"]
            print(f"{phase}: full / subset peak RSS = {ratio:.2f}x (target <= 1.2x); "
                  f"full = {rows['full'][phase]['main_gib']:.2f} GiB (target <= 3 GiB)")
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
