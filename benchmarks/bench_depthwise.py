"""Benchmark dense per-channel depthwise convolutions on tiny maps (`ptdiag.engine.depthwise`) against oneDNN's kernel.

Times, interleaved so drift hits both sides alike: forward + backward of the depthwise 3×3 convolution alone on
EfficientNet-Lite0's last-block shape ([32, 1152, 2, 2], channels-last) and the quick budget's top-block training
(block 6 + neck + head on cached activations, 32-image steps). Prints the median of each, the ratio and the largest
difference of the outputs, beside this machine's end-to-end lite0 training step so figures from different CPUs
compare. `--isa avx2` restricts oneDNN and ATen to their AVX2 kernels (as on CPUs without AVX-512).

    .venv/bin/python benchmarks/bench_depthwise.py [--repeats 7] [--isa avx2]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections.abc import Callable

from _harness import ISA_ENV, interleaved


def compare(name: str, run: Callable[[], object], repeats: int) -> None:
    """Median seconds of `run` with the dense form and with the kernel, alternated, and their ratio."""
    from ptdiag.engine import depthwise

    dense, kernel, _, _ = interleaved(run, depthwise.kernel_only, repeats)
    print(f"{name:<52} kernel {kernel * 1e3:8.1f} ms   dense {dense * 1e3:8.1f} ms   {kernel / dense:4.2f}x")


def measure(repeats: int) -> None:
    import numpy as np
    import torch
    from _harness import train_step_seconds
    from torch import nn

    from ptdiag.engine.depthwise import tiny_depthwise
    from ptdiag.engine.models import BackboneSpec, create_pretrained
    from ptdiag.engine.partial import split_at, train_top
    from ptdiag.engine.train import TrainConfig

    print(f"machine: end-to-end lite0 train step {train_step_seconds():.3f} s (32 images, 64 px), "
          f"{torch.get_num_threads()} torch threads, ATen {torch.backends.cpu.get_cpu_capability()}, "
          f"ONEDNN_MAX_CPU_ISA={os.environ.get('ONEDNN_MAX_CPU_ISA', 'unset')}")
    conv = nn.Conv2d(1152, 1152, 3, padding=1, groups=1152, bias=False)
    x = torch.randn(32, 1152, 2, 2).contiguous(memory_format=torch.channels_last).requires_grad_()
    grad = torch.randn(32, 1152, 2, 2).contiguous(memory_format=torch.channels_last)

    def conv_steps(n: int = 50) -> None:
        with tiny_depthwise(conv):
            for _ in range(n):
                conv(x).backward(grad)

    compare("depthwise 3x3 on [32, 1152, 2, 2], fwd + bwd, 50 times", conv_steps, repeats)
    with torch.no_grad():
        dense_out = _with_dense(conv, x)
        print(f"{'':<52} max |forward diff| {float((dense_out - conv(x)).abs().max()):.1e}")

    model = create_pretrained(BackboneSpec("tf_efficientnet_lite0"), 10)
    split = split_at(model, 6)
    rng = np.random.default_rng(0)
    views = [rng.standard_normal((640, 192, 2, 2)).astype(np.float16)]
    labels = np.arange(640) % 10
    cfg = TrainConfig(epochs=1, lr=3e-4, batch_size=32, freeze_bn=True, label_smoothing=0.0, weight_decay=0.1)
    compare("top-block training (block 6 + head), 20 steps of 32", lambda: train_top(
        split, views, labels, cfg, torch.device("cpu")), repeats)


def _with_dense(conv, x):
    from ptdiag.engine.depthwise import tiny_depthwise

    with tiny_depthwise(conv):
        return conv(x)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--isa", choices=sorted(ISA_ENV), help="restrict oneDNN/ATen kernels to this instruction set")
    args = parser.parse_args()
    if args.isa and os.environ.get("ONEDNN_MAX_CPU_ISA") is None:  # the settings act at import: rerun in a child
        env = dict(os.environ, **ISA_ENV[args.isa])
        sys.exit(subprocess.run([sys.executable, *sys.argv], env=env, check=False).returncode)
    measure(args.repeats)


if __name__ == "__main__":
    main()
