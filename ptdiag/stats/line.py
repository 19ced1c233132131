"""Effective robustness: the baseline line in probit/logit space, ER with intervals, and fit diagnostics.

Follows the paper's implementation (Cohen-Wang et al. 2024, App. B.1.2; method.md §3) with three deliberate
differences, all documented where they happen:

* the residual standard error uses the textbook n − 2 denominator (the authors' code uses the population std,
  which is smaller by sqrt((n − 1)/n));
* accuracies are clipped to [1/(2n), 1 − 1/(2n)] before the transform so 0 % and 100 % never give ±inf;
* a paired bootstrap over evaluated examples gives a second interval that also carries test-set noise; the line is
  trusted by its prediction band at the model (line uncertainty plus one model's scatter), not by r² (a flat,
  precise line has r² ≈ 0), and a nonparametric comparison with the nearest baselines is reported beside the line
  when the model lies beyond the baselines' reference range.

Pure numpy/scipy: no torch import.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import special, stats

from ptdiag.errors import DataError
from ptdiag.stats.intervals import Check, Interval, difference_interval
from ptdiag.stats.thresholds import VerdictConfig

Scale = Literal["probit", "logit"]
SCALES: tuple[str, ...] = ("probit", "logit")

# Clip used when the number of evaluated examples is unknown (e.g. a CSV without counts): finite, far in the tail.
_UNKNOWN_N_CLIP = 1e-6


# ---------------------------------------------------------------------------------------------------------------
# Transforms
# ---------------------------------------------------------------------------------------------------------------


def clip_accuracy(acc: np.ndarray | float, n: np.ndarray | float | None = None) -> np.ndarray:
    """Clip accuracies to [1/(2n), 1 − 1/(2n)] (n evaluated examples) so the transform stays finite."""
    acc = np.asarray(acc, dtype=float)
    if n is None:
        eps = np.asarray(_UNKNOWN_N_CLIP)
    else:
        eps = 0.5 / np.maximum(np.asarray(n, dtype=float), 1.0)
    return np.clip(acc, eps, 1.0 - eps)


def transform(acc: np.ndarray | float, scale: Scale = "probit", n: np.ndarray | float | None = None) -> np.ndarray:
    """Map accuracies to probit (Φ⁻¹) or logit units, after clipping with `n` evaluated examples."""
    _check_scale(scale)
    clipped = clip_accuracy(acc, n)
    return stats.norm.ppf(clipped) if scale == "probit" else special.logit(clipped)


def inverse_transform(z: np.ndarray | float, scale: Scale = "probit") -> np.ndarray:
    """Map probit/logit units back to accuracies (Φ or the logistic function)."""
    _check_scale(scale)
    z = np.asarray(z, dtype=float)
    return stats.norm.cdf(z) if scale == "probit" else special.expit(z)


def _check_scale(scale: str) -> None:
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {', '.join(SCALES)}; got {scale!r}")


# ---------------------------------------------------------------------------------------------------------------
# The baseline line
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LineFit:
    """OLS line v = slope·u + intercept through the baselines, u/v = transformed reference/shifted accuracy.

    Attributes:
        n: number of baseline models.
        r2: coefficient of determination in transformed space.
        residual_se: sqrt(SSE / (n − 2)), the textbook residual standard error.
        ref_range: the baselines' (min, max) reference accuracy.
        t_star: t quantile with n − 2 degrees of freedom for the band's confidence level.
        u_mean, ssx: mean and sum of squared deviations of the baselines' transformed reference accuracy.
        ref_n, y_n: example counts used to clip reference and y accuracies (None: unknown).
    """

    n: int
    slope: float
    intercept: float
    r2: float
    residual_se: float
    ref_range: tuple[float, float]
    scale: str
    t_star: float
    u_mean: float
    ssx: float
    confidence: float = 0.95
    ref_n: float | None = None
    y_n: float | None = None

    def predict(self, ref_acc: np.ndarray | float) -> np.ndarray:
        """Accuracy the line predicts on the y-axis split at reference accuracy `ref_acc`."""
        return inverse_transform(self.slope * self._u(ref_acc) + self.intercept, self.scale)

    def band(self, ref_acc: float) -> Interval:
        """Confidence band of the fitted mean line at `ref_acc`, mapped back to accuracy (lower, mid, upper)."""
        u0 = float(self._u(ref_acc))
        v_hat = self.slope * u0 + self.intercept
        # Confidence interval of the mean line, not a prediction interval: no "1 +" inside the sqrt (as the paper).
        half = self.t_star * self.residual_se * np.sqrt(1.0 / self.n + (u0 - self.u_mean) ** 2 / self.ssx)
        lo, mid, hi = inverse_transform(np.array([v_hat - half, v_hat, v_hat + half]), self.scale)
        return Interval(float(lo), float(mid), float(hi))

    def prediction_band(self, ref_acc: float) -> Interval:
        """Where one more from-scratch model with reference accuracy `ref_acc` would land (prediction interval:
        the line's uncertainty plus one model's residual scatter), mapped back to accuracy."""
        u0 = float(self._u(ref_acc))
        v_hat = self.slope * u0 + self.intercept
        half = self.t_star * self.residual_se * np.sqrt(1.0 + 1.0 / self.n + (u0 - self.u_mean) ** 2 / self.ssx)
        lo, mid, hi = inverse_transform(np.array([v_hat - half, v_hat, v_hat + half]), self.scale)
        return Interval(float(lo), float(mid), float(hi))

    def extrapolation_distance(self, ref_acc: float) -> float:
        """Distance in transformed units from `ref_acc` to the baselines' reference range (0 inside it)."""
        u0 = float(self._u(ref_acc))
        lo, hi = (float(v) for v in self._u(np.array(self.ref_range)))
        return max(0.0, lo - u0, u0 - hi)

    def _u(self, ref_acc: np.ndarray | float) -> np.ndarray:
        return transform(ref_acc, self.scale, self.ref_n)  # type: ignore[arg-type]

    def to_dict(self) -> dict[str, object]:
        return {
            "n": self.n, "slope": self.slope, "intercept": self.intercept, "r2": self.r2,
            "residual_se": self.residual_se, "ref_range": [self.ref_range[0], self.ref_range[1]],
            "scale": self.scale, "t_star": self.t_star, "confidence": self.confidence,
        }


