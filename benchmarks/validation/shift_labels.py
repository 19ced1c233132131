"""How close the diagnosis gets when only a random sample of the shifted images is labelled (`--shift-labels`).

    .venv/bin/python benchmarks/validation/shift_labels.py RUN [RUN ...] [--sizes 100,200,500] [--repeats 2]

For each finished, fully labelled run: a copy of the run folder (its jobs are reused: shifted labels are in no
job's key) is analysed again with `--ignore-shift-labels --shift-labels FILE`, FILE holding a random sample of the
analysed shifted images with their true labels. Against the labelled run: each model's estimated vs measured
shifted accuracy (MAE, baselines / pre-trained), each recipe's ER and ER_out (the estimate's error; whether its
95 % interval holds the labelled run's ER; its width against the labelled run's) and the verdict's kind; and the
wall time against the labelled run's statistics. Prints one Markdown row per run and size for docs/VALIDATION.md.

With `--widths`, offline instead (no rerun): `score()` on each run's predictions.parquet with the same kind of
samples, the recipes' mean ER_out interval width (ER where there is no out-of-support part) with the models'
confidence, with the labelled sample alone, and with every label.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from ptdiag.stats.predictions import evals_from_table
from ptdiag.stats.score import StatsConfig, score


def _sample(run: Path, size: int, seed: int, out: Path) -> Path:
    """A CSV of `size` random analysed shifted images with their true class names."""
    results = json.loads((run / "results.json").read_text())
    classes = results["data"]["shift"]["classes"]
    table = pd.read_parquet(run / "predictions.parquet", columns=["set", "path", "label", "kind"])
    shift = table[(table["set"] == "shift") & (table["kind"] == "baseline")].drop_duplicates("path")
    pick = shift.sample(n=min(size, len(shift)), random_state=seed)
    frame = pd.DataFrame({"path": pick["path"], "label": [classes[int(y)] for y in pick["label"]]})
    frame.to_csv(out, index=False)
    return out


def _analyse(run: Path, labels: Path, work: Path) -> tuple[dict, float]:
    copy = work / "run"
    if copy.exists():
        shutil.rmtree(copy)
    shutil.copytree(run, copy)
    config = json.loads((run / "config.json").read_text())
    start = time.perf_counter()
    cmd = [sys.executable, "-m", "ptdiag", "analyze", "--config", str(run / "config.json"), "--train",
           config["train"], "--shift", config["shift"], "--out", str(copy),
           "--ignore-shift-labels", "--shift-labels", str(labels), "-q"]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode not in (0, 4):
        raise SystemExit(f"{run}: analyze failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return json.loads((copy / "results.json").read_text()), time.perf_counter() - start


def _row(run: Path, size: int, full: dict, parts: list[tuple[dict, float]]) -> str:
    def by_name(res, key):
        return {m["name"]: m for m in res[key]}

    mae = {"baselines": [], "pretrained": []}
    er_err: dict[str, list[float]] = {"er": [], "er_out": [], "er_in": []}
    covered, widths, kinds, seconds = [], [], [], []
    for est, wall in parts:
        for key in mae:
            measured = by_name(full, key)
            mae[key] += [abs(m["shift_acc"] - measured[n]["shift_acc"]) for n, m in by_name(est, key).items()]
        for name, m in by_name(est, "pretrained").items():
            truth = by_name(full, "pretrained")[name]
            for q in ("er", "er_out", "er_in"):
                if m.get(q) and truth.get(q):
                    er_err[q].append(abs(m[q]["mid"] - truth[q]["mid"]))
                    covered.append(m[q]["lower"] <= truth[q]["mid"] <= m[q]["upper"])
                    widths.append((m[q]["upper"] - m[q]["lower"]) / max(truth[q]["upper"] - truth[q]["lower"], 1e-9))
        kinds.append(est["verdict"]["kind"] + (f" ({est['verdict']['confidence']})"))
        seconds.append(wall)
    full_kind = f"{full['verdict']['kind']} ({full['verdict']['confidence']})"
    return (f"| {run.name} | {size} | {100 * np.mean(mae['baselines']):.1f} / {100 * np.mean(mae['pretrained']):.1f} "
            f"| {' / '.join(_mean_points(er_err[q]) for q in ('er', 'er_out', 'er_in'))} "
            f"| {np.mean(covered):.0%} of {len(covered)} | {np.median(widths):.1f}x "
            f"| {full_kind} | {', '.join(kinds)} | {np.mean(seconds):.0f} |")


def _mean_points(errors: list[float]) -> str:
    return f"{100 * np.mean(errors):.1f}" if errors else "—"


def _score_table(run: Path) -> pd.DataFrame:
    """predictions.parquet as a `ptdiag score` table (baselines and pre-trained models, density ratios as rho)."""
    p = pd.read_parquet(run / "predictions.parquet")
    p = p[p["kind"].isin(["baseline", "pretrained"])].copy()
    p["example"] = p["example_id"].astype(str)
    p["run"] = np.where(p["kind"] == "baseline", p["model"].str.replace(r"-e\d+$", "", regex=True), p["model"])
    p["rho"] = np.where(p["set"] == "shift", p["density_ratio"], np.nan)
    p["correct"] = p["correct"].astype(float)
    return p[["model", "kind", "example", "set", "correct", "run", "seed", "rho", "max_softmax", "neg_entropy"]]


def _widths(run: Path, sizes: list[int], repeats: int) -> list[str]:
    epsilon = json.loads((run / "config.json").read_text())["epsilon"]
    evals, support = evals_from_table(_score_table(run), epsilon)
    n, config = len(evals[0].shift_correct), StatsConfig(bootstrap=400)
    blind = [replace(e, ref_scores=None, shift_scores=None) for e in evals]

    def width(out: dict) -> float:
        return float(np.mean([(r["er_out"] or r["er"])["upper"] - (r["er_out"] or r["er"])["lower"]
                              for r in out["pretrained"]]))

    full = width(score(evals, support, config).to_dict())
    lines = []
    for size in sizes:
        with_conf, alone = [], []
        for seed in range(repeats):
            mask = np.zeros(n, bool)
            mask[np.random.default_rng(seed).choice(n, size, replace=False)] = True
            with_conf.append(width(score(evals, support, config, shift_labelled=mask).to_dict()))
            alone.append(width(score(blind, support, config, shift_labelled=mask).to_dict()))
        lines.append(f"| {run.name} | {size} | {100 * np.mean(with_conf):.1f} | {100 * np.mean(alone):.1f} "
                     f"| {100 * full:.1f} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--sizes", default="100,200,500")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--widths", action="store_true", help="offline interval widths (no rerun)")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    if args.widths:
        print("| run | labelled | with confidence | labelled sample alone | all labelled |\n|---|---|---|---|---|")
        for run in args.runs:
            print("\n".join(_widths(run, sizes, args.repeats)), flush=True)
        return
    print("| run | labelled | MAE shifted acc. baselines / pre-trained (points) | mean abs. error of ER / ER_out / "
          "ER_in (points) | labelled ER inside the interval | interval width vs labelled run | labelled verdict "
          "| verdict per sample | seconds per rerun |")
    print("|---|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for run in args.runs:
            full = json.loads((run / "results.json").read_text())
            for size in sizes:
                parts = [_analyse(run, _sample(run, size, seed, work / f"labels-{seed}.csv"), work)
                         for seed in range(args.repeats)]
                print(_row(run, size, full, parts), flush=True)


if __name__ == "__main__":
    main()
