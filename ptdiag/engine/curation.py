"""`ptdiag curate`: a small de-biased set chosen from a finished run's outputs (no training).

Reads the run's results.json, predictions.parquet (predicted classes, density ratios, the reweighting remedy's
reference weights) and the primary backbone's stored features (`jobs/features-*.npz`), and returns the rows of a
manifest (`path,label,...`) that `--train` reads as it is once the shifted images are labelled. The selection itself
is `ptdiag.remedies.curate`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ptdiag.engine.jobs import job_file_stem
from ptdiag.errors import DataError, UsageError
from ptdiag.remedies.curate import Selection, select_reference, select_shift
from ptdiag.remedies.heads import effective_sample_share
from ptdiag.remedies.reweight import MIN_ESS_SHARE

SOURCES = ("shift", "reference")


@dataclass(frozen=True)
class CuratedSet:
    """The chosen images as manifest rows, and how they were chosen."""

    source: str
    rows: list[dict[str, Any]]
    method: str

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows, columns=["path", "label", "predicted", "density_ratio", "weight", "stratum",
                                                "reason"])


def curate_run(run_dir: Path, results: dict[str, Any], n: int, source: str, seed: int = 0,
               random: bool = False) -> CuratedSet:
    """Choose `n` images of a finished run: shifted images to label (`source="shift"`; with `random`, a uniform
    random sample, which `--shift-labels` estimates need) or reference images whose distribution matches the
    shifted set's (`source="reference"`)."""
    if source not in SOURCES:
        raise UsageError(f"--from must be one of {', '.join(SOURCES)}. Got {source!r}.")
    if n < 1:
        raise UsageError(f"--n must be at least 1. Got {n}.")
    path = run_dir / "predictions.parquet"
    if not path.is_file():
        raise DataError(f"{path}: missing; curate needs a finished `ptdiag analyze` run")
    predictions = pd.read_parquet(path)
    classes = list(results["data"]["reference"]["classes"])
    if random and source != "shift":
        raise UsageError("--random draws shifted images to label; use it with --from shift")
    if source == "shift":
        return _random_shift(run_dir, results, predictions, classes, n, seed) if random else \
            _from_shift(run_dir, results, predictions, classes, n)
    return _from_reference(run_dir, results, predictions, classes, n, seed)


def _shift_rows(run_dir: Path, results: dict[str, Any], predictions: pd.DataFrame,
                n: int) -> tuple[str, pd.DataFrame]:
    """The primary recipe and its predictions on every analysed shifted image (its first seed), in example order."""
    primary = results["verdict"].get("primary") or results["pretrained"][0]["name"]
    rows = predictions[(predictions["model"] == primary) & (predictions["set"] == "shift")]
    rows = rows[rows["seed"] == rows["seed"].min()] if rows["seed"].notna().any() else rows
    rows = rows.sort_values("example_id")
    if n > len(rows):
        raise UsageError(f"--n {n} is more than the {len(rows)} shifted images of {run_dir}")
    return primary, rows


def _to_label(table: pd.DataFrame, classes: list[str], strata: list[str], reasons: list[str]) -> list[dict[str, Any]]:
    """Manifest rows of chosen shifted images, their label left empty to fill in."""
    return [{"path": p, "label": "", "predicted": classes[int(c)], "density_ratio": float(r), "weight": None,
             "stratum": s, "reason": why}
            for p, c, r, s, why in zip(table["path"], table["prediction"], table["density_ratio"], strata, reasons,
                                       strict=True)]


def _random_shift(run_dir: Path, results: dict[str, Any], predictions: pd.DataFrame, classes: list[str], n: int,
                  seed: int) -> CuratedSet:
    _, rows = _shift_rows(run_dir, results, predictions, n)
    table = rows.iloc[np.sort(np.random.default_rng(seed).choice(len(rows), n, replace=False))]
    out = _to_label(table, classes, ["random"] * n, ["uniform random draw"] * n)
    return CuratedSet("shift", out, f"{n} shifted images drawn uniformly at random (seed {seed}): label them and "
                                    "pass the file with --shift-labels")


