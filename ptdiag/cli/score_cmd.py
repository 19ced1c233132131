"""`ptdiag score`: the statistics and the verdict on predictions the user already has (no training)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from ptdiag._io import write_json_atomic
from ptdiag.cli._paths import check_output_file
from ptdiag.cli.app import app, handle_errors

SECTIONS = ("fit", "decomposition", "pretrained", "remedy_scores", "verdict", "warnings", "statistics")


@app.command("score")
@handle_errors
def score_command(
    predictions: Annotated[Path, typer.Option(
        "--predictions", help="CSV or Parquet, one row per (model, example): model, kind (baseline|pretrained), "
                              "example, set (reference|shift), correct (0/1; empty on unlabelled shift rows); optional "
                              "run, seed, max_softmax and neg_entropy, and on shift rows support (in|out) or rho.")],
    json_path: Annotated[Path | None, typer.Option("--json", help="Also write the results sections as JSON.")] = None,
    epsilon: Annotated[float, typer.Option("--epsilon", help="Out-of-support threshold on the rho column.")] = 0.2,
    bootstrap: Annotated[int, typer.Option("--bootstrap", help="Resampling replicates.")] = 1000,
    seed: Annotated[int, typer.Option("--seed", help="Seeds the resampling.")] = 0,
) -> None:
    """Score evaluated models: ER with intervals, the gap decomposition and the verdict, as `analyze` does."""
    from ptdiag.report.terminal import er_table, verdict_panel
    from ptdiag.stats.predictions import evals_from_table, read_predictions, shift_labelled
    from ptdiag.stats.score import StatsConfig, score

    check_output_file(json_path, "--json")

    table = read_predictions(predictions)
    evals, support = evals_from_table(table, epsilon, source=str(predictions))
    scores = score(evals, support, StatsConfig(epsilon=None, bootstrap=bootstrap, seed=seed),
                   shift_labelled=shift_labelled(evals, str(predictions))).to_dict()
    out = {key: scores[key] for key in SECTIONS}
    if "run" not in table.columns:
        n = sum(e.kind == "baseline" for e in evals)
        out["warnings"].insert(0, f"{n} runs assumed (no `run` column): each baseline row is counted as its own "
                                  "training run; give `run` so checkpoints of one run are resampled together")
    console = Console(highlight=False)
    console.print(verdict_panel(out, source=str(predictions)))
    console.print(er_table(out, compact=True))
    for warning in out["warnings"]:
        console.print(f"warning: {warning}", markup=False, highlight=False, soft_wrap=True)
    if json_path is not None:
        write_json_atomic(json_path, out)
