"""Last-layer retraining (DFR, method.md §6.3), cross-fitted over the labelled shifted set.

The shifted set is split into folds; the head of fold k is fitted on the other folds only (class- or
class×group-balanced, optionally together with the reference training set) and scores fold k. Every shifted
example therefore gets exactly one prediction, from a head that never saw it. The reference test set is shared
between the heads (test example i is scored by head i mod folds); no head saw it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ptdiag.remedies.heads import DEFAULT_C, balanced_weights, fit_head

LABEL_BUDGETS = (5, 10, 25, 50, 100)


@dataclass
class CrossFit:
    """Held-out predictions of a cross-fitted remedy.

    Attributes:
        pred_test: prediction per reference-test example.
        pred_shift: held-out prediction per shifted example.
        scored_by: per shifted example, the fold whose head produced its prediction.
        fitted_on: per fold, the shifted examples (indices) its head was fitted on.
        budgets: n_per_class of each label-budget point.
        budget_preds: (len(budgets), n_shift) held-out predictions of the heads fitted on that many per class.
    """

    pred_test: np.ndarray
    pred_shift: np.ndarray
    scored_by: np.ndarray
    fitted_on: list[np.ndarray]
    budgets: list[int] = field(default_factory=list)
    budget_preds: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), dtype=np.int16))

    @property
    def n_labelled(self) -> int:
        """Labelled shifted examples one head was fitted on (the mean over folds, rounded)."""
        return int(round(np.mean([len(f) for f in self.fitted_on]))) if self.fitted_on else 0


def feasible_budgets(labels: np.ndarray, folds: np.ndarray, budgets: tuple[int, ...] = LABEL_BUDGETS) -> list[int]:
    """Per-class budgets every fold's training part can supply for every class it holds."""
    smallest = min(np.bincount(labels[folds != k])[np.unique(labels[folds != k])].min()
                   for k in np.unique(folds))
    return [b for b in budgets if b <= smallest]


def crossfit_last_layer(shift_x: np.ndarray, shift_y: np.ndarray, test_x: np.ndarray, folds: np.ndarray, *,
                        groups: np.ndarray | None = None, ref_x: np.ndarray | None = None,
                        ref_y: np.ndarray | None = None, C: float = DEFAULT_C,
                        budgets: tuple[int, ...] = LABEL_BUDGETS, seed: int = 0) -> CrossFit:
    """Fit one head per fold on the other folds' shifted examples (plus the reference set when given)."""
    n_folds = int(folds.max()) + 1
    pred_shift = np.full(len(shift_y), -1, dtype=np.int16)
    pred_test = np.full(len(test_x), -1, dtype=np.int16)
    fitted_on: list[np.ndarray] = []
    points = feasible_budgets(shift_y, folds, budgets)
    budget_preds = np.full((len(points), len(shift_y)), -1, dtype=np.int16)
    test_fold = np.arange(len(test_x)) % n_folds
    rng = np.random.default_rng(seed)
    for k in range(n_folds):
        train, held = np.flatnonzero(folds != k), np.flatnonzero(folds == k)
        fitted_on.append(train)
        head = _fit(shift_x, shift_y, train, groups, ref_x, ref_y, C, seed)
        pred_shift[held] = head.predict(shift_x[held])
        pred_test[test_fold == k] = head.predict(test_x[test_fold == k])
        for b, n_per_class in enumerate(points):
            subset = _per_class_sample(shift_y, train, n_per_class, rng)
            budget_preds[b, held] = _fit(shift_x, shift_y, subset, groups, ref_x, ref_y, C, seed).predict(shift_x[held])
    return CrossFit(pred_test, pred_shift, folds.astype(np.int16), fitted_on, points, budget_preds)


def _fit(shift_x, shift_y, index, groups, ref_x, ref_y, C, seed):
    weights = balanced_weights(shift_y[index], None if groups is None else groups[index])
    if ref_x is None:
        return fit_head(shift_x[index], shift_y[index], weights, C, seed)
    # Reference and shifted examples each carry half of the total weight, both class-balanced.
    ref_w = balanced_weights(ref_y)
    x = np.concatenate([ref_x, shift_x[index]])
    y = np.concatenate([ref_y, shift_y[index]])
    w = np.concatenate([ref_w / ref_w.sum(), weights / weights.sum()]) * len(y) / 2
    return fit_head(x, y, w, C, seed)


def _per_class_sample(labels: np.ndarray, index: np.ndarray, n_per_class: int, rng: np.random.Generator) -> np.ndarray:
    chosen = [rng.permutation(index[labels[index] == c])[:n_per_class] for c in np.unique(labels[index])]
    return np.sort(np.concatenate(chosen))
