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

import difflib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ptdiag import __version__
from ptdiag.errors import UsageError
from ptdiag.scenarios.building import (
    COMMON_PARAMS,
    FORMAT_VERSION,
    REFERENCE_SPLIT,
    SHIFT_SPLIT,
    SUPPORT_KINDS,
    BuildContext,
    Pair,
    Param,
)
from ptdiag.scenarios.sources import load_source
from ptdiag.scenarios.writing import (
    class_folder_names,
    existing_scenario,
    matches_existing,
    plain,
    truth_rows,
    write_atomically,
    write_pngs,
    write_truth_csv,
)
from ptdiag.schema import VERDICT_KINDS

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
        existing = existing_scenario(out)
        if existing is not None and matches_existing(existing, self.name, resolved, out):
            return self._data(out, resolved, reused=True)

        pair, classes = self._build(resolved, cache_dir)
        write_atomically(out, lambda tmp: self._write(tmp, pair, classes, resolved))
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
            paths = write_pngs(root / side_name, side.images, side.sample.labels, folders)
            rows += truth_rows(side_name, side, [path.relative_to(root).as_posix() for path in paths], folders)
            counts[side_name] = {
                folders[k]: int(n) for k, n in enumerate(np.bincount(side.sample.labels, minlength=len(folders)))
            }
        write_truth_csv(root / "truth.csv", rows)
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
            "details": plain(dict(pair.details)),
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
