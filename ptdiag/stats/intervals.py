"""Shared statistical primitives: an interval with its point estimate, binomial intervals, and a named check.

Everything in `ptdiag.stats` builds on these; they import nothing from ptdiag. Pure numpy/scipy: no torch import.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats


@dataclass(frozen=True)
class Interval:
    """A point estimate with a (lower, upper) interval, in accuracy units."""

    lower: float
    mid: float
    upper: float

    def to_dict(self) -> dict[str, float]:
        return {"lower": float(self.lower), "mid": float(self.mid), "upper": float(self.upper)}


def wilson_interval(p: float, n: float, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion (accepts fractional p, e.g. a seed average)."""
    z = stats.norm.ppf(0.5 + confidence / 2)
    denom = 1 + z**2 / n
    centre = (p + z**2 / (2 * n)) / denom
    half = z * np.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / denom
    return float(max(0.0, centre - half)), float(min(1.0, centre + half))


def difference_interval(p1: float, n1: float, p2: float, n2: float, confidence: float = 0.95) -> Interval:
    """Interval for p1 − p2 of two binomial proportions (Newcombe's hybrid score method from Wilson intervals)."""
    l1, u1 = wilson_interval(p1, n1, confidence)
    l2, u2 = wilson_interval(p2, n2, confidence)
    d = p1 - p2
    return Interval(d - np.hypot(p1 - l1, u2 - p2), d, d + np.hypot(u1 - p1, p2 - l2))


@dataclass(frozen=True)
class Check:
    """One named diagnostic with a PASS/WARN/FAIL status and a one-line message with numbers."""

    name: str
    status: str  # "PASS" | "WARN" | "FAIL"
    message: str

    def to_dict(self) -> dict[str, str]:
        return {"name": self.name, "status": self.status, "message": self.message}
