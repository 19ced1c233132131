"""Shifted accuracy without shifted labels: agreement-on-the-line (Baek et al., NeurIPS 2022).

When a family of models has accuracy on the line — probit(shifted accuracy) = a · probit(reference accuracy) + b —
the *agreement* of pairs of those models (the share of examples on which both predict the same class, which needs no
label) tends to lie on a line with the same slope a and bias b. Fitting the agreement line on the unlabelled shifted
set then gives each model's shifted accuracy:

- **ALine-S**: probit(acc'_i) = â · probit(acc_i) + b̂, with (â, b̂) the agreement line's fit.
- **ALine-D**: for every pair, ½(x_i + x_j) = probit(agr'_ij) + â · (½(probit acc_i + probit acc_j) − probit agr_ij),
  solved for x_i = probit(acc'_i) by least squares (each model's estimate uses its own agreements, so a model off
  the family's line can be estimated off it).

Whether the premise holds is a measured question, and this module reports the diagnostics the estimate stands on:
the agreement line's r², and the spread of the reference agreements (pairs that all agree ≈ 1 fix no line). A good
fit is necessary, not sufficient: the agreement and accuracy lines can have different intercepts on some shifts
(measured in docs/VALIDATION.md), which only labelled validation can reveal.

Pure numpy/scipy: no torch import.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ptdiag.stats.line import inverse_transform, transform


def pairwise_agreement(predictions: np.ndarray) -> np.ndarray:
    """(M, M) share of examples on which models i and j predict the same class; `predictions` is (M, n)."""
    predictions = np.asarray(predictions)
    m = len(predictions)
    out = np.ones((m, m))
    for i in range(m):
        out[i, i + 1:] = (predictions[i + 1:] == predictions[i]).mean(axis=1)
        out[i + 1:, i] = out[i, i + 1:]
    return out


@dataclass(frozen=True)
class AgreementLine:
    """The agreement line's fit over the model pairs: probit(agreement on the shift) = slope · probit(agreement on
    the reference) + intercept."""

    slope: float
    intercept: float
    r2: float
    n_pairs: int
    ref_spread: float  # range of the pairs' probit reference agreement


@dataclass(frozen=True)
class AgreementEstimate:
    """Estimated shifted accuracies (fractions, one per model) by ALine-S and ALine-D, and the line they rest on."""

    line: AgreementLine
    aline_s: np.ndarray
    aline_d: np.ndarray


def fit_agreement_line(ref_agreement: np.ndarray, shift_agreement: np.ndarray, n_ref: int | None = None,
                       n_shift: int | None = None) -> AgreementLine:
    """Least-squares line through the pairs (i < j) in probit space (agreements over `n_ref` / `n_shift` examples,
    clipped as `ptdiag.stats.line.transform` clips accuracies)."""
    iu = np.triu_indices(len(ref_agreement), k=1)
    x, y = transform(ref_agreement[iu], "probit", n_ref), transform(shift_agreement[iu], "probit", n_shift)
    if len(x) < 2 or np.ptp(x) == 0:
        return AgreementLine(float("nan"), float("nan"), float("nan"), len(x), float(np.ptp(x)) if len(x) else 0.0)
    slope, intercept = np.polyfit(x, y, 1)
    resid = y - (slope * x + intercept)
    total = np.sum((y - y.mean()) ** 2)
    r2 = 1.0 - np.sum(resid**2) / total if total > 0 else 0.0
    return AgreementLine(float(slope), float(intercept), float(r2), len(x), float(np.ptp(x)))


def aline_d(ref_acc: np.ndarray, ref_agreement: np.ndarray, shift_agreement: np.ndarray, slope: float,
            n_ref: int | None = None, n_shift: int | None = None) -> np.ndarray:
    """ALine-D: each model's probit shifted accuracy from its pairs' agreements (least squares over pairs)."""
    m = len(ref_acc)
    i, j = np.triu_indices(m, k=1)
    design = np.zeros((len(i), m))
    design[np.arange(len(i)), i] = 0.5
    design[np.arange(len(i)), j] = 0.5
    pa = transform(ref_acc, "probit", n_ref)
    target = transform(shift_agreement[i, j], "probit", n_shift) + slope * (
        0.5 * (pa[i] + pa[j]) - transform(ref_agreement[i, j], "probit", n_ref))
    solution, *_ = np.linalg.lstsq(design, target, rcond=None)
    return inverse_transform(solution, "probit")


def estimate_shift_accuracy(ref_acc: np.ndarray, ref_pred: np.ndarray, shift_pred: np.ndarray) -> AgreementEstimate:
    """Estimate each model's shifted accuracy from its labelled reference accuracy and the predicted classes of
    every model on the reference-test (`ref_pred`, (M, n_ref)) and shifted (`shift_pred`, (M, n_shift)) sets.

    Needs at least 3 models (ALine-D's pair system has M unknowns and M(M−1)/2 equations)."""
    ref_acc = np.asarray(ref_acc, dtype=float)
    if len(ref_acc) < 3:
        raise ValueError(f"agreement-on-the-line needs at least 3 models, got {len(ref_acc)}")
    ref_agreement, shift_agreement = pairwise_agreement(ref_pred), pairwise_agreement(shift_pred)
    n_ref, n_shift = np.shape(ref_pred)[1], np.shape(shift_pred)[1]
    line = fit_agreement_line(ref_agreement, shift_agreement, n_ref, n_shift)
    if not np.isfinite(line.slope):
        nan = np.full(len(ref_acc), np.nan)
        return AgreementEstimate(line, nan, nan)
    s = inverse_transform(line.slope * transform(ref_acc, "probit", n_ref) + line.intercept, "probit")
    d = aline_d(ref_acc, ref_agreement, shift_agreement, line.slope, n_ref, n_shift)
    return AgreementEstimate(line, s, d)
