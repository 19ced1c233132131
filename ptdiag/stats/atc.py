"""Average Thresholded Confidence (ATC; Garg et al., ICLR 2022): shifted accuracy from confidence, without labels.

On labelled reference data, find the threshold t on a confidence score such that the share of examples scoring
above t equals the accuracy; the predicted accuracy on the shifted set is then the share of its examples above t.
Two scores: the largest softmax probability (ATC-MC) and the negative entropy of the softmax (ATC-NE, the better
of the two in the paper). Pure numpy: no torch import.
"""

from __future__ import annotations

import numpy as np

SCORES = ("max_softmax", "neg_entropy")  # the rows of `confidence_scores`


def confidence_scores(logits: np.ndarray) -> np.ndarray:
    """(2, n) float16: each prediction's largest softmax probability and its negative entropy."""
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=1, keepdims=True)
    p = np.exp(z)
    p /= p.sum(axis=1, keepdims=True)
    neg_entropy = (p * np.log(np.clip(p, 1e-12, None))).sum(axis=1)
    return np.stack([p.max(axis=1), neg_entropy]).astype(np.float16)


def atc_threshold(scores: np.ndarray, correct: np.ndarray) -> float:
    """The threshold t with mean(scores > t) = mean(correct) on labelled reference examples."""
    scores = np.sort(np.asarray(scores, dtype=np.float64))
    accuracy = float(np.mean(correct))
    n_above = int(round(accuracy * len(scores)))
    if n_above <= 0:
        return float(scores[-1])
    if n_above >= len(scores):
        return float(scores[0]) - 1.0
    return float(scores[len(scores) - n_above - 1])


def atc_estimate(ref_scores: np.ndarray, ref_correct: np.ndarray, shift_scores: np.ndarray) -> float:
    """ATC's predicted shifted accuracy: the share of shifted examples scoring above the reference threshold."""
    return float(np.mean(np.asarray(shift_scores, dtype=np.float64) > atc_threshold(ref_scores, ref_correct)))
