"""How well agreement-on-the-line and ATC estimate shifted accuracy without shifted labels, on finished labelled runs.

    .venv/bin/python benchmarks/validation/label_free.py RUN [RUN ...]

For each run, from its predictions.parquet (no retraining): the agreement line over every pair of models (baseline
checkpoints and pre-trained seeds), and per model the measured shifted accuracy (labels used) against ALine-S and
ALine-D (labels hidden), overall and on each support split (ε from the run's config); then each pre-trained
recipe's effective robustness measured vs estimated (ALine-D within each family: the baselines' pairs for the
baselines, the pre-trained models' pairs for them), both against a probit OLS line through the baselines' points
(measured points for the measured ER, estimated points for the estimated one). ATC (both scores) per model when the
run stored its predictions' confidence scores. Prints one Markdown row per run and split for docs/VALIDATION.md.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import norm

from ptdiag.stats.agreement import estimate_shift_accuracy
from ptdiag.stats.atc import atc_estimate
from ptdiag.stats.line import transform


def _models(pred: pd.DataFrame) -> pd.DataFrame:
    """One row per evaluated model (baseline checkpoint or pre-trained seed) with its predictions per set."""
    rows = pred[pred["kind"].isin(["baseline", "pretrained"])].copy()
    rows["key"] = rows["model"] + "#" + rows["seed"].fillna(0).astype(int).astype(str)
    return rows


def _matrix(rows: pd.DataFrame, set_name: str, mask: np.ndarray | None = None,
            column: str = "prediction") -> tuple[list[str], np.ndarray, np.ndarray]:
    """(model keys, (M, n) values of `column`, labels) on one set, restricted to `mask`."""
    part = rows[rows["set"] == set_name].sort_values(["key", "example_id"])
    keys = list(dict.fromkeys(part["key"]))
    n = part["example_id"].max() + 1
    values = part[column].to_numpy().reshape(len(keys), n)
    labels = part["label"].to_numpy().reshape(len(keys), n)[0]
    if mask is not None:
        values, labels = values[:, mask], labels[mask]
    return keys, values, labels


def _atc(rows: pd.DataFrame, ref_correct: np.ndarray, mask: np.ndarray | None, column: str) -> np.ndarray | None:
    """ATC's estimate per model from the confidence score `column`, or None when the run did not store it."""
    if column not in rows or rows[column].isna().all():
        return None
    _, ref_scores, _ = _matrix(rows, "reference", None, column)
    _, shift_scores, _ = _matrix(rows, "shift", mask, column)
    return np.array([atc_estimate(r, c, s) for r, c, s in zip(ref_scores, ref_correct, shift_scores, strict=True)])


def _er(ref: np.ndarray, shift: np.ndarray, is_base: np.ndarray) -> np.ndarray:
    """Each model's shifted accuracy above a probit OLS line through the baselines' points."""
    slope, icpt = np.polyfit(transform(ref[is_base]), transform(shift[is_base]), 1)
    return shift - norm.cdf(slope * transform(ref) + icpt)


def evaluate(run: Path) -> list[str]:
    pred = pd.read_parquet(run / "predictions.parquet")
    config = json.loads((run / "results.json").read_text())["config"]
    rows = _models(pred)
    keys, ref_pred, ref_y = _matrix(rows, "reference")
    ref_acc = (ref_pred == ref_y).mean(1)
    kinds = rows.drop_duplicates("key").set_index("key").loc[keys, "kind"].to_numpy()
    is_base = kinds == "baseline"
    shift_rows = rows[(rows["set"] == "shift") & (rows["key"] == keys[0])].sort_values("example_id")
    rho = shift_rows["density_ratio"].to_numpy()
    splits = {"all": None}
    if np.isfinite(rho).all():
        splits["in-support"] = rho >= config["epsilon"]
        splits["out-of-support"] = rho < config["epsilon"]
    out = []
    for split, mask in splits.items():
        if mask is not None and (mask.sum() < 50 or mask.all()):
            continue
        _, shift_pred, shift_y = _matrix(rows, "shift", mask)
        truth = (shift_pred == shift_y).mean(1)
        est = estimate_shift_accuracy(ref_acc, ref_pred, shift_pred)
        mae_s = 100 * np.abs(est.aline_s - truth)
        mae_d = 100 * np.abs(est.aline_d - truth)
        family = np.empty_like(truth)  # ALine-D within each family: baselines' pairs, then the pre-trained models'
        lines = []
        for members in (is_base, ~is_base):
            fam = estimate_shift_accuracy(ref_acc[members], ref_pred[members], shift_pred[members])
            family[members] = fam.aline_d
            lines.append(f"{fam.line.r2:.2f} ({fam.line.n_pairs} pairs, spread {fam.line.ref_spread:.2f})")
        mae_f = 100 * np.abs(family - truth)
        atc = {name: _atc(rows, ref_pred == ref_y, mask, column) for name, column in
               (("MC", "max_softmax"), ("NE", "neg_entropy"))}
        atc_cells = []
        for est_atc in atc.values():
            if est_atc is None:
                atc_cells.append("—")
                continue
            err = 100 * np.abs(est_atc - truth)
            atc_cells.append(f"{err[is_base].mean():.1f} / {err[~is_base].mean():.1f}")
        er_true = _er(ref_acc, truth, is_base)[~is_base]
        er_est = _er(ref_acc, family, is_base)[~is_base]
        er_atc = _er(ref_acc, atc["NE"], is_base)[~is_base] if atc["NE"] is not None else None
        names = sorted({k.split("#")[0] for k in np.array(keys)[~is_base]})
        per_recipe = []
        for name in names:
            sel = np.array([k.split("#")[0] == name for k in np.array(keys)[~is_base]])
            measured, estimated = 100 * er_true[sel].mean(), 100 * er_est[sel].mean()
            by_atc = f" / {100 * er_atc[sel].mean():+.1f}" if er_atc is not None else ""
            per_recipe.append(f"{name.split('/')[-1]} {measured:+.1f} / {estimated:+.1f}{by_atc}")
        out.append(f"| {run.name} | {split} ({len(shift_y)}) | {est.line.r2:.2f} | {est.line.slope:.2f} / "
                   f"{est.line.intercept:+.2f} | {mae_s[is_base].mean():.1f} / {mae_s[~is_base].mean():.1f} | "
                   f"{mae_d[is_base].mean():.1f} / {mae_d[~is_base].mean():.1f} | {' / '.join(lines)} | "
                   f"{mae_f[is_base].mean():.1f} / {mae_f[~is_base].mean():.1f} | {atc_cells[0]} | {atc_cells[1]} | "
                   f"{'; '.join(per_recipe)} |")
    return out


def main(runs: list[str]) -> None:
    print("| run | split (images) | agreement r² | slope / intercept | MAE ALine-S baselines / pre-trained (points) "
          "| MAE ALine-D baselines / pre-trained | r² per family | MAE ALine-D per family | MAE ATC-MC | MAE ATC-NE "
          "| ER measured / ALine-D per family / ATC-NE, per recipe |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for run in runs:
        for line in evaluate(Path(run)):
            print(line, flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
