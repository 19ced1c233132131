"""Time the `standard` budget on a GPU on a real dataset size (prepared for a lent accelerator; < 10 minutes).

Builds the tint-bias scenario from Fashion-MNIST at its real size (default 20,000 reference + 10,000 shifted
images; the whole train split is 60,000), runs `ptdiag analyze --budget standard` on the GPU, and prints the wall
time, the per-stage times, the GPU's peak memory and the dry-run estimate beside it. Without CUDA it says so and
exits 0 (nothing to measure).

    python benchmarks/gpu/bench_gpu_standard.py [--n-reference 20000] [--n-shift 10000] [--out DIR]

Fashion-MNIST comes from Debian's dataset-fashion-mnist (/usr/share/datasets/fashion-mnist) or from
`--cache-dir DIR` holding FashionMNIST/raw/ (ptdiag's dataset cache; copy it next to the checkout for an offline
device).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from ptdiag.scenarios import get_scenario


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n-reference", type=int, default=20000)
    parser.add_argument("--n-shift", type=int, default=10000)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--cache-dir", type=Path, default=None, help="ptdiag cache with FashionMNIST/raw/")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("no CUDA device here: nothing to time (run this on a GPU machine)")
        return
    if args.cache_dir is not None:
        os.environ["PTDIAG_CACHE_DIR"] = str(args.cache_dir.resolve())
    out = args.out or Path(tempfile.mkdtemp(prefix="ptdiag-gpu-standard-"))
    data = get_scenario("tint-bias").generate(out / "data", n_reference=args.n_reference, n_shift=args.n_shift, p=0.5)
    base = [sys.executable, "-m", "ptdiag", "analyze", "--train", str(data.reference_dir), "--shift",
            str(data.shift_dir), "--budget", "standard", "--device", "cuda"]
    dry = subprocess.run([*base, "--dry-run"], capture_output=True, text=True, env=dict(os.environ, COLUMNS="200"))
    print(dry.stdout[-2500:])
    start = time.perf_counter()
    subprocess.run([*base, "--out", str(out / "run"), "-q"], check=False)
    wall = time.perf_counter() - start
    results = json.loads((out / "run" / "results.json").read_text())
    print(f"GPU: {torch.cuda.get_device_name(0)}; standard budget on {args.n_reference} + {args.n_shift} images: "
          f"{wall:.0f} s wall; verdict {results['verdict']['kind']} ({results['verdict']['confidence']})")
    print("stages: " + "  ".join(f"{k} {v:.0f}s" for k, v in results["timings"].items()))
    if args.out is None:
        shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    main()
