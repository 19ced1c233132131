"""Cost of the remedies stage against the rest of one `ptdiag analyze --budget quick` run (target: ≤ ~15 %), and
of the curated-finetune stage with `--curated-sizes` (target ≤ 25 %; measured above it, docs/VALIDATION.md §8).

Generates a small known-answer scenario, runs the whole analysis once in a fresh run directory and prints each
measured stage's compute seconds next to the other stages' (same run, same machine, so the ratio is fair), beside
the machine's own fine-tuning step.

    .venv/bin/python benchmarks/bench_remedies.py [--scenario tint-bias] [--n-reference 1500] [--n-shift 600] \
        [--param source=digits] [--curated-sizes 50,100,200,500] [--out /tmp/ptdiag-bench-remedies]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from _harness import train_step_seconds

from ptdiag.config import resolve_config
from ptdiag.engine.pipeline import analyze
from ptdiag.scenarios import get_scenario


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scenario", default="tint-bias")
    parser.add_argument("--n-reference", type=int, default=1500)
    parser.add_argument("--n-shift", type=int, default=600)
    parser.add_argument("--param", action="append", default=[], help="scenario parameter key=value (repeatable)")
    parser.add_argument("--curated-sizes", default="", help="also time the curated-finetune stage at these sizes")
    parser.add_argument("--out", type=Path, default=Path("/tmp/ptdiag-bench-remedies"))
    args = parser.parse_args()
    params = dict(p.split("=", 1) for p in args.param)
    data = get_scenario(args.scenario).generate(args.out / "data", n_reference=args.n_reference,
                                                n_shift=args.n_shift, seed=0, **params)
    run_dir = args.out / f"run-{int(time.time())}"
    sizes = tuple(int(n) for n in args.curated_sizes.split(",") if n)
    config = resolve_config({"train": str(data.reference_dir), "shift": str(data.shift_dir), "budget": "quick",
                             "curated_sizes": sizes})
    start = time.perf_counter()
    results = analyze(config, run_dir)
    wall = time.perf_counter() - start
    timings = {k: v for k, v in results["timings"].items() if k not in ("total", "this_invocation")}
    print(f"scenario {args.scenario} ({args.n_reference} reference / {args.n_shift} shifted images), wall "
          f"{wall:.0f} s; this machine's fine-tuning step (32 images, 64 px) {train_step_seconds():.3f} s")
    print("stages: " + ", ".join(f"{k} {v:.1f} s" for k, v in timings.items()))
    for stage, target in (("remedies", "15 %"), ("curated", "25 %")):
        if stage in timings:
            rest = sum(v for k, v in timings.items() if k not in ("remedies", "curated"))
            print(f"{stage} {timings[stage]:.1f} s vs the analysis without remedies {rest:.1f} s: ratio "
                  f"{timings[stage] / rest:.1%} (target ≤ {target})")
    for row in results["remedies"]:
        acc = "—" if row["shift_acc"] is None else f"{100 * row['shift_acc']:.1f} %"
        print(f"  {row['name']}: shift acc {acc}; {row['note']}")


if __name__ == "__main__":
    main()
