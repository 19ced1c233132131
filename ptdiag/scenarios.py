"""Synthetic distribution shifts with known answers, written as ImageFolder pairs ptdiag can analyse.

Each scenario (method §5 and §8, after the paper's §5.1 and App. B.3/C.1) takes reference images from a source's
train split and shifted images from its test split (disjoint images), transforms them, and writes::

    out_dir/reference/<class>/<nnnnn>.png   RGB PNGs at the source's native size (28 px for Fashion-MNIST)
    out_dir/shift/<class>/<nnnnn>.png
    out_dir/truth.csv                       per image: class, source index, tint class, true density ratio
    out_dir/scenario.json                   scenario, expected verdict, resolved parameters, palette, counts

The folder is written beside ``out_dir`` and renamed into place, so it is either complete or absent. A finished
folder whose scenario.json records the same parameters is reused as is.

Example:
    >>> data = get_scenario("tint-bias").generate("runs/tint", n_reference=4000, n_shift=2000, p=0.5)
    >>> data.reference_dir, data.shift_dir, data.expected
"""

from __future__ import annotations

import csv
import difflib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ptdiag import __version__
from ptdiag.datasets import SOURCES, load_source
from ptdiag.errors import UsageError
from ptdiag.schema import VERDICT_KINDS

FORMAT_VERSION = 1  # bump when the pixels or the folder layout a given set of parameters produces change
PALETTE_SEED = 0  # class colours are shared by reference and shift, and by every seed (paper: RandomState(0))
REFERENCE_SPLIT, SHIFT_SPLIT = "train", "test"
SUPPORT_KINDS = ("in-support", "out-of-support", "none")
_WRITE_THREADS = 4


# ---------------------------------------------------------------------------------------------------------------------
# Parameters


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise UsageError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _seed(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise UsageError(f"{name} must be a non-negative integer, got {value!r}")
    return int(value)


def _fraction(low: float, high: float, *, open_ends: bool = False) -> Callable[[str, Any], float]:
    """Validator for a number in [low, high], or in (low, high) when ``open_ends``."""

    def check(name: str, value: Any) -> float:
        is_number = isinstance(value, (int, float, np.floating, np.integer)) and not isinstance(value, bool)
        inside = is_number and (low < value < high if open_ends else low <= value <= high)
        if not inside:
            interval = f"({low}, {high})" if open_ends else f"[{low}, {high}]"
            raise UsageError(f"{name} must be a number in {interval}, got {value!r}")
        return float(value)

    return check


def _source(name: str, value: Any) -> str:
    if value not in SOURCES:
        raise UsageError(f"{name} must be one of {', '.join(SOURCES)}, got {value!r}")
    return str(value)


def _optional_n_classes(name: str, value: Any) -> int | None:
    if value is None:
        return None
    value = _positive_int(name, value)
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
        4000, _positive_int, "reference images (the pipeline splits them into train/val/test), class-balanced"
    ),
    "n_shift": Param(2000, _positive_int, "shifted images; 2,000 keeps test noise near ±2 points at 95 %"),
    "seed": Param(0, _seed, "seed of the image sampling and of the per-image draws"),
    "source": Param("fashion-mnist", _source, "image source: reference from its train split, shift from test"),
    "n_classes": Param(None, _optional_n_classes, "keep only the source's first N classes (default: all)"),
}
_ALPHA = Param(0.25, _fraction(0.0, 1.0, open_ends=True), "tint strength: pixel <- (1-alpha)*x + alpha*colour")


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


# ---------------------------------------------------------------------------------------------------------------------
# Scenario, registry


@dataclass(frozen=True)
class ScenarioData:
    """A generated scenario folder."""

    root: Path
    reference_dir: Path
    shift_dir: Path
    truth_path: Path
    params: dict[str, Any]
    expected: tuple[str, ...]
    reused: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "root": str(self.root),
            "reference_dir": str(self.reference_dir),
            "shift_dir": str(self.shift_dir),
            "truth_path": str(self.truth_path),
            "params": dict(self.params),
            "expected": list(self.expected),
            "reused": self.reused,
        }


Builder = Callable[..., Pair]


