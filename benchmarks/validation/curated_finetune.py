"""Does fine-tuning on a small curated set of shifted images beat the large biased reference? (paper implication 2)

    .venv/bin/python benchmarks/validation/curated_finetune.py RUN [RUN ...]

Reads finished `ptdiag analyze --curated-sizes ...` runs (the measurement itself is analyze's `curated` job:
`ptdiag.engine.jobkinds.curated`) and prints, per run, one Markdown row for docs/VALIDATION.md: held-out in-support
accuracy (shifted accuracy when most shifted images are out of support) of the curated and random sets per size, the
curated set with the reference added, the same recipe trained on the reference alone, and the share of the bias gap (the
extrapolation gap when the shift is out of support) each recovers, with the verdict.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def _share(recovered: dict | None, part: str) -> str:
    iv = (recovered or {}).get(part)
    return "—" if not iv else f"{100 * iv['mid']:.0f} % [{100 * iv['lower']:.0f}, {100 * iv['upper']:.0f}]"


def _points(iv: dict) -> str:
    return f"{100 * iv['mid']:+.1f} [{100 * iv['lower']:+.1f}, {100 * iv['upper']:+.1f}]"


def row(run: Path) -> str:
    results = json.loads((run / "results.json").read_text())
    curated = {(r["data"], r["variant"]): r for r in results["remedies"]
               if r["method"] == "curated-finetune" and r["applicable"]}
    if not curated:
        return f"| {run.name} | not measured | | | | | |"
    alone, rand = curated[("curated-shift", "shift-only")], curated[("random-shift", "shift-only")]
    with_ref = curated[("curated-shift", "reference+shift")]
    key = alone.get("judged_by", "shift_acc")
    part = "bias" if key == "in_acc" else "extrapolation"
    recipe = next(p for s in ("lpft", "ft") for p in results["pretrained"]
                  if p["strategy"] == s and p["model"] == alone["base"])

    def curve(r: dict) -> str:
        return " / ".join(f"{100 * p[key]:.1f}" for p in r["size_curve"])

    sizes = "/".join(str(p["n_images"]) for p in alone["size_curve"])
    diffs = " / ".join(_points(p["minus_random"]) for p in alone["size_curve"] if p.get("minus_random"))
    v = results["verdict"]
    return (f"| {run.parent.name}/{run.name} | {sizes} | {curve(alone)} | {curve(rand)} | {diffs or '—'} | "
            f"{100 * with_ref[key]:.1f} | "
            f"{100 * recipe[key]:.1f} | {_share(alone['recovered'], part)} · {_share(rand['recovered'], part)} · "
            f"{_share(recipe['recovered'], part)} | {v['kind']} ({v['confidence']}) |")


def main(runs: list[Path]) -> None:
    print("| run | sizes | curated alone | random alone | curated − random (points, paired) | curated + reference "
          "(largest) | recipe on the reference "
          "only | share of the bias (else extrapolation) gap recovered: curated · random (largest) · reference only "
          "| verdict |")
    print("|---|---|---|---|---|---|---|---|---|")
    for run in runs:
        print(row(run), flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", type=Path, nargs="+")
    main(parser.parse_args().runs)
