"""`ptdiag analyze`: the main job — train, evaluate, split, decompose, verdict, results.json."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ptdiag.cli._paths import check_output_folder
from ptdiag.cli._plain import stdout_is_terminal
from ptdiag.cli.app import app, handle_errors
from ptdiag.errors import UsageError

console = Console(highlight=False)


# Parameters of `analyze` that are not settings of the analysis (every other one is an AnalyzeConfig field).
_NOT_SETTINGS = ("config_file", "dry_run", "quiet", "fmt")


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


Opt = typer.Option


@app.command("analyze")
@handle_errors
def analyze_command(
    train: Annotated[str, Opt("--train", help="Reference (in-distribution) images: ImageFolder dir, CSV/Parquet manifest, Hugging Face dataset (folder, Parquet/Arrow, hf://datasets/ORG/NAME) or WebDataset shards.")],
    shift: Annotated[str, Opt("--shift", help="Shifted images, same classes (a subset is fine); any of the same formats.")],
    out: Annotated[Path | None, Opt("--out", help="Run directory [default: ptdiag-runs/<timestamp>-<name>].")] = None,
    name: Annotated[str | None, Opt("--name", help="Run name used in the default run directory.")] = None,
    config_file: Annotated[Path | None, Opt("--config", help="TOML or YAML file whose keys equal the flags.")] = None,
    budget: Annotated[str | None, Opt("--budget", help="quick (2-core CPU) | standard (one GPU) | full (paper recipe) [quick].")] = None,
    fmt: Annotated[str | None, Opt("--format", help="imagefolder | csv | parquet | hf | webdataset (default: auto-detect).")] = None,
    train_split: Annotated[str | None, Opt("--train-split", help="Split of a Hugging Face DatasetDict / hub dataset for --train [train].")] = None,
    shift_split: Annotated[str | None, Opt("--shift-split", help="Split of a Hugging Face DatasetDict / hub dataset for --shift.")] = None,
    image_column: Annotated[str | None, Opt("--image-column", help="Image column of a Hugging Face dataset [its Image feature].")] = None,
    label_column: Annotated[str | None, Opt("--label-column", help="Label column of a Hugging Face dataset [its ClassLabel], or WebDataset member/json field [cls].")] = None,
    label_map: Annotated[str | None, Opt("--label-map", help="File renaming raw labels to class names in both sets: CSV of label,name rows, JSON object, or one name per line (line i names label i).")] = None,
    model: Annotated[list[str] | None, Opt("--model", help="Pre-trained timm model (repeatable) [default: tf_efficientnet_lite0].")] = None,
    weights: Annotated[list[str] | None, Opt("--weights", help="Local checkpoint for each --model (repeatable, same order).")] = None,
    strategies: Annotated[str | None, Opt("--strategies", help="Comma list of lp, ft, lpft.")] = None,
    image_size: Annotated[int | None, Opt("--image-size", help="Resolution for pre-trained models (px).")] = None,
    max_reference: Annotated[int | None, Opt("--max-reference", help="Subsample the reference set to this many images.")] = None,
    max_shift: Annotated[int | None, Opt("--max-shift", help="Subsample the shifted set to this many images.")] = None,
    val_fraction: Annotated[float | None, Opt("--val-fraction", help="Share of the reference held out to choose learning rates and probe strengths [0.15].")] = None,
    test_fraction: Annotated[float | None, Opt("--test-fraction", help="Share of the reference held out to measure reference accuracy [0.2].")] = None,
    baseline_fractions: Annotated[str | None, Opt("--baseline-fractions", help="Comma list of training-data fractions.")] = None,
    baseline_seeds: Annotated[str | None, Opt("--baseline-seeds", help="Comma list of baseline seeds.")] = None,
    baseline_epochs: Annotated[int | None, Opt("--baseline-epochs", help="Epochs per baseline run.")] = None,
    baseline_eval_epochs: Annotated[str | None, Opt("--baseline-eval-epochs", help="Comma list of checkpoint epochs.")] = None,
    baseline_arch: Annotated[str | None, Opt("--baseline-arch", help="Architecture of the from-scratch baselines (a timm name) [ptdiag_smallcnn].")] = None,
    baseline_width: Annotated[int | None, Opt("--baseline-width", help="Width (channels of the first layer) of the default baseline CNN.")] = None,
    baseline_image_size: Annotated[int | None, Opt("--baseline-image-size", help="Resolution the baselines train at (px).")] = None,
    baseline_lr: Annotated[float | None, Opt("--baseline-lr", help="Baselines' learning rate [0.003].")] = None,
    scratch_same_arch: Annotated[bool | None, Opt("--scratch-same-arch/--no-scratch-same-arch", help="Also train the pre-trained architecture from scratch.")] = None,
    probe_cs: Annotated[str | None, Opt("--probe-cs", help="Comma list: inverse regularisation strengths of the linear probe (chosen on reference val).")] = None,
    freeze_bn: Annotated[bool | None, Opt("--freeze-bn/--no-freeze-bn", help="Keep the pre-trained BatchNorm statistics frozen while fine-tuning [on].")] = None,
    ft_epochs: Annotated[int | None, Opt("--ft-epochs", help="Fine-tuning epochs.")] = None,
    ft_lrs: Annotated[str | None, Opt("--ft-lrs", help="Comma list: fine-tuning LR grid (chosen on reference val).")] = None,
    ft_seeds: Annotated[int | None, Opt("--ft-seeds", help="Fine-tuning seeds at the chosen LR.")] = None,
    ft_from_block: Annotated[int | None, Opt("--ft-from-block", help="Fine-tune only blocks K.. (and the head) on cached activations of the frozen lower blocks; 0 = end to end. quick: 6.")] = None,
    batch_size: Annotated[int | None, Opt("--batch-size", help="Fine-tuning batch size (lower it on out-of-memory).")] = None,
    epsilon: Annotated[float | None, Opt("--epsilon", help="Out-of-support threshold on p_ref/p_shift.")] = None,
    support_max_reference: Annotated[int | None, Opt("--support-max-reference", help="Reference images the domain classifier is fitted on, at most [20000].")] = None,
    folds: Annotated[int | None, Opt("--folds", help="Cross-fitting folds of the domain classifier.")] = None,
    scale: Annotated[str | None, Opt("--scale", help="probit | logit.")] = None,
    bootstrap: Annotated[int | None, Opt("--bootstrap", help="Bootstrap replicates for the test-noise interval.")] = None,
    material_points: Annotated[float | None, Opt("--material-points", help="Verdict: smallest material effect, in accuracy points [2].")] = None,
    material_share: Annotated[float | None, Opt("--material-share", help="Below this share of a gap, the advice says pre-training recovers 'a little of' it; it never decides the verdict [0.25].")] = None,
    min_r2: Annotated[float | None, Opt("--min-r2", help="r² below it: the line-fit check warns (the line is trusted by its prediction band at the candidate, not by r²) [0.8].")] = None,
    seed: Annotated[int | None, Opt("--seed", help="Seed for splits, subsampling and training.")] = None,
    device: Annotated[str | None, Opt("--device", help="auto | cpu | cuda | cuda:N | mps.")] = None,
    strict: Annotated[bool | None, Opt("--strict/--no-strict", help="Corrupt images are fatal.")] = None,
    min_per_class: Annotated[int | None, Opt("--min-per-class", help="Warn below this many images per class.")] = None,
    cache_dir: Annotated[str | None, Opt("--cache-dir", help="Decode cache folder [default: ~/.cache/ptdiag].")] = None,
    save_checkpoints: Annotated[bool | None, Opt("--save-checkpoints/--no-save-checkpoints", help="Keep fine-tuned weights in RUN/checkpoints/.")] = None,
    executor: Annotated[str | None, Opt("--executor", help="local (this process) | ray (a Ray cluster; needs ptdiag[ray], see docs/SCALING.md).")] = None,
    ray_address: Annotated[str | None, Opt("--ray-address", help="Ray cluster to join [default: $RAY_ADDRESS, else a local Ray instance].")] = None,
    remedies: Annotated[bool | None, Opt("--remedies/--no-remedies", help="Measure last-layer retraining and reweighting next to pre-training [on].")] = None,
    fail_on: Annotated[str | None, Opt("--fail-on", help="Comma list of verdict kinds that fail (exit 1; 4 for inconclusive).")] = None,
    dry_run: Annotated[bool, Opt("--dry-run", help="Print the plan and an estimated time, then exit.")] = False,
    quiet: Annotated[bool, Opt("-q", "--quiet", help="No progress bars or tables: only the verdict line and the results path.")] = False,
) -> None:
    """Train baselines and fine-tune pre-trained models on your data; split, decompose, give the verdict."""
    given = {name: value for name, value in locals().items() if name not in _NOT_SETTINGS}  # first: the flags only
    from ptdiag.config import resolve_config
    from ptdiag.report.gate import parse_fail_on

    gate_kinds = parse_fail_on(fail_on) if fail_on else set()
    flags = settings_from_flags(given | {"format": fmt, "fail_on": ",".join(sorted(gate_kinds)) or None})
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
        gate = run_gate(results, fail_on=gate_kinds)
        emit_gate(gate, results, run_dir / "results.json")
        if gate.exit_code:
            raise typer.Exit(code=gate.exit_code)


def _print_plan(config) -> None:
    from ptdiag.data.ingest import load_pair
    from ptdiag.engine.plan import make_plan

    pair = load_pair(config.train, config.shift, fmt=config.format, strict=config.strict,
                     min_per_class=config.min_per_class, **config.source_options())
    plan = make_plan(config, len(pair.reference.labels), len(pair.shift.labels), len(pair.classes))
    table = Table(title=f"ptdiag analyze --dry-run (budget {config.budget}, device {plan.device})")
    table.add_column("what")
    table.add_column("plan", justify="right")
    rows = [
        ("reference images (train/val/test)",
         f"{plan.n_reference} ({plan.split['train']}/{plan.split['val']}/{plan.split['test']})"),
        ("shifted images", str(plan.n_shift)),
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
