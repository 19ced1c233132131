"""Effective robustness from a table of already-evaluated models (`ptdiag er --accuracies models.csv`).

CSV columns: `model,kind,ref_acc,shift_acc` with kind ∈ {baseline, pretrained}; optional `ref_n,shift_n`
(example counts, for clipping and binomial intervals) and `in_acc,out_acc,in_n,out_n` for split-wise ER.
Every problem is a `DataError` whose one-line message names the file (exit code 3).

Pure pandas/numpy: no torch import.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ptdiag.errors import DataError
from ptdiag.schema import SCHEMA_VERSION
from ptdiag.stats.intervals import Check
from ptdiag.stats.line import (
    LineFit,
    compare_nonparametric,
    diagnose_fit,
    effective_robustness,
    fit_line,
    share_of_drop_recovered,
)
from ptdiag.stats.thresholds import VerdictConfig

REQUIRED_COLUMNS = ("model", "kind", "ref_acc", "shift_acc")
ACCURACY_COLUMNS = ("ref_acc", "shift_acc", "in_acc", "out_acc")
COUNT_COLUMNS = ("ref_n", "shift_n", "in_n", "out_n")
KINDS = ("baseline", "pretrained")
# split name → (accuracy column, count column, ER key, fit key)
_SPLITS = {
    "shift": ("shift_acc", "shift_n", "er", "shift"),
    "in_support": ("in_acc", "in_n", "er_in", "in_support"),
    "out_of_support": ("out_acc", "out_n", "er_out", "out_of_support"),
}


def read_er_table(path: str | Path) -> pd.DataFrame:
    """Read and validate the accuracies CSV; return it with numeric columns as floats (NaN = blank).

    Raises:
        DataError: missing/unreadable file, missing column, unknown kind, non-numeric or out-of-range value,
            duplicate model names, fewer than 3 baselines, or split columns missing for a baseline.
    """
    path = Path(path)
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except FileNotFoundError:
        raise DataError(f"{path}: no such file", hint="pass a CSV with columns model,kind,ref_acc,shift_acc") from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a directory, expected a CSV file") from None
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError, OSError) as exc:
        raise DataError(f"{path}: not a readable CSV ({str(exc).splitlines()[0]})") from None
    table.columns = [str(c).strip() for c in table.columns]
    missing = [c for c in REQUIRED_COLUMNS if c not in table.columns]
    if missing:
        raise DataError(f"{path}: missing column(s) {', '.join(missing)} (needs {','.join(REQUIRED_COLUMNS)})")
    if table.empty:
        raise DataError(f"{path}: no rows")
    table = table.apply(lambda col: col.str.strip())
    _check_names(table, path)
    for col in (*ACCURACY_COLUMNS, *COUNT_COLUMNS):
        if col in table.columns:
            table[col] = _numeric(table, col, path)
    n_base = int((table["kind"] == "baseline").sum())
    if n_base < 3:
        raise DataError(f"{path}: only {n_base} baseline row(s); at least 3 are needed to fit the line")
    for col in ("ref_acc", "shift_acc"):
        _require_values(table, col, table.index, path)
    for split_col in ("in_acc", "out_acc"):
        if split_col in table.columns and table[split_col].notna().any():
            _require_values(table, split_col, table.index[table["kind"] == "baseline"], path)
    return table


def _check_names(table: pd.DataFrame, path: Path) -> None:
    for i, row in table.iterrows():
        line = int(i) + 2  # header is line 1
        if not row["model"]:
            raise DataError(f"{path}: line {line}: empty model name")
        if row["kind"] not in KINDS:
            raise DataError(f"{path}: line {line} (model {row['model']!r}): kind {row['kind']!r} must be "
                            f"{' or '.join(KINDS)}")
    duplicated = table["model"][table["model"].duplicated()].tolist()
    if duplicated:
        raise DataError(f"{path}: model name {duplicated[0]!r} appears more than once")


def _numeric(table: pd.DataFrame, col: str, path: Path) -> pd.Series:
    values = pd.to_numeric(table[col].replace("", np.nan), errors="coerce")
    bad = values.isna() & (table[col] != "")
    if bad.any():
        i = bad.idxmax()
        raise DataError(f"{path}: line {int(i) + 2} (model {table.at[i, 'model']!r}): {col} "
                        f"{table.at[i, col]!r} is not a number")
    if col in ACCURACY_COLUMNS:
        out = values.notna() & ((values < 0) | (values > 1) | ~np.isfinite(values))
        what = "is outside [0, 1] (accuracies are fractions)"
    else:
        out = values.notna() & ((values <= 0) | (values != np.round(values)) | ~np.isfinite(values))
        what = "is not a positive whole number of examples"
    if out.any():
        i = out.idxmax()
        raise DataError(f"{path}: line {int(i) + 2} (model {table.at[i, 'model']!r}): {col} {table.at[i, col]} "
                        f"{what}")
    return values.astype(float)


def _require_values(table: pd.DataFrame, col: str, rows: pd.Index, path: Path) -> None:
    blank = table.loc[rows, col].isna()
    if blank.any():
        i = blank.idxmax()
        raise DataError(f"{path}: line {int(i) + 2} (model {table.at[i, 'model']!r}): {col} is blank")


@dataclass
class ErResult:
    """Fits and per-model ER from an accuracies table; `to_dict()` is the `ptdiag er --json` document."""

    scale: str
    fits: dict[str, LineFit]
    models: list[dict[str, Any]]
    checks: list[Check] = field(default_factory=list)
    source: str = ""

    @property
    def warnings(self) -> list[str]:
        return [c.message for c in self.checks if c.status != "PASS"]

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION, "source": self.source, "scale": self.scale,
            "fit": {k: f.to_dict() for k, f in self.fits.items()}, "models": self.models,
            "checks": [c.to_dict() for c in self.checks], "warnings": self.warnings,
        }


def er_from_table(table: pd.DataFrame, *, scale: str = "probit", config: VerdictConfig = VerdictConfig(),
                  source: str = "") -> ErResult:
    """Fit the baseline line (and per-split lines when split columns are given) and compute ER for every model."""
    base = table[table["kind"] == "baseline"]
    fits: dict[str, LineFit] = {}
    checks: list[Check] = []
    for acc_col, n_col, _, fit_key in _SPLITS.values():
        if acc_col not in table.columns or base[acc_col].isna().any():
            continue
        fit = fit_line(base["ref_acc"].to_numpy(), base[acc_col].to_numpy(), scale=scale,  # type: ignore[arg-type]
                       ref_n=_common_count(base, "ref_n"), y_n=_common_count(base, n_col),
                       confidence=config.confidence_level)
        fits[fit_key] = fit
        checks += diagnose_fit(fit, config, fit_key)
    models = [_model_row(row, table, base, fits, config) for _, row in table.iterrows()]
    return ErResult(scale, fits, models, checks, source)


def _model_row(row: pd.Series, table: pd.DataFrame, base: pd.DataFrame, fits: dict[str, LineFit],
               config: VerdictConfig) -> dict[str, Any]:
    whole = fits["shift"]
    ref = float(row["ref_acc"])
    distance = whole.extrapolation_distance(ref)
    out: dict[str, Any] = {
        "model": row["model"], "kind": row["kind"], "ref_acc": ref, "shift_acc": float(row["shift_acc"]),
        "predicted_shift_acc": float(whole.predict(ref)), "extrapolated": distance > 0,
        "extrapolation_distance": distance,
    }
    shares: dict[str, float | None] = {}
    for split, (acc_col, n_col, er_key, fit_key) in _SPLITS.items():
        fit = fits.get(fit_key)
        if fit is None:
            continue
        y = row.get(acc_col)
        if y is None or pd.isna(y):
            out[er_key] = None
            continue
        er = effective_robustness(fit, ref, float(y))
        out[er_key] = er.to_dict()
        shares[split] = share_of_drop_recovered(fit, ref, er.mid)
        band = fit.prediction_band(ref)
        out.setdefault("prediction_band", {})[split] = dict(band.to_dict(),
                                                            beyond=bool(not band.lower <= float(y) <= band.upper))
        if fit.extrapolation_distance(ref) > 0 and row["kind"] == "pretrained":
            # Beyond the baselines' reference range the line is extrapolated: the nearest baselines, reported.
            n = row.get(n_col)
            comparison = compare_nonparametric(
                base["model"].tolist(), base["ref_acc"].to_numpy(), base[acc_col].to_numpy(), ref, float(y),
                y_n=None if n is None or pd.isna(n) else float(n), n_nearest=config.n_nearest,
                confidence=config.confidence_level,
            )
            out.setdefault("comparison", {})[split] = comparison.to_dict()
    out["share_recovered"] = shares
    out["evidence"] = "line"  # trusted by its prediction band (above), not by r²
    return out


def _common_count(rows: pd.DataFrame, col: str) -> float | None:
    """The example count for clipping: the smallest given (conservative clip), None when the column is absent."""
    if col not in rows.columns or rows[col].isna().all():
        return None
    return float(rows[col].min())
