"""`ptdiag check`: the CI gate on a finished run; prints one line per check and exits 0/1/2/3/4."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from ptdiag.cli._paths import check_output_file
from ptdiag.cli._plain import stdout_is_terminal
from ptdiag.cli.app import app, handle_errors
from ptdiag.errors import UsageError
from ptdiag.schema import VERDICT_KINDS


@app.command("check")
@handle_errors
def check_command(
    run: Annotated[
        str | None,
        typer.Argument(
            metavar="RUN",
            help="A run directory or its results.json (default: the newest run under ./ptdiag-runs/).",
            show_default=False,
        ),
    ] = None,
    fail_on: Annotated[
        str,
        typer.Option(
            "--fail-on",
            metavar="KINDS",
            help=f"Comma list of verdict kinds that fail the gate: {', '.join(VERDICT_KINDS)}.",
        ),
    ] = "",
    max_bias_component: Annotated[
        float | None,
        typer.Option(
            "--max-bias-component",
            metavar="POINTS",
            min=0,
            max=100,
            help="Fail when the baseline bias component exceeds POINTS accuracy points.",
        ),
    ] = None,
    min_er_out: Annotated[
        float | None,
        typer.Option(
            "--min-er-out",
            metavar="POINTS",
            min=-100,
            max=100,
            help="Fail when the best pre-trained model's out-of-support ER is below POINTS accuracy points.",
        ),
    ] = None,
    fail_if_warning: Annotated[
        bool, typer.Option("--fail-if-warning", help="Fail when the run recorded any warning.")
    ] = False,
    min_remedy_recovery: Annotated[
        float | None,
        typer.Option(
            "--min-remedy-recovery",
            metavar="PERCENT",
            min=0,
            max=100,
            help="Fail when no measured remedy recovers PERCENT % of the baseline gap.",
        ),
    ] = None,
    allow_estimated: Annotated[
        bool, typer.Option("--allow-estimated", help="Gate on shifted accuracies estimated from a labelled sample "
                           "(--shift-labels); without it such a run exits 4.")
    ] = False,
    junit: Annotated[
        Path | None,
        typer.Option("--junit", metavar="FILE", help="Also write the checks as JUnit XML (one testcase per check)."),
    ] = None,
) -> None:
    """Gate CI on a run: exit 0 pass, 1 failed, 2 usage, 3 unreadable results, 4 inconclusive."""
    from ptdiag.report import load_run
    from ptdiag.report.gate import parse_fail_on, run_gate

    kinds = parse_fail_on(fail_on)
    if (not kinds and max_bias_component is None and min_er_out is None and not fail_if_warning
            and min_remedy_recovery is None):
        raise UsageError(
            "nothing to check: give --fail-on, --max-bias-component, --min-er-out, --min-remedy-recovery or "
            "--fail-if-warning",
            hint="e.g. ptdiag check --fail-on dataset-bias,inconclusive",
        )
    check_output_file(junit, "--junit")
    results_path, results = load_run(run)
    gate = run_gate(results, kinds, max_bias_component, min_er_out, fail_if_warning, min_remedy_recovery,
                    allow_estimated)
    emit_gate(gate, results, results_path, junit)
    raise typer.Exit(code=gate.exit_code)


def emit_gate(gate, results: dict, results_path: Path, junit: Path | None = None) -> None:
    """Print the gate (lines in a log, styled on a terminal); JUnit XML; GitHub annotations and job summary."""
    from ptdiag.report import render_gate
    from ptdiag.report.ci import gate_lines, github_annotations, github_step_summary, on_github_actions, write_junit

    if junit is not None:
        write_junit(junit, gate, results_path)
    if stdout_is_terminal():
        console = Console(highlight=False)
        console.print(f"ptdiag check {results_path}", markup=False, soft_wrap=True)
        render_gate(gate, console)
    else:
        print("\n".join([f"ptdiag check {results_path}", *gate_lines(gate)]), flush=True)
    if on_github_actions():
        for line in github_annotations(gate):
            print(line, flush=True)
        github_step_summary(gate, results)
