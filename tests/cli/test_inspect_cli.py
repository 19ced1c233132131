"""`ptdiag inspect`: every validation case builds its bad input and checks the message and the exit code."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from _imagegen import (
    image_array,
    make_image_folder,
    make_pair,
    png_bomb_header,
    tree_snapshot,
    truncated_jpeg,
    write_image,
    write_manifest,
)
from PIL import Image
from typer.testing import CliRunner

from ptdiag.cli import app
from ptdiag.errors import EXIT_DATA, EXIT_OK, EXIT_USAGE

runner = CliRunner(env={"COLUMNS": "250"})  # wide enough that no asserted message wraps


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("PTDIAG_CACHE_DIR", str(tmp_path / "cache"))


def inspect(*args, **kwargs):
    result = runner.invoke(app, ["inspect", *map(str, args)], **kwargs)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result


def _report(tmp_path, *args):
    out = tmp_path / "report.json"
    result = inspect(*args, "--json", out)
    return result, json.loads(out.read_text())


def _codes(report, level):
    return {f["code"] for f in report["findings"] if f["level"] == level}


def test_clean_pair_reports_counts_and_exits_zero(tmp_path):
    train, shift = make_pair(tmp_path, n_train=12, n_shift=10)
    result, report = _report(tmp_path, "--train", train, "--shift", shift)
    assert result.exit_code == EXIT_OK
    assert "usable: yes" in result.output and "classes: 2 shared" in result.output  # lines: output is not a tty
    assert report["usable"] is True and report["shared_classes"] == ["cat", "dog"]
    assert report["sets"]["train"]["n_usable"] == 24 and report["sets"]["shift"]["n_usable"] == 20
    assert report["sets"]["train"]["width"] == {"min": 24, "median": 24.0, "max": 24}
    assert report["sets"]["train"]["modes"] == {"RGB": 24}
    assert [c["train_used"] for c in report["classes"]] == [12, 12]
    assert report["findings"] == []


def test_missing_folder(tmp_path):
    _, shift = make_pair(tmp_path)
    result = inspect("--train", tmp_path / "nope", "--shift", shift)
    assert result.exit_code == EXIT_DATA
    assert "train folder or manifest does not exist" in result.output and "nope" in result.output


def test_empty_set(tmp_path):
    train, _ = make_pair(tmp_path)
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.txt").write_text("hello")
    result = inspect("--train", train, "--shift", empty)
    assert result.exit_code == EXIT_DATA
    assert "has no images (1 non-image files ignored)" in result.output


def test_class_folder_without_images_is_a_warning(tmp_path):
    train, shift = make_pair(tmp_path)
    (train / "bird").mkdir()
    (train / "bird" / "notes.txt").write_text("x")
    result, report = _report(tmp_path, "--train", train, "--shift", shift)
    assert result.exit_code == EXIT_OK
    assert "class folder 'bird' has no images" in result.output
    assert "empty-class" in _codes(report, "warning")


def test_small_classes_warn_with_configurable_threshold(tmp_path):
    train, shift = make_pair(tmp_path, n_train=12, n_shift=6)
    result, report = _report(tmp_path, "--train", train, "--shift", shift, "--min-per-class", 8)
    assert result.exit_code == EXIT_OK
    small = [f["message"] for f in report["findings"] if f["code"] == "small-class"]
    assert small == ["shift: 2 class(es) have fewer than 8 usable images: 'cat' (6), 'dog' (6)"]
    _, report = _report(tmp_path, "--train", train, "--shift", shift, "--min-per-class", 6)
    assert "small-class" not in _codes(report, "warning")


def test_only_one_class(tmp_path):
    make_image_folder(tmp_path / "train", {"cat": 5})
    make_image_folder(tmp_path / "shift", {"cat": 5}, seed=4)
    result = inspect("--train", tmp_path / "train", "--shift", tmp_path / "shift")
    assert result.exit_code == EXIT_DATA
    assert "train has only one class ('cat')" in result.output


def test_corrupt_images_are_listed_and_skipped_or_fatal_with_strict(tmp_path):
    train, shift = make_pair(tmp_path)
    truncated_jpeg(train / "cat" / "cut.jpg")
    (train / "dog" / "fake.png").write_text("not a png")
    result, report = _report(tmp_path, "--train", train, "--shift", shift)
    assert result.exit_code == EXIT_OK
    bad = sorted(f["path"] for f in report["findings"] if f["code"] == "corrupt-image")
    assert bad == [str(train / "cat" / "cut.jpg"), str(train / "dog" / "fake.png")]
    assert report["sets"]["train"]["n_unreadable"] == 2 and report["sets"]["train"]["n_usable"] == 24
    result = inspect("--train", train, "--shift", shift, "--strict")
    assert result.exit_code == EXIT_DATA
    assert "error: train: cannot decode" in result.output and "cut.jpg" in result.output
    assert "1 more error(s)" in result.output


def test_non_image_files_are_ignored_and_counted(tmp_path):
    train, shift = make_pair(tmp_path)
    (train / "cat" / "labels.csv").write_text("a,b")
    (train / "dog" / "deep").mkdir()
    (train / "dog" / "deep" / "notes.md").write_text("x")
    (train / ".DS_Store").write_text("x")
    result, report = _report(tmp_path, "--train", train, "--shift", shift)
    assert result.exit_code == EXIT_OK
    assert report["sets"]["train"]["n_non_image"] == 2
    assert "train: ignored 2 non-image file(s)" in result.output


def test_image_modes_are_reported_and_converted(tmp_path):
    train, shift = make_pair(tmp_path)
    Image.fromarray(image_array(1)[..., 0]).save(train / "cat" / "grey.png")
    Image.fromarray(image_array(2)).convert("P").save(train / "cat" / "palette.png")
    Image.fromarray(image_array(3)).convert("RGBA").save(train / "dog" / "alpha.png")
    Image.fromarray(image_array(4)).convert("CMYK").save(train / "dog" / "cmyk.jpg")
    Image.fromarray(image_array(5)[..., 0].astype("uint16") * 257).save(train / "dog" / "deep.png")
    result, report = _report(tmp_path, "--train", train, "--shift", shift, "--image-size", 16, "--warm-cache")
    assert result.exit_code == EXIT_OK
    modes = report["sets"]["train"]["modes"]
    assert {k: modes[k] for k in ("L", "P", "RGBA", "CMYK")} == {"L": 1, "P": 1, "RGBA": 1, "CMYK": 1}
    assert modes.get("I;16", 0) + modes.get("I", 0) == 1
    assert "converted-to-rgb" in _codes(report, "info")
    assert report["cache"]["coverage"] == [{"size": 16, "cached": 41, "total": 41, "fraction": 1.0}]


def test_decompression_bomb_is_a_bad_file(tmp_path):
    train, shift = make_pair(tmp_path)
    png_bomb_header(train / "cat" / "huge.png")
    result, report = _report(tmp_path, "--train", train, "--shift", shift)
    assert result.exit_code == EXIT_OK
    bomb = [f for f in report["findings"] if f["code"] == "decompression-bomb"]
    assert bomb and bomb[0]["path"] == str(train / "cat" / "huge.png") and bomb[0]["level"] == "warning"
    assert inspect("--train", train, "--shift", shift, "--strict").exit_code == EXIT_DATA


def test_unicode_and_spaces_in_paths(tmp_path):
    root = tmp_path / "données d'été"
    make_image_folder(root / "train", {"chat noir": 3, "猫": 3})
    make_image_folder(root / "shift", {"chat noir": 2, "猫": 2}, seed=8)
    result, report = _report(tmp_path, "--train", root / "train", "--shift", root / "shift", "--min-per-class", 1)
    assert result.exit_code == EXIT_OK
    assert report["shared_classes"] == ["chat noir", "猫"] and "chat noir" in result.output


def test_symlink_loop_does_not_hang(tmp_path):
    train, shift = make_pair(tmp_path)
    (train / "cat" / "again").symlink_to(train, target_is_directory=True)
    result, report = _report(tmp_path, "--train", train, "--shift", shift)
    assert result.exit_code == EXIT_OK
    assert report["sets"]["train"]["n_usable"] == 24
    assert "symlink-loop" in _codes(report, "warning")


def test_same_image_in_both_sets_is_reported_as_leakage(tmp_path):
    train, shift = make_pair(tmp_path)
    (shift / "cat" / "stolen.png").write_bytes((train / "cat" / "img_0002.png").read_bytes())
    result, report = _report(tmp_path, "--train", train, "--shift", shift)
    assert result.exit_code == EXIT_OK
    assert report["duplicates_across_sets"] == [
        {"train": str(train / "cat" / "img_0002.png"), "shift": str(shift / "cat" / "stolen.png")}
    ]
    assert "leakage" in _codes(report, "warning") and "duplicate across sets: " in result.output


def test_shift_classes_not_in_train_are_listed(tmp_path):
    train, shift = make_pair(tmp_path)
    make_image_folder(shift, {"zebra": 2, "yak": 2}, seed=7)
    result, report = _report(tmp_path, "--train", train, "--shift", shift)
    assert result.exit_code == EXIT_DATA
    assert "shift has 2 class(es) not in train: 'yak', 'zebra'" in result.output
    assert report["usable"] is False  # the JSON is still written
    assert {c["name"]: c["status"] for c in report["classes"]}["yak"] == "shift only"


def test_train_classes_absent_from_shift_warn_and_restrict(tmp_path):
    train, shift = make_pair(tmp_path, classes=("a", "b", "c"))
    make_image_folder(tmp_path / "shift2", {"a": 6, "b": 6}, seed=2)
    result, report = _report(tmp_path, "--train", train, "--shift", tmp_path / "shift2")
    assert result.exit_code == EXIT_OK
    assert "train has 1 class(es) absent from shift: 'c'" in result.output
    assert report["shared_classes"] == ["a", "b"] and report["sets"]["train"]["n_usable"] == 24


def test_manifest_inputs_and_bad_manifest(tmp_path):
    train, shift = make_pair(tmp_path)
    rows = [{"path": str(p.relative_to(tmp_path)), "label": p.parent.name} for p in sorted(shift.rglob("*.png"))]
    manifest = write_manifest(tmp_path / "shift.csv", rows)
    result, report = _report(tmp_path, "--train", train, "--shift", manifest)
    assert result.exit_code == EXIT_OK and report["sets"]["shift"]["format"] == "csv"
    bad = write_manifest(tmp_path / "bad.csv", [{"file": "a.png", "class": "x"}])
    result = inspect("--train", train, "--shift", bad)
    assert result.exit_code == EXIT_DATA and "lacks column(s) path" in result.output  # a shift label is optional
    result = inspect("--train", bad, "--shift", shift)
    assert result.exit_code == EXIT_DATA and "lacks column(s) path, label" in result.output
    result = inspect("--train", train, "--shift", shift, "--format", "csv")
    assert result.exit_code == EXIT_DATA and "manifest is not a file" in result.output


def test_usage_errors_exit_2(tmp_path):
    train, shift = make_pair(tmp_path)
    result = inspect("--train", train, "--shift", shift, "--warm-cache")
    assert result.exit_code == EXIT_USAGE and "--warm-cache needs --image-size" in result.output
    assert inspect("--train", train).exit_code == EXIT_USAGE  # Typer: missing option


def test_inspect_never_writes_into_the_data_folders(tmp_path):
    train, shift = make_pair(tmp_path)
    truncated_jpeg(train / "cat" / "cut.jpg")
    write_image(train / "dog" / "extra.jpg", image_array(3))
    before = tree_snapshot(tmp_path)
    result = inspect("--train", train, "--shift", shift, "--image-size", 16, "--warm-cache")
    assert result.exit_code == EXIT_OK
    after = tree_snapshot(tmp_path)
    data = {k: v for k, v in after.items() if not k.startswith(str(tmp_path / "cache"))}
    assert data == before
    assert any((tmp_path / "cache").rglob("*.npy"))  # the cache went to PTDIAG_CACHE_DIR instead


def test_cache_coverage_is_reported_without_writing(tmp_path):
    train, shift = make_pair(tmp_path)
    _, report = _report(tmp_path, "--train", train, "--shift", shift, "--image-size", 16)
    assert report["cache"]["coverage"] == [{"size": 16, "cached": 0, "total": 36, "fraction": 0.0}]
    assert not (tmp_path / "cache").exists()
    inspect("--train", train, "--shift", shift, "--image-size", 16, "--warm-cache")
    _, report = _report(tmp_path, "--train", train, "--shift", shift)
    assert report["cache"]["coverage"][0]["cached"] == 36 and report["cache"]["decoded_now"] == 0


def test_python_dash_m_inspect_subprocess(tmp_path):
    train, shift = make_pair(tmp_path)
    (shift / "cat" / "stray.png").write_bytes((train / "cat" / "img_0000.png").read_bytes())
    env = {**os.environ, "PTDIAG_CACHE_DIR": str(tmp_path / "cache"), "COLUMNS": "160"}
    cwd = Path(__file__).resolve().parents[2]
    ok = subprocess.run(
        [sys.executable, "-m", "ptdiag", "inspect", "--train", str(train), "--shift", str(shift)],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=120,
    )
    assert ok.returncode == EXIT_OK, ok.stderr
    assert "usable: yes" in ok.stdout and "leakage" in ok.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "ptdiag", "inspect", "--train", str(tmp_path / "x"), "--shift", str(shift)],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=120,
    )
    assert bad.returncode == EXIT_DATA
    assert bad.stderr.strip().startswith("error: train folder or manifest does not exist")
    assert "Traceback" not in bad.stderr
