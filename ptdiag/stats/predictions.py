"""Read a per-(model, example) correctness table for `ptdiag score` and turn it into `score()` inputs.

Columns: `model` (str), `kind` (baseline | pretrained | remedy), `example` (id; the same id and `set` = the same
image across models), `set` (reference | shift), `correct` (0/1); optional `run` (training run of a baseline
checkpoint; default the model), `seed` (fine-tuning seed; rows differing only in seed are seeds of one candidate),
and on shift rows `support` (in | out) or `rho` (density ratio p_ref/p_shift, thresholded at ε); `max_softmax` and
`neg_entropy` (the predictions' confidence, as predictions.parquet stores them). `correct` may be empty on shift rows
of unlabelled examples (the same for every model; the labelled ones a random sample): shifted accuracies are then
estimated (ptdiag.stats.estimated).
Every problem raises DataError naming the column or row.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ptdiag.errors import DataError
from ptdiag.stats.atc import SCORES
from ptdiag.stats.score import ModelEval
from ptdiag.stats.support import SupportSplit

REQUIRED = ("model", "kind", "example", "set", "correct")
KINDS = ("baseline", "pretrained", "remedy")
SETS = ("reference", "shift")


def read_predictions(path: str | Path) -> pd.DataFrame:
    """Load a CSV or Parquet table and check its columns and values."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such predictions file")
    try:
        table = pd.read_parquet(path) if path.suffix.lower() in (".parquet", ".pq") else pd.read_csv(path)
    except Exception as exc:  # pandas raises many types for unreadable files
        raise DataError(f"{path}: cannot read the predictions table ({exc})") from None
    missing = [c for c in REQUIRED if c not in table.columns]
    if missing:
        raise DataError(f"{path}: missing column(s) {', '.join(missing)} (need {', '.join(REQUIRED)})")
    for col in ("model", "kind", "set", "example"):
        _no_blanks(table, col, path)
    table["model"], table["kind"], table["set"] = (table[c].astype(str).str.strip() for c in ("model", "kind", "set"))
    table["example"] = table["example"].astype(str)
    _allowed(table, "kind", KINDS, path)
    _allowed(table, "set", SETS, path)
    correct = pd.to_numeric(table["correct"], errors="coerce")
    # A shifted example may be unlabelled: `correct` empty there (the labelled ones must be a random sample).
    blank = table["correct"].isna() | (table["correct"].astype(str).str.strip() == "")
    bad = ~correct.isin([0, 1]) & ~(blank & (table["set"] == "shift"))
    if bad.any():
        raise DataError(f"{path}: column 'correct' must be 0 or 1; row {_row(table, bad)} has "
                        f"{table['correct'][bad].iloc[0]}")
    table["correct"] = correct.astype(float)
    if "seed" in table.columns:
        table["seed"] = table["seed"].fillna(0)
    dup = table.duplicated(["model", "kind", "set", "example"] + (["seed"] if "seed" in table.columns else []))
    if dup.any():
        raise DataError(f"{path}: row {_row(table, dup)} repeats model {table['model'][dup].iloc[0]!r}, example "
                        f"{table['example'][dup].iloc[0]!r} ({table['set'][dup].iloc[0]})")
    return table


def evals_from_table(table: pd.DataFrame, epsilon: float = 0.2,
                     source: str = "predictions") -> tuple[list[ModelEval], SupportSplit | None]:
    """One ModelEval per (model, seed), examples in one order for all models, and the given support split."""
    order = {s: sorted(table.loc[table["set"] == s, "example"].unique()) for s in SETS}
    for s in SETS:
        if not order[s]:
            raise DataError(f"{source}: no rows with set = {s!r}")
    keys = ["kind", "model"] + (["seed"] if "seed" in table.columns else [])
    evals = []
    for key, rows in table.groupby(keys, sort=False):
        kind, model = key[0], key[1]
        seed = key[2] if len(key) > 2 else None
        correct = {s: _ordered(rows[rows["set"] == s], order[s], model, s, source) for s in SETS}
        scores = {s: _scores(rows[rows["set"] == s], order[s]) for s in SETS}
        run = _single(rows, "run", model, source) if kind == "baseline" else None
        evals.append(ModelEval(str(model), str(kind), correct["reference"], correct["shift"],
                               {"model": str(model), "strategy": str(model)} if kind != "baseline" else {},
                               run=None if run is None else str(run), seed=_int(seed),
                               ref_scores=scores["reference"], shift_scores=scores["shift"]))
    return evals, _support(table, order["shift"], epsilon, source)


