"""Discovery (folders, manifests), validation findings and class alignment, through the library API."""

from __future__ import annotations

import os

import numpy as np
import pytest
from _imagegen import make_image_folder, make_pair, truncated_jpeg, write_manifest

from ptdiag.data import decode_cache
from ptdiag.data.decode_cache import DecodeCache
from ptdiag.data.ingest import discover, load_pair, scan_pair
from ptdiag.errors import DataError


def _codes(pair, level=None):
    return {f.code for f in pair.findings if level is None or f.level == level}


def test_image_folder_pair_with_nested_subfolders(tmp_path):
    train = tmp_path / "train"
    make_image_folder(train, {"cat": 4, "dog": 3}, nested=True)
    make_image_folder(tmp_path / "shift", {"cat": 2, "dog": 2}, seed=5)
    pair = load_pair(train, tmp_path / "shift", min_per_class=1)
    assert pair.classes == ["cat", "dog"]
    assert len(pair.reference) == 7 and len(pair.shift) == 4
    assert (train / "cat" / "sub" / "img_0001.png") in pair.reference.paths
    assert pair.reference.labels.tolist() == [0, 0, 0, 0, 1, 1, 1]
    assert all(p.is_absolute() for p in pair.reference.paths)
    assert len(set(pair.reference.hashes)) == 7 and len(pair.reference.hashes[0]) == 40
    assert pair.findings == []


def test_fingerprint_is_stable_and_content_sensitive(tmp_path):
    train, shift = make_pair(tmp_path)
    first = load_pair(train, shift).reference.fingerprint
    assert load_pair(train, shift).reference.fingerprint == first
    make_image_folder(train, {"cat": 1}, seed=42)  # overwrites cat/img_0000.png with other pixels
    assert load_pair(train, shift).reference.fingerprint != first


def test_manifest_csv_relative_paths_groups_and_splits(tmp_path):
    files = make_image_folder(tmp_path / "imgs", {"a": 3, "b": 3})
    rows = [
        {"path": os.path.relpath(p, tmp_path), "label": p.parent.name, "group": f"g{i // 2}", "split": "TRAIN"}
        for i, p in enumerate(files)
    ]
    rows[-1]["split"] = "validation"
    manifest = write_manifest(tmp_path / "train.csv", rows)
    shift_rows = [{"path": str(f), "label": f.parent.name} for f in files[:4]]  # absolute paths work too
    shift = write_manifest(tmp_path / "s" / "shift.parquet", shift_rows, fmt="parquet")
    pair = scan_pair(manifest, shift, min_per_class=1, drop_leaked=False)
    ref = pair.reference
    assert ref.format == "csv" and pair.shift.format == "parquet"
    assert ref.paths == files and ref.groups.tolist() == ["g0", "g0", "g1", "g1", "g2", "g2"]
    assert ref.splits.tolist() == ["train"] * 5 + ["val"]
    assert "leakage" in _codes(pair)  # the shift manifest points at train files


def test_manifest_needs_path_and_label_columns(tmp_path):
    bad = write_manifest(tmp_path / "m.csv", [{"file": "x.png", "label": "a"}])
    with pytest.raises(DataError, match=r"lacks column\(s\) path; found: file, label"):
        discover(bad)


def test_manifest_rejects_unknown_split_values(tmp_path):
    (img,) = make_image_folder(tmp_path / "i", {"a": 1})
    bad = write_manifest(tmp_path / "m.csv", [{"path": str(img), "label": "a", "split": "holdout"}])
    with pytest.raises(DataError, match="split column has value\\(s\\) 'holdout'"):
        discover(bad)


def test_manifest_missing_file_and_empty_cells_are_findings(tmp_path):
    files = make_image_folder(tmp_path / "i", {"a": 3, "b": 3})
    rows = [{"path": str(p), "label": p.parent.name} for p in files]
    rows += [
        {"path": "nope/missing.png", "label": "a"},
        {"path": "", "label": "a"},
        {"path": "notes.txt", "label": "a"},
    ]
    manifest = write_manifest(tmp_path / "m.csv", rows)
    shift = make_image_folder(tmp_path / "s", {"a": 1, "b": 1}, seed=3)[0].parent.parent
    pair = scan_pair(manifest, shift, min_per_class=1)
    assert len(pair.reference) == 6 and pair.reference.n_non_image == 1
    missing = [f for f in pair.findings if f.code == "missing-file"]
    assert missing and "missing.png" in missing[0].message and missing[0].level == "warning"
    assert "manifest-empty-cells" in _codes(pair)


