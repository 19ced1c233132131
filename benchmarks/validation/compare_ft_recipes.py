"""Does top-block fine-tuning on cached activations measure what the end-to-end fine-tune measures?

For each known-answer scenario, runs `ptdiag analyze --budget quick` with the end-to-end LP-FT of earlier versions
(`--ft-from-block 0 --ft-seeds 1`, the old quick recipe) and with top-block variants (3 seeds), in one run folder so
baselines, features, probe and support split are computed once and shared. Prints, per variant, LP-FT's ER, ER_in,
ER_out with intervals, the verdict, and the fine-tuning seconds; and whether each variant's intervals overlap the
end-to-end ones.

    python benchmarks/validation/compare_ft_recipes.py --out /tmp/ptdiag-recipes [--variants 0,3,5,6] \
        [SCENARIO[:k=v] ...]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

from run_validation import parse, pts  # benchmarks/ is on sys.path when run as a script

from ptdiag.scenarios import get_scenario

DEFAULT_SCENARIOS = ("tint-bias:p=0.5", "unseen-tint", "invert")


def overlap(a: dict | None, b: dict | None) -> str:
    if not a or not b:
        return "n/a"
    return "yes" if a["lower"] <= b["upper"] and b["lower"] <= a["upper"] else "NO"


def run_variant(ref: Path, shift: Path, out: Path, k: int, extra: list[str]) -> tuple[dict | None, float]:
    seeds = "1" if k == 0 else "3"
    cmd = [sys.executable, "-m", "ptdiag", "analyze", "--train", str(ref), "--shift", str(shift), "--out", str(out),
           "-q", "--ft-from-block", str(k), "--ft-seeds", seeds, "--no-remedies", *extra]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode not in (0, 1, 4):
        print(f"    analyze failed (exit {proc.returncode}): {proc.stderr.strip()[-400:]}")
        return None, wall
    return json.loads((out / "results.json").read_text()), wall


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("scenarios", nargs="*", default=list(DEFAULT_SCENARIOS))
    parser.add_argument("--out", type=Path, default=Path("/tmp/ptdiag-recipes"))
    parser.add_argument("--variants", default="0,3,5,6", help="comma list of --ft-from-block values (0 = end to end)")
    parser.add_argument("--extra", default="", help="extra analyze flags, space separated")
    args = parser.parse_args()
    variants = [int(v) for v in args.variants.split(",")]
    for arg in args.scenarios:
        name, params = parse(arg)
        data = get_scenario(name).generate(args.out / "data" / name.replace(":", "_"), **params)
        run_dir = args.out / "runs" / name
        print(f"## {arg}")
        rows = {}
        for k in variants:
            results, wall = run_variant(data.reference_dir, data.shift_dir, run_dir, k, args.extra.split())
            if results is None:
                continue
            shutil.copy(run_dir / "results.json", args.out / f"{name}-k{k}.json")
            lpft = next(p for p in results["pretrained"] if p.get("strategy") == "lpft")
            ft_seconds = sum(v for key, v in results["timings"].items() if key.startswith(("finetune", "activations")))
            rows[k] = lpft
            label = "end-to-end, 1 seed" if k == 0 else f"top from block {k}, 3 seeds"
            print(f"  {label:28s} ref {100 * lpft['ref_acc']:.1f} shift {100 * lpft['shift_acc']:.1f}  "
                  f"ER {pts(lpft['er'])}  ER_in {pts(lpft.get('er_in'))}  ER_out {pts(lpft.get('er_out'))}  "
                  f"verdict {results['verdict']['kind']} ({results['verdict']['confidence']})  "
                  f"fine-tuning {ft_seconds:.0f} s  wall {wall:.0f} s")
        if 0 in rows:
            for k, lpft in rows.items():
                if k:
                    print(f"  block {k} vs end-to-end, intervals overlap: ER {overlap(lpft['er'], rows[0]['er'])}, "
                          f"ER_in {overlap(lpft.get('er_in'), rows[0].get('er_in'))}, "
                          f"ER_out {overlap(lpft.get('er_out'), rows[0].get('er_out'))}")


if __name__ == "__main__":
    main()