def _from_shift(run_dir: Path, results: dict[str, Any], predictions: pd.DataFrame, classes: list[str],
                n: int) -> CuratedSet:
    primary, rows = _shift_rows(run_dir, results, predictions, n)
    rho = rows["density_ratio"].to_numpy(dtype=float)
    if not np.isfinite(rho).all():
        raise DataError(f"{run_dir}: the run has no support split (density ratios), which `--from shift` strata need",
                        hint="rerun `ptdiag analyze` with at least 50 shifted images so the support split runs")
    features = _features(run_dir, primary.split("/")[0], len(rows))
    predicted = rows["prediction"].to_numpy(dtype=int)
    chosen = select_shift(features, predicted, rho, results["config"]["epsilon"], n, classes)
    out = _to_label(rows.iloc[chosen.index], classes, chosen.stratum, chosen.reason)
    return CuratedSet("shift", out, f"{n} shifted images to label, spread over {primary}'s predicted classes and "
                                    f"the density-ratio bands (k-center on its features within each stratum)")


def _from_reference(run_dir: Path, results: dict[str, Any], predictions: pd.DataFrame, classes: list[str], n: int,
                    seed: int) -> CuratedSet:
    remedy = next((r for r in results.get("remedies") or [] if r.get("method") == "reweight"), None)
    if remedy is None and results["data"].get("shift_labelled", "all") != "all":
        raise DataError(f"{run_dir}: no reweighting weights: the remedies need a labelled shifted set, and this "
                        "run's is not (or only a sample is)", hint="`--from shift` works on it")
    if remedy is None:
        raise DataError(f"{run_dir}: no reweighting weights (the run was made with --no-remedies)",
                        hint="rerun `ptdiag analyze` without --no-remedies")
    if not remedy.get("applicable"):
        raise DataError(f"--from reference does not apply to {run_dir}: {remedy.get('note')}",
                        hint="use --from shift: label a few shifted images instead")
    rows = predictions[predictions["kind"] == "remedy-weight"]
    weights = rows["weight"].to_numpy(dtype=float)
    share = effective_sample_share(weights)
    if share < MIN_ESS_SHARE:
        raise DataError(f"--from reference does not apply to {run_dir}: the weights rest on {100 * share:.1f} % of "
                        f"the reference (effective sample size; at least {100 * MIN_ESS_SHARE:.0f} % needed)",
                        hint="use --from shift: label a few shifted images instead")
    if n > int((weights > 0).sum()):
        raise UsageError(f"--n {n} is more than the {int((weights > 0).sum())} reference training images with a "
                         f"positive weight in {run_dir}")
    labels = rows["label"].to_numpy(dtype=int)
    chosen: Selection = select_reference(weights, labels, n, classes, seed)
    table = rows.iloc[chosen.index]
    out = [{"path": p, "label": classes[int(y)], "predicted": None, "density_ratio": None, "weight": float(w),
            "stratum": s, "reason": why}
           for p, y, w, s, why in zip(table["path"], table["label"], table["weight"], chosen.stratum, chosen.reason,
                                      strict=True)]
    return CuratedSet("reference", out, f"{n} reference images drawn without replacement ∝ the class-conditional "
                                        f"density ratio (effective sample {100 * share:.0f} % of the reference)")


def _features(run_dir: Path, backbone: str, n_shift: int) -> np.ndarray:
    """The backbone's stored shifted-set features (the features job's arrays)."""
    found = sorted((run_dir / "jobs").glob(f"{job_file_stem('features', backbone)}-*.npz"),
                   key=lambda p: p.stat().st_mtime, reverse=True)
    for path in found:
        with np.load(path, allow_pickle=False) as npz:
            if "shift" in npz.files and len(npz["shift"]) == n_shift:
                return npz["shift"].astype(np.float32)
    raise DataError(f"{run_dir / 'jobs'}: no stored features of {backbone} for the {n_shift} shifted images",
                    hint="curate reads the run's jobs/ folder: keep it, or rerun the same `ptdiag analyze`")