def test_format_override_and_unknown_suffix(tmp_path):
    train, shift = make_pair(tmp_path)
    with pytest.raises(DataError, match="train path is not a folder"):
        discover(train / "cat" / "img_0000.png", fmt="imagefolder")
    with pytest.raises(DataError, match="is not a folder, a .csv/.parquet manifest"):
        discover(train / "cat" / "img_0000.png")
    listing = discover(train, fmt="imagefolder")
    assert listing.format == "imagefolder"


def test_train_classes_missing_from_shift_restrict_the_reference(tmp_path):
    make_image_folder(tmp_path / "train", {"a": 3, "b": 3, "c": 3})
    make_image_folder(tmp_path / "shift", {"a": 2, "c": 2}, seed=3)
    pair = load_pair(tmp_path / "train", tmp_path / "shift", min_per_class=1)
    assert pair.classes == ["a", "c"]
    assert pair.reference.classes == pair.shift.classes == ["a", "c"]
    assert np.bincount(pair.reference.labels).tolist() == [3, 3]
    warning = next(f for f in pair.findings if f.code == "train-classes-not-in-shift")
    assert warning.level == "warning" and "'b'" in warning.message


def test_shift_classes_not_in_train_are_fatal(tmp_path):
    make_image_folder(tmp_path / "train", {"a": 3, "b": 3})
    make_image_folder(tmp_path / "shift", {"a": 2, "b": 2, "x": 1, "y": 1}, seed=3)
    with pytest.raises(DataError, match=r"shift has 2 class\(es\) not in train: 'x', 'y'"):
        load_pair(tmp_path / "train", tmp_path / "shift")


def test_corrupt_images_are_skipped_or_fatal_under_strict(tmp_path):
    train, shift = make_pair(tmp_path)
    cut = truncated_jpeg(train / "cat" / "cut.jpg")
    pair = load_pair(train, shift)
    assert cut not in pair.reference.paths and pair.reference.n_bad == 1
    with pytest.raises(DataError, match="cut.jpg: image file is truncated"):
        load_pair(train, shift, strict=True)


def test_leaked_images_are_dropped_from_the_reference_only(tmp_path):
    train, shift = make_pair(tmp_path)
    leaked_src = train / "dog" / "img_0003.png"
    (shift / "dog" / "copy.png").write_bytes(leaked_src.read_bytes())
    pair = load_pair(train, shift)
    assert pair.leaked == [(str(leaked_src), str(shift / "dog" / "copy.png"))]
    assert leaked_src not in pair.reference.paths and len(pair.reference) == 23
    assert shift / "dog" / "copy.png" in pair.shift.paths
    kept = load_pair(train, shift, drop_leaked=False)
    assert leaked_src in kept.reference.paths


def test_conflicting_duplicate_labels_within_a_set(tmp_path):
    train, shift = make_pair(tmp_path)
    (train / "dog" / "dup.png").write_bytes((train / "cat" / "img_0000.png").read_bytes())
    pair = scan_pair(train, shift)
    assert {"duplicates-within", "conflicting-labels"} <= _codes(pair)
    assert pair.within_duplicates["train"] == 1


def test_symlink_loop_terminates(tmp_path):
    train, shift = make_pair(tmp_path)
    (train / "cat" / "loop").symlink_to(train / "cat", target_is_directory=True)
    (train / "dog" / "up").symlink_to(train, target_is_directory=True)
    pair = load_pair(train, shift)
    assert len(pair.reference) == 24  # nothing counted twice
    assert "symlink-loop" in _codes(pair, "warning")


def test_only_decodes_reference_classes_the_shift_needs(tmp_path, monkeypatch):
    make_image_folder(tmp_path / "train", {"a": 3, "b": 3, "c": 30})
    make_image_folder(tmp_path / "shift", {"a": 2, "b": 2}, seed=3)
    scanned = []
    real = decode_cache.scan_file
    monkeypatch.setattr(decode_cache, "scan_file", lambda path, *a, **k: scanned.append(path) or real(path, *a, **k))
    load_pair(tmp_path / "train", tmp_path / "shift", min_per_class=1)
    assert len(scanned) == 10 and not any(p.parent.name == "c" for p in scanned)


def test_scan_fills_cache_so_each_image_is_decoded_once(tmp_path):
    train, shift = make_pair(tmp_path)
    cache = DecodeCache(tmp_path / "cache", workers=1)
    pair = load_pair(train, shift, image_size=16, cache=cache)
    assert pair.n_decoded == 36
    assert cache.status(pair.reference.hashes + pair.shift.hashes, 16) == (36, 36)
    rerun = load_pair(train, shift, image_size=16, cache=cache)
    assert rerun.n_decoded == 0 and rerun.reference.fingerprint == pair.reference.fingerprint
    assert rerun.reference.widths.tolist() == pair.reference.widths.tolist()  # metadata comes from the cache
