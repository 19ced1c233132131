"""The stratified, seeded, persisted reference split."""

from __future__ import annotations

import numpy as np
import pytest

from ptdiag.data.splits import load_or_create_split, load_split, reference_split, save_split
from ptdiag.errors import DataError, UsageError

LABELS = np.repeat([0, 1, 2], [20, 30, 50])


def _assert_partition(split, n):
    joined = np.concatenate([split["train"], split["val"], split["test"]])
    assert sorted(joined.tolist()) == list(range(n))


def test_fractions_are_stratified_and_partition_the_indices():
    split = reference_split(LABELS, val=0.1, test=0.2, seed=3)
    _assert_partition(split, len(LABELS))
    assert (len(split["train"]), len(split["val"]), len(split["test"])) == (70, 10, 20)
    for part in ("train", "val", "test"):
        shares = np.bincount(LABELS[split[part]], minlength=3) / len(split[part])
        np.testing.assert_allclose(shares, [0.2, 0.3, 0.5], atol=0.051)


def test_counts_are_accepted():
    split = reference_split(LABELS, val=9, test=12)
    assert (len(split["val"]), len(split["test"])) == (9, 12)


def test_seed_determines_the_split():
    a = reference_split(LABELS, seed=1)
    assert all(np.array_equal(a[p], reference_split(LABELS, seed=1)[p]) for p in a)
    assert not np.array_equal(a["test"], reference_split(LABELS, seed=2)["test"])


def test_manifest_split_column_is_honoured_and_missing_parts_are_carved_from_train():
    column = np.array(["train"] * 80 + ["test"] * 20, dtype=object)
    split = reference_split(LABELS, val=0.1, test=0.5, manifest_splits=column)
    assert split["test"].tolist() == list(range(80, 100))  # the manifest's test, not 50 %
    assert len(split["val"]) == 10 and set(split["val"]) <= set(range(80))
    _assert_partition(split, len(LABELS))


def test_too_small_class_is_a_clear_data_error():
    labels = np.array([0] * 10 + [1])
    with pytest.raises(DataError, match="cannot split off a stratified test set") as info:
        reference_split(labels, val=0, test=0.3)
    assert "smallest class has 1 image" in info.value.hint


def test_bad_sizes_are_usage_errors():
    with pytest.raises(UsageError, match="must be < 1 as a fraction"):
        reference_split(LABELS, test=1.5)
    with pytest.raises(DataError, match="leave no training images"):
        reference_split(LABELS, val=50, test=50)


def test_save_load_roundtrip_and_fingerprint_guard(tmp_path):
    split = reference_split(LABELS)
    path = save_split(tmp_path / "split.json", split, fingerprint="abc", seed=0)
    loaded = load_split(path, fingerprint="abc")
    assert all(np.array_equal(loaded[p], split[p]) for p in split)
    with pytest.raises(DataError, match="made for other data"):
        load_split(path, fingerprint="def")
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(DataError, match="cannot read the reference split"):
        load_split(tmp_path / "bad.json")


def test_load_or_create_reuses_the_saved_split(tmp_path):
    path = tmp_path / "run" / "split.json"
    first = load_or_create_split(path, LABELS, fingerprint="f", seed=1)
    again = load_or_create_split(path, LABELS, fingerprint="f", seed=99)  # the saved split wins over a new seed
    assert all(np.array_equal(first[p], again[p]) for p in first)
