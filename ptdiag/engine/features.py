"""Frozen features of a pre-trained backbone and the linear probe (LP) on them.

Features are computed once per image (the pipeline caches them as a job result); the linear probe and the support
split's domain classifier both read them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler
from torch import nn

from ptdiag.engine.folding import FoldOnFirstCall
from ptdiag.engine.train import Normalizer, _autocast, _batches, forward_in_chunks, prepare_model
from ptdiag.stats.fits import map_fits

DEFAULT_PROBE_CS = (0.01, 0.1, 1.0)


class _PooledFeatures(nn.Module):
    """timm model -> pooled pre-logit features."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.forward_head(self.model.forward_features(x), pre_logits=True)


@torch.no_grad()
def extract_features(model: nn.Module, images: np.ndarray, normalize: Normalizer, batch_size: int = 256) -> np.ndarray:
    """Pooled penultimate features (N, D) float32, model in eval mode (BatchNorm folded)."""
    fast = FoldOnFirstCall(_PooledFeatures(prepare_model(model, normalize.device)).eval())
    outs = []
    for idx in _batches(len(images), batch_size, None):
        with _autocast(normalize.device):
            outs.append(forward_in_chunks(fast, normalize(images[idx])).float().cpu().numpy())
    return np.concatenate(outs).astype(np.float32)


@dataclass(frozen=True)
class LinearProbe:
    """A multinomial logistic-regression head with its standardisation folded into weight and bias."""

    weight: np.ndarray  # (K, D), applies to raw features
    bias: np.ndarray  # (K,)
    C: float
    val_acc: float
    grid: dict[float, float]  # C -> validation accuracy

    def logits(self, features: np.ndarray) -> np.ndarray:
        return features @ self.weight.T + self.bias

    def predict(self, features: np.ndarray) -> np.ndarray:
        return self.logits(features).argmax(1)


def fit_linear_probe(train_x: np.ndarray, train_y: np.ndarray, val_x: np.ndarray, val_y: np.ndarray,
                     num_classes: int, cs: tuple[float, ...] = DEFAULT_PROBE_CS, seed: int = 0) -> LinearProbe:
    """Pick the L2 strength C on the reference validation split, refit on train, fold the scaler into the head."""
    scaler = StandardScaler().fit(train_x)
    tx, vx = scaler.transform(train_x), scaler.transform(val_x)
    # One fit per C, side by side with one BLAS thread each (faster on small matrices: ptdiag.stats.fits).
    models = map_fits(lambda c: LogisticRegression(C=c, max_iter=300, random_state=seed).fit(tx, train_y), cs)
    fitted = dict(zip(cs, models, strict=True))
    grid = {c: float((clf.predict(vx) == val_y).mean()) for c, clf in fitted.items()}
    best = max(cs, key=lambda c: (grid[c], -c))  # ties -> stronger regularisation
    clf = fitted[best]
    coef = np.zeros((num_classes, train_x.shape[1]))
    intercept = np.full(num_classes, -1e4)  # classes absent from training can never win
    rows = clf.coef_ if len(clf.classes_) > 2 else np.vstack([-clf.coef_[0] / 2, clf.coef_[0] / 2])
    icpt = clf.intercept_ if len(clf.classes_) > 2 else np.array([-clf.intercept_[0] / 2, clf.intercept_[0] / 2])
    coef[clf.classes_] = rows
    intercept[clf.classes_] = icpt
    weight = coef / scaler.scale_
    bias = intercept - weight @ scaler.mean_
    return LinearProbe(weight.astype(np.float32), bias.astype(np.float32), float(best), grid[best], grid)


def load_head(model: nn.Module, probe: LinearProbe) -> None:
    """Initialise a timm model's classifier from a linear probe (the LP step of LP-FT)."""
    head = model.get_classifier()
    with torch.no_grad():
        head.weight.copy_(torch.from_numpy(probe.weight))
        head.bias.copy_(torch.from_numpy(probe.bias))
