"""Benchmark BatchNorm folding in the frozen forward passes (`ptdiag.engine.folding`) against the unfolded model.

Times, interleaved so drift hits both sides alike, the two forward passes folding serves on quick's sizes:
EfficientNet-Lite0's frozen lower blocks (the `activations` job: 64 px, blocks 0-5) and the baseline CNN's
evaluation (`predict`, 32 px, width 16). Prints the median of each, the ratio, and the largest difference of the
outputs (float rounding), beside this machine's end-to-end lite0 training step so figures from different CPUs
compare.

    .venv/bin/python benchmarks/bench_folding.py [--repeats 7]
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import numpy as np
import torch
from _harness import interleaved, train_step_seconds

from ptdiag.engine import folding
from ptdiag.engine.models import BackboneSpec, create_baseline, create_pretrained, normalization
from ptdiag.engine.partial import lower_activations, split_at
from ptdiag.engine.train import ArraySet, Normalizer, TrainConfig, predict, train_model


def compare(name: str, run: Callable[[], np.ndarray], repeats: int) -> None:
    """Median seconds of `run` with and without folding, alternated; their ratio and largest output difference."""
    folded, unfolded, out_folded, out_unfolded = interleaved(run, folding.unfolded, repeats)
    diff = float(np.abs(out_folded.astype(np.float64) - out_unfolded).max())
    print(f"{name:<44} unfolded {unfolded:6.3f} s   folded {folded:6.3f} s   {unfolded / folded:4.2f}x   "
          f"max |diff| {diff:.1e}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    print(f"machine: end-to-end lite0 train step {train_step_seconds():.3f} s (32 images, 64 px), "
          f"{torch.get_num_threads()} torch threads")

    lite0 = create_pretrained(BackboneSpec("tf_efficientnet_lite0"), 10)
    split = split_at(lite0, 6)
    normalize = Normalizer(*normalization(lite0), torch.device("cpu"))
    images = rng.integers(0, 255, (1024, 64, 64, 3), dtype=np.uint8)
    compare("lite0 blocks 0-5, 1,024 images at 64 px", lambda: lower_activations(split, images, normalize,
                                                                                 dtype=torch.float32), args.repeats)

    torch.manual_seed(0)
    cnn = create_baseline(10, arch="ptdiag_smallcnn", width=16)
    normalize = Normalizer(*normalization(cnn), torch.device("cpu"))
    small = rng.integers(0, 255, (2800, 32, 32, 3), dtype=np.uint8)
    train_model(cnn, ArraySet(small[:640], np.arange(640) % 10), TrainConfig(epochs=1, lr=3e-3), normalize)
    compare("baseline CNN evaluation, 2,800 images at 32 px", lambda: predict(cnn, small, normalize), args.repeats)


if __name__ == "__main__":
    main()
