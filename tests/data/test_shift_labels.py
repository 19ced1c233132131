"""--shift-labels FILE: labels for a sample of the shifted images, matched by path, with clear errors."""

from __future__ import annotations

import numpy as np
import pytest
from _imagegen import make_image_folder

from ptdiag.data.decode_cache import scan_files
from ptdiag.data.discovery import discover
from ptdiag.data.ingest import build_set
from ptdiag.data.shift_labels import UNLABELLED, read_shift_labels
from ptdiag.errors import UsageError


@pytest.fixture()
def shift_set(tmp_path):
    make_image_folder(tmp_path / "shift", {"cat": 3, "dog": 3}, seed=1)
    listing = discover(tmp_path / "shift", role="shift")
    image_set, _ = build_set(listing, scan_files(listing.paths), strict=False)
    return image_set


def _csv(path, rows):
    path.write_text("path,label\n" + "".join(f"{p},{y}\n" for p, y in rows))
    return path


def test_paths_match_relative_absolute_and_by_name(shift_set, tmp_path):
    root = tmp_path / "shift"
    labels = read_shift_labels(_csv(tmp_path / "l.csv", [("cat/img_0000.png", "dog"),
                                                         (str(root / "dog" / "img_0001.png"), "dog"),
                                                         ("img_0002.png", ""),  # not labelled yet: skipped
                                                         ]), shift_set, ["cat", "dog"])
    by_path = {str(p.relative_to(root)): int(y) for p, y in zip(shift_set.paths, labels, strict=True)}
    assert by_path["cat/img_0000.png"] == 1 and by_path["dog/img_0001.png"] == 1
    assert sum(v != UNLABELLED for v in by_path.values()) == 2


@pytest.mark.parametrize(("rows", "message"), [
    ([("cat/img_0000.png", "horse")], "row 2 has label 'horse'"),
    ([("cat/img_0000.png", "cat"), ("cat/nope.png", "cat")], "row 3 names 'cat/nope.png'"),
    ([("cat/img_0000.png", "")], "no labelled rows"),
    ([("cat/img_0000.png", "cat"), ("cat/img_0000.png", "dog")], "again, with another class"),
])
def test_bad_rows_are_usage_errors_naming_file_and_row(shift_set, tmp_path, rows, message):
    with pytest.raises(UsageError, match=message) as info:
        read_shift_labels(_csv(tmp_path / "l.csv", rows), shift_set, ["cat", "dog"])
    assert "l.csv" in info.value.message


def test_missing_columns_and_file(shift_set, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("file,class\nx.png,cat\n")
    with pytest.raises(UsageError, match="missing column"):
        read_shift_labels(bad, shift_set, ["cat", "dog"])
    with pytest.raises(UsageError, match="cannot read"):
        read_shift_labels(tmp_path / "none.csv", shift_set, ["cat", "dog"])
    assert np.all(read_shift_labels(_csv(tmp_path / "ok.csv", [("dog/img_0002.png", "0")]), shift_set,
                                    ["cat", "dog"], {"0": "cat"}) <= 0)


def test_unlabelled_shift_inputs_flat_folder_and_manifest(tmp_path):
    """A flat folder of shifted images, and a manifest whose label column is missing or partly empty, are read as
    unlabelled (label -1) with an info finding; the reference keeps every class."""
    from ptdiag.data.ingest import scan_pair

    make_image_folder(tmp_path / "train", {"cat": 4, "dog": 4}, seed=2)
    flat = tmp_path / "flat"
    for i, path in enumerate(make_image_folder(tmp_path / "tmp", {"x": 5}, seed=3)):
        flat.mkdir(exist_ok=True)
        path.rename(flat / f"shot_{i}.png")
    pair = scan_pair(tmp_path / "train", flat, min_per_class=1)
    assert len(pair.shift) == 5 and (pair.shift.labels == UNLABELLED).all()
    assert pair.classes == ["cat", "dog"] and len(pair.reference) == 8
    assert any(f.code == "shift-unlabelled" for f in pair.findings)
    assert not [f for f in pair.findings if f.level == "error"]

    manifest = tmp_path / "shift.csv"
    manifest.write_text("path,label\n" + "".join(f"flat/shot_{i}.png,{'cat' if i == 0 else ''}\n" for i in range(5)))
    partly = scan_pair(tmp_path / "train", manifest, min_per_class=1)
    assert sorted(partly.shift.labels.tolist()) == [-1, -1, -1, -1, 0]
    no_column = tmp_path / "paths.csv"
    no_column.write_text("path\n" + "".join(f"flat/shot_{i}.png\n" for i in range(5)))
    assert (scan_pair(tmp_path / "train", no_column, min_per_class=1).shift.labels == UNLABELLED).all()