@dataclass(frozen=True)
class Scenario:
    """A registered known-answer shift.

    Attributes:
        name: Registry key, e.g. ``"tint-bias"``.
        description: One line for listings.
        expected: Verdict kinds (``ptdiag.schema.VERDICT_KINDS``) the paper predicts, most likely first.
        support: ``"in-support"``, ``"out-of-support"`` or ``"none"`` (no shift).
        paper: Where the paper and method.md describe it.
        true_ratio: How the true density ratio p_ref/p_shift of a shifted image follows from the construction.
        params: Scenario-specific parameters (the common ones are in `COMMON_PARAMS`).
        defaults: Overrides of common defaults for this scenario (e.g. the toy's tiny sizes).
    """

    name: str
    description: str
    expected: tuple[str, ...]
    support: str
    paper: str
    true_ratio: str
    params: Mapping[str, Param]
    defaults: Mapping[str, Any]
    builder: Builder

    def all_params(self) -> dict[str, Param]:
        merged = {**COMMON_PARAMS, **self.params}
        for key, value in self.defaults.items():
            merged[key] = Param(value, merged[key].check, merged[key].help)
        return merged

    def resolve_params(self, **overrides: Any) -> dict[str, Any]:
        """Defaults merged with ``overrides`` (``None`` means "use the default"), validated."""
        spec = self.all_params()
        unknown = sorted(set(overrides) - set(spec))
        if unknown:
            raise UsageError(
                f"scenario {self.name!r} has no parameter {', '.join(map(repr, unknown))}; valid: {', '.join(spec)}"
            )
        resolved = {}
        for key, param in spec.items():
            value = overrides.get(key)
            value = param.default if value is None else value
            resolved[key] = None if value is None else param.check(key, value)
        return resolved

    def generate(
        self,
        out_dir: str | Path,
        *,
        n_reference: int | None = None,
        n_shift: int | None = None,
        seed: int | None = None,
        cache_dir: str | Path | None = None,
        **params: Any,
    ) -> ScenarioData:
        """Write (or reuse) the scenario's ImageFolder pair in ``out_dir``.

        Args:
            out_dir: The scenario folder; created, replaced when it holds another parameter set, reused when it
                holds this one. A non-empty folder without scenario.json is never touched.
            n_reference: Reference images (default 4,000: room for the pipeline's train/val/test split).
            n_shift: Shifted images (default 2,000).
            seed: Seed of the sampling and per-image draws (default 0).
            cache_dir: Dataset cache folder (see `ptdiag.datasets.default_cache_dir`).
            **params: Scenario parameters (``p``, ``alpha``, ``p_minority``, ``source``, ``n_classes``...).

        Raises:
            UsageError: Unknown or invalid parameters, sizes the source cannot supply, or an ``out_dir`` that is
                not a scenario folder.
            DataError: The image source cannot be loaded.
        """
        resolved = self.resolve_params(n_reference=n_reference, n_shift=n_shift, seed=seed, **params)
        out = Path(out_dir).expanduser()
        existing = _existing_scenario(out)
        if existing is not None and _matches(existing, self.name, resolved, out):
            return self._data(out, resolved, reused=True)

        pair, classes = self._build(resolved, cache_dir)
        _write_atomically(out, lambda tmp: self._write(tmp, pair, classes, resolved))
        return self._data(out, resolved, reused=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "expected": list(self.expected),
            "support": self.support,
            "paper": self.paper,
            "true_ratio": self.true_ratio,
            "params": {key: {"default": p.default, "help": p.help} for key, p in self.all_params().items()},
        }

    # -- internals ----------------------------------------------------------------------------------------------

    def _build(self, resolved: dict[str, Any], cache_dir: str | Path | None) -> tuple[Pair, list[str]]:
        train_images, train_labels, classes = load_source(resolved["source"], REFERENCE_SPLIT, cache_dir)
        test_images, test_labels, _ = load_source(resolved["source"], SHIFT_SPLIT, cache_dir)
        num_classes = resolved["n_classes"] or len(classes)
        if num_classes > len(classes):
            raise UsageError(f"n_classes={num_classes} but source {resolved['source']!r} has {len(classes)} classes")
        reference_rng, shift_rng, shared_rng = np.random.default_rng(resolved["seed"]).spawn(3)
        context = BuildContext(
            train_images, train_labels, test_images, test_labels, num_classes,
            resolved["n_reference"], resolved["n_shift"], reference_rng, shift_rng, shared_rng,
        )  # fmt: skip
        specific = {key: resolved[key] for key in self.params}
        return self.builder(context, **specific), classes[:num_classes]

    def _write(self, root: Path, pair: Pair, class_names: list[str], resolved: dict[str, Any]) -> None:
        folders = class_folder_names(class_names)
        rows: list[dict[str, Any]] = []
        counts = {}
        for side_name, side in (("reference", pair.reference), ("shift", pair.shift)):
            paths = _write_pngs(root / side_name, side.images, side.sample.labels, folders)
            rows += _truth_rows(side_name, side, [path.relative_to(root).as_posix() for path in paths], folders)
            counts[side_name] = {
                folders[k]: int(n) for k, n in enumerate(np.bincount(side.sample.labels, minlength=len(folders)))
            }
        _write_truth_csv(root / "truth.csv", rows)
        meta = {
            "format": "ptdiag-scenario",
            "format_version": FORMAT_VERSION,
            "ptdiag_version": __version__,
            **{key: value for key, value in self.to_dict().items() if key not in ("name", "params")},
            "scenario": self.name,
            "params": resolved,
            "source": {"name": resolved["source"], "reference_split": REFERENCE_SPLIT, "shift_split": SHIFT_SPLIT},
            "classes": folders,
            "class_names": list(class_names),
            "counts": counts,
            "details": _plain(dict(pair.details)),
            "files": {"reference": "reference", "shift": "shift", "truth": "truth.csv"},
        }
        (root / "scenario.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")

    def _data(self, out: Path, resolved: dict[str, Any], *, reused: bool) -> ScenarioData:
        return ScenarioData(
            root=out,
            reference_dir=out / "reference",
            shift_dir=out / "shift",
            truth_path=out / "truth.csv",
            params=resolved,
            expected=self.expected,
            reused=reused,
        )


