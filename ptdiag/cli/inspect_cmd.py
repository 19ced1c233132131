"""`ptdiag inspect`: validate a (train, shift) pair and report on it, without training anything."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from ptdiag._io import write_json_atomic
from ptdiag.cli._paths import check_output_file
from ptdiag.cli._plain import inspect_lines, print_lines, stdout_is_terminal
from ptdiag.cli.app import app, err_console, handle_errors
from ptdiag.data.decode_cache import DecodeCache
from ptdiag.data.inspection import InspectReport, inspect_pair
from ptdiag.data.label_map import read_label_map
from ptdiag.errors import EXIT_CODES_HELP, DataError, UsageError

_MAX_CLASS_ROWS = 100
_MAX_PER_CODE = 20
_MAX_LEAK_ROWS = 10
_LEVEL_STYLE = {"error": "bold red", "warning": "yellow", "info": "dim"}


class SourceFormat(str, Enum):  # noqa: UP042  (StrEnum needs Python 3.11)
    imagefolder = "imagefolder"
    csv = "csv"
    parquet = "parquet"
    hf = "hf"
    webdataset = "webdataset"


@app.command("inspect", epilog=EXIT_CODES_HELP)
@handle_errors
def inspect_command(
    train: Annotated[
        str,
        typer.Option(
            "--train",
            help="Reference set: ImageFolder tree, CSV/Parquet manifest, Hugging Face dataset (save_to_disk folder, "
            "Parquet/Arrow file, hf://datasets/ORG/NAME[:split]) or WebDataset shards (.tar, {000..009} pattern, folder).",
        ),
    ],
    shift: Annotated[str, typer.Option("--shift", help="Shifted set, any of the same kinds; classes matched by name.")],
    json_path: Annotated[
        Path | None, typer.Option("--json", help="Also write the report as JSON to this file.")
    ] = None,
    fmt: Annotated[
        SourceFormat | None, typer.Option("--format", help="Force the source format (default: auto-detect).")
    ] = None,
    strict: Annotated[bool, typer.Option("--strict", help="Make unreadable images fatal instead of skipped.")] = False,
    min_per_class: Annotated[
        int, typer.Option("--min-per-class", min=1, help="Warn about classes with fewer usable images.")
    ] = 10,
    image_size: Annotated[
        int | None, typer.Option("--image-size", min=8, help="Resolution to report decode-cache coverage at.")
    ] = None,
    cache_dir: Annotated[
        Path | None,
        typer.Option("--cache-dir", help="Decode cache folder (default $PTDIAG_CACHE_DIR or ~/.cache/ptdiag)."),
    ] = None,
    warm_cache: Annotated[
        bool, typer.Option("--warm-cache", help="Also store every image in the decode cache at --image-size.")
    ] = False,
    workers: Annotated[
        int | None, typer.Option("--workers", min=1, help="Decoding processes (default: all cores).")
    ] = None,
    train_split: Annotated[str | None, typer.Option("--train-split", help="Split of a Hugging Face DatasetDict or hub dataset for --train [train].")] = None,
    shift_split: Annotated[str | None, typer.Option("--shift-split", help="Split of a Hugging Face DatasetDict or hub dataset for --shift.")] = None,
    image_column: Annotated[str | None, typer.Option("--image-column", help="Image column of a Hugging Face dataset [its Image feature].")] = None,
    label_column: Annotated[str | None, typer.Option("--label-column", help="Label column of a Hugging Face dataset [its ClassLabel], or a WebDataset member/json field [cls].")] = None,
    label_map: Annotated[str | None, typer.Option("--label-map", help="File renaming raw labels to class names in both sets: CSV of label,name rows, JSON object, or one name per line (line i names label i).")] = None,
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
            fmt=fmt.value if fmt else None,
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


# ---------------------------------------------------------------------------------------------------- rendering


def render_report(report: InspectReport, console: Console) -> None:
    """Print the report as rich tables; reads the report only."""
    console.print(_sets_table(report))
    console.print(_classes_table(report))
    if report.leaked:
        console.print(_leak_table(report))
    console.print(_cache_table(report))
    console.print(_findings_table(report))
    verdict = (
        Text("usable: yes", style="bold green")
        if report.usable
        else Text(f"usable: no ({len(report.errors)} error(s))", style="bold red")
    )
    console.print(verdict)


def _fmt_stats(stats: dict[str, float]) -> str:
    return f"{stats['min']:g} / {stats['median']:g} / {stats['max']:g}"


def _sets_table(report: InspectReport) -> Table:
    table = Table(title="Sets", title_justify="left")
    table.add_column("")
    table.add_column("train", overflow="fold")
    table.add_column("shift", overflow="fold")
    a, b = report.train, report.shift
    rows = [
        ("source", a.source, b.source),
        ("format", a.format, b.format),
        ("image files listed", a.n_listed, b.n_listed),
        ("usable images", a.n_usable, b.n_usable),
        ("unreadable (skipped)", a.n_unreadable, b.n_unreadable),
        ("readable, outside the shared classes", a.n_outside_shared, b.n_outside_shared),
        ("non-image files (ignored)", a.n_non_image, b.n_non_image),
        ("exact duplicates within", a.n_duplicates_within, b.n_duplicates_within),
        ("width min / median / max", _fmt_stats(a.width), _fmt_stats(b.width)),
        ("height min / median / max", _fmt_stats(a.height), _fmt_stats(b.height)),
        ("modes", _fmt_counts(a.modes), _fmt_counts(b.modes)),
        ("file formats", _fmt_counts(a.formats), _fmt_counts(b.formats)),
    ]
    for name, left, right in rows:
        table.add_row(name, str(left), str(right))
    return table


def _fmt_counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{key} {n}" for key, n in counts.items()) or "-"


def _classes_table(report: InspectReport) -> Table:
    n = len(report.classes)
    caption = f"first {_MAX_CLASS_ROWS} of {n} classes; see --json" if n > _MAX_CLASS_ROWS else None
    table = Table(title=f"Classes ({len(report.shared_classes)} shared)", title_justify="left", caption=caption)
    for column in ("class", "train files", "train used", "shift files", "shift used", "status"):
        table.add_column(column, justify="left" if column in ("class", "status") else "right")
    for row in report.classes[:_MAX_CLASS_ROWS]:
        style = None if row.status == "shared" else ("red" if row.status != "train only" else "yellow")
        table.add_row(
            Text(row.name), str(row.train_listed), str(row.train_used), str(row.shift_listed), str(row.shift_used),
            row.status, style=style,
        )  # fmt: skip
    return table


def _leak_table(report: InspectReport) -> Table:
    n = len(report.leaked)
    caption = f"first {_MAX_LEAK_ROWS} of {n}; see --json" if n > _MAX_LEAK_ROWS else None
    table = Table(title=f"Duplicates across sets ({n})", title_justify="left", caption=caption)
    table.add_column("train file")
    table.add_column("identical shift file")
    for a, b in report.leaked[:_MAX_LEAK_ROWS]:
        table.add_row(Text(a), Text(b))
    return table


def _cache_table(report: InspectReport) -> Table:
    table = Table(title=f"Decode cache ({escape(str(report.cache_dir))})", title_justify="left")
    table.add_column("size")
    table.add_column("cached", justify="right")
    table.add_column("coverage", justify="right")
    if not report.cache:
        table.add_row("-", "nothing cached for these images", "-")
    for c in report.cache:
        table.add_row(f"{c.size}px", f"{c.cached}/{c.total}", f"{c.fraction:.0%}")
    if report.n_decoded:
        table.caption = f"{report.n_decoded} image(s) decoded into the cache by this run"
    return table


def _findings_table(report: InspectReport) -> Table:
    table = Table(title=f"Findings ({len(report.findings)})", title_justify="left")
    table.add_column("level")
    table.add_column("code")
    table.add_column("message", overflow="fold")
    order = {"error": 0, "warning": 1, "info": 2}
    shown: dict[str, int] = {}
    for f in sorted(report.findings, key=lambda f: order.get(f.level, 3)):
        shown[f.code] = shown.get(f.code, 0) + 1
        if shown[f.code] <= _MAX_PER_CODE:
            table.add_row(Text(f.level, style=_LEVEL_STYLE.get(f.level, "")), f.code, Text(f.message))
    hidden = {code: n - _MAX_PER_CODE for code, n in shown.items() if n > _MAX_PER_CODE}
    if hidden:
        table.caption = "not shown: " + ", ".join(f"{n} more {code}" for code, n in hidden.items()) + " (see --json)"
    if not report.findings:
        table.add_row("-", "-", "no problems found")
    return table
