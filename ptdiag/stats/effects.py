"""Intervals from resampled replicates and the three-way classification of effects against the margin.

An effect is *material* when its whole interval clears the materiality margin, *negligible* when its whole
interval stays inside ± the margin, *unresolved* otherwise ("not significant" is never read as "no effect").
A signed effect whose interval lies entirely below −margin is *material-negative* (e.g. pre-training hurts).
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from ptdiag.stats.intervals import Interval


def percentile_interval(column: np.ndarray, confidence: float = 0.95, factor: float = 1.0) -> Interval | None:
    """Row 0 is the point estimate, rows 1.. the replicates: percentile interval re-centred on the point.

    The replicates' median is moved onto the point estimate (a bias-corrected percentile interval): with the
    errors-in-x correction the replicates centre on the bootstrap world's own (attenuated) value, not the
    point's. Both arms are stretched by `factor` (the small-cluster correction, `small_cluster_factor`). None
    when the point is undefined or fewer than half the replicates are finite (e.g. an empty split).
    """
    column = np.asarray(column, dtype=float)
    point = float(column[0])
    reps = column[1:][np.isfinite(column[1:])]
    if not np.isfinite(point) or reps.size < max(10, (column.size - 1) // 2):
        return None
    alpha = (1 - confidence) / 2
    lo, med, hi = np.quantile(reps, [alpha, 0.5, 1 - alpha])
    return Interval(float(point - factor * (med - lo)), point, float(point + factor * (hi - med)))


def recentred(column: np.ndarray, factor: float = 1.0) -> np.ndarray:
    """Replicates shifted so their median sits on the point estimate, their spread around it stretched by
    `factor` (the same corrections as the interval)."""
    column = np.asarray(column, dtype=float)
    reps = column[1:]
    finite = reps[np.isfinite(reps)]
    if finite.size == 0 or not np.isfinite(column[0]):
        return reps
    return column[0] + factor * (reps - np.median(finite))


def small_cluster_factor(column: np.ndarray, jackknife: np.ndarray | None, confidence: float,
                         run_share: float = 1.0) -> float:
    """How much to stretch a cluster-bootstrap percentile interval when it rests on few training runs (≥ 1).

    `jackknife` holds the leave-one-run-out point estimates (R values) and V_J is their jackknife variance; V is
    the replicates' variance (robust: half the central 68 % range, squared). The runs' own deviations off the line
    (`run_share` of the run-level variance, `resampling.run_heterogeneity`; the rest is checkpoint scatter, which
    many checkpoints estimate well) give V_run = run_share · V_J, known only to R − 1 degrees of freedom, of which
    the bootstrap carries (R − 1)/R. Welch–Satterthwaite: the corrected variance V' = V + V_run/R has
    df = V'² (R − 1)/V_run², and the factor is √(V'/V) · t_df/z at the interval's level (≥ 1; at most the whole
    jackknife-t interval, √(R/(R − 1)) · t_{R−1}/z). 1 with fewer than 2 runs or a degenerate spread.
    """
    if jackknife is None:
        return 1.0
    jack = np.asarray(jackknife, dtype=float)
    jack = jack[np.isfinite(jack)]
    n_runs = jack.size
    reps = np.asarray(column, dtype=float)[1:]
    reps = reps[np.isfinite(reps)]
    if n_runs < 2 or reps.size < 10:
        return 1.0
    lo, hi = np.quantile(reps, [stats.norm.cdf(-1.0), stats.norm.cdf(1.0)])
    var_boot = ((hi - lo) / 2) ** 2
    var_run = run_share * (n_runs - 1) / n_runs * float(((jack - jack.mean()) ** 2).sum())
    if var_boot <= 0 or not np.isfinite(var_run) or var_run <= 0:
        return 1.0
    q = 0.5 + confidence / 2
    corrected = var_boot + var_run / n_runs
    df = corrected**2 * (n_runs - 1) / var_run**2
    k = np.sqrt(corrected / var_boot) * stats.t.ppf(q, df) / stats.norm.ppf(q)
    cap = np.sqrt(n_runs / (n_runs - 1)) * stats.t.ppf(q, n_runs - 1) / stats.norm.ppf(q)
    return float(np.clip(k, 1.0, cap))


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
