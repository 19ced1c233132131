"""A new user's first hour: class-name mismatches, bad output paths, help text, quiet mode, piped tables, shares
that mean nothing, and reports that name their run. CLI items run through Typer's runner and as subprocesses."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import typer
from _imagegen import make_image_folder
from _reporting import fixture, write_run
from typer.testing import CliRunner

from ptdiag.cli import app
from ptdiag.errors import EXIT_DATA, EXIT_USAGE
from ptdiag.stats.simulate import SCENARIOS, draw

runner = CliRunner()
LONG_NAME = "tf_efficientnet_lite0/lpft-at-a-learning-rate-of-3e-4-with-three-seeds"


def _ptdiag(*args: str, cwd: Path | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    """The installed CLI as a subprocess with stdout piped (not a terminal), at no particular width."""
    environ = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    environ.update(env or {})
    return subprocess.run([sys.executable, "-m", "ptdiag", *args], capture_output=True, text=True, cwd=cwd,
                          env=environ, timeout=120)


# --- class names that do not match -----------------------------------------------------------------------------


@pytest.fixture
def case_mismatch(tmp_path):
    make_image_folder(tmp_path / "ref", {"bag": 12, "boot": 12, "coat": 12}, seed=1)
    make_image_folder(tmp_path / "shift", {"BAG": 6, "BOOT": 6, "COAT": 6}, seed=2, tint=(255, 0, 0))
    return tmp_path


def test_no_shared_class_is_a_data_error_with_a_did_you_mean(case_mismatch):
    for command in (["inspect"], ["analyze", "--dry-run"]):
        proc = _ptdiag(*command, "--train", "ref", "--shift", "shift", cwd=case_mismatch)
        assert proc.returncode == EXIT_DATA, (command, proc.stdout, proc.stderr)
        assert "Traceback" not in proc.stderr
        assert "'BAG' -> 'bag'" in proc.stdout + proc.stderr
        assert "--label-map" in proc.stdout + proc.stderr


def test_inspect_no_longer_calls_a_pair_without_shared_classes_usable(case_mismatch):
    result = runner.invoke(app, ["inspect", "--train", str(case_mismatch / "ref"), "--shift",
                                 str(case_mismatch / "shift")])
    assert result.exit_code == EXIT_DATA
    assert "usable: yes" not in result.output


@pytest.mark.parametrize("text, suffix", [("0,bag\n1,boot\n", ".csv"), ('{"0": "bag", "1": "boot"}', ".json"),
                                          ("bag\nboot\n", ".txt")])
def test_label_map_names_integer_labels(tmp_path, text, suffix):
    make_image_folder(tmp_path / "ref", {"bag": 12, "boot": 12}, seed=1)
    make_image_folder(tmp_path / "shift", {"0": 10, "1": 10}, seed=2, tint=(0, 0, 255))
    without = runner.invoke(app, ["inspect", "--train", str(tmp_path / "ref"), "--shift", str(tmp_path / "shift")])
    assert without.exit_code == EXIT_DATA and "integer labels" in without.output
    mapping = tmp_path / f"map{suffix}"
    mapping.write_text(text, encoding="utf-8")
    result = runner.invoke(app, ["inspect", "--train", str(tmp_path / "ref"), "--shift", str(tmp_path / "shift"),
                                 "--label-map", str(mapping)])
    assert result.exit_code == 0, result.output
    assert "classes: 2 shared" in result.output


def test_a_bad_label_map_names_the_file_and_row(tmp_path):
    make_image_folder(tmp_path / "ref", {"bag": 12, "boot": 12}, seed=1)
    mapping = tmp_path / "map.csv"
    mapping.write_text("0,bag\n1,boot,extra\n", encoding="utf-8")
    result = runner.invoke(app, ["inspect", "--train", str(tmp_path / "ref"), "--shift", str(tmp_path / "ref"),
                                 "--label-map", str(mapping)])
    assert result.exit_code == EXIT_USAGE
    assert "map.csv" in result.output and "row 2" in result.output


# --- output paths checked before any work ----------------------------------------------------------------------


@pytest.fixture
def run_dir(tmp_path):
    return write_run(tmp_path / "run", fixture("basic"))


def test_bad_output_paths_exit_2_with_a_message(tmp_path, run_dir):
    make_image_folder(tmp_path / "ref", {"a": 12, "b": 12}, seed=1)
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    accuracies = tmp_path / "acc.csv"
    accuracies.write_text("model,kind,ref_acc,shift_acc\nb1,baseline,0.6,0.4\nb2,baseline,0.7,0.5\n"
                          "b3,baseline,0.8,0.6\np,pretrained,0.85,0.75\n")
    ref = str(tmp_path / "ref")
    cases = [
        ["analyze", "--train", ref, "--shift", ref, "--out", str(a_file)],
        ["inspect", "--train", ref, "--shift", ref, "--json", str(tmp_path)],
        ["inspect", "--train", ref, "--shift", ref, "--json", "/proc/ptdiag-x.json"],
        ["er", "--accuracies", str(accuracies), "--json", "/proc/ptdiag-x.json"],
        ["er", "--accuracies", str(accuracies), "--json", str(tmp_path)],
        ["check", str(run_dir), "--fail-on", "both", "--junit", "/proc/ptdiag-j.xml"],
        ["report", str(run_dir), "--html", str(tmp_path)],
    ]
    for args in cases:
        result = runner.invoke(app, args)
        assert result.exit_code == EXIT_USAGE, (args, result.output)
        assert result.exception is None or isinstance(result.exception, SystemExit), args
        assert "error:" in result.output, args


def test_bad_output_path_as_a_subprocess_has_no_traceback(tmp_path, run_dir):
    proc = _ptdiag("check", str(run_dir), "--fail-on", "both", "--junit", "/proc/ptdiag-j.xml")
    assert proc.returncode == EXIT_USAGE and "Traceback" not in proc.stderr
    assert "--junit /proc/ptdiag-j.xml" in proc.stderr


# --- reports: the run a FILE lies in, piped tables that keep every name whole -----------------------------------


def test_report_file_inside_a_run_renders_that_run(tmp_path):
    older = fixture("basic")
    older["verdict"]["kind"] = "no-shift"
    mine = write_run(tmp_path / "ptdiag-runs" / "mine", older)
    newest = write_run(tmp_path / "ptdiag-runs" / "zz-newest", fixture("inconclusive"))
    os.utime(newest / "results.json", (2e9, 2e9))
    proc = _ptdiag("report", str(mine / "out.html"), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert f"run {mine}" in proc.stderr
    assert "mine" in (mine / "out.html").read_text(encoding="utf-8")
    assert not (newest / "out.html").exists()


def test_piped_report_keeps_names_whole_at_80_columns(tmp_path):
    results = fixture("basic")
    for model in results["pretrained"]:
        model["name"] = LONG_NAME
    for row in results["decomposition"]["baseline"] + results["decomposition"]["pretrained"]:
        row["name"] = LONG_NAME
    run = write_run(tmp_path / "run", results)
    proc = _ptdiag("report", str(run))
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert max(len(line.rstrip()) for line in lines) <= 80
    assert sum(line.strip() == LONG_NAME for line in lines) >= 2  # ER table and decomposition: whole, own line
    assert "…" not in proc.stdout  # nothing cut
    assert not [line for line in lines if len(line.strip()) == 1 and line.strip().isalnum()]  # no 1-char folds


def test_er_keeps_model_names_whole_in_80_columns(tmp_path):
    accuracies = tmp_path / "acc.csv"
    rows = [f"b{i},baseline,{0.5 + 0.05 * i},{0.3 + 0.05 * i}" for i in range(5)]
    accuracies.write_text("model,kind,ref_acc,shift_acc\n" + "\n".join(rows) + f"\n{LONG_NAME},pretrained,0.8,0.7\n")
    proc = _ptdiag("er", "--accuracies", str(accuracies), env={"COLUMNS": "80"})
    assert proc.returncode == 0, proc.stderr
    assert LONG_NAME in proc.stdout and "…" not in proc.stdout


# --- numbers the tool itself says mean nothing ------------------------------------------------------------------


def _with_wild_remedy(results: dict) -> dict:
    from _reporting import remedy_rows as _rows

    results["remedies"] = _rows()
    results["remedies"][0]["recovered"] = {"gap": {"lower": 4.67, "mid": 6.89, "upper": 13.52},
                                           "bias": {"lower": -46.61, "mid": -3.93, "upper": 26.77},
                                           "extrapolation": None}
    return results


def test_unquotable_shares_are_neither_shown_nor_gated_on(tmp_path):
    run = write_run(tmp_path / "run", _with_wild_remedy(fixture("basic")))
    report = _ptdiag("report", str(run))
    assert report.returncode == 0, report.stderr
    assert "689" not in report.stdout and "393" not in report.stdout
    gate = _ptdiag("check", str(run), "--min-remedy-recovery", "50")
    assert "689" not in gate.stdout and "PASS" not in gate.stdout.split("remedy-recovery")[1].split("\n")[0]
    md = _ptdiag("report", str(run), "--md")
    assert "689" not in md.stdout


def test_zero_out_of_support_images_are_not_called_a_missing_split(tmp_path):
    results = fixture("basic")
    results["support"]["n_in"], results["support"]["n_out"] = 1000, 0
    for model in results["pretrained"]:
        model["er_out"] = None
    run = write_run(tmp_path / "run", results)
    proc = _ptdiag("check", str(run), "--min-er-out", "5")
    assert "support split missing" not in proc.stdout
    assert "no out-of-support shifted image" in proc.stdout


def test_line_fit_check_reads_min_r2():
    from ptdiag.stats.score import StatsConfig, score
    from ptdiag.stats.thresholds import VerdictConfig

    scenario = replace(SCENARIOS["extrapolation-flat"], n_ref=300, n_shift=300)
    evals, support = draw(scenario, np.random.default_rng(0))

    def line_fit(min_r2):
        result = score(evals, support, StatsConfig(bootstrap=50, verdict=VerdictConfig(min_r2=min_r2)))
        return next(c for c in result.checks if c.name == "line-fit")

    assert line_fit(0.0).status == "PASS"
    strict = line_fit(1.0)
    assert strict.status == "WARN" and "--min-r2 1" in strict.message


# --- help text ------------------------------------------------------------------------------------------------


def _commands():
    group = typer.main.get_command(app)
    return [(name, cmd) for name, cmd in group.commands.items()]


@pytest.mark.parametrize("name", [name for name, _ in _commands()])
def test_help_keeps_every_word_of_every_option(name):
    command = dict(_commands())[name]
    result = runner.invoke(app, [name, "--help"], terminal_width=2000, env={"COLUMNS": "2000"})
    assert result.exit_code == 0
    flat = " ".join(result.output.split())
    assert "<bool>" not in flat
    options = [p for p in command.params if p.param_type_name == "option" and p.help]
    assert options or name in ("report",), name  # Typer vendors its own Click: never test isinstance(click.Option)
    for param in options:
        assert " ".join(param.help.split()) in flat, (name, param.name)
    assert not re.search(r" \.(\s|$)", flat), "a word vanished before a full stop"


def test_budget_help_states_its_default():
    result = runner.invoke(app, ["analyze", "--help"], terminal_width=2000, env={"COLUMNS": "2000"})
    assert "[quick]" in result.output


def test_recommended_flags_exist():
    """Every `--flag` a verdict recommendation names is a real analyze option."""
    from ptdiag.stats.verdict_text import REMEDIES

    options = {opt for param in dict(_commands())["analyze"].params for opt in param.opts}
    named = {flag for text in REMEDIES.values() for flag in re.findall(r"`(--[a-z-]+)`", text)}
    assert named and named <= options, named - options


def test_quiet_analyze_prints_the_verdict_line_and_path(monkeypatch, tmp_path):
    import ptdiag.cli.analyze_cmd as analyze_cmd

    results = fixture("basic")
    monkeypatch.setattr(analyze_cmd, "run_analysis", lambda config, quiet=False: (results, tmp_path / "run"))
    make_image_folder(tmp_path / "ref", {"a": 12, "b": 12}, seed=1)
    result = runner.invoke(app, ["analyze", "--train", str(tmp_path / "ref"), "--shift", str(tmp_path / "ref"),
                                 "-q"])
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "verdict: both (confidence medium)" in lines[0]
    assert str(tmp_path / "run" / "results.json") in lines[0]


def test_html_report_names_its_run_and_counts_each_recipes_seeds(tmp_path):
    results = fixture("basic")
    results["pretrained"][0]["n_seeds"], results["pretrained"][0]["seed"] = 3, 0
    run_dir = write_run(tmp_path / "run", results)
    result = runner.invoke(app, ["report", str(run_dir), "--html"])
    assert result.exit_code == 0, result.output
    html = (run_dir / "report.html").read_text(encoding="utf-8")
    assert "<code>run</code>" in html
    assert "3 fine-tuning seed(s)" in html and "<th>seeds (pretrained)</th><td>0</td>" not in html


def test_a_stability_of_zero_is_not_quoted():
    from rich.console import Console

    from ptdiag.report.terminal import render_terminal

    results = fixture("inconclusive")
    results["verdict"]["stability"] = 0.0
    console = Console(width=100, record=True, file=open(os.devnull, "w"))
    render_terminal(results, console)
    assert "0% of resamples" not in console.export_text()


def test_the_readme_lists_every_command():
    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    table = readme[readme.index("## Commands"):readme.index("### Your data")]
    for name, _ in _commands():
        assert f"`ptdiag {name}" in table, name


# --- small things a new user reads ------------------------------------------------------------------------------


def test_unreadable_files_are_named_in_words_a_user_reads(tmp_path):
    make_image_folder(tmp_path / "ref", {"a": 12, "b": 12}, seed=1)
    (tmp_path / "ref" / "a" / "zero.png").write_bytes(b"")
    (tmp_path / "ref" / "a" / "junk.png").write_bytes(b"not an image at all")
    (tmp_path / "ref" / "b" / "notes.txt").write_text("hello")
    proc = _ptdiag("inspect", "--train", str(tmp_path / "ref"), "--shift", str(tmp_path / "ref"))
    out = proc.stdout
    assert "file is empty (0 bytes)" in out and "zero.png" in out
    assert "<_io." not in out and "BufferedReader" not in out
    assert str(tmp_path / "ref" / "b" / "notes.txt") in out  # the file, not only its folder


def test_a_failed_run_leaves_no_stub_folder_and_unicode_names_stay_readable(tmp_path):
    from ptdiag.config import AnalyzeConfig
    from ptdiag.engine.runs import default_name

    make_image_folder(tmp_path / "ref", {"a": 12, "b": 12}, seed=1)
    make_image_folder(tmp_path / "shift", {"c": 6, "d": 6}, seed=2)
    result = runner.invoke(app, ["analyze", "--train", str(tmp_path / "ref"), "--shift", str(tmp_path / "shift"),
                                 "--out", str(tmp_path / "run"), "-q"])
    assert result.exit_code == EXIT_DATA
    assert not (tmp_path / "run").exists()
    assert default_name(AnalyzeConfig(train="/d/référence", shift="/d/décalé set")) == "référence-vs-décalé_set"


def test_the_log_names_stages_without_a_job_count_of_none(tmp_path):
    import logging

    from rich.console import Console

    from ptdiag.cli._progress import RichProgress

    records = []
    handler = logging.Handler()
    handler.emit = lambda record: records.append(record.getMessage())
    logger = logging.getLogger("ptdiag")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        with RichProgress(Console(file=open(os.devnull, "w")), quiet=True) as progress:
            progress("stage", ("ingest", None))
            progress("stage", ("baselines", 3))
    finally:
        logger.removeHandler(handler)
    assert "stage ingest" in records and "stage baselines (3 jobs)" in records
    assert not any("None" in r for r in records)


def test_flag_names_in_the_verdict_render_as_code_not_backticks():
    from ptdiag.report import render_html, render_markdown

    results = fixture("basic")
    results["verdict"]["recommendations"] = ["Evaluate on more examples (`--max-reference` or `--test-fraction`)."]
    html = render_html(results)
    assert "<code>--max-reference</code>" in html and "`--max-reference`" not in html
    md = render_markdown(results)
    assert "`--max-reference`" in md and "\\`" not in md


def test_a_closed_pipe_ends_quietly_with_its_documented_code(tmp_path, run_dir):
    from ptdiag.errors import EXIT_BROKEN_PIPE

    proc = subprocess.run(f"{sys.executable} -m ptdiag report {run_dir} | head -2", shell=True, capture_output=True,
                          text=True, executable="/bin/bash", env={**os.environ, "PTDIAG_X": "1"},
                          timeout=120)
    assert "Traceback" not in proc.stderr and "BrokenPipe" not in proc.stderr
    status = subprocess.run(["bash", "-c", f"set -o pipefail; {sys.executable} -m ptdiag report {run_dir} | head -1;"
                             " echo ${PIPESTATUS[0]}"], capture_output=True, text=True, timeout=120)
    assert status.stdout.strip().splitlines()[-1] in ("0", str(EXIT_BROKEN_PIPE))


def test_a_flat_folder_of_images_says_it_needs_class_folders(tmp_path):
    make_image_folder(tmp_path / "ref", {"a": 12, "b": 12}, seed=1)
    flat = tmp_path / "new-site"
    flat.mkdir()
    for path in sorted((tmp_path / "ref" / "a").iterdir())[:5]:
        (flat / path.name).write_bytes(path.read_bytes())
    (flat / "notes.txt").write_text("x")
    proc = _ptdiag("analyze", "--train", str(flat), "--shift", str(tmp_path / "ref"), "--dry-run")
    assert proc.returncode == EXIT_DATA and "Traceback" not in proc.stderr
    assert "has no class folders: its 5 images sit directly in" in " ".join(proc.stderr.split())
    assert "non-image" not in proc.stderr or "1 non-image" in proc.stderr
    # As the shifted set, a flat folder is unlabelled: read as such (the label-free run is tested in test_analyze).
    proc = _ptdiag("inspect", "--train", str(tmp_path / "ref"), "--shift", str(flat))
    assert proc.returncode == 0 and "read as unlabelled" in " ".join(proc.stdout.split())
    proc = _ptdiag("analyze", "--train", str(tmp_path / "ref"), "--shift", str(flat), "--dry-run")
    assert proc.returncode == 0 and "label-free run" in " ".join(proc.stdout.split())
