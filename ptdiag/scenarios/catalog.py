"""The known-answer scenarios, registered by name (method §5 and §8; docs/SCENARIOS.md describes each)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ptdiag.scenarios.building import (
    ALPHA,
    PALETTE_SEED,
    BuildContext,
    Pair,
    Param,
    Sample,
    Side,
    class_palette,
    fraction,
    invert,
    tint,
    to_rgb,
    vflip,
)
from ptdiag.scenarios.registry import register_scenario


def _plain_side(sample: Sample, transform: Callable[[np.ndarray], np.ndarray] | None, ratio: float) -> Side:
    images = sample.images if transform is None else transform(sample.images)
    return Side(to_rgb(images), sample, np.full(len(sample.labels), ratio))


_TINT_RATIO = (
    "K·P_ref(colour|class): 1−p for an off-class tint (≈0.5 at p=0.5, in-support at ε=0.2), 1−p+pK for the "
    "class's own tint; shift images are random-class tints"
)


@register_scenario(
    "tint-bias",
    description="reference: class-correlated colour tint (own colour with prob. p); shift: random-class tints",
    expected=("dataset-bias",),
    support="in-support",
    paper="paper §5.1, App. B.3, C.1.2; method.md §5, §8.1",
    true_ratio=_TINT_RATIO,
    params={
        "p": Param(0.5, fraction(0.0, 1.0), "probability a reference image gets its own class's colour"),
        "alpha": ALPHA,
    },
)
def _tint_bias(ctx: BuildContext, *, p: float, alpha: float) -> Pair:
    palette = class_palette(ctx.num_classes)
    reference = ctx.sample_reference()
    spurious = ctx.reference_rng.random(len(reference.labels)) < p
    random_class = ctx.reference_rng.integers(ctx.num_classes, size=len(reference.labels))
    ref_tint = np.where(spurious, reference.labels, random_class)
    shift = ctx.sample_shift()
    shift_tint = ctx.shift_rng.integers(ctx.num_classes, size=len(shift.labels))

    def ratio(labels: np.ndarray, tints: np.ndarray) -> np.ndarray:
        # p_ref/p_shift = P_ref(colour | class) / (1/K), with P_ref(c | y) = p·[c = c_y] + (1 − p)/K
        return ctx.num_classes * (p * (tints == labels) + (1 - p) / ctx.num_classes)

    return Pair(
        Side(tint(reference.images, palette[ref_tint], alpha), reference, ratio(reference.labels, ref_tint),
             {"tint_class": ref_tint, "own_colour": ref_tint == reference.labels}),
        Side(tint(shift.images, palette[shift_tint], alpha), shift, ratio(shift.labels, shift_tint),
             {"tint_class": shift_tint, "own_colour": shift_tint == shift.labels}),
        {"palette": palette, "palette_seed": PALETTE_SEED},
    )  # fmt: skip


@register_scenario(
    "unseen-tint",
    description="reference: plain grey images; shift: random-class colour tints the reference never shows",
    expected=("pretraining-helps",),
    support="out-of-support",
    paper="paper §5.1, Fig. 4; method.md §5, §8.3",
    true_ratio="0 for every shifted image: the reference has only grey pixels (R = G = B), the shift has none",
    params={"alpha": ALPHA},
)
def _unseen_tint(ctx: BuildContext, *, alpha: float) -> Pair:
    palette = class_palette(ctx.num_classes)
    reference = ctx.sample_reference()
    shift = ctx.sample_shift()
    shift_tint = ctx.shift_rng.integers(ctx.num_classes, size=len(shift.labels))
    no_tint = np.full(len(reference.labels), -1)
    return Pair(
        Side(to_rgb(reference.images), reference, np.full(len(reference.labels), np.inf), {"tint_class": no_tint}),
        Side(tint(shift.images, palette[shift_tint], alpha), shift, np.zeros(len(shift.labels)),
             {"tint_class": shift_tint}),
        {"palette": palette, "palette_seed": PALETTE_SEED},
    )  # fmt: skip


@register_scenario(
    "vflip",
    description="reference: upright images; shift: the same kind of images flipped upside down",
    expected=("pretraining-helps",),
    support="out-of-support",
    paper="paper §5.1, App. C.1.1; method.md §5, §8.3",
    true_ratio="≈0: no reference image is upside down (a few nearly symmetric items may still look "
    "in-support to a domain classifier)",
)
def _vflip(ctx: BuildContext) -> Pair:
    return Pair(_plain_side(ctx.sample_reference(), None, np.inf), _plain_side(ctx.sample_shift(), vflip, 0.0))


@register_scenario(
    "invert",
    description="reference: plain images; shift: photographic negatives (255 − x)",
    expected=("pretraining-helps",),
    support="out-of-support",
    paper="method.md §8.3 ('new style'); not one of the paper's synthetic shifts",
    true_ratio="0: inverted images have white backgrounds, which no reference image has",
)
def _invert(ctx: BuildContext) -> Pair:
    return Pair(_plain_side(ctx.sample_reference(), None, np.inf), _plain_side(ctx.sample_shift(), invert, 0.0))


@register_scenario(
    "label-shift",
    description="half the classes are a minority (fraction p_minority) in the reference; reversed in the shift",
    expected=("dataset-bias", "no-shift"),
    support="in-support",
    paper="paper App. B.3, C.1.2; method.md §5, §8.2",
    true_ratio="class-frequency ratio w_ref(y)/w_shift(y): p_minority/(1−p_minority) = 0.25 for the reference's "
    "minority classes (in-support at ε=0.2; 0.176 at p_minority=0.15 falls below), the inverse for the others",
    params={
        "p_minority": Param(0.2, fraction(0.0, 1.0, open_ends=True),
                            "share of reference examples from the minority half of the classes"),
    },
)  # fmt: skip
def _label_shift(ctx: BuildContext, *, p_minority: float) -> Pair:
    # Paper: minority classes are sampled at rate p/(1−p) relative to the others; the shift swaps the rates.
    minority = np.sort(ctx.shared_rng.permutation(ctx.num_classes)[: ctx.num_classes // 2])
    is_minority = np.isin(np.arange(ctx.num_classes), minority)
    rate = p_minority / (1 - p_minority)
    ref_weights = np.where(is_minority, rate, 1.0)
    shift_weights = np.where(is_minority, 1.0, rate)
    class_ratio = (ref_weights / ref_weights.sum()) / (shift_weights / shift_weights.sum())
    reference = ctx.sample_reference(ref_weights)
    shift = ctx.sample_shift(shift_weights)
    return Pair(
        Side(to_rgb(reference.images), reference, class_ratio[reference.labels]),
        Side(to_rgb(shift.images), shift, class_ratio[shift.labels]),
        {"minority_classes": minority, "reference_class_weights": ref_weights / ref_weights.sum(),
         "shift_class_weights": shift_weights / shift_weights.sum()},
    )  # fmt: skip


@register_scenario(
    "no-shift",
    description="control: the shift is a fresh i.i.d. sample (test split) of the reference distribution",
    expected=("no-shift",),
    support="none",
    paper="a control (method.md §8)",
    true_ratio="1 for every image: both sides are class-balanced plain images from the same distribution",
)
def _no_shift(ctx: BuildContext) -> Pair:
    return Pair(_plain_side(ctx.sample_reference(), None, 1.0), _plain_side(ctx.sample_shift(), None, 1.0))


@register_scenario(
    "toy",
    description="tiny plumbing check: 4 digit classes × 12 images per side, shift inverted (no meaningful verdict)",
    expected=("pretraining-helps", "inconclusive"),
    support="out-of-support",
    paper="test fixture, not from the paper",
    true_ratio="0 for every shifted image (inverted, as in 'invert')",
    defaults={"n_reference": 48, "n_shift": 48, "source": "digits", "n_classes": 4},
)
def _toy(ctx: BuildContext) -> Pair:
    return _invert(ctx)


# ---------------------------------------------------------------------------------------------------------------------
