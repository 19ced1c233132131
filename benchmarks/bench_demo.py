"""End-to-end `ptdiag demo` wall time and per-stage times, then a rerun of the finished analysis.

Targets (issue 6): both scenarios within 5 minutes on 2 cores; a rerun of a finished analysis ≤ 5 % of the first.

    python benchmarks/bench_demo.py [--out DIR] [--keep]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def run_demo(out: Path) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "ptdiag", "demo", "--out", str(out), "-q"], check=True,
                   stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="ptdiag-bench-demo-"))
    first = run_demo(out)
    second = run_demo(out)
    print(f"ptdiag demo (2 scenarios, budget quick): first run {first:.1f} s, rerun {second:.1f} s "
          f"(rerun / first = {100 * second / first:.1f} %; target ≤ 5 %; 5-minute target for the first run: "
          f"{'met' if first <= 300 else 'NOT met'})")
    for scenario in ("dataset-bias", "extrapolation"):
        timings = json.loads((out / scenario / "results.json").read_text())["timings"]
        print(f"  {scenario:14s} " + "  ".join(f"{k} {v:.1f}s" for k, v in timings.items()))
    if not args.keep and args.out is None:
        shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    main()
