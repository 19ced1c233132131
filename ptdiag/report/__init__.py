"""Renderers of a results dict (schema_version 2): terminal, Markdown, HTML and JSON. They never recompute.

Example:
    >>> from ptdiag.report import load_run, render_html
    >>> path, results = load_run("ptdiag-runs/my-run")
    >>> html = render_html(results, image_root=path.parent)
"""

from ptdiag.report.html import render_html, thumbnail_data_uri, write_html
from ptdiag.report.json_report import render_json
from ptdiag.report.locate import DEFAULT_RUNS_DIR, latest_run, load_run, locate_results
from ptdiag.report.markdown import render_markdown
from ptdiag.report.terminal import render_gate, render_summary, render_terminal

__all__ = [
    "DEFAULT_RUNS_DIR",
    "latest_run",
    "load_run",
    "locate_results",
    "render_gate",
    "render_html",
    "render_json",
    "render_markdown",
    "render_summary",
    "render_terminal",
    "thumbnail_data_uri",
    "write_html",
]
