"""ptdiag: ask your distribution shift whether pre-training will help.

The library is usable from Python; the `ptdiag` command is a thin layer over it::

    from pathlib import Path
    import ptdiag

    results = ptdiag.analyze(train="data/", shift="data_ood/", budget="quick", run_dir=Path("ptdiag-runs/mine"))
    print(results.verdict.kind, results.verdict.confidence)     # a typed view of results.json
    results.to_html("report.html")
    same = ptdiag.load("ptdiag-runs/mine")                       # a finished run, later

Public names are loaded lazily, so `import ptdiag` (and every CLI start) stays fast and torch is imported only
by what needs it.
"""

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:  # the same names, explicitly, for type checkers and IDEs (a test keeps both lists equal)
    from ptdiag.api import Results as Results
    from ptdiag.api import analyze as analyze
    from ptdiag.api import load as load
    from ptdiag.config import AnalyzeConfig as AnalyzeConfig
    from ptdiag.config import resolve_config as resolve_config
    from ptdiag.data.decode_cache import DecodeCache as DecodeCache
    from ptdiag.data.ingest import load_pair as load_pair
    from ptdiag.data.inspection import inspect_pair as inspect_pair
    from ptdiag.data.splits import reference_split as reference_split
    from ptdiag.report.gate import run_gate as run_gate
    from ptdiag.report.html import render_html as render_html
    from ptdiag.report.markdown import render_markdown as render_markdown
    from ptdiag.scenarios import get_scenario as get_scenario
    from ptdiag.scenarios import list_scenarios as list_scenarios
    from ptdiag.schema import load_results as load_results
    from ptdiag.schema import validate_results as validate_results
    from ptdiag.stats.line import effective_robustness as effective_robustness
    from ptdiag.stats.line import fit_line as fit_line
    from ptdiag.stats.score import ModelEval as ModelEval
    from ptdiag.stats.score import StatsConfig as StatsConfig
    from ptdiag.stats.score import score as score
    from ptdiag.stats.support import estimate_support as estimate_support
    from ptdiag.stats.thresholds import VerdictConfig as VerdictConfig
    from ptdiag.stats.verdict_types import Recommendation as Recommendation
    from ptdiag.stats.verdict_types import Verdict as Verdict

_EXPORTS = {
    "analyze": "ptdiag.api",
    "load": "ptdiag.api",
    "Results": "ptdiag.api",
    "Verdict": "ptdiag.stats.verdict_types",
    "Recommendation": "ptdiag.stats.verdict_types",
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
