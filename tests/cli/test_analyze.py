"""End-to-end `ptdiag analyze` on a tiny generated pair (CPU), plus resume after a kill."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from _imagegen import TINY  # the tiny analysis flags, shared with the HF/WebDataset test
from typer.testing import CliRunner

from ptdiag.cli import app
from ptdiag.scenarios import get_scenario
from ptdiag.schema import validate_results


@pytest.fixture(scope="module")
def tiny_pair(tmp_path_factory):
    root = tmp_path_factory.mktemp("pair")
    data = get_scenario("toy").generate(root / "toy", n_reference=160, n_shift=96, seed=0)
    return data.reference_dir, data.shift_dir


def _snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(folder.rglob("*"))}


@pytest.fixture(scope="module")
def finished_run(tiny_pair, tmp_path_factory):
    ref, shift = tiny_pair
    before = _snapshot(ref.parent)
    out = tmp_path_factory.mktemp("runs") / "run"
    env_cache = str(tmp_path_factory.mktemp("cache"))
    result = CliRunner().invoke(app, ["analyze", "--train", str(ref), "--shift", str(shift), "--out", str(out),
                                      "--cache-dir", env_cache, "-q", *TINY])
    assert result.exit_code == 0, result.output
    assert _snapshot(ref.parent) == before  # never writes into the user's data folders
    return out, env_cache


def test_results_json_is_valid_and_consistent(finished_run):
    out, _ = finished_run
    results = validate_results(json.loads((out / "results.json").read_text()))
    assert len(results["baselines"]) == 6
    assert {p["strategy"] for p in results["pretrained"]} == {"lp", "lpft"}
    support = results["support"]
    assert support["n_in"] + support["n_out"] == results["data"]["shift"]["n"]
    pi_in, pi_out = support["n_in"] / results["data"]["shift"]["n"], support["n_out"] / results["data"]["shift"]["n"]
    for model in results["pretrained"] + results["baselines"]:
        parts = [(pi, acc) for pi, acc in ((pi_in, model["in_acc"]), (pi_out, model["out_acc"])) if acc is not None]
        assert sum(pi * acc for pi, acc in parts) == pytest.approx(model["shift_acc"], abs=1e-9)
    for row in results["decomposition"]["pretrained"] + results["decomposition"]["baseline"]:
        parts = [row["bias_component"] or 0.0, row["extrapolation_component"] or 0.0]
        assert sum(parts) == pytest.approx(row["gap"], abs=1e-9)
    assert results["verdict"]["kind"] in ("pretraining-helps", "dataset-bias", "both", "no-shift", "inconclusive")
    assert set(results["timings"]) >= {"ingest", "baselines", "features", "support", "statistics", "total"}


def test_run_dir_contents(finished_run):
    out, _ = finished_run
    for name in ("config.json", "split.json", "results.json", "predictions.parquet", "ptdiag.log"):
        assert (out / name).exists(), name
    table = pd.read_parquet(out / "predictions.parquet")
    assert {"model", "example_id", "path", "set", "split", "label", "prediction", "correct",
            "density_ratio"} <= set(table.columns)
    shift_rows = table[table["set"] == "shift"]
    assert shift_rows["density_ratio"].notna().all()
    assert (shift_rows["correct"] == (shift_rows["prediction"] == shift_rows["label"])).all()


def test_rerun_skips_every_finished_job(finished_run, tiny_pair):
    out, cache = finished_run
    ref, shift = tiny_pair
    jobs_before = _snapshot(out / "jobs")
    first = json.loads((out / "results.json").read_text())
    result = CliRunner().invoke(app, ["analyze", "--train", str(ref), "--shift", str(shift), "--out", str(out),
                                      "--cache-dir", cache, "-q", *TINY])
    assert result.exit_code == 0, result.output
    assert _snapshot(out / "jobs") == jobs_before
    again = json.loads((out / "results.json").read_text())
    assert again["baselines"] == first["baselines"] and again["pretrained"] == first["pretrained"]


def test_fail_on_gate_exit_code(finished_run, tiny_pair):
    out, cache = finished_run
    ref, shift = tiny_pair
    kind = json.loads((out / "results.json").read_text())["verdict"]["kind"]
    result = CliRunner().invoke(app, ["analyze", "--train", str(ref), "--shift", str(shift), "--out", str(out),
                                      "--cache-dir", cache, "-q", "--fail-on", kind, *TINY])
    assert result.exit_code == (4 if kind == "inconclusive" else 1), result.output


def test_missing_folder_is_a_data_error(tmp_path):
    result = CliRunner().invoke(app, ["analyze", "--train", str(tmp_path / "nope"), "--shift", str(tmp_path)])
    assert result.exit_code == 3
    assert "nope" in result.output and "Traceback" not in result.output


def test_bad_flag_is_a_usage_error(tiny_pair):
    ref, shift = tiny_pair
    result = CliRunner().invoke(app, ["analyze", "--train", str(ref), "--shift", str(shift), "--epsilon", "3"])
    assert result.exit_code == 2 and "--epsilon" in result.output


def test_dry_run_prints_plan_without_training(tiny_pair, tmp_path):
    ref, shift = tiny_pair
    result = CliRunner().invoke(app, ["analyze", "--train", str(ref), "--shift", str(shift), "--out",
                                      str(tmp_path / "r"), "--dry-run", *TINY])
    assert result.exit_code == 0, result.output
    assert "estimated time" in result.output and not (tmp_path / "r").exists()


def test_resume_after_kill_matches_uninterrupted_run(tiny_pair, finished_run, tmp_path):
    """Kill a run mid-way (SIGKILL: no cleanup), rerun it: finished jobs are reused and results match."""
    ref, shift = tiny_pair
    reference_out, cache = finished_run
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "ptdiag", "analyze", "--train", str(ref), "--shift", str(shift), "--out", str(out),
           "--cache-dir", cache, "-q", *TINY]
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and len(list((out / "jobs").glob("*.json"))) < 2:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    finished = _snapshot(out / "jobs")
    assert 2 <= len([k for k in finished if k.endswith(".json")])
    assert not (out / "results.json").exists()
    subprocess.run(cmd, env=env, check=True, timeout=300)
    after = _snapshot(out / "jobs")
    assert all(after[k] == v for k, v in finished.items())  # nothing finished was recomputed
    resumed = json.loads((out / "results.json").read_text())
    uninterrupted = json.loads((reference_out / "results.json").read_text())
    for key in ("baselines", "pretrained", "fit", "decomposition"):
        assert resumed[key] == uninterrupted[key], key
    np.testing.assert_equal(resumed["verdict"]["kind"], uninterrupted["verdict"]["kind"])


def test_too_few_shifted_images_for_the_support_split_still_reports_er(tmp_path):
    """The support split needs ≥ max(2·folds, 10) shifted images; with fewer, ER is still reported."""
    data = get_scenario("toy").generate(tmp_path / "toy", n_reference=160, n_shift=8, seed=0)
    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["analyze", "--train", str(data.reference_dir), "--shift", str(data.shift_dir),
                                      "--out", str(out), "-q", *TINY, "--strategies", "lp"])
    assert result.exit_code == 0, result.output
    results = validate_results(json.loads((out / "results.json").read_text()))
    assert results["support"] is None and results["pretrained"][0]["er"] is not None
    assert any("support split" in w for w in results["warnings"])
    assert results["verdict"]["kind"] in ("pretraining-helps", "inconclusive", "no-shift")


def test_save_checkpoints_writes_weights_only_loadable_files(tiny_pair, tmp_path):
    import torch

    ref, shift = tiny_pair
    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["analyze", "--train", str(ref), "--shift", str(shift), "--out", str(out), "-q",
                                      *TINY, "--save-checkpoints"])
    assert result.exit_code == 0, result.output
    files = sorted((out / "checkpoints").glob("finetune-*.pt"))
    assert len(files) == 3  # one LP-FT learning rate in TINY, then the quick budget's 3 seeds at it
    state = torch.load(files[0], map_location="cpu", weights_only=True)
    assert "classifier.weight" in state and state["classifier.weight"].shape[0] == 4


def test_remedies_are_measured_held_out_and_exported(finished_run):
    out, _ = finished_run
    results = json.loads((out / "results.json").read_text())
    rows = {r["name"]: r for r in results["remedies"]}
    assert {r["method"] for r in rows.values()} == {"last-layer", "reweight"}
    assert all(r["held_out"] for r in rows.values())
    for row in rows.values():
        assert (row["shift_acc"] is None) == (not row["applicable"]) and row["note"]
    table = pd.read_parquet(out / "predictions.parquet")
    remedy = table[(table["kind"] == "remedy") & (table["set"] == "shift")]
    n_shift = results["data"]["shift"]["n"]
    for name, rows_of in remedy.groupby("model"):
        assert rows[name]["applicable"]
        assert sorted(rows_of["example_id"]) == list(range(n_shift))  # one held-out prediction per example
        assert set(rows_of["remedy_fold"]) <= {0, 1}
        assert rows_of["correct"].mean() == pytest.approx(rows[name]["shift_acc"])
    weights = table[table["kind"] == "remedy-weight"]
    assert len(weights) == results["data"]["split"]["train"] and weights["weight"].mean() == pytest.approx(1.0, 1e-3)


def test_every_renderer_reads_a_current_results_file(finished_run):
    """The golden fixtures predate schema 2's keys; a fresh analysis must render in every format as well."""
    import io

    from rich.console import Console

    from ptdiag.report import render_html, render_json, render_markdown, render_terminal

    out, _ = finished_run
    results = validate_results(json.loads((out / "results.json").read_text()))
    kind = results["verdict"]["kind"]
    html = render_html(results, image_root=out)
    assert kind in html and "remedies" in html
    markdown = render_markdown(results)
    assert kind in markdown and results["verdict"]["reasons"][0][:30] in markdown
    assert json.loads(render_json(results))["verdict"]["kind"] == kind
    console = Console(width=160, record=True, file=io.StringIO())
    render_terminal(results, console)
    terminal = console.export_text()
    assert kind in terminal and "resamples" in terminal


