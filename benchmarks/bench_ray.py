"""`--executor ray` vs the local executor: wall time of the quick analysis of a small dataset, and equal results.

Generates the `toy` scenario (N reference + N/2 shifted images), warms the decode cache once, then runs
``ptdiag analyze --budget quick`` twice in fresh processes and fresh run folders: local, then ``--executor ray``
(a local Ray instance started by the command, so its start-up is counted). Prints both wall times, the ratio
(target <= 1.3x) and whether the result sections are equal (timings aside).
Usage: ``python benchmarks/bench_ray.py [--n 320] [--out DIR]``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

SECTIONS = ("baselines", "pretrained", "fit", "decomposition", "verdict", "data")


def comparable(results: dict) -> dict:
    out = {key: results.get(key) for key in SECTIONS}
    out["support"] = {k: v for k, v in (results.get("support") or {}).items() if k != "seconds"}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=320, help="reference images (the toy source has 89 per class)")
    parser.add_argument("--out", type=Path, default=Path("/tmp/ptdiag-bench-ray"))
    args = parser.parse_args()
    from ptdiag.scenarios import get_scenario

    data = get_scenario("toy").generate(args.out / "toy", n_reference=args.n, n_shift=args.n // 2, seed=0)
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    base = [sys.executable, "-m", "ptdiag"]
    common = ["--train", str(data.reference_dir), "--shift", str(data.shift_dir), "--cache-dir",
              str(args.out / "cache")]
    subprocess.run([*base, "inspect", *common, "--warm-cache", "--image-size", "64"], env=env,
                   stdout=subprocess.DEVNULL, check=False)
    walls, results = {}, {}
    for name, extra in (("local", []), ("ray", ["--executor", "ray"])):
        out = args.out / f"run-{name}"
        shutil.rmtree(out, ignore_errors=True)
        start = time.perf_counter()
        subprocess.run([*base, "analyze", *common, "--budget", "quick", "--out", str(out), "-q", *extra], env=env,
                       check=True, stdout=subprocess.DEVNULL)
        walls[name] = time.perf_counter() - start
        results[name] = json.loads((out / "results.json").read_text())
        jobs = {p.name: json.loads(p.read_text())["seconds"] for p in (out / "jobs").glob("*.json")}
        print(f"{name:5s}: wall {walls[name]:6.1f} s, {len(jobs)} jobs, job seconds {sum(jobs.values()):.1f}",
              flush=True)
    equal = comparable(results["local"]) == comparable(results["ray"])
    print(f"ray / local wall = {walls['ray'] / walls['local']:.2f}x (target <= 1.3x); results equal: {equal}")
    print(json.dumps({"walls": walls, "equal": equal}))


if __name__ == "__main__":
    main()
