"""Print the simulator's confusion matrix (verdict kinds per scenario family) and the interval coverage.

    .venv/bin/python benchmarks/validation/calibration_matrix.py [DRAWS] [BOOTSTRAP] [--seed N] [--families A,B]
        [--compare-plain] [--run-grid]

`--compare-plain` adds the same draws without the few-runs widening of the intervals; `--run-grid` prints coverage
and decisions of the bias and extrapolation families over run deviations τ (probit) × 3 or 6 baseline runs
(docs/VALIDATION.md §2).
"""

from __future__ import annotations

import argparse
import dataclasses

from ptdiag.stats.simulate import SCENARIOS, Scenario, run


def _kinds(result: dict) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(result["kinds"].items(), key=lambda kv: -kv[1]))


def _coverage(result: dict) -> str:
    return " / ".join("—" if r is None else f"{100 * r:.1f}%" for r, _ in result["coverage"].values()) + \
        f" of {max(n for _, n in result['coverage'].values())}"


def _row(name: str, scenario: Scenario, args: argparse.Namespace) -> str:
    result = run(scenario, args.draws, seed=args.seed, bootstrap=args.bootstrap)
    cells = [name, _kinds(result), _coverage(result)]
    if args.compare_plain:
        plain = run(scenario, args.draws, seed=args.seed, bootstrap=args.bootstrap, few_runs_widening=False)
        cells.append(f"{_kinds(plain)}; {_coverage(plain)}")
    return "| " + " | ".join(cells) + " |"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("draws", type=int, nargs="?", default=40)
    parser.add_argument("bootstrap", type=int, nargs="?", default=300)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--families", default=None, help="comma-separated simulator families (default: all)")
    parser.add_argument("--compare-plain", action="store_true", help="also without the few-runs widening")
    parser.add_argument("--run-grid", action="store_true", help="coverage over run deviations × 3 / 6 runs")
    args = parser.parse_args()
    print(f"{args.draws} draws per family, {args.bootstrap} resampling replicates, seed {args.seed}")
    if args.run_grid:
        for tau in (0.0, 0.04, 0.1, 0.15):
            for runs in (3, 6):
                for family in ("extrapolation", "bias"):
                    scenario = dataclasses.replace(SCENARIOS[family], tau=tau, runs=runs,
                                                   checkpoints=5 if runs == 3 else 3)
                    print(_row(f"{family} τ={tau} {runs} runs", scenario, args), flush=True)
        return
    names = args.families.split(",") if args.families else list(SCENARIOS)
    for name in names:
        print(_row(name, SCENARIOS[name], args), flush=True)


if __name__ == "__main__":
    main()
