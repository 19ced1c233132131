"""Linear heads on cached features: balanced example weights, cross-fitting folds, a standardised logistic head."""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.decomposition import PCA
from sklearn.dummy import DummyClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import KFold, StratifiedKFold
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

DEFAULT_C = 0.1
MAX_DIM = 128  # heads are fitted on at most this many principal components (keeps remedies cheap)


def cells(labels: np.ndarray, groups: np.ndarray | None = None) -> np.ndarray:
    """One id per (class) or, with groups, per (class, group) cell."""
    if groups is None:
        return np.asarray(labels).astype(str)
    return np.array([f"{y}|{g}" for y, g in zip(labels, groups, strict=True)])


def balanced_weights(labels: np.ndarray, groups: np.ndarray | None = None) -> np.ndarray:
    """Example weights that give every class (or class × group cell) the same total weight; mean 1."""
    if len(labels) == 0:
        return np.zeros(0)
    _, inverse, counts = np.unique(cells(labels, groups), return_inverse=True, return_counts=True)
    weights = 1.0 / counts[inverse]
    return weights * len(weights) / weights.sum()


def crossfit_folds(labels: np.ndarray, groups: np.ndarray | None = None, n_folds: int = 2,
                   seed: int = 0) -> np.ndarray:
    """Fold id per example, stratified by cell (then by class, then plain) as far as the counts allow."""
    n = len(labels)
    folds = np.zeros(n, dtype=np.int64)
    x = np.zeros((n, 1))
    for strata in (cells(labels, groups), np.asarray(labels), None):
        if strata is not None and np.unique(strata, return_counts=True)[1].min() < n_folds:
            continue
        splitter = (StratifiedKFold(n_folds, shuffle=True, random_state=seed) if strata is not None
                    else KFold(n_folds, shuffle=True, random_state=seed))
        for k, (_, held) in enumerate(splitter.split(x, strata)):
            folds[held] = k
        return folds
    raise ValueError(f"cannot split {n} examples into {n_folds} folds")


def fit_head(x: np.ndarray, y: np.ndarray, weights: np.ndarray | None = None, C: float = DEFAULT_C,
             seed: int = 0) -> Pipeline | DummyClassifier:
    """Standardise, then multinomial L2 logistic regression with example weights (one class: a constant)."""
    if len(np.unique(y)) < 2:
        return DummyClassifier(strategy="most_frequent").fit(x, y)
    model = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=300, random_state=seed))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # lbfgs convergence warnings: the capped iterations are intended
        model.fit(x, y, logisticregression__sample_weight=weights)
    return model


def effective_sample_share(weights: np.ndarray) -> float:
    """Kish effective sample size as a share of n: (Σw)² / (n·Σw²)."""
    w = np.asarray(weights, dtype=float)
    total = float((w ** 2).sum())
    return float(w.sum() ** 2 / (len(w) * total)) if total > 0 and len(w) else 0.0


def reduce_features(parts: dict[str, np.ndarray], fit_on: str = "train", dim: int = MAX_DIM,
                    seed: int = 0) -> dict[str, np.ndarray]:
    """Project every part on the top `dim` principal components of `parts[fit_on]` (reference data only)."""
    if parts[fit_on].shape[1] <= dim:
        return parts
    pca = PCA(min(dim, len(parts[fit_on])), random_state=seed).fit(parts[fit_on])
    return {name: pca.transform(x).astype(np.float32) for name, x in parts.items()}
