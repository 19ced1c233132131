"""ptdiag: ask your distribution shift whether pre-training will help.

The library is usable from Python; the `ptdiag` command is a thin layer over it::

    from pathlib import Path
    import ptdiag

    config = ptdiag.resolve_config({"train": "data/", "shift": "data_ood/", "budget": "quick"})
    results = ptdiag.analyze(config, Path("ptdiag-runs/mine"))   # the results.json dict
    print(results["verdict"]["kind"])

Public names are loaded lazily, so `import ptdiag` (and every CLI start) stays fast and torch is imported only
by what needs it.
"""

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "analyze": "ptdiag.engine.pipeline",
    "AnalyzeConfig": "ptdiag.config",
    "resolve_config": "ptdiag.config",
    "load_pair": "ptdiag.data.ingest",
    "inspect_pair": "ptdiag.data.inspection",
    "DecodeCache": "ptdiag.data.decode_cache",
    "reference_split": "ptdiag.data.splits",
    "fit_line": "ptdiag.stats.line",
    "effective_robustness": "ptdiag.stats.line",
    "estimate_support": "ptdiag.stats.support",
    "ModelEval": "ptdiag.stats.score",
    "StatsConfig": "ptdiag.stats.score",
    "score": "ptdiag.stats.score",
    "VerdictConfig": "ptdiag.stats.thresholds",
    "load_results": "ptdiag.schema",
    "validate_results": "ptdiag.schema",
    "run_gate": "ptdiag.report.gate",
    "render_html": "ptdiag.report.html",
    "render_markdown": "ptdiag.report.markdown",
    "get_scenario": "ptdiag.scenarios",
    "list_scenarios": "ptdiag.scenarios",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'ptdiag' has no attribute {name!r}")