_REGISTRY: dict[str, Scenario] = {}


def register_scenario(
    name: str,
    *,
    description: str,
    expected: tuple[str, ...],
    support: str,
    paper: str,
    true_ratio: str,
    params: Mapping[str, Param] | None = None,
    defaults: Mapping[str, Any] | None = None,
) -> Callable[[Builder], Builder]:
    """Register ``build(context, **params) -> Pair`` as scenario ``name``."""

    def decorator(build: Builder) -> Builder:
        if name in _REGISTRY:
            raise ValueError(f"scenario {name!r} is already registered")
        bad = [kind for kind in expected if kind not in VERDICT_KINDS]
        if bad or support not in SUPPORT_KINDS:
            raise ValueError(f"scenario {name!r}: bad expected {bad} or support {support!r}")
        clash = set(params or {}) & set(COMMON_PARAMS)
        if clash or set(defaults or {}) - set(COMMON_PARAMS) - set(params or {}):
            raise ValueError(f"scenario {name!r}: parameter names clash or defaults name unknown parameters")
        _REGISTRY[name] = Scenario(
            name=name,
            description=description,
            expected=tuple(expected),
            support=support,
            paper=paper,
            true_ratio=true_ratio,
            params=dict(params or {}),
            defaults=dict(defaults or {}),
            builder=build,
        )
        return build

    return decorator


def list_scenarios() -> list[Scenario]:
    """All registered scenarios, in registration order."""
    return list(_REGISTRY.values())


def get_scenario(name: str) -> Scenario:
    """The scenario called ``name``; unknown names raise UsageError naming the closest match and the valid ones."""
    if name in _REGISTRY:
        return _REGISTRY[name]
    close = difflib.get_close_matches(name, _REGISTRY, n=1, cutoff=0.5)
    suggestion = f"; did you mean {close[0]!r}?" if close else ""
    raise UsageError(f"unknown scenario {name!r}{suggestion} Valid scenarios: {', '.join(_REGISTRY)}")