def test_curate_writes_a_manifest_the_reader_accepts(finished_run, tmp_path):
    import pandas as pd

    from ptdiag.data.discovery import discover

    out, _ = finished_run
    target = tmp_path / "pick.csv"
    result = CliRunner().invoke(app, ["curate", str(out), "--n", "6", "--out", str(target)])
    assert result.exit_code == 0, result.output
    table = pd.read_csv(target)
    assert len(table) == 6 and list(table.columns[:2]) == ["path", "label"] and table["label"].isna().all()
    assert table["path"].map(lambda p: Path(p).is_file()).all() and table["reason"].notna().all()
    assert "manifest:" in result.output and str(target) in result.output
    table["label"] = table["predicted"]  # once labelled, --train reads it as it is
    table.to_csv(target, index=False)
    assert len(discover(target).paths) == 6


def test_curate_bad_requests_have_clear_messages(finished_run, tmp_path):
    import shutil

    out, _ = finished_run
    too_many = CliRunner().invoke(app, ["curate", str(out), "--n", "100000", "--out", str(tmp_path / "a.csv")])
    assert too_many.exit_code == 2 and "more than the" in too_many.output
    reference = CliRunner().invoke(app, ["curate", str(out), "--from", "reference", "--out", str(tmp_path / "b.csv")])
    assert reference.exit_code in (0, 3), reference.output  # the toy shift is out of support: reported not applicable
    if reference.exit_code == 3:
        assert "does not apply" in reference.output and "--from shift" in reference.output
    copy = tmp_path / "run"
    shutil.copytree(out, copy)
    for f in (copy / "jobs").glob("features-*.npz"):
        f.unlink()
    missing = CliRunner().invoke(app, ["curate", str(copy), "--n", "3", "--out", str(tmp_path / "c.csv")])
    assert missing.exit_code == 3 and "no stored features" in missing.output


