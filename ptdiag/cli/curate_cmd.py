"""`ptdiag curate`: choose a small de-biased set from a finished run — shifted images to label, or reference images."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ptdiag.cli._paths import check_output_file
from ptdiag.cli._plain import print_lines
from ptdiag.cli.app import app, handle_errors
from ptdiag.errors import EXIT_CODES_HELP


@app.command("curate", epilog=EXIT_CODES_HELP)
@handle_errors
def curate_command(
    run: Annotated[str | None, typer.Argument(help="Run folder or its results.json [the newest under ./ptdiag-runs].")] = None,
    n: Annotated[int, typer.Option("--n", min=1, help="How many images to choose.")] = 200,
    source: Annotated[str, typer.Option("--from", help="shift: shifted images to label, spread over predicted classes and density-ratio bands | reference: reference images resampled to match the shifted set (no new labels).")] = "shift",
    out: Annotated[Path | None, typer.Option("--out", help="Manifest CSV to write [RUN/curated-<from>-<n>.csv].")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the reference resampling and of --random.")] = 0,
    random: Annotated[bool, typer.Option("--random", help="With --from shift: a uniform random sample instead, to label for --shift-labels (estimates need a random sample).")] = False,
) -> None:
    """Choose a small de-biased set from a finished run (no training): a manifest of path,label and why each image."""
    from ptdiag._io import atomic_write
    from ptdiag.engine.curation import curate_run
    from ptdiag.report.curate_view import curate_lines
    from ptdiag.report.locate import load_run

    check_output_file(out, "--out")
    results_path, results = load_run(run)
    run_dir = results_path.parent
    curated = curate_run(run_dir, results, n, source, seed, random)
    target = out or run_dir / f"curated-{source}{'-random' if random else ''}-{n}.csv"
    frame = curated.to_frame()
    atomic_write(target, lambda fh: frame.to_csv(fh, index=False))
    print_lines(curate_lines(curated.method, curated.rows, str(target), source))
