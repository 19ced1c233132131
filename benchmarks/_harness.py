"""What every benchmark shares: timing alternated against its baseline, the machine's own fine-tuning step, and
the environment that restricts oneDNN/ATen to AVX2 kernels (to approximate an AVX2 CPU on an AVX-512 one)."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from collections.abc import Callable

ISA_ENV = {"avx2": {"ONEDNN_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "avx2"}}


def train_step_seconds() -> float:
    """One end-to-end fine-tuning step of EfficientNet-Lite0 (32 images, 64 px, frozen BatchNorm), best of 5."""
    code = (
        "import time, numpy as np, torch\n"
        "from ptdiag.engine.models import BackboneSpec, create_pretrained, normalization\n"
        "from ptdiag.engine.train import ArraySet, Normalizer, TrainConfig, train_model\n"
        "from ptdiag.engine.depthwise import kernel_only; kernel_only().__enter__()\n"  # torch's kernels throughout
        "m = create_pretrained(BackboneSpec('tf_efficientnet_lite0'), 10)\n"
        "x = np.random.default_rng(0).integers(0, 255, (32, 64, 64, 3), dtype=np.uint8)\n"
        "d = ArraySet(x, np.arange(32) % 10); n = Normalizer(*normalization(m), torch.device('cpu'))\n"
        "c = TrainConfig(epochs=1, lr=1e-4, batch_size=32, freeze_bn=True)\n"
        "train_model(m, d, c, n); best = 1e9\n"
        "for _ in range(5):\n"
        "    t = time.perf_counter(); train_model(m, d, c, n); best = min(best, time.perf_counter() - t)\n"
        "print(best)\n"
    )
    return float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)


def interleaved(run: Callable[[], object], patched: Callable[[], contextlib.AbstractContextManager],
                repeats: int) -> tuple[float, float, object, object]:
    """Median seconds of `run` as is and inside `patched()`, alternated so drift hits both alike (after a warm-up in
    which oneDNN builds its kernels), with the last output of each: (as is, patched, its output, patched output)."""
    times: dict[bool, list[float]] = {False: [], True: []}
    outputs: dict[bool, object] = {}
    run()
    for _ in range(repeats):
        for is_patched in (False, True):
            with patched() if is_patched else contextlib.nullcontext():
                start = time.perf_counter()
                outputs[is_patched] = run()
                times[is_patched].append(time.perf_counter() - start)
    plain, other = (sorted(times[k])[len(times[k]) // 2] for k in (False, True))
    return plain, other, outputs[False], outputs[True]