def test_the_html_report_shows_curated_sets_as_galleries(finished_run, tmp_path):
    import shutil

    out, _ = finished_run
    run = tmp_path / "run"
    shutil.copytree(out, run)
    assert CliRunner().invoke(app, ["curate", str(run), "--n", "4"]).exit_code == 0
    page = tmp_path / "r.html"
    result = CliRunner().invoke(app, ["report", str(run), "--html", str(page)])
    assert result.exit_code == 0, result.output
    html = page.read_text(encoding="utf-8")
    section = html[html.index("Curated set curated-shift-4.csv"):]
    assert "4 shifted images to label" in section and section.count("data:image/png;base64,") >= 4


def test_curated_finetune_is_held_out_measured_and_cited(finished_run, tiny_pair, tmp_path):
    """`--curated-sizes` reruns only the curated job; every shifted score comes from a model that never trained on
    that image; the rows carry their size curve; the verdict cites them; every renderer shows the curve."""
    import io
    import shutil

    from rich.console import Console

    from ptdiag.report import render_html, render_markdown, render_terminal

    out, cache = finished_run
    ref, shift = tiny_pair
    run = tmp_path / "run"
    shutil.copytree(out, run)
    before = {p.name for p in (run / "jobs").glob("*.json")}
    result = CliRunner().invoke(app, ["analyze", "--train", str(ref), "--shift", str(shift), "--out", str(run),
                                      "--cache-dir", cache, "-q", *TINY, "--curated-sizes", "8,16,1000"])
    assert result.exit_code == 0, result.output
    new_jobs = {p.name for p in (run / "jobs").glob("*.json")} - before
    assert len(new_jobs) == 1 and next(iter(new_jobs)).startswith("curated-")
    results = validate_results(json.loads((run / "results.json").read_text()))
    rows = {r["name"].split("/")[-1]: r for r in results["remedies"] if r["method"] == "curated-finetune"}
    assert set(rows) == {"finetune-curated", "finetune-random", "finetune-curated+reference"}
    assert [p["n_images"] for p in rows["finetune-curated"]["size_curve"]] == [8, 16]
    assert [p["n_images"] for p in rows["finetune-curated+reference"]["size_curve"]] == [16]
    assert "1000 skipped" in rows["finetune-random"]["note"]
    assert rows["finetune-curated"]["size_curve"][-1]["shift_acc"] == rows["finetune-curated"]["shift_acc"]
    in_support = (results["support"] or {}).get("pi_in", 0.0)
    key = "in_acc" if in_support >= 0.5 else "shift_acc"
    assert {r["judged_by"] for r in rows.values()} == {key}
    for point, random in zip(rows["finetune-curated"]["size_curve"], rows["finetune-random"]["size_curve"],
                             strict=True):
        assert point["interval"]["lower"] <= point[key] <= point["interval"]["upper"]
        assert point["minus_random"]["mid"] == pytest.approx(point[key] - random[key])
    assert "minus_random" not in rows["finetune-random"]["size_curve"][0]
    table = pd.read_parquet(run / "predictions.parquet")
    n_shift = results["data"]["shift"]["n"]
    with np.load(next((run / "jobs").glob("curated-*.npz"))) as job:
        for i, row in enumerate(rows.values()):
            scored = table[(table["model"] == row["name"]) & (table["set"] == "shift")]
            assert sorted(scored["example_id"]) == list(range(n_shift))
            assert scored["correct"].mean() == pytest.approx(row["shift_acc"])
            trained, scored_by = job[f"r{i}_trained_by"], job[f"r{i}_scored_by"]
            picked = trained >= 0
            assert picked.sum() == 2 * 16  # 16 distinct images per half at the largest size
            assert np.all(trained[picked] != scored_by[picked])  # never scored by a model trained on it
    tuned = [r for r in results["remedies"] if r.get("base_kind") == "finetuned"]  # DFR on fine-tuned features
    assert {r["variant"] for r in tuned} == {"shift-only", "reference+shift"}
    for row in tuned:
        assert row["method"] == "last-layer" and row["base"].endswith("/lpft") and row["applicable"]
        assert row["label_budget"] and row["shift_acc"] == pytest.approx(
            table[(table["model"] == row["name"]) & (table["set"] == "shift")]["correct"].mean())
    codes = results["verdict"]["recommendation_codes"]
    advice = results["verdict"]["recommendations"][codes.index("measured-curated-finetune")]
    assert "ptdiag curate --from shift --n 16" in advice and "16 random shifted images gave" in advice
    console = Console(width=160, record=True, file=io.StringIO())
    render_terminal(results, console)
    assert "Curated against random" in console.export_text()
    assert "| 8 |" in render_markdown(results)
    assert 'id="curated-curve"' in render_html(results, image_root=run)


