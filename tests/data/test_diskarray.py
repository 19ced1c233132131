"""Images that stay on disk: the decode cache opened lazily, read by batch, equal to the in-memory load."""

from __future__ import annotations

import os
import pickle
import tracemalloc

import numpy as np
import pytest
from _imagegen import make_image_folder

from ptdiag.data.decode_cache import DecodeCache, scan_files
from ptdiag.data.diskarray import DiskImages, write_npy
from ptdiag.errors import ResourceError


@pytest.fixture()
def cached(tmp_path):
    """A decode cache split over several chunk files, the images' paths and hashes."""
    paths = make_image_folder(tmp_path / "data", {"a": 40, "b": 30}, size=(20, 16))
    cache = DecodeCache(tmp_path / "cache", workers=1)
    for start in range(0, len(paths), 25):  # several fills: several chunk files
        cache.fill(paths[start:start + 25], 8)
    hashes = [r.hash for r in scan_files(paths, workers=1)]
    order = np.random.default_rng(0).permutation(len(paths))  # not the chunk order
    return cache, [paths[i] for i in order], [hashes[i] for i in order]


def test_open_equals_load_and_reads_only_the_batch(cached, monkeypatch):
    cache, paths, hashes = cached
    on_disk, in_memory = cache.open(paths, hashes, 8), cache.load(paths, hashes, 8)
    assert isinstance(on_disk, DiskImages) and len(set(on_disk.files)) > 1  # several chunk files
    assert on_disk.shape == in_memory.shape and on_disk.dtype == in_memory.dtype
    np.testing.assert_array_equal(np.asarray(on_disk), in_memory)
    idx = np.array([3, 0, 69, 17, 17, 42])
    np.testing.assert_array_equal(on_disk[idx], in_memory[idx])
    np.testing.assert_array_equal(on_disk[5:60:7], in_memory[5:60:7])
    np.testing.assert_array_equal(on_disk[-1], in_memory[-1])
    read = []
    real_pread = os.pread
    monkeypatch.setattr(os, "pread", lambda fd, n, off: read.append(n) or real_pread(fd, n, off))
    on_disk[np.array([1, 2, 3])]
    assert sum(read) == 3 * 8 * 8 * 3  # exactly the rows asked for, nothing more


def test_views_and_pickles_carry_no_pixels(cached):
    cache, paths, hashes = cached
    images = cache.open(paths, hashes, 8)
    view = images.rows(np.array([10, 11, 12, 50]))
    np.testing.assert_array_equal(np.asarray(view), images[[10, 11, 12, 50]])
    blob = pickle.dumps(images)
    assert len(blob) < images.nbytes / 2  # file names and row numbers, not images
    np.testing.assert_array_equal(np.asarray(pickle.loads(blob)), np.asarray(images))


def test_batches_are_bounded_by_the_batch_not_the_set(tmp_path):
    rows = np.random.default_rng(1).integers(0, 255, (4000, 16, 16, 3), dtype=np.uint8)  # 3 MB
    write_npy(tmp_path / "big.npy", (rows[i:i + 500] for i in range(0, 4000, 500)), rows.shape)
    images = DiskImages.open(tmp_path / "big.npy")
    tracemalloc.start()
    total = 0
    for start in range(0, len(images), 64):
        total += int(images[np.arange(start, min(start + 64, len(images)))].sum(dtype=np.int64))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert total == int(rows.sum(dtype=np.int64))
    assert peak < rows.nbytes / 20, peak  # a few batches' worth, not the 3 MB set


def test_write_npy_is_atomic_and_checks_the_row_count(tmp_path):
    with pytest.raises(ValueError, match="expected 10"):
        write_npy(tmp_path / "a.npy", [np.zeros((4, 2), np.uint8)], (10, 2))
    assert list(tmp_path.iterdir()) == []


def test_a_vanished_cache_file_is_a_resource_error(tmp_path):
    np.save(tmp_path / "c.npy", np.zeros((4, 2, 2, 3), np.uint8))
    images = DiskImages.open(tmp_path / "c.npy")
    (tmp_path / "c.npy").unlink()
    with pytest.raises(ResourceError, match="cannot read decoded images"):
        images[[0, 1]]


def test_predictions_from_disk_equal_those_from_memory(cached):
    import torch

    from ptdiag.engine.train import Normalizer, predict

    cache, paths, hashes = cached
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())
    normalize = Normalizer((0.5, 0.5, 0.5), (0.25, 0.25, 0.25), torch.device("cpu"))
    on_disk = predict(model, cache.open(paths, hashes, 8), normalize, batch_size=16)
    in_memory = predict(model, cache.load(paths, hashes, 8), normalize, batch_size=16)
    np.testing.assert_array_equal(on_disk, in_memory)
