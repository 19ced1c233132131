"""Image sources: Fashion-MNIST from the Debian copy / cache / torchvision downloader, and sklearn digits."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import numpy as np
import pytest
from torchvision.datasets import FashionMNIST

from ptdiag.errors import DataError, UsageError
from ptdiag.scenarios import sources as datasets
from ptdiag.scenarios.sources import (
    DEBIAN_FASHION_MNIST_DIR,
    default_cache_dir,
    fashion_mnist_available,
    load_digits,
    load_fashion_mnist,
    load_source,
)

RAW_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
needs_debian_copy = pytest.mark.skipif(
    not DEBIAN_FASHION_MNIST_DIR.is_dir(),
    reason=f"{DEBIAN_FASHION_MNIST_DIR} is absent (apt-get install dataset-fashion-mnist); tests never download",
)


@pytest.fixture
def fresh_cache(tmp_path):
    """An empty cache folder, and no in-process cache hiding what the loader does."""
    datasets._load_fashion_mnist_cached.cache_clear()
    yield tmp_path / "cache"
    datasets._load_fashion_mnist_cached.cache_clear()


@pytest.fixture
def no_debian_copy(monkeypatch, tmp_path):
    monkeypatch.setattr(datasets, "DEBIAN_FASHION_MNIST_DIR", tmp_path / "not-installed")


@needs_debian_copy
@pytest.mark.parametrize(("split", "n"), [("train", 60_000), ("test", 10_000)])
def test_fashion_mnist_loads_from_the_debian_copy(fresh_cache, split, n):
    images, labels, classes = load_fashion_mnist(split, cache_dir=fresh_cache)

    assert images.shape == (n, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (n,) and labels.dtype == np.int64
    assert classes[0] == "T-shirt/top" and len(classes) == 10
    # Fashion-MNIST is exactly balanced: 6,000 / 1,000 images per class.
    assert np.bincount(labels).tolist() == [n // 10] * 10
    assert images.max() == 255 and images.min() == 0
    assert not images.flags.writeable, "cached arrays are shared, so they must be read-only"


@needs_debian_copy
def test_debian_copy_is_unpacked_once_into_the_cache(fresh_cache):
    load_fashion_mnist("test", cache_dir=fresh_cache)
    raw = fresh_cache / "FashionMNIST" / "raw"
    mtimes = {name: (raw / name).stat().st_mtime_ns for name in RAW_FILES}
    assert all((raw / name).stat().st_size > 0 for name in RAW_FILES)
    assert not list(raw.glob("*.tmp")), "no temporary files may be left behind"

    datasets._load_fashion_mnist_cached.cache_clear()
    load_fashion_mnist("train", cache_dir=fresh_cache)
    assert {name: (raw / name).stat().st_mtime_ns for name in RAW_FILES} == mtimes


def test_cache_dir_follows_the_environment_variable(monkeypatch, tmp_path):
    monkeypatch.setenv("PTDIAG_CACHE_DIR", str(tmp_path / "c"))
    assert default_cache_dir() == tmp_path / "c"
    monkeypatch.delenv("PTDIAG_CACHE_DIR")
    assert default_cache_dir() == Path.home() / ".cache" / "ptdiag"


@needs_debian_copy
def test_default_cache_is_the_environment_folder(monkeypatch, fresh_cache):
    monkeypatch.setenv("PTDIAG_CACHE_DIR", str(fresh_cache))
    load_fashion_mnist("test")
    assert (fresh_cache / "FashionMNIST" / "raw" / "t10k-images-idx3-ubyte").is_file()


def test_unknown_split_is_a_usage_error():
    with pytest.raises(UsageError, match="unknown split 'val'; choose one of: train, test"):
        load_fashion_mnist("val")
    with pytest.raises(UsageError, match="unknown split"):
        load_digits("validation")


def test_missing_data_and_failed_download_say_how_to_get_it(monkeypatch, fresh_cache, no_debian_copy):
    def offline(self):
        raise RuntimeError("Error downloading train-images-idx3-ubyte.gz:\nTried https://..., got: URLError")

    monkeypatch.setattr(FashionMNIST, "download", offline)
    with pytest.raises(DataError) as info:
        load_fashion_mnist("train", cache_dir=fresh_cache)
    assert "downloading it failed" in info.value.message and "\n" not in info.value.message
    assert "apt-get install dataset-fashion-mnist" in info.value.hint
    assert not fashion_mnist_available(fresh_cache)


def test_download_false_does_not_try_the_network(monkeypatch, fresh_cache, no_debian_copy):
    monkeypatch.setattr(FashionMNIST, "download", lambda self: pytest.fail("must not download"))
    with pytest.raises(DataError, match="Fashion-MNIST is not in"):
        load_fashion_mnist("test", cache_dir=fresh_cache, download=False)


@needs_debian_copy
def test_falls_back_to_the_torchvision_downloader(monkeypatch, fresh_cache, no_debian_copy):
    calls = []

    def fake_download(self):  # stands in for the network: unpack the real files where torchvision would
        calls.append(self.raw_folder)
        Path(self.raw_folder).mkdir(parents=True, exist_ok=True)
        for name in RAW_FILES:
            with (
                gzip.open(DEBIAN_FASHION_MNIST_DIR / f"{name}.gz") as src,
                open(Path(self.raw_folder) / name, "wb") as dst,
            ):
                shutil.copyfileobj(src, dst)

    monkeypatch.setattr(FashionMNIST, "download", fake_download)
    images, labels, _ = load_fashion_mnist("test", cache_dir=fresh_cache)
    assert calls == [str(fresh_cache.resolve() / "FashionMNIST" / "raw")]
    assert images.shape == (10_000, 28, 28) and len(labels) == 10_000
    assert fashion_mnist_available(fresh_cache)


@needs_debian_copy
def test_damaged_cached_file_is_a_data_error_naming_the_folder(fresh_cache):
    raw = fresh_cache / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    (raw / "t10k-images-idx3-ubyte").write_bytes(b"not an idx file")
    with pytest.raises(DataError, match="unreadable") as info:
        load_fashion_mnist("test", cache_dir=fresh_cache)
    assert str(raw) in info.value.message and "delete" in info.value.hint


def test_digits_are_a_fixed_disjoint_stratified_half_split():
    train_images, train_labels, classes = load_digits("train")
    test_images, test_labels, _ = load_digits("test")

    assert classes == [str(d) for d in range(10)]
    assert train_images.dtype == np.uint8 and train_images.shape[1:] == (8, 8)
    assert train_images.max() == 255  # rescaled from sklearn's 0-16
    assert len(train_labels) + len(test_labels) == 1797
    assert np.abs(np.bincount(train_labels) - np.bincount(test_labels)).max() <= 1
    # Disjoint: no image of one split reappears in the other  (digits holds no exact duplicate images).
    train_keys = {img.tobytes() for img in train_images}
    assert not any(img.tobytes() in train_keys for img in test_images)


def test_load_source_dispatches_and_rejects_unknown_names():
    images, labels, _ = load_source("digits", "test")
    assert np.array_equal(images, load_digits("test")[0])
    with pytest.raises(UsageError, match="unknown image source 'cifar'; choose one of: fashion-mnist, digits"):
        load_source("cifar", "train")