def test_curated_sizes_must_be_positive(tiny_pair, tmp_path):
    ref, shift = tiny_pair
    result = CliRunner().invoke(app, ["analyze", "--train", str(ref), "--shift", str(shift), "--out",
                                      str(tmp_path / "r"), "-q", *TINY, "--curated-sizes", "0,50"])
    assert result.exit_code == 2 and "--curated-sizes" in result.output


def test_curated_sizes_that_cannot_be_measured_say_why(finished_run, tiny_pair, tmp_path):
    import shutil

    out, cache = finished_run
    ref, shift = tiny_pair
    run = tmp_path / "run"
    shutil.copytree(out, run)
    result = CliRunner().invoke(app, ["analyze", "--train", str(ref), "--shift", str(shift), "--out", str(run),
                                      "--cache-dir", cache, "-q", *TINY, "--strategies", "lp", "--curated-sizes", "8"])
    assert result.exit_code == 0, result.output
    results = json.loads((run / "results.json").read_text())
    assert not [r for r in results["remedies"] if r["method"] == "curated-finetune"]
    assert any("curated fine-tuning not measured: no fine-tuning strategy" in w for w in results["warnings"])


def test_labelled_sample_of_the_shift_estimates_accuracies(finished_run, tiny_pair, tmp_path):
    """--ignore-shift-labels --shift-labels FILE: a labelled half of the shifted set; the jobs of the labelled run
    are reused (labels are not part of any job's key), every shifted accuracy is marked estimated."""
    import shutil

    out, cache = finished_run
    ref, shift = tiny_pair
    run = tmp_path / "sample"
    shutil.copytree(out, run)
    paths = sorted(shift.rglob("*.png"))[::2]
    labels = tmp_path / "labels.csv"
    labels.write_text("path,label\n" + "".join(f"{p.relative_to(shift)},{p.parent.name}\n" for p in paths))
    args = ["analyze", "--train", str(ref), "--shift", str(shift), "--cache-dir", cache, "-q", *TINY]
    result = CliRunner().invoke(app, [*args, "--out", str(run), "--ignore-shift-labels", "--shift-labels",
                                      str(labels)])
    assert result.exit_code in (0, 4), result.output
    results = validate_results(json.loads((run / "results.json").read_text()))
    assert results["data"]["shift_labelled"] == "sample"
    assert results["data"]["shift"]["n_labelled"] == len(paths)
    assert all(m["estimated"] for m in results["pretrained"] + results["baselines"])
    assert "estimated" in results["verdict"]["reasons"][0]
    assert "remedies were not measured" in results["remedies_note"]
    table = pd.read_parquet(run / "predictions.parquet")
    shift_rows = table[table["set"] == "shift"]
    assert shift_rows["correct"].isna().sum() == (shift_rows["label"] == -1).sum() > 0
    report = CliRunner().invoke(app, ["report", str(run)])
    assert "est." in report.output and "Shifted labels" not in report.output  # terminal: the data section's line
    assert "shifted labels:" in report.output