def shift_labelled(evals: list[ModelEval], source: str = "predictions") -> np.ndarray | None:
    """Which shifted examples are labelled (`correct` given), None when all are; the same for every model."""
    known = [~np.isnan(np.asarray(e.shift_correct, dtype=float)) for e in evals]
    if not known or all(k.all() for k in known):
        return None
    for e, k in zip(evals, known, strict=True):
        if not np.array_equal(k, known[0]):
            raise DataError(f"{source}: model {e.name!r} leaves `correct` empty on other shift examples than "
                            f"{evals[0].name!r}; an unlabelled example is unlabelled for every model")
    return known[0]


def _scores(rows: pd.DataFrame, order: list[str]) -> np.ndarray | None:
    """(2, n) confidence scores (ptdiag.stats.atc.SCORES) when the table has both columns filled, else None."""
    if not set(SCORES) <= set(rows.columns) or rows[list(SCORES)].isna().any().any():
        return None
    frame = rows.set_index("example")[list(SCORES)].reindex(order)
    return None if frame.isna().any().any() else frame.to_numpy(dtype=float).T


def _ordered(rows: pd.DataFrame, order: list[str], model: str, set_name: str, source: str) -> np.ndarray:
    series = rows.set_index("example")["correct"]
    missing = len(set(order) - set(series.index))
    if missing:
        raise DataError(f"{source}: model {model!r} has no row for {missing} of the {len(order)} {set_name} examples "
                        "(every model must be evaluated on the same examples)")
    return series.reindex(order).to_numpy(dtype=float)


def _support(table: pd.DataFrame, order: list[str], epsilon: float, source: str) -> SupportSplit | None:
    shift = table[table["set"] == "shift"]
    if "rho" in table.columns and shift["rho"].notna().any():
        per_example = _per_example(shift, "rho", source)
        rho = pd.to_numeric(per_example.reindex(order), errors="coerce").to_numpy(dtype=float)
        if not np.isfinite(rho).all() or (rho < 0).any():
            raise DataError(f"{source}: column 'rho' must be a non-negative number on every shift row")
    elif "support" in table.columns and shift["support"].notna().any():
        labels = _per_example(shift, "support", source).reindex(order).astype(str).str.strip()
        bad = ~labels.isin(["in", "out"])
        if bad.any():
            raise DataError(f"{source}: column 'support' must be 'in' or 'out' on shift rows; example "
                            f"{labels.index[bad.to_numpy()][0]!r} has {labels[bad].iloc[0]!r}")
        rho = np.where(labels.to_numpy() == "in", 1.0, 0.0)
        epsilon = 0.5
    else:
        return None
    return SupportSplit(epsilon=epsilon, rho_shift=rho, rho_reference=np.ones(1), logit_shift=np.zeros(rho.size),
                        logit_reference=np.zeros(1), domain_auc=float("nan"), temperature=1.0, C=float("nan"),
                        c_selection=(), folds=0, fold_kind="given", ece=float("nan"), calibration=[],
                        log_ratio_histogram={}, source="given")


def _per_example(shift: pd.DataFrame, col: str, source: str) -> pd.Series:
    values = shift.dropna(subset=[col]).groupby("example")[col]
    inconsistent = values.nunique() > 1
    if inconsistent.any():
        raise DataError(f"{source}: column {col!r} differs across models for shift example "
                        f"{inconsistent.index[inconsistent.to_numpy()][0]!r}")
    return values.first()


def _single(rows: pd.DataFrame, col: str, model: str, source: str) -> Any:
    if col not in rows.columns or rows[col].isna().all():
        return None
    values = rows[col].dropna().unique()
    if len(values) > 1:
        raise DataError(f"{source}: column {col!r} has several values for model {model!r}")
    return values[0]


def _int(value: Any) -> int | None:
    try:
        return None if value is None else int(value)
    except (TypeError, ValueError):
        return None


def _no_blanks(table: pd.DataFrame, col: str, path: Path) -> None:
    blank = table[col].isna()
    if blank.any():
        raise DataError(f"{path}: column {col!r} is empty on row {_row(table, blank)}")


def _allowed(table: pd.DataFrame, col: str, allowed: tuple[str, ...], path: Path) -> None:
    bad = ~table[col].isin(allowed)
    if bad.any():
        raise DataError(f"{path}: column {col!r} must be one of {', '.join(allowed)}; row {_row(table, bad)} has "
                        f"{table[col][bad].iloc[0]!r}")


def _row(table: pd.DataFrame, mask: pd.Series) -> int:
    """1-based data row number (the header is row 0) of the first True in `mask`."""
    return int(np.flatnonzero(mask.to_numpy())[0]) + 1
