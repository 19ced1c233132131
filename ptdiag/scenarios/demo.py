"""The embedded demo: two known-answer scenarios on real Fashion-MNIST images, each run through `analyze`.

1. dataset bias (in-support): a spurious class-correlated tint in the reference, random tints in the shift.
   Paper's answer: pre-training's ER ≈ 0, verdict `dataset-bias`.
2. extrapolation (out-of-support): plain reference, the same palette of tints unseen until the shift.
   Paper's answer: ER_out > 0, verdict `pretraining-helps`.
The scenario parameters make a clean experiment; the verdict logic and its thresholds are never tuned to them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ptdiag.config import AnalyzeConfig, resolve_config
from ptdiag.scenarios import get_scenario


@dataclass(frozen=True)
class DemoScenario:
    key: str  # run folder name
    scenario: str  # registry name in ptdiag.scenarios.catalog
    expected: str
    params: dict[str, Any]


DEMO_SCENARIOS = (
    DemoScenario("dataset-bias", "tint-bias", "dataset-bias", {"p": 0.5}),
    DemoScenario("extrapolation", "unseen-tint", "pretraining-helps", {}),
)


@dataclass(frozen=True)
class DemoRow:
    key: str
    expected: str
    run_dir: Path
    results: dict[str, Any]


def generate_demo_data(out: Path, n_reference: int = 4000, n_shift: int = 2000, seed: int = 0) -> list[Path]:
    """Write (or reuse) each demo scenario's ImageFolder pair under `out/data/`; return the scenario folders."""
    return [get_scenario(d.scenario).generate(out / "data" / d.key, n_reference=n_reference, n_shift=n_shift,
                                              seed=seed, **d.params).root for d in DEMO_SCENARIOS]


def run_demo(out: Path, base_flags: dict[str, Any], run: Callable[[AnalyzeConfig], dict[str, Any]],
             n_reference: int = 4000, n_shift: int = 2000, seed: int = 0) -> list[DemoRow]:
    """Generate each scenario's ImageFolder pair under `out/data/`, analyze it into `out/<key>/`."""
    rows = []
    for demo in DEMO_SCENARIOS:
        data = get_scenario(demo.scenario).generate(out / "data" / demo.key, n_reference=n_reference,
                                                     n_shift=n_shift, seed=seed, **demo.params)
        config = resolve_config(dict(base_flags, train=str(data.reference_dir), shift=str(data.shift_dir)))
        config = replace(config, out=str(out / demo.key), name=demo.key)
        rows.append(DemoRow(demo.key, demo.expected, out / demo.key, run(config)))
    return rows