def test_shift_label_flags_without_what_they_need_are_usage_errors(tiny_pair, tmp_path):
    ref, shift = tiny_pair
    args = ["analyze", "--train", str(ref), "--shift", str(shift), "--out", str(tmp_path / "r"), "-q", *TINY]
    labels = tmp_path / "l.csv"
    labels.write_text("path,label\n")
    own = CliRunner().invoke(app, [*args, "--shift-labels", str(labels)])
    assert own.exit_code == 2 and "--ignore-shift-labels" in own.output
    empty = CliRunner().invoke(app, [*args, "--ignore-shift-labels", "--shift-labels", str(labels)])
    assert empty.exit_code == 2 and "no labelled rows" in empty.output


def test_check_gates_on_estimates_only_when_allowed(finished_run, tiny_pair, tmp_path):
    import shutil

    out, _ = finished_run
    run = tmp_path / "estimated"
    shutil.copytree(out, run)
    results = json.loads((run / "results.json").read_text())
    results["data"]["shift_labelled"], results["data"]["shift"]["n_labelled"] = "sample", 40
    (run / "results.json").write_text(json.dumps(results))
    kind = results["verdict"]["kind"]
    other = "no-shift" if kind != "no-shift" else "both"
    refused = CliRunner().invoke(app, ["check", str(run), "--fail-on", other])
    assert refused.exit_code == 4 and "--allow-estimated" in refused.output
    allowed = CliRunner().invoke(app, ["check", str(run), "--fail-on", other, "--allow-estimated"])
    assert allowed.exit_code == 0, allowed.output
    assert "estimated from 40 labelled" in allowed.output


