"""Measure the remedies' known answers (for docs/VALIDATION.md); CPU-heavy, run it deliberately.

For each scenario (default: tint-bias p = 0.5, unseen-tint, invert) it runs `ptdiag analyze --budget quick` and
prints, next to pre-training alone (the verdict's primary candidate): every remedy's held-out shifted / in- /
out-of-support accuracy, ER, the share of each gap component it recovers, reweighting's effective sample size or
why it does not apply, and the label-budget curves.

    .venv/bin/python benchmarks/validation/run_remedies_validation.py --out /tmp/ptdiag-remedies \
        [tint-bias:p=0.5 unseen-tint \
        invert] [-- extra analyze flags]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

from run_validation import parse, split_extra  # benchmarks/ is on sys.path when run as a script

from ptdiag.scenarios import get_scenario
from ptdiag.schema import load_results

DEFAULT = ["tint-bias:p=0.5", "unseen-tint", "invert"]


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.1f}"


def _iv(value: dict | None, scale: float = 100, signed: bool = True) -> str:
    if not value:
        return "—"
    f = "{:+.1f}" if signed else "{:.0f}"
    return f"{f.format(scale * value['mid'])} [{f.format(scale * value['lower'])}, {f.format(scale * value['upper'])}]"


def summarize(name: str, results: dict, wall: float) -> str:
    primary = next((p for p in results["pretrained"] if p.get("primary")), results["pretrained"][0])
    support = results["support"] or {}
    lines = [f"## {name}: verdict {results['verdict']['kind']}, n_in {support.get('n_in')} n_out "
             f"{support.get('n_out')}, wall {wall:.0f} s, remedies {results['timings'].get('remedies', 0):.1f} s",
             "| model | ref | shift | in | out | ER | ER_in | ER_out | recovers gap / bias / extrap. (%) | note |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---|---|"]
    rows = [dict(primary, note="pre-training alone (primary candidate)")] + results["remedies"]
    for r in rows:
        rec = r.get("recovered") or {}
        shares = " / ".join(_iv(rec.get(k), signed=False) for k in ("gap", "bias", "extrapolation"))
        lines.append(f"| {r['name']} | {_pct(r['ref_acc'])} | {_pct(r['shift_acc'])} | {_pct(r['in_acc'])} | "
                     f"{_pct(r['out_acc'])} | {_iv(r.get('er'))} | {_iv(r.get('er_in'))} | {_iv(r.get('er_out'))} | "
                     f"{shares} | {r.get('note', '')} |")
    for r in results["remedies"]:
        if r.get("label_budget"):
            curve = ", ".join(f"{p['n_per_class']}/class {_pct(p['shift_acc'])}" for p in r["label_budget"])
            lines.append(f"- label budget {r['name']}: {curve}")
    return "\n".join(lines)


def main() -> None:
    argv, extra = split_extra(sys.argv[1:])
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--n-reference", type=int, default=4000)
    parser.add_argument("--n-shift", type=int, default=2000)
    parser.add_argument("scenarios", nargs="*", default=DEFAULT)
    args = parser.parse_args(argv)
    for spec in args.scenarios:
        name, params = parse(spec)
        data = get_scenario(name).generate(args.out / "data" / spec.replace(":", "_"), n_reference=args.n_reference,
                                           n_shift=args.n_shift, seed=0, **params)
        run = args.out / "runs" / spec.replace(":", "_")
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "ptdiag", "analyze", "--train", str(data.reference_dir), "--shift",
                        str(data.shift_dir), "--out", str(run), "--budget", "quick", "-q", *extra], check=True)
        print(summarize(spec, load_results(run), time.perf_counter() - start), flush=True)


if __name__ == "__main__":
    main()
