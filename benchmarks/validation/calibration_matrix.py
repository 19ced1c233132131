"""Print the simulator's confusion matrix (verdict kinds per scenario family) and the interval coverage.

    .venv/bin/python benchmarks/validation/calibration_matrix.py [DRAWS] [BOOTSTRAP]
"""

from __future__ import annotations

import sys

from ptdiag.stats.simulate import SCENARIOS, run


def main(draws: int = 40, bootstrap: int = 300) -> None:
    print(f"{draws} draws per family, {bootstrap} resampling replicates")
    for name, scenario in SCENARIOS.items():
        result = run(scenario, draws, seed=3, bootstrap=bootstrap)
        kinds = ", ".join(f"{k} {v}" for k, v in sorted(result["kinds"].items(), key=lambda kv: -kv[1]))
        cover = ", ".join(f"{k} {100 * r:.1f}% of {n}" for k, (r, n) in result["coverage"].items() if r is not None)
        print(f"| {name} | {kinds} | {cover} |", flush=True)


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:3]))
