"""The Python entry points: `analyze` runs (or resumes) an analysis and `load` opens a finished one; both return a
`Results`, the typed, read-only view of results.json with its renderers::

    import ptdiag

    results = ptdiag.analyze(train="data/", shift="data_ood/", budget="quick")
    results.verdict.kind, results.verdict.recommendations[0].text
    results.to_html("report.html")
    results                      # in a notebook: the HTML report

The command line is a thin layer over the same functions; results.json stays the contract (docs/REPORTS.md).
"""

from __future__ import annotations

import copy
import html
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ptdiag.schema import validate_results

if TYPE_CHECKING:
    from ptdiag.config import AnalyzeConfig
    from ptdiag.report.gate import GateResult
    from ptdiag.stats.verdict_types import Verdict


class Results(Mapping[str, Any]):
    """A finished analysis: results.json as a read-only mapping (``results["verdict"]["kind"]`` works as on the
    dict), with the verdict typed, and the HTML / Markdown reports and the CI gate one call away. Validated by the
    schema when made; `to_dict()` returns a copy to edit."""

    def __init__(self, data: Mapping[str, Any], path: str | Path | None = None):
        self._data = validate_results(copy.deepcopy(dict(data)), source=str(path or "results"))
        self.path = Path(path) if path is not None else None  # the results.json file, when it has one

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __repr__(self) -> str:
        where = f", path={str(self.path)!r}" if self.path else ""
        return f"Results(kind={self.verdict.kind!r}, confidence={self.verdict.confidence!r}{where})"

    @property
    def verdict(self) -> Verdict:
        """The verdict, typed: kind, confidence, reasons, recommendations (code and text), checks, recipes."""
        from ptdiag.stats.verdict_types import Verdict

        return Verdict.from_dict(self._data["verdict"])

    @property
    def run_dir(self) -> Path | None:
        return self.path.parent if self.path is not None else None

    def to_dict(self) -> dict[str, Any]:
        """A deep copy of the results.json content."""
        return copy.deepcopy(self._data)

    def to_html(self, path: str | Path | None = None) -> str:
        """The self-contained HTML report (with the run's `ptdiag curate` sets as galleries); also written
        (atomically) to `path` when given."""
        from ptdiag.report.html import render_html, write_html
        from ptdiag.report.locate import read_curated

        curated = read_curated(self.run_dir) if self.run_dir is not None else None
        if path is not None:
            return write_html(self._data, path, image_root=self.run_dir, curated=curated).read_text(encoding="utf-8")
        return render_html(self._data, image_root=self.run_dir, curated=curated)

    def to_markdown(self) -> str:
        """The Markdown summary (as for a pull-request comment)."""
        from ptdiag.report.markdown import render_markdown

        return render_markdown(self._data)

    def gate(self, fail_on: set[str] | None = None, **thresholds: Any) -> GateResult:
        """The CI gate's checks and exit code (`ptdiag check`), e.g. ``gate({"dataset-bias"})``."""
        from ptdiag.report.gate import run_gate

        return run_gate(self._data, fail_on=fail_on or set(), **thresholds)

    def _repr_html_(self) -> str:
        """Notebooks show the HTML report, isolated in a frame so its styles do not leak into the page."""
        return (f'<iframe srcdoc="{html.escape(self.to_html(), quote=True)}" title="ptdiag report" '
                'style="width:100%;height:720px;border:1px solid #ddd"></iframe>')


def analyze(config: AnalyzeConfig | None = None, run_dir: str | Path | None = None, **settings: Any) -> Results:
    """Run (or resume) an analysis and return its results.

    Give either a resolved `AnalyzeConfig` or the settings as keyword arguments named like the flags
    (``train=``, ``shift=``, ``budget=``, ...; docs/OPTIONS.md). `run_dir` defaults to ``--out``, else a new
    ``ptdiag-runs/<timestamp>-<name>`` folder (or the matching unfinished one, which is resumed).
    """
    from ptdiag.config import resolve_config
    from ptdiag.engine.pipeline import analyze as run_pipeline
    from ptdiag.engine.runs import resolve_run_dir

    if config is None:
        config = resolve_config(settings)
    elif settings:
        raise TypeError("give either config or keyword settings, not both")
    folder = Path(run_dir) if run_dir is not None else resolve_run_dir(config)[0]
    return Results(run_pipeline(config, folder), folder / "results.json")


def load(run: str | Path | None = None) -> Results:
    """A finished analysis: a run folder, its results.json, or (None) the newest run under ./ptdiag-runs."""
    from ptdiag.report.locate import load_run

    path, data = load_run(run)
    return Results(data, path)