def _flat_copy(shift: Path, flat: Path) -> tuple[Path, dict[str, str]]:
    """The shifted images copied into one folder without class folders, and each file name's true class."""
    flat.mkdir()
    truth = {}
    for path in sorted(shift.rglob("*.png")):
        (flat / path.name).write_bytes(path.read_bytes())
        truth[path.name] = path.parent.name
    return flat, truth


def test_unlabelled_flat_folder_then_a_random_sample_labelled(finished_run, tiny_pair, tmp_path):
    """A flat folder of shifted images: a label-free run (support split, the linear probe's ATC estimate, no
    baselines, inconclusive with what to label), every report renders it, `check` exits 4; `curate --random`
    lists a sample; labelled and passed with --shift-labels, the rerun reuses every job and estimates ER."""
    _, cache = finished_run
    ref, shift = tiny_pair
    flat, truth = _flat_copy(shift, tmp_path / "new-site")
    run = tmp_path / "run"
    args = ["analyze", "--train", str(ref), "--shift", str(flat), "--out", str(run), "--cache-dir", cache, "-q", *TINY]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    results = validate_results(json.loads((run / "results.json").read_text()))
    assert results["data"]["shift_labelled"] == "none" and results["baselines"] == []
    assert [m["strategy"] for m in results["pretrained"]] == ["lp", "lpft"]
    assert all(m["estimated"] and m["er"] is None for m in results["pretrained"])
    assert results["verdict"]["kind"] == "inconclusive"
    assert results["verdict"]["recommendation_codes"] == ["label-shift-sample"]
    assert pd.read_parquet(run / "predictions.parquet").query("set == 'shift'")["correct"].isna().all()
    for extra in ([], ["--md", str(tmp_path / "r.md")], ["--html", str(tmp_path / "r.html")]):
        rendered = CliRunner().invoke(app, ["report", str(run), *extra])
        assert rendered.exit_code == 0, rendered.output
    assert "est." in (tmp_path / "r.md").read_text()
    gate = CliRunner().invoke(app, ["check", str(run), "--fail-on", "dataset-bias", "--allow-estimated"])
    assert gate.exit_code == 4 and "unlabelled" in gate.output

    refused = CliRunner().invoke(app, ["curate", str(run), "--from", "reference"])
    assert refused.exit_code == 3 and "need a labelled shifted set" in refused.output
    listed = CliRunner().invoke(app, ["curate", str(run), "--from", "shift", "--random", "--n", "60"])
    assert listed.exit_code == 0, listed.output
    sample = pd.read_csv(run / "curated-shift-random-60.csv")
    assert len(sample) == 60 and sample["path"].is_unique
    sample["label"] = [truth[Path(p).name] for p in sample["path"]]
    sample.to_csv(tmp_path / "labels.csv", index=False)
    jobs_before = _snapshot(run / "jobs")
    again = CliRunner().invoke(app, [*args, "--shift-labels", str(tmp_path / "labels.csv")])
    assert again.exit_code == 0, again.output
    jobs_after = _snapshot(run / "jobs")
    assert {k: jobs_after[k] for k in jobs_before} == jobs_before  # the label-free jobs are reused as they are
    estimated = validate_results(json.loads((run / "results.json").read_text()))
    assert estimated["data"]["shift_labelled"] == "sample" and estimated["data"]["shift"]["n_labelled"] == 60
    assert len(estimated["baselines"]) == 6 and all(m["er_out"] is not None for m in estimated["pretrained"])
    sample.iloc[:40].to_csv(tmp_path / "labels.csv", index=False)  # the same file, other labels: rescored
    fewer = CliRunner().invoke(app, [*args, "--shift-labels", str(tmp_path / "labels.csv")])
    assert fewer.exit_code == 0, fewer.output
    assert json.loads((run / "results.json").read_text())["data"]["shift"]["n_labelled"] == 40


