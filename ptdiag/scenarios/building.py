"""What a scenario builder works with: parameters, samples, sides and pairs, class-balanced sampling, and the
image transforms (class tints, flips, inversion)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ptdiag.errors import UsageError
from ptdiag.scenarios.sources import SOURCES

FORMAT_VERSION = 1  # bump when the pixels or the folder layout a given set of parameters produces change
PALETTE_SEED = 0  # class colours are shared by reference and shift, and by every seed (paper: RandomState(0))
REFERENCE_SPLIT, SHIFT_SPLIT = "train", "test"
SUPPORT_KINDS = ("in-support", "out-of-support", "none")


# ---------------------------------------------------------------------------------------------------------------------
# Parameters


def positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise UsageError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def seed_param(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise UsageError(f"{name} must be a non-negative integer, got {value!r}")
    return int(value)


def fraction(low: float, high: float, *, open_ends: bool = False) -> Callable[[str, Any], float]:
    """Validator for a number in [low, high], or in (low, high) when ``open_ends``."""

    def check(name: str, value: Any) -> float:
        is_number = isinstance(value, (int, float, np.floating, np.integer)) and not isinstance(value, bool)
        inside = is_number and (low < value < high if open_ends else low <= value <= high)
        if not inside:
            interval = f"({low}, {high})" if open_ends else f"[{low}, {high}]"
            raise UsageError(f"{name} must be a number in {interval}, got {value!r}")
        return float(value)

    return check


def source_param(name: str, value: Any) -> str:
    if value not in SOURCES:
        raise UsageError(f"{name} must be one of {', '.join(SOURCES)}, got {value!r}")
    return str(value)


def optional_n_classes(name: str, value: Any) -> int | None:
    if value is None:
        return None
    value = positive_int(name, value)
    if value < 2:
        raise UsageError(f"{name} must be at least 2 (a classifier needs two classes), got {value}")
    return value


@dataclass(frozen=True)
class Param:
    """One scenario parameter: its default, a validator that returns the clean value, and a help line."""

    default: Any
    check: Callable[[str, Any], Any]
    help: str


COMMON_PARAMS: dict[str, Param] = {
    "n_reference": Param(
        4000, positive_int, "reference images (the pipeline splits them into train/val/test), class-balanced"
    ),
    "n_shift": Param(2000, positive_int, "shifted images; 2,000 keeps test noise near ±2 points at 95 %"),
    "seed": Param(0, seed_param, "seed of the image sampling and of the per-image draws"),
    "source": Param("fashion-mnist", source_param, "image source: reference from its train split, shift from test"),
    "n_classes": Param(None, optional_n_classes, "keep only the source's first N classes (default: all)"),
}
ALPHA = Param(0.25, fraction(0.0, 1.0, open_ends=True), "tint strength: pixel <- (1-alpha)*x + alpha*colour")


# ---------------------------------------------------------------------------------------------------------------------
# Data passed to and returned by scenario builders


@dataclass(frozen=True)
class Sample:
    """Grayscale source images drawn for one side: ``images`` uint8 (N, H, W), ``labels``, ``source_index``."""

    images: np.ndarray
    labels: np.ndarray
    source_index: np.ndarray


@dataclass(frozen=True)
class Side:
    """One side of a scenario as written: RGB images plus per-image ground truth.

    ``true_ratio`` is the density ratio p_ref(x)/p_shift(x) of each image, known analytically from the
    construction; ``columns`` holds extra per-image truth for truth.csv (e.g. the tint class, -1 for none).
    """

    images: np.ndarray
    sample: Sample
    true_ratio: np.ndarray
    columns: Mapping[str, np.ndarray] = field(default_factory=dict)


@dataclass(frozen=True)
class Pair:
    reference: Side
    shift: Side
    details: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class BuildContext:
    """What a builder gets: both source pools, sizes, and independent random streams per side."""

    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    num_classes: int
    n_reference: int
    n_shift: int
    reference_rng: np.random.Generator
    shift_rng: np.random.Generator
    shared_rng: np.random.Generator  # for choices both sides must agree on (e.g. which classes are minority)

    def sample_reference(self, class_weights: np.ndarray | None = None) -> Sample:
        """Draw ``n_reference`` train images with exact per-class counts (balanced unless weights are given)."""
        return _sample(
            self.train_images,
            self.train_labels,
            self.n_reference,
            self.num_classes,
            class_weights,
            self.reference_rng,
            "n_reference",
            REFERENCE_SPLIT,
        )

    def sample_shift(self, class_weights: np.ndarray | None = None) -> Sample:
        """Draw ``n_shift`` test images with exact per-class counts (balanced unless weights are given)."""
        return _sample(
            self.test_images,
            self.test_labels,
            self.n_shift,
            self.num_classes,
            class_weights,
            self.shift_rng,
            "n_shift",
            SHIFT_SPLIT,
        )


def class_counts(n: int, weights: np.ndarray) -> np.ndarray:
    """Split ``n`` into integer per-class counts proportional to ``weights`` (largest remainder, ties to low index)."""
    quotas = n * np.asarray(weights, dtype=float) / np.sum(weights)
    counts = np.floor(quotas).astype(np.int64)
    by_remainder = np.argsort(-(quotas - counts), kind="stable")
    counts[by_remainder[: n - counts.sum()]] += 1
    return counts


def _sample(images, labels, n, num_classes, class_weights, rng, what, split) -> Sample:
    weights = np.ones(num_classes) if class_weights is None else np.asarray(class_weights, dtype=float)
    counts = class_counts(n, weights)
    picked = []
    for k, count in enumerate(counts):
        pool = np.flatnonzero(labels == k)
        if count < 1:
            raise UsageError(f"{what}={n} is too small: class {k} would get no image; use at least {num_classes}")
        if count > len(pool):
            raise UsageError(
                f"{what}={n} needs {count} images of class {k}, but the source's {split} split has {len(pool)}; "
                f"lower {what}"
            )
        picked.append(rng.choice(pool, size=count, replace=False))
    index = np.sort(np.concatenate(picked))
    return Sample(images[index], labels[index], index)


# ---------------------------------------------------------------------------------------------------------------------
# Pixel transforms (public: tests and docs use them as the definition)


def class_palette(num_classes: int) -> np.ndarray:
    """Class colours, uniform in [0, 1]^3 from a fixed seed: ``(num_classes, 3)`` float64."""
    return np.random.default_rng(PALETTE_SEED).uniform(size=(num_classes, 3))


def to_rgb(images: np.ndarray) -> np.ndarray:
    """Grayscale uint8 (N, H, W) → RGB uint8 (N, H, W, 3) with R = G = B."""
    return np.repeat(images[..., None], 3, axis=-1)


def tint(images: np.ndarray, colours: np.ndarray, alpha: float) -> np.ndarray:
    """Tint grayscale uint8 images: pixel ← (1−alpha)·x + alpha·colour in [0, 1] units, rounded to uint8.

    Args:
        images: uint8 (N, H, W).
        colours: (N, 3) in [0, 1], one colour per image.
        alpha: Tint strength; the paper uses 0.25.
    """
    out = np.empty((*images.shape, 3), dtype=np.uint8)
    for start in range(0, len(images), 1024):  # float64 chunks: exact rounding without a 100 MB temporary
        x = images[start : start + 1024, :, :, None] / 255.0
        c = colours[start : start + 1024, None, None, :]
        out[start : start + 1024] = np.rint(255.0 * ((1 - alpha) * x + alpha * c))
    return out


def vflip(images: np.ndarray) -> np.ndarray:
    """Flip images upside down (the paper's vertical flip)."""
    return images[:, ::-1, :]


def invert(images: np.ndarray) -> np.ndarray:
    """Photographic negative: 255 − x."""
    return 255 - images
