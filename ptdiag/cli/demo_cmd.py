"""`ptdiag demo`: two known-answer scenarios on real Fashion-MNIST images, side by side."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from ptdiag.cli._plain import stdout_is_terminal
from ptdiag.cli.app import app, handle_errors
from ptdiag.report.demo_view import demo_table

console = Console(highlight=False)


@app.command("demo")
@handle_errors
def demo_command(
    out: Annotated[Path, typer.Option("--out", help="Folder for the generated data and one run per scenario.")] = Path("ptdiag-runs/demo"),
    budget: Annotated[str, typer.Option("--budget", help="quick | standard | full.")] = "quick",
    n_reference: Annotated[int, typer.Option("--n-reference", help="Reference images per scenario.")] = 4000,
    n_shift: Annotated[int, typer.Option("--n-shift", help="Shifted images per scenario.")] = 2000,
    seed: Annotated[int, typer.Option("--seed", help="Seed for data generation and training.")] = 0,
    device: Annotated[str, typer.Option("--device", help="auto | cpu | cuda | mps.")] = "auto",
    quiet: Annotated[bool, typer.Option("-q", "--quiet", help="No progress bars.")] = False,
    generate_only: Annotated[bool, typer.Option("--generate-only", help="Write the scenario folders under OUT/data and stop.")] = False,
) -> None:
    """Run the two-scenario demo (dataset bias vs extrapolation) on real images, offline."""
    from ptdiag.cli.analyze_cmd import run_analysis
    from ptdiag.report.html import write_html
    from ptdiag.scenarios.demo import generate_demo_data, run_demo

    def run(config) -> dict[str, Any]:
        if not quiet:
            console.rule(f"[bold]{config.name}")
        results, run_dir = run_analysis(config, quiet=quiet)
        write_html(results, run_dir / "report.html")
        return results

    flags = {"budget": budget, "seed": seed, "device": device}
    if generate_only:
        for path in generate_demo_data(out, n_reference=n_reference, n_shift=n_shift, seed=seed):
            console.print(escape(str(path)))
        return
    rows = run_demo(out, flags, run, n_reference=n_reference, n_shift=n_shift, seed=seed)
    # Logs and CI (no terminal) default to 80 columns, too narrow for seven columns of intervals.
    wide = console if stdout_is_terminal() else Console(highlight=False, width=max(console.width, 120))
    wide.print(demo_table(rows))
    for row in rows:
        console.print(f"{row.key}: {row.run_dir / 'report.html'}")
