"""`ptdiag analyze`: the main job — train, evaluate, split, decompose, verdict, results.json."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ptdiag.cli._options import cli_value, with_setting_options
from ptdiag.cli._paths import check_output_folder
from ptdiag.cli._plain import stdout_is_terminal
from ptdiag.cli.app import app, handle_errors
from ptdiag.errors import UsageError

console = Console(highlight=False)


def settings_from_flags(given: dict[str, Any]) -> dict[str, Any]:
    """The flags as AnalyzeConfig values: comma lists parsed by the field's type, repeatable options as tuples."""
    from ptdiag.config import setting_types

    types = setting_types()
    out: dict[str, Any] = {}
    for name, value in given.items():
        flag = "--" + name.replace("_", "-")
        kind = types[name]
        if isinstance(value, Path):
            out[name] = str(value)
        elif value is None or not isinstance(value, str | list):
            out[name] = value
        elif isinstance(value, list):
            out[name] = tuple(value) or None
        elif kind == "tuple[float, ...]":
            out[name] = _floats(value, flag)
        elif kind == "tuple[int, ...]":
            out[name] = _ints(value, flag)
        elif kind == "tuple[str, ...]":
            out[name] = _words(value)
        else:
            out[name] = value
    return out


def _floats(text: str | None, flag: str) -> tuple[float, ...] | None:
    if text is None:
        return None
    try:
        return tuple(float(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise UsageError(f"{flag} takes a comma list of numbers. Got {text!r}.") from None


def _ints(text: str | None, flag: str) -> tuple[int, ...] | None:
    values = _floats(text, flag)
    if values is not None and any(v != int(v) for v in values):
        raise UsageError(f"{flag} takes a comma list of integers. Got {text!r}.")
    return None if values is None else tuple(int(v) for v in values)


def _words(text: str | None) -> tuple[str, ...] | None:
    return None if text is None else tuple(x.strip() for x in text.split(",") if x.strip())


@app.command("analyze")
@handle_errors
@with_setting_options()
def analyze_command(
    config_file: Annotated[Path | None, typer.Option("--config", help="TOML or YAML file whose keys equal the flags (docs/OPTIONS.md).")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the plan and an estimated time, then exit.")] = False,
    quiet: Annotated[bool, typer.Option("-q", "--quiet", help="No progress bars or tables: only the verdict line and the results path.")] = False,
    **settings: Any,
) -> None:
    """Train baselines and fine-tune pre-trained models on your data; split, decompose, give the verdict.

    Every setting of the analysis is a flag here (declared once in ptdiag.config, listed in docs/OPTIONS.md)."""
    from ptdiag.config import resolve_config
    from ptdiag.report.gate import parse_fail_on

    given = {name: cli_value(value) for name, value in settings.items()}
    gate_kinds = parse_fail_on(given["fail_on"]) if given.get("fail_on") else set()
    flags = settings_from_flags(given | {"fail_on": ",".join(sorted(gate_kinds)) or None})
    config = resolve_config(flags, config_file)
    check_output_folder(config.out, "--out")
    if dry_run:
        _print_plan(config)
        return
    results, run_dir = run_analysis(config, quiet=quiet)
    _finish(results, run_dir, gate_kinds, quiet)


def run_analysis(config, quiet: bool = False, out_console: Console | None = None):
    """Resolve the run dir, log to it, run the pipeline under progress bars; return (results, run_dir)."""
    from ptdiag.cli._progress import RichProgress
    from ptdiag.engine.pipeline import analyze
    from ptdiag.engine.runs import resolve_run_dir

    out_console = out_console or console
    run_dir, resumed = resolve_run_dir(config)
    created = not run_dir.exists()
    run_dir.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(run_dir / "ptdiag.log", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    logger = logging.getLogger("ptdiag")
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    try:
        if not quiet:
            out_console.print(f"[bold]{'Resuming' if resumed else 'Run'}[/] {escape(str(run_dir))}", soft_wrap=True)
        with RichProgress(out_console, quiet=quiet) as progress:
            results = analyze(config, run_dir, progress)
    except BaseException:
        logger.removeHandler(handler)
        handler.close()
        if created:
            _remove_if_stub(run_dir)
        raise
    logger.removeHandler(handler)
    handler.close()
    return results, run_dir


def _remove_if_stub(run_dir: Path) -> None:
    """A run that failed before finishing any job leaves nothing worth resuming: remove it, so it is not taken
    for a run later. Anything else (finished jobs, a results.json) is kept."""
    import shutil

    stub = {"config.json", "ptdiag.log", "split.json", "jobs"}
    entries = list(run_dir.iterdir()) if run_dir.is_dir() else []
    jobs = run_dir / "jobs"
    if all(e.name in stub for e in entries) and not (jobs.is_dir() and any(jobs.iterdir())):
        shutil.rmtree(run_dir, ignore_errors=True)


def _finish(results: dict, run_dir: Path, gate_kinds: set[str], quiet: bool) -> None:
    from ptdiag.cli.check_cmd import emit_gate
    from ptdiag.report.ci import summary_lines
    from ptdiag.report.gate import run_gate
    from ptdiag.report.terminal import render_summary

    if quiet:
        verdict = results["verdict"]
        print(f"verdict: {verdict['kind']} (confidence {verdict['confidence']}); results: {run_dir / 'results.json'}",
              flush=True)
    elif not stdout_is_terminal():
        print("\n".join(summary_lines(results, str(run_dir / "results.json"))), flush=True)
    else:
        render_summary(results, console, source=str(run_dir / "results.json"))
        console.print(f"Results: {escape(str(run_dir / 'results.json'))}   report: ptdiag report "
                      f"{escape(str(run_dir))} --html")
    if gate_kinds:
        # The estimates were asked for in this same command (--shift-labels): the gate may read them.
        gate = run_gate(results, fail_on=gate_kinds, allow_estimated=True)
        emit_gate(gate, results, run_dir / "results.json")
        if gate.exit_code:
            raise typer.Exit(code=gate.exit_code)


def _print_plan(config) -> None:
    from ptdiag.data.ingest import load_pair
    from ptdiag.engine.plan import make_plan
    from ptdiag.engine.rundata import analysed_shift_labels

    pair = load_pair(config.train, config.shift, fmt=config.format, strict=config.strict,
                     min_per_class=config.min_per_class, **config.source_options())
    label_free = not (analysed_shift_labels(config, pair) >= 0).any()
    if label_free:  # no shifted label: the label-free part only (support split and the pre-trained recipes)
        config = dataclasses.replace(config, remedies=False, baseline_seeds=())
    plan = make_plan(config, len(pair.reference.labels), len(pair.shift.labels), len(pair.classes))
    table = Table(title=f"ptdiag analyze --dry-run (budget {config.budget}, device {plan.device})")
    table.add_column("what")
    table.add_column("plan", justify="right")
    rows = [
        ("reference images (train/val/test)",
         f"{plan.n_reference} ({plan.split['train']}/{plan.split['val']}/{plan.split['test']})"),
        ("shifted images", str(plan.n_shift) + (" (unlabelled: label-free run, no baselines or remedies)"
                                                 if label_free else "")),
        ("classes", str(len(pair.classes))),
        ("baseline runs × checkpoints", f"{plan.baseline_runs} runs, {plan.baseline_points} points"),
        ("baseline epochs / image size", f"{plan.baseline_epochs} / {config.baseline_image_size} px"),
        ("pre-trained backbones (features + LP)", str(plan.probes)),
        ("fine-tune runs × epochs", f"{plan.finetune_runs} × {plan.finetune_epochs} at {config.image_size} px "
                                    f"({plan.finetune_recipe})"),
        ("support split", f"{config.folds}-fold cross-fitting, ε = {config.epsilon}"),
        ("this machine: one fine-tuning step (32 images)", f"{plan.rates.train_step:.2f} s"),
        ("other processes while measuring", _load_text(plan.rates)),
        *((f"  estimate: {name}", f"{seconds:.0f} s") for name, seconds in plan.stage_seconds.items()),
        ("estimated time on this device", f"{plan.estimated_seconds / 60:.1f} min"),
    ]
    for row in rows:
        table.add_row(*row)
    console.print(table)
    if plan.rates.busy:
        console.print(f"[yellow]note:[/] the machine is busy: other processes used {plan.rates.other_load:.1f} "
                      "cores while it was measured, so the estimate assumes that load goes on; rerun --dry-run when "
                      "it is quiet for the time on an idle machine.", soft_wrap=True)


def _load_text(rates) -> str:
    load = "unknown" if rates.other_load is None else f"{rates.other_load:.1f} cores busy"
    return f"{load} (measured in {rates.measure_seconds:.0f} s)"