def test_labelled_images_outside_the_max_shift_subsample_are_named(finished_run, tiny_pair, tmp_path):
    """With --max-shift, a sample drawn by `curate --random` lies inside the analysed images (same subsample on the
    rerun, jobs reused); labels on images outside it are not used, and a warning says how many."""
    _, cache = finished_run
    ref, shift = tiny_pair
    flat, truth = _flat_copy(shift, tmp_path / "flat")
    run = tmp_path / "run"
    args = ["analyze", "--train", str(ref), "--shift", str(flat), "--out", str(run), "--cache-dir", cache, "-q",
            "--max-shift", "64", *TINY]
    assert CliRunner().invoke(app, args).exit_code == 0
    assert CliRunner().invoke(app, ["curate", str(run), "--random", "--n", "50"]).exit_code == 0
    sample = pd.read_csv(run / "curated-shift-random-50.csv")
    analysed = set(pd.read_parquet(run / "predictions.parquet").query("set == 'shift'")["path"])
    outside = sorted(str(p) for p in flat.iterdir() if str(p) not in analysed)[:3]
    rows = pd.concat([sample[["path"]], pd.DataFrame({"path": outside})], ignore_index=True)
    rows["label"] = [truth[Path(p).name] for p in rows["path"]]
    rows.to_csv(tmp_path / "labels.csv", index=False)
    jobs_before = _snapshot(run / "jobs")
    result = CliRunner().invoke(app, [*args, "--shift-labels", str(tmp_path / "labels.csv")])
    assert result.exit_code == 0, result.output
    assert {k: v for k, v in _snapshot(run / "jobs").items() if k in jobs_before} == jobs_before
    results = json.loads((run / "results.json").read_text())
    assert results["data"]["shift"]["n_labelled"] == 50
    assert any("3 labelled shifted image(s) lie outside the 64 analysed" in w for w in results["warnings"])
