"""Run known-answer scenarios through `ptdiag analyze` and print one summary row each (for docs/VALIDATION.md).

    python benchmarks/validation/run_validation.py --out /tmp/ptdiag-validation tint-bias:p=0.5 label-shift no-shift \
        vflip:n_reference=3000,n_shift=1000 [-- extra analyze flags]

Each argument is SCENARIO[:key=value,...]; sizes default to 4,000 reference / 2,000 shifted images.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from ptdiag.scenarios import get_scenario


def parse(arg: str) -> tuple[str, dict]:
    name, _, rest = arg.partition(":")
    params = {}
    for item in filter(None, rest.split(",")):
        key, _, value = item.partition("=")
        params[key] = float(value) if "." in value else int(value)
    return name, params


def pts(interval: dict | None) -> str:
    if not interval:
        return "—"
    return f"{100 * interval['mid']:+.1f} [{100 * interval['lower']:+.1f}, {100 * interval['upper']:+.1f}]"


def summarize(name: str, results: dict, wall: float) -> str:
    s, v, fit = results["support"] or {}, results["verdict"], results["fit"]["shift"]
    lines = [f"## {name}: verdict {v['kind']} ({v['confidence']}), wall {wall:.0f} s",
             f"data: ref {results['data']['split']} shift n={results['data']['shift']['n']}; "
             f"support: n_in {s.get('n_in')} n_out {s.get('n_out')} AUC {s.get('domain_auc', float('nan')):.3f} "
             f"T {s.get('temperature', float('nan')):.3f} ECE {s.get('ece', float('nan')):.3f}",
             f"fit shift: n {fit['n']} r2 {fit['r2']:.3f} ref_range {[round(x, 3) for x in fit['ref_range']]}; "
             f"in r2 {(results['fit']['in_support'] or {}).get('r2')}; out r2 "
             f"{(results['fit']['out_of_support'] or {}).get('r2')}"]
    for p in results["pretrained"]:
        lines.append(f"  {p['name']}: ref {100 * p['ref_acc']:.1f} shift {100 * p['shift_acc']:.1f} "
                     f"ER {pts(p['er'])} ER_in {pts(p['er_in'])} ER_out {pts(p['er_out'])} "
                     f"boot {pts(p.get('er_bootstrap'))} evidence {p.get('evidence')}")
    for d in results["decomposition"]["baseline"]:
        lines.append(f"  {d['name']}: gap {100 * d['gap']:.1f} bias {100 * (d['bias_component'] or 0):.1f} "
                     f"extrap {100 * (d['extrapolation_component'] or 0):.1f}")
    lines += [f"  reason: {r}" for r in v["reasons"]]
    lines.append("  timings: " + ", ".join(f"{k} {t:.0f}s" for k, t in results["timings"].items()))
    return "\n".join(lines)


def ratio_check(data_root: Path, run: Path) -> str:
    """Estimated density ratio of each shifted image against the construction's true ratio (truth.csv)."""
    truth = pd.read_csv(data_root / "truth.csv")
    preds = pd.read_parquet(run / "predictions.parquet")
    preds = preds[preds["set"] == "shift"].drop_duplicates("path")
    preds["rel"] = preds["path"].map(lambda p: str(Path(p).relative_to(data_root)))
    merged = preds.merge(truth, left_on="rel", right_on="path")
    parts = []
    for value, group in merged.groupby(merged["true_density_ratio"].round(3)):
        est = group["density_ratio"].to_numpy()
        parts.append(f"true {value:g} (n={len(group)}): estimated median {np.median(est):.3g} "
                     f"[q10 {np.quantile(est, 0.1):.3g}, q90 {np.quantile(est, 0.9):.3g}]")
    return "  density ratio vs truth: " + "; ".join(parts)


def split_extra(argv: list[str]) -> tuple[list[str], list[str]]:
    """(this script's arguments, the `ptdiag analyze` flags after `--`)."""
    if "--" not in argv:
        return argv, []
    return argv[: argv.index("--")], argv[argv.index("--") + 1:]


def main() -> None:
    argv, extra = split_extra(sys.argv[1:])
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=0, help="data-generation and training seed (analyze --seed)")
    parser.add_argument("scenarios", nargs="+")
    args = parser.parse_args(argv)
    for arg in args.scenarios:
        name, params = parse(arg)
        n_ref, n_shift = params.pop("n_reference", 4000), params.pop("n_shift", 2000)
        key = arg.replace(":", "_").replace(",", "_").replace("=", "")
        data = get_scenario(name).generate(args.out / "data" / key, n_reference=n_ref, n_shift=n_shift, seed=args.seed,
                                           **params)
        run = args.out / key
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "ptdiag", "analyze", "--train", str(data.reference_dir), "--shift",
                        str(data.shift_dir), "--out", str(run), "-q", "--seed", str(args.seed), *extra], check=False)
        wall = time.perf_counter() - start
        results = json.loads((run / "results.json").read_text())
        print(summarize(arg, results, wall), flush=True)
        if results.get("support"):
            print(ratio_check(data.root, run), flush=True)


if __name__ == "__main__":
    main()
