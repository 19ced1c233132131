"""The whole demo against the earlier end-to-end recipe, on this machine, in one run (issue 10's targets).

Measures, on the two demo scenarios (4,000 reference + 2,000 shifted Fashion-MNIST images each, budget quick):

1. this machine's speed: one end-to-end EfficientNet-Lite0 fine-tuning step on 32 images at 64 px;
2. `ptdiag analyze --dry-run`'s estimate for the dataset-bias scenario (checked against 3.);
3. `ptdiag demo` as shipped: top-block LP-FT with 3 seeds, remedies on (first run, then a rerun);
4. the earlier quick recipe on the same data: end-to-end LP-FT, one seed, no remedies.

Targets: 3. at least 3x faster than 4.; 3. within 5 minutes on a 2-core AVX2 CPU; rerun at most 5 % of the first
run; dry-run estimate within ±35 % of the actual first run; peak memory of the demo at most 4 GiB.

    python benchmarks/bench_demo.py [--out DIR] [--skip-old] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ptdiag.scenarios.demo import DEMO_SCENARIOS

PY = [sys.executable, "-m", "ptdiag"]
OLD_RECIPE = ["--ft-from-block", "0", "--ft-seeds", "1", "--no-remedies"]


def train_step_seconds() -> float:
    """One end-to-end fine-tuning step of EfficientNet-Lite0 (32 images, 64 px, frozen BatchNorm), best of 5."""
    code = (
        "import time, numpy as np, torch\n"
        "from ptdiag.engine.models import BackboneSpec, create_pretrained, normalization\n"
        "from ptdiag.engine.train import ArraySet, Normalizer, TrainConfig, train_model\n"
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


def timed(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, env=dict(os.environ, HF_HUB_OFFLINE="1"))
    return time.perf_counter() - start


def peak_child_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20  # KiB on Linux


def dry_run_estimate(ref: Path, shift: Path) -> float:
    out = subprocess.run([*PY, "analyze", "--train", str(ref), "--shift", str(shift), "--dry-run"],
                         capture_output=True, text=True, check=True, env=dict(os.environ, COLUMNS="200")).stdout
    match = re.search(r"estimated time on this device\s*│\s*([\d.]+) min", out)
    if match is None:
        raise RuntimeError(f"no estimate in the dry-run output:\n{out}")
    return 60 * float(match.group(1))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--skip-old", action="store_true", help="skip the earlier recipe (absolute figures only)")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="ptdiag-bench-demo-"))
    new = out / "new"
    step = train_step_seconds()
    print(f"machine: {os.cpu_count()} CPUs; end-to-end lite0 fine-tuning step (32 images, 64 px): {step:.3f} s "
          f"(issue 10's reference machines: 0.125 s and 0.56 s)")

    # Generate the scenario folders first, so neither path's time includes writing PNGs.
    subprocess.run([*PY, "demo", "--out", str(new), "-q", "--generate-only"], check=True, stdout=subprocess.DEVNULL)
    data = {d.key: (new / "data" / d.key / "reference", new / "data" / d.key / "shift") for d in DEMO_SCENARIOS}
    estimate = dry_run_estimate(*data["dataset-bias"])

    first = timed([*PY, "demo", "--out", str(new), "-q"])
    rerun = timed([*PY, "demo", "--out", str(new), "-q"])
    peak = peak_child_rss_gib()
    actual = json.loads((new / "dataset-bias" / "results.json").read_text())["timings"]["this_invocation"]
    print(f"ptdiag demo (2 scenarios, quick, top-block LP-FT x 3 seeds, remedies): first run {first:.0f} s "
          f"(target <= 300 s on a 2-core AVX2 CPU: {'met' if first <= 300 else 'NOT met'}), "
          f"rerun {rerun:.1f} s = {100 * rerun / first:.1f} % of the first (target <= 5 %)")
    print(f"peak resident memory of one analysis process: {peak:.2f} GiB (target <= 4 GiB)")
    error = estimate / actual - 1
    print(f"--dry-run estimate for dataset-bias: {estimate:.0f} s; actual first analyze: {actual:.0f} s; "
          f"error {100 * error:+.0f} % (target within ±35 %: {'met' if abs(error) <= 0.35 else 'NOT met'})")
    for key in data:
        timings = json.loads((new / key / "results.json").read_text())["timings"]
        print(f"  {key:14s} " + "  ".join(f"{k} {v:.1f}s" for k, v in timings.items()))

    if not args.skip_old:
        old_total = 0.0
        for key, (ref, shift) in data.items():
            old_total += timed([*PY, "analyze", "--train", str(ref), "--shift", str(shift), "--out",
                                str(out / "old" / key), "-q", *OLD_RECIPE])
        print(f"earlier recipe (end-to-end LP-FT, 1 seed, no remedies) on the same data: {old_total:.0f} s; "
              f"speed-up of the demo as shipped: {old_total / first:.2f}x (target >= 3x)")
    if not args.keep and args.out is None:
        shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    main()