def fit_line(
    ref_acc: Sequence[float] | np.ndarray,
    y_acc: Sequence[float] | np.ndarray,
    *,
    scale: Scale = "probit",
    ref_n: float | None = None,
    y_n: float | None = None,
    confidence: float = 0.95,
) -> LineFit:
    """Fit the baseline line by ordinary least squares in transformed space.

    Args:
        ref_acc: the baselines' reference-test accuracies.
        y_acc: the baselines' accuracies on the shifted set (or on one split of it).
        scale: "probit" (the paper's choice) or "logit".
        ref_n, y_n: number of evaluated examples behind each axis, used for clipping (None: tiny fixed clip).
        confidence: confidence level of the line's band.

    Raises:
        DataError: fewer than 3 baselines, or no spread in reference accuracy.
    """
    x = np.asarray(ref_acc, dtype=float)
    y = np.asarray(y_acc, dtype=float)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError("ref_acc and y_acc must be 1-D arrays of the same length")
    n = x.size
    if n < 3:
        raise DataError(f"need at least 3 baseline models to fit the line (got {n})")
    u = transform(x, scale, ref_n)
    v = transform(y, scale, y_n)
    u_mean = float(u.mean())
    ssx = float(((u - u_mean) ** 2).sum())
    if ssx <= 1e-12:
        raise DataError("the baseline models all have the same reference accuracy: the line cannot be fitted")
    slope = float(((u - u_mean) * (v - v.mean())).sum() / ssx)
    intercept = float(v.mean() - slope * u_mean)
    sse = float(((v - (slope * u + intercept)) ** 2).sum())
    sst = float(((v - v.mean()) ** 2).sum())
    # A flat y with an exact fit is a perfect (if uninformative) line; r² = 1 − SSE/SST is undefined there.
    r2 = 1.0 - sse / sst if sst > 1e-15 else (1.0 if sse <= 1e-15 else 0.0)
    return LineFit(
        n=n, slope=slope, intercept=intercept, r2=float(r2), residual_se=float(np.sqrt(sse / (n - 2))),
        ref_range=(float(x.min()), float(x.max())), scale=scale,
        t_star=float(stats.t.ppf(0.5 + confidence / 2, n - 2)), u_mean=u_mean, ssx=ssx,
        confidence=confidence, ref_n=ref_n, y_n=y_n,
    )


def effective_robustness(fit: LineFit, ref_acc: float, y_acc: float) -> Interval:
    """ER = y_acc − line(ref_acc) in accuracy units, with the line's band: (y − upper, y − mid, y − lower)."""
    band = fit.band(ref_acc)
    return Interval(y_acc - band.upper, y_acc - band.mid, y_acc - band.lower)


def share_of_drop_recovered(fit: LineFit, ref_acc: float, er: float) -> float | None:
    """ER divided by the baseline line's drop (ref_acc − predicted) at `ref_acc`; None when the line shows no drop."""
    drop = float(ref_acc - fit.predict(ref_acc))
    return float(er / drop) if drop > 1e-9 else None


