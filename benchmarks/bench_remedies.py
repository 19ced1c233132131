"""Cost of the remedies stage against the rest of one `ptdiag analyze --budget quick` run (target: ≤ ~15 %).

Generates a small known-answer scenario, runs the whole analysis once in a fresh run directory and prints the
remedies stage's compute seconds next to the other stages' (same run, same machine, so the ratio is fair).

    .venv/bin/python benchmarks/bench_remedies.py [--scenario tint-bias] [--n-reference 1500] [--n-shift 600] \
        [--param source=digits] [--out /tmp/ptdiag-bench-remedies]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from ptdiag.config import resolve_config
from ptdiag.engine.pipeline import analyze
from ptdiag.scenarios import get_scenario


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scenario", default="tint-bias")
    parser.add_argument("--n-reference", type=int, default=1500)
    parser.add_argument("--n-shift", type=int, default=600)
    parser.add_argument("--param", action="append", default=[], help="scenario parameter key=value (repeatable)")
    parser.add_argument("--out", type=Path, default=Path("/tmp/ptdiag-bench-remedies"))
    args = parser.parse_args()
    params = dict(p.split("=", 1) for p in args.param)
    data = get_scenario(args.scenario).generate(args.out / "data", n_reference=args.n_reference,
                                                n_shift=args.n_shift, seed=0, **params)
    run_dir = args.out / f"run-{int(time.time())}"
    config = resolve_config({"train": str(data.reference_dir), "shift": str(data.shift_dir), "budget": "quick"})
    start = time.perf_counter()
    results = analyze(config, run_dir)
    wall = time.perf_counter() - start
    timings = {k: v for k, v in results["timings"].items() if k not in ("total", "this_invocation")}
    remedies = timings.get("remedies", 0.0)
    rest = sum(timings.values()) - remedies
    print(f"scenario {args.scenario} ({args.n_reference} reference / {args.n_shift} shifted images), wall {wall:.0f} s")
    print("stages: " + ", ".join(f"{k} {v:.1f} s" for k, v in timings.items()))
    print(f"remedies {remedies:.1f} s vs the rest of the analysis {rest:.1f} s: ratio {remedies / rest:.1%} "
          f"(target ≤ 15 %)")
    for row in results["remedies"]:
        acc = "—" if row["shift_acc"] is None else f"{100 * row['shift_acc']:.1f} %"
        print(f"  {row['name']}: shift acc {acc}; {row['note']}")


if __name__ == "__main__":
    main()