# ---------------------------------------------------------------------------------------------------------------------
# The scenarios


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
        "p": Param(0.5, _fraction(0.0, 1.0), "probability a reference image gets its own class's colour"),
        "alpha": _ALPHA,
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
    params={"alpha": _ALPHA},
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
        "p_minority": Param(0.2, _fraction(0.0, 1.0, open_ends=True),
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
    paper="issue 6 control; method.md §8",
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
# Writing


def class_folder_names(class_names: list[str]) -> list[str]:
    """Folder-safe class names ("T-shirt/top" → "T-shirt_top"), unique and in label order."""
    folders = [name.replace("/", "_").replace("\\", "_").strip() or f"class_{k}" for k, name in enumerate(class_names)]
    if len(set(folders)) != len(folders):
        folders = [f"{k:02d}_{name}" for k, name in enumerate(folders)]
    return folders


def _write_pngs(side_dir: Path, images: np.ndarray, labels: np.ndarray, folders: list[str]) -> list[Path]:
    for folder in folders:
        (side_dir / folder).mkdir(parents=True, exist_ok=True)
    paths = [side_dir / folders[label] / f"{i:05d}.png" for i, label in enumerate(labels)]

    def save(i: int) -> None:
        # compress_level=1: at 28 px the files are as small as at level 6 and faster to write
        Image.fromarray(np.ascontiguousarray(images[i])).save(paths[i], compress_level=1)

    # Creating thousands of small files waits on the file system more than on the CPU, so a few threads help
    # (1.5-2x on a busy 2-core machine); each file is independent, so the output does not depend on the order.
    with ThreadPoolExecutor(max_workers=_WRITE_THREADS) as pool:
        list(pool.map(save, range(len(paths)), chunksize=256))
    return paths


def _truth_rows(side_name: str, side: Side, paths: list[str], folders: list[str]) -> list[dict[str, Any]]:
    """truth.csv rows of one side: where each image came from and its known density ratio."""
    rows = []
    for i, path in enumerate(paths):
        label = int(side.sample.labels[i])
        row = {
            "path": path,
            "side": side_name,
            "class": folders[label],
            "label": label,
            "source_split": REFERENCE_SPLIT if side_name == "reference" else SHIFT_SPLIT,
            "source_index": int(side.sample.source_index[i]),
            "true_density_ratio": float(side.true_ratio[i]),
        }
        row.update({key: _plain(values[i]) for key, values in side.columns.items()})
        rows.append(row)
    return rows


def _write_truth_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    fieldnames = list(dict.fromkeys(key for row in rows for key in row))
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=fieldnames, restval="")
        writer.writeheader()
        writer.writerows(rows)


def _write_atomically(out: Path, write: Callable[[Path], None]) -> None:
    """Run ``write(tmp)`` on a fresh folder beside ``out`` and swap it into place; ``out`` is complete or absent."""
    if out.exists() and not out.is_dir():
        raise UsageError(f"{out} is a file; give a folder for the scenario")
    if out.is_dir() and any(out.iterdir()) and not (out / "scenario.json").is_file():
        raise UsageError(f"refusing to overwrite {out}: it is not empty and holds no scenario.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent))
    old = None
    try:
        write(tmp)
        if out.exists():  # an empty folder or an older scenario with other parameters
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".old", dir=out.parent))
            os.replace(out, old / "scenario")
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


def _existing_scenario(out: Path) -> dict[str, Any] | None:
    try:
        return json.loads((out / "scenario.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _matches(meta: dict[str, Any], name: str, resolved: dict[str, Any], out: Path) -> bool:
    """Same format, scenario and parameters, and every PNG it lists still there (a cheap count per folder)."""
    if meta.get("format_version") != FORMAT_VERSION or meta.get("scenario") != name:
        return False
    if meta.get("params") != json.loads(json.dumps(resolved)):
        return False
    for side, counts in meta.get("counts", {}).items():
        for folder, n in counts.items():
            class_dir = out / side / folder
            if not class_dir.is_dir() or sum(1 for e in os.scandir(class_dir) if e.name.endswith(".png")) != n:
                return False
    return bool(meta.get("counts"))


def _plain(value: Any) -> Any:
    """numpy → JSON/CSV-friendly Python values."""
    if isinstance(value, dict):
        return {key: _plain(v) for key, v in value.items()}
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value