# ---------------------------------------------------------------------------------------------------------------
# Nonparametric comparison (used when the line is too weak to trust)
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Comparison:
    """A model's y-accuracy against the best comparable baseline's.

    Comparators are the baselines whose reference accuracy is at or above the model's (`matched`); when none is,
    the `n_nearest` baselines closest in reference accuracy (an optimistic comparison for the baselines only if
    the model is *below* them, so a positive difference there is weaker evidence).
    """

    comparators: tuple[str, ...]
    matched: bool
    comparator_ref_acc: float
    comparator_y_acc: float
    model_y_acc: float
    difference: Interval | None
    direction: str  # "above" | "below" | "overlap" | "unknown" (no example counts)

    def to_dict(self) -> dict[str, object]:
        return {
            "comparators": list(self.comparators), "matched": self.matched,
            "comparator_ref_acc": self.comparator_ref_acc, "comparator_acc": self.comparator_y_acc,
            "model_acc": self.model_y_acc,
            "difference": self.difference.to_dict() if self.difference else None, "direction": self.direction,
        }


def comparable_baselines(baseline_ref: np.ndarray, model_ref: float, n_nearest: int = 3) -> tuple[np.ndarray, bool]:
    """Indices of the baselines at or above `model_ref` (matched=True), else of the `n_nearest` closest ones."""
    ref = np.asarray(baseline_ref, dtype=float)
    at_or_above = np.flatnonzero(ref >= model_ref)
    if at_or_above.size:
        return at_or_above, True
    return np.argsort(np.abs(ref - model_ref), kind="stable")[:n_nearest], False


def compare_nonparametric(
    baseline_names: Sequence[str],
    baseline_ref: Sequence[float] | np.ndarray,
    baseline_y: Sequence[float] | np.ndarray,
    model_ref: float,
    model_y: float,
    *,
    y_n: float | None = None,
    n_nearest: int = 3,
    confidence: float = 0.95,
) -> Comparison:
    """Compare a model with the best baseline at or above its reference accuracy (or the nearest ones).

    The best comparator (highest y-accuracy) is used, so a positive difference is conservative. With `y_n`
    (examples behind each y-accuracy) the difference gets a binomial interval and a direction.
    """
    names = list(baseline_names)
    ref = np.asarray(baseline_ref, dtype=float)
    y = np.asarray(baseline_y, dtype=float)
    chosen, matched = comparable_baselines(ref, model_ref, n_nearest)
    best = chosen[np.argmax(y[chosen])]
    diff: Interval | None = None
    direction = "unknown"
    if y_n is not None and y_n > 0:
        diff = difference_interval(model_y, y_n, float(y[best]), y_n, confidence)
        direction = "above" if diff.lower > 0 else "below" if diff.upper < 0 else "overlap"
    return Comparison(
        comparators=tuple(names[i] for i in chosen), matched=bool(matched), comparator_ref_acc=float(ref[best]),
        comparator_y_acc=float(y[best]), model_y_acc=float(model_y), difference=diff, direction=direction,
    )


# ---------------------------------------------------------------------------------------------------------------
# Diagnostics
# ---------------------------------------------------------------------------------------------------------------


def diagnose_fit(fit: LineFit, config: VerdictConfig, split: str = "shift") -> list[Check]:
    """Checks on the baseline line: number of baselines, r², and the spread of reference accuracy."""
    label = "" if split == "shift" else f" ({split})"
    checks: list[Check] = []
    # The baselines and their reference accuracies are shared by every split: check them once, on the whole shift.
    if split == "shift":
        checks += _baseline_checks(fit, config)
    r2_ok = fit.r2 >= config.min_r2
    checks.append(Check(
        f"line-fit{label}", "PASS" if r2_ok else "WARN",
        f"r² = {fit.r2:.2f} over {fit.n} baselines" + ("" if r2_ok else
                                                        f" (< {config.min_r2}): the baselines scatter widely "
                                                        "around the line or it is flat; each model's prediction "
                                                        "band shows whether its ER stands out of that scatter"),
    ))
    return checks


def _baseline_checks(fit: LineFit, config: VerdictConfig) -> list[Check]:
    if fit.n < config.min_baselines:
        count = Check("baselines", "WARN",
                      f"only {fit.n} baseline points (< {config.min_baselines}): the line's interval is wide")
    elif fit.n < config.recommended_baselines:
        count = Check("baselines", "WARN", f"{fit.n} baseline points (< {config.recommended_baselines} recommended)")
    else:
        count = Check("baselines", "PASS", f"{fit.n} baseline points")
    checks = [count]
    spread = fit.ref_range[1] - fit.ref_range[0]
    if spread < config.min_ref_spread:
        checks.append(Check(
            "ref-spread", "WARN",
            f"baselines span only {100 * spread:.1f} points of reference accuracy "
            f"(< {100 * config.min_ref_spread:.0f}): the slope is poorly determined",
        ))
    return checks
