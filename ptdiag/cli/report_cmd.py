"""`ptdiag report`: re-render a finished run as a terminal report, an HTML file, Markdown or JSON."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from ptdiag.cli._paths import check_output_file
from ptdiag.cli.app import app, err_console, handle_errors
from ptdiag.errors import UsageError

HTML_SUFFIXES = (".html", ".htm")
MD_SUFFIXES = (".md", ".markdown")


def split_paths(paths: list[str]) -> tuple[str | None, str | None, str | None]:
    """Sort positional paths into (RUN, HTML file, Markdown file) by what they are.

    `--html` and `--md` are flags, and the optional FILE after them is an ordinary positional argument:
    that is what makes `ptdiag report --html`, `ptdiag report --html out.html` and
    `ptdiag report RUN --md summary.md` all work as typed. A directory or a *.json is the RUN, a
    *.html/*.htm the HTML file, a *.md/*.markdown the Markdown file; anything else is taken as RUN.
    """
    runs, html_files, md_files = [], [], []
    for raw in paths:
        path = Path(raw)
        if path.is_dir() or path.suffix.lower() == ".json":
            runs.append(raw)
        elif path.suffix.lower() in HTML_SUFFIXES:
            html_files.append(raw)
        elif path.suffix.lower() in MD_SUFFIXES:
            md_files.append(raw)
        else:
            runs.append(raw)
    for kind, found in (("RUN", runs), ("HTML FILE", html_files), ("Markdown FILE", md_files)):
        if len(found) > 1:
            raise UsageError(f"expected at most one {kind}, got {', '.join(repr(f) for f in found)}")
    return (runs or [None])[0], (html_files or [None])[0], (md_files or [None])[0]


@app.command("report", no_args_is_help=False)
@handle_errors
def report_command(
    paths: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="PATH",
            help="The run (a run directory or its results.json; default: the newest run under ./ptdiag-runs/) "
            "and/or the FILE --html (*.html) or --md (*.md) writes to.",
            show_default=False,
        ),
    ] = None,
    html: Annotated[
        bool, typer.Option("--html", help="Write the self-contained HTML report to FILE (default RUN/report.html).")
    ] = False,
    md: Annotated[
        bool, typer.Option("--md", help="Markdown summary to FILE, or to stdout without one (e.g. for a PR comment).")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print results.json, validated against the schema.")] = False,
) -> None:
    """Render a finished run: terminal report, or --html / --md / --json."""
    from ptdiag.report import load_run, render_json, render_markdown, render_terminal, write_html
    from ptdiag.report.locate import read_curated, run_containing

    run, html_file, md_file = split_paths(paths or [])
    html, md = html or html_file is not None, md or md_file is not None
    if as_json and md and md_file is None:
        raise UsageError("--json and --md both print to stdout; give --md a FILE ending in .md")
    check_output_file(html_file, "--html")
    check_output_file(md_file, "--md")
    if run is None:  # a FILE inside a run folder means that run, not the newest one
        run = next((found for f in (html_file, md_file) if f and (found := run_containing(f))), None)

    results_path, results = load_run(run)
    rendered = f"run {results_path.parent}"
    stdout = Console(highlight=False)
    if as_json:
        typer.echo(render_json(results, source=str(results_path)), nl=False)
    if md:
        text = render_markdown(results)
        if md_file is None:
            typer.echo(text, nl=False)
        else:
            _write(Path(md_file), text, rendered)
    if html:
        target = Path(html_file) if html_file else results_path.parent / "report.html"
        try:
            write_html(results, target, image_root=results_path.parent, reuse=False,
                       curated=read_curated(results_path.parent))
        except OSError as exc:
            raise UsageError(f"{target}: cannot write the HTML report ({exc.strerror})") from None
        err_console.print(f"wrote {target} ({rendered})", highlight=False, markup=False, soft_wrap=True)
    if not (as_json or md or html):
        render_terminal(results, stdout, source=str(results_path))


def _write(path: Path, text: str, rendered: str) -> None:
    from ptdiag._io import write_text_atomic

    try:
        write_text_atomic(path, text)
    except OSError as exc:
        raise UsageError(f"{path}: cannot write ({exc.strerror})") from None
    err_console.print(f"wrote {path} ({rendered})", highlight=False, markup=False, soft_wrap=True)
