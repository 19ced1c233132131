"""`ptdiag inspect`: validate a (train, shift) pair and report on it, without training anything."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ptdiag._io import write_json_atomic
from ptdiag.cli._options import cli_value, option_type
from ptdiag.cli._paths import check_output_file
from ptdiag.cli._plain import print_lines, stdout_is_terminal
from ptdiag.cli.app import app, err_console, handle_errors
from ptdiag.data.decode_cache import DecodeCache
from ptdiag.data.inspection import inspect_pair
from ptdiag.data.label_map import read_label_map
from ptdiag.errors import EXIT_CODES_HELP, DataError, UsageError
from ptdiag.report.inspect_view import inspect_lines, render_report


@app.command("inspect", epilog=EXIT_CODES_HELP)
@handle_errors
def inspect_command(
    train: option_type("train"),
    shift: option_type("shift"),
    json_path: Annotated[
        Path | None, typer.Option("--json", help="Also write the report as JSON to this file.")
    ] = None,
    format: option_type("format") = None,
    strict: Annotated[bool, typer.Option("--strict", help="Make unreadable images fatal instead of skipped.")] = False,
    min_per_class: Annotated[
        int, typer.Option("--min-per-class", min=1, help="Warn about classes with fewer usable images.")
    ] = 10,
    image_size: Annotated[
        int | None, typer.Option("--image-size", min=8, help="Resolution to report decode-cache coverage at.")
    ] = None,
    cache_dir: option_type("cache_dir") = None,
    warm_cache: Annotated[
        bool, typer.Option("--warm-cache", help="Also store every image in the decode cache at --image-size.")
    ] = False,
    workers: Annotated[
        int | None, typer.Option("--workers", min=1, help="Decoding processes (default: all cores).")
    ] = None,
    train_split: option_type("train_split") = None,
    shift_split: option_type("shift_split") = None,
    image_column: option_type("image_column") = None,
    label_column: option_type("label_column") = None,
    label_map: option_type("label_map") = None,
) -> None:
    """Validate a train/shift pair of image sets and report counts, classes, sizes, problems and cache coverage."""
    if warm_cache and image_size is None:
        raise UsageError("--warm-cache needs --image-size")
    check_output_file(json_path, "--json")
    cache = DecodeCache(cache_dir, workers=workers)
    with _progress() as (bar, task):
        report = inspect_pair(
            train,
            shift,
            fmt=cli_value(format),
            strict=strict,
            min_per_class=min_per_class,
            image_size=image_size,
            cache=cache,
            warm_cache=warm_cache,
            progress=lambda n: bar.advance(task, n),
            image_column=image_column,
            label_column=label_column,
            train_split=train_split,
            shift_split=shift_split,
            label_map=read_label_map(label_map) if label_map else None,
        )
    if stdout_is_terminal():
        render_report(report, Console(highlight=False, soft_wrap=False))
    else:
        print_lines(inspect_lines(report))
    if json_path is not None:
        write_json_atomic(json_path, report.to_dict())
    if not report.usable:
        errors = report.errors
        more = f"{len(errors) - 1} more error(s) listed above" if len(errors) > 1 else None
        raise DataError(errors[0].message, hint=more)


class _progress:
    """A transient files-scanned bar on stderr, shown only on a terminal."""

    def __enter__(self):
        self.bar = Progress(
            TextColumn("scanning images"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=err_console,
            transient=True,
            disable=not err_console.is_terminal,
        )
        self.bar.__enter__()
        return self.bar, self.bar.add_task("scan", total=None)

    def __exit__(self, *exc):
        self.bar.__exit__(*exc)
