"""Importance reweighting of the reference training set towards the shift, with an (x, y) density ratio.

An input-only ratio p_shift(x)/p_ref(x) misses biases that are an interaction of input and class (the tint
scenario: the colour alone is equally common in both sets). Both sets are labelled, so the ratio is estimated per
class: for each class c a domain classifier on [reference examples of c; shifted examples of c] gives, out of
fold, the odds q/(1−q), and w(x, y) = odds · n_ref / n_shift = p_shift(x, y) / p_ref(x, y).

Weights are clipped at a high quantile and self-normalised to mean 1; the effective sample size is reported.
When the shifted set lies outside the reference support the weights degenerate (most reference examples get a
weight near 0): their raw mean, which estimates the share of the shifted distribution the reference covers, and
the effective sample size both say so, and the remedy is reported as not applicable.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from ptdiag.remedies.heads import DEFAULT_C, effective_sample_share, fit_head

CLIP_QUANTILE = 0.99
MIN_ESS_SHARE = 0.05  # below this the reweighted fit rests on a handful of reference examples
MIN_COVERAGE = 0.2  # the reference covers less than this share of the shifted distribution
DOMAIN_C = 1.0  # weak regularisation: a heavily regularised domain classifier compresses the ratio towards 1
NOT_REACHABLE = "reweighting cannot reach inputs the reference never shows"


@dataclass(frozen=True)
class DensityWeights:
    """Weights of the reference training examples and how trustworthy they are."""

    weights: np.ndarray  # clipped, self-normalised (mean 1)
    raw_mean: float  # mean unclipped ratio: estimates the share of the shifted distribution the reference covers
    ess_share: float  # effective sample size / n
    clip_at: float  # raw weights above this were clipped

    @property
    def degenerate(self) -> bool:
        return self.ess_share < MIN_ESS_SHARE or self.raw_mean < MIN_COVERAGE

    def note(self) -> str:
        if not self.degenerate:
            return (f"(x, y) density-ratio weights, clipped at the {100 * CLIP_QUANTILE:g}th percentile; effective "
                    f"sample size {100 * self.ess_share:.0f} % of the reference training set")
        return (f"not applicable: the weights degenerate (they rest on {100 * self.ess_share:.1f} % of the reference "
                f"training set, its effective sample size; {self.coverage_words()}): {NOT_REACHABLE}")

    def coverage_words(self) -> str:
        """The share of the shifted distribution the reference covers, or why it cannot be said."""
        if self.raw_mean > 1.5:  # the mean ratio estimates a share (≤ 1); far above, a few huge ratios dominate it
            return (f"the density ratio is unstable (its mean over the reference is {self.raw_mean:.3g} where "
                    "full coverage gives 1), so the share of the shifted distribution it covers cannot be estimated")
        return f"the reference covers about {100 * min(self.raw_mean, 1.0):.0f} % of the shifted distribution"


def xy_density_weights(ref_x: np.ndarray, ref_y: np.ndarray, shift_x: np.ndarray, shift_y: np.ndarray,
                       C: float = DOMAIN_C, seed: int = 0, inner_folds: int = 3) -> DensityWeights:
    """Class-conditional domain classifiers → out-of-fold w(x, y) for every reference example."""
    raw = np.zeros(len(ref_y))
    n_ref, n_shift = len(ref_y), max(len(shift_y), 1)
    for c in np.unique(ref_y):
        ref_c, shift_c = ref_x[ref_y == c], shift_x[shift_y == c]
        k = min(inner_folds, len(ref_c), len(shift_c))
        if k < 2:  # too few to learn p(x | c): the class-prior ratio alone
            raw[ref_y == c] = (len(shift_c) / n_shift) / (len(ref_c) / n_ref)
            continue
        x = np.concatenate([ref_c, shift_c])
        d = np.r_[np.zeros(len(ref_c)), np.ones(len(shift_c))]
        model = make_pipeline(StandardScaler(),
                              LogisticRegression(C=C, max_iter=100, tol=1e-3, random_state=seed))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            q = cross_val_predict(model, x, d, cv=StratifiedKFold(k, shuffle=True, random_state=seed),
                                  method="predict_proba")[: len(ref_c), 1]
        q = np.clip(q, 1e-6, 1 - 1e-6)
        raw[ref_y == c] = q / (1 - q) * n_ref / n_shift
    clip_at = float(np.quantile(raw, CLIP_QUANTILE)) if len(raw) else 0.0
    clipped = np.minimum(raw, clip_at)
    weights = clipped / clipped.mean() if clipped.mean() > 0 else np.ones_like(clipped)
    return DensityWeights(weights, float(raw.mean()), effective_sample_share(weights), clip_at)


@dataclass
class Reweighted:
    """Cross-fitted reweighted linear probe: held-out predictions, per-fold weights and diagnostics."""

    pred_test: np.ndarray
    pred_shift: np.ndarray
    scored_by: np.ndarray
    fitted_on: list[np.ndarray]  # shifted examples whose labels shaped each fold's weights
    fold_weights: list[DensityWeights]

    @property
    def degenerate(self) -> bool:
        return any(w.degenerate for w in self.fold_weights)

    @property
    def ess_share(self) -> float:
        return float(np.mean([w.ess_share for w in self.fold_weights]))

    @property
    def coverage(self) -> float:
        return float(np.mean([w.raw_mean for w in self.fold_weights]))

    @property
    def weights(self) -> np.ndarray:
        """Per reference training example: the mean of the folds' weights (what predictions.parquet exports)."""
        return np.mean([w.weights for w in self.fold_weights], axis=0)

    def note(self) -> str:
        worst = min(self.fold_weights, key=lambda w: (not w.degenerate, w.ess_share))
        return worst.note()


def crossfit_reweighted_probe(ref_x: np.ndarray, ref_y: np.ndarray, test_x: np.ndarray, shift_x: np.ndarray,
                              shift_y: np.ndarray, folds: np.ndarray, C: float = DEFAULT_C,
                              seed: int = 0) -> Reweighted:
    """Per fold: weights from the other folds' shifted examples, a weighted probe, scores on the held-out fold."""
    n_folds = int(folds.max()) + 1
    pred_shift = np.full(len(shift_y), -1, dtype=np.int16)
    pred_test = np.full(len(test_x), -1, dtype=np.int16)
    test_fold = np.arange(len(test_x)) % n_folds
    fitted_on, fold_weights = [], []
    for k in range(n_folds):
        train, held = np.flatnonzero(folds != k), np.flatnonzero(folds == k)
        weights = xy_density_weights(ref_x, ref_y, shift_x[train], shift_y[train], seed=seed)
        head = fit_head(ref_x, ref_y, weights.weights, C, seed)
        pred_shift[held] = head.predict(shift_x[held])
        pred_test[test_fold == k] = head.predict(test_x[test_fold == k])
        fitted_on.append(train)
        fold_weights.append(weights)
    return Reweighted(pred_test, pred_shift, folds.astype(np.int16), fitted_on, fold_weights)
