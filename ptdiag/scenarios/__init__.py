"""Known-answer shifts built from real images: their image sources (`sources`), what a builder works with
(`building`), the registry and on-disk format (`registry`, `writing`), the catalogue (`catalog`), and the demo."""

from ptdiag.scenarios import catalog as _catalog  # noqa: F401  (registers the built-in scenarios)
from ptdiag.scenarios.registry import Scenario, ScenarioData, get_scenario, list_scenarios, register_scenario

__all__ = ["Scenario", "ScenarioData", "get_scenario", "list_scenarios", "register_scenario"]
