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
    "analyze": "ptdiag.pipeline",
    "AnalyzeConfig": "ptdiag.config",
    "resolve_config": "ptdiag.config",
    "load_pair": "ptdiag.ingest",
    "inspect_pair": "ptdiag.inspection",
    "DecodeCache": "ptdiag.decode_cache",
    "reference_split": "ptdiag.splits",
    "fit_line": "ptdiag.fit",
    "effective_robustness": "ptdiag.fit",
    "estimate_support": "ptdiag.support",
    "ModelEval": "ptdiag.score",
    "StatsConfig": "ptdiag.score",
    "score": "ptdiag.score",
    "VerdictConfig": "ptdiag.verdict",
    "load_results": "ptdiag.schema",
    "validate_results": "ptdiag.schema",
    "run_gate": "ptdiag.gate",
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
