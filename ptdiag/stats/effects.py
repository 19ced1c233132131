"""Intervals from resampled replicates and the three-way classification of effects against the margin.

An effect is *material* when its whole interval clears the materiality margin, *negligible* when its whole
interval stays inside ± the margin, *unresolved* otherwise ("not significant" is never read as "no effect").
A signed effect whose interval lies entirely below −margin is *material-negative* (e.g. pre-training hurts).
"""

from __future__ import annotations

import numpy as np

from ptdiag.stats.intervals import Interval


def percentile_interval(column: np.ndarray, confidence: float = 0.95) -> Interval | None:
    """Row 0 is the point estimate, rows 1.. the replicates: percentile interval re-centred on the point.

    The replicates' median is moved onto the point estimate (a bias-corrected percentile interval): with the
    errors-in-x correction the replicates centre on the bootstrap world's own (attenuated) value, not the
    point's. None when the point is undefined or fewer than half the replicates are finite (e.g. an empty split).
    """
    column = np.asarray(column, dtype=float)
    point = float(column[0])
    reps = column[1:][np.isfinite(column[1:])]
    if not np.isfinite(point) or reps.size < max(10, (column.size - 1) // 2):
        return None
    alpha = (1 - confidence) / 2
    lo, med, hi = np.quantile(reps, [alpha, 0.5, 1 - alpha])
    return Interval(float(point - (med - lo)), point, float(point + (hi - med)))


def recentred(column: np.ndarray) -> np.ndarray:
    """Replicates shifted so their median sits on the point estimate (the same correction as the interval)."""
    column = np.asarray(column, dtype=float)
    reps = column[1:]
    finite = reps[np.isfinite(reps)]
    if finite.size == 0 or not np.isfinite(column[0]):
        return reps
    return reps - np.median(finite) + column[0]


def classify(interval: Interval | None, margin: float) -> str:
    """'material' | 'negligible' | 'unresolved' | 'material-negative' | 'unknown' (no interval)."""
    if interval is None:
        return "unknown"
    if interval.lower >= margin:
        return "material"
    if interval.upper <= -margin:
        return "material-negative"
    if -margin < interval.lower and interval.upper < margin:
        return "negligible"
    return "unresolved"


def classify_point(value: float, margin: float) -> str:
    """The same classes for a single value (used on each replicate for the stability of the verdict)."""
    if not np.isfinite(value):
        return "unknown"
    if value >= margin:
        return "material"
    if value <= -margin:
        return "material-negative"
    return "negligible"
