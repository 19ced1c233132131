"""The small-cluster stretch of cluster-bootstrap intervals (ptdiag.stats.effects.small_cluster_factor)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from ptdiag.stats.effects import percentile_interval, small_cluster_factor


def _column(sd: float, n: int = 200_000, seed: int = 0) -> np.ndarray:
    """Row 0 the point (0), rows 1.. normal replicates of SD `sd`."""
    return np.r_[0.0, np.random.default_rng(seed).normal(0.0, sd, n)]


def _jackknife(var_jack: float, n_runs: int) -> np.ndarray:
    """Leave-one-run-out values whose jackknife variance is `var_jack`."""
    x = np.arange(n_runs, dtype=float)
    x -= x.mean()
    return x * np.sqrt(var_jack / ((n_runs - 1) / n_runs * (x**2).sum()))


@pytest.mark.parametrize("n_runs", [3, 6])
def test_all_run_variance_gets_the_jackknife_t_interval(n_runs):
    """Every bit of the bootstrap's variance is the runs' ((R − 1)/R of the jackknife's): the interval becomes the
    jackknife's with t(R − 1) quantiles."""
    var_jack = 4.0
    column = _column(np.sqrt((n_runs - 1) / n_runs * var_jack))
    factor = small_cluster_factor(column, _jackknife(var_jack, n_runs), 0.95)
    q = stats.t.ppf(0.975, n_runs - 1) / stats.norm.ppf(0.975)
    assert factor == pytest.approx(np.sqrt(n_runs / (n_runs - 1)) * q, rel=0.02)
    interval = percentile_interval(column, 0.95, factor)
    assert interval.upper == pytest.approx(stats.t.ppf(0.975, n_runs - 1) * np.sqrt(var_jack), rel=0.02)


def test_no_run_heterogeneity_or_no_runs_leaves_the_interval_alone():
    column = _column(1.0)
    assert small_cluster_factor(column, _jackknife(1.0, 3), 0.95, run_share=0.0) == 1.0
    assert small_cluster_factor(column, None, 0.95) == 1.0
    assert small_cluster_factor(column, np.array([0.3]), 0.95) == 1.0  # one run: nothing to leave out


def test_a_small_run_part_among_many_runs_barely_widens():
    """Welch–Satterthwaite: a run part that is a tenth of the variance, from 30 runs, moves the interval < 1 %,
    where t(R − 1) applied to that part alone would not be much more; with 3 runs the same share widens it more."""
    column = _column(1.0)
    many = small_cluster_factor(column, _jackknife(0.1 * 30 / 29, 30), 0.95)
    few = small_cluster_factor(column, _jackknife(0.1 * 3 / 2, 3), 0.95)
    assert 1.0 <= many < 1.01
    assert many < few < 1.2


def test_the_factor_grows_with_the_level_where_t_tails_are_heavier():
    column = _column(1.0)
    jack = _jackknife(1.5, 3)
    assert small_cluster_factor(column, jack, 0.90) < small_cluster_factor(column, jack, 0.95) \
        < small_cluster_factor(column, jack, 0.975)
