"""Choosing a small de-biased set: which shifted images to label, or which reference images to keep.

The paper's second implication: pre-training does not fix dataset bias but lets a model learn from little data, so
a small de-biased set can beat a large biased one. Two selections, both pure numpy:

- **From the shifted set** (`select_shift`): images to label, spread over the predicted classes and over how thinly
  the reference covers them — strata of predicted class × density-ratio band (out of support; in support with a
  low, middle or high ratio) — with square-root allocation (small strata get more than their share, large ones
  less), and within a stratum k-center greedy on the frozen features (each pick the image farthest from
  those already chosen, starting from the least covered), so near-duplicates are not labelled twice.
- **From the reference set** (`select_reference`): a subset whose (image, label) distribution matches the shifted
  set's, by importance resampling without replacement on the class-conditional density-ratio weights the
  reweighting remedy estimated (Efraimidis–Spirakis keys u^(1/w)); refused when those weights degenerate.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

BANDS = ("out of support", "low ratio", "middle ratio", "high ratio")  # the last three: in support


@dataclass(frozen=True)
class Selection:
    """Chosen rows of the pool, in pick order, each with its stratum and the reason it was chosen."""

    index: np.ndarray
    stratum: list[str]
    reason: list[str]


def ratio_bands(rho: np.ndarray, epsilon: float) -> np.ndarray:
    """Band of each shifted image (an index into `BANDS`): out of support below ε, else the in-support part's
    ratio terciles (low ratio = the reference covers it thinly)."""
    rho = np.asarray(rho, dtype=float)
    band = np.zeros(len(rho), dtype=int)
    inside = rho >= epsilon
    if inside.any():
        cuts = np.quantile(rho[inside], [1 / 3, 2 / 3])
        band[inside] = 1 + np.searchsorted(cuts, rho[inside], side="right")
    return band


def sqrt_allocation(sizes: np.ndarray, n: int) -> np.ndarray:
    """Split `n` picks over strata ∝ √size (largest remainders), never more than a stratum holds: small strata get
    more than their share of images, large ones less, so a set spreads without a handful of images per tiny
    stratum crowding out the large ones."""
    sizes = np.asarray(sizes, dtype=int)
    take = np.zeros(len(sizes), dtype=int)
    while take.sum() < min(n, int(sizes.sum())):
        room = sizes > take
        share = np.where(room, np.sqrt(sizes), 0.0)
        target = share / share.sum() * (n - take[~room].sum())
        deficit = np.where(room, target - take, -np.inf)
        take[int(np.argmax(deficit))] += 1
    return take


def k_center(features: np.ndarray, k: int, first: int) -> list[int]:
    """k-center greedy: start at row `first`, then repeatedly the row farthest from every row chosen so far."""
    x = np.asarray(features, dtype=np.float32)
    chosen = [first]
    distance = np.linalg.norm(x - x[first], axis=1)
    while len(chosen) < min(k, len(x)):
        nxt = int(np.argmax(distance))
        chosen.append(nxt)
        distance = np.minimum(distance, np.linalg.norm(x - x[nxt], axis=1))
    return chosen


def select_shift(features: np.ndarray, predicted: np.ndarray, rho: np.ndarray, epsilon: float, n: int,
                 class_names: list[str]) -> Selection:
    """`n` shifted images to label (see the module docstring)."""
    band = ratio_bands(rho, epsilon)
    keys = sorted({(int(c), int(b)) for c, b in zip(predicted, band, strict=True)})
    members = [np.flatnonzero((predicted == c) & (band == b)) for c, b in keys]
    take = sqrt_allocation(np.array([len(m) for m in members]), n)
    index, stratum, reason = [], [], []
    for (c, b), rows, k in zip(keys, members, take, strict=True):
        if k == 0:
            continue
        first = int(np.argmin(rho[rows]))  # the least covered image of the stratum
        for rank, local in enumerate(k_center(features[rows], k, first)):
            i = int(rows[local])
            index.append(i)
            stratum.append(f"predicted {class_names[c]} / {BANDS[b]}")
            why = "least covered by the reference" if rank == 0 else "farthest from the images already chosen"
            reason.append(f"{why} in its stratum (density ratio {rho[i]:.3g}; {len(rows)} images, {k} chosen)")
    return Selection(np.array(index, dtype=int), stratum, reason)


def select_reference(weights: np.ndarray, labels: np.ndarray, n: int, class_names: list[str],
                     seed: int = 0) -> Selection:
    """`n` reference images drawn without replacement with probability ∝ their density-ratio weight."""
    w = np.asarray(weights, dtype=float)
    positive = np.flatnonzero(w > 0)
    rng = np.random.default_rng(seed)
    keys = rng.random(len(positive)) ** (1.0 / w[positive])
    chosen = positive[np.argsort(-keys, kind="stable")[:n]]
    total = float(w.sum())
    return Selection(chosen, [f"class {class_names[int(labels[i])]}" for i in chosen],
                     [f"importance resampling: weight {w[i]:.3g} ({100 * w[i] / total:.2g} % of the total)"
                      for i in chosen])

