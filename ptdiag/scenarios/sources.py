"""Image sources for the demo and the known-answer scenarios: real Fashion-MNIST offline, scikit-learn digits.

Fashion-MNIST comes from, in order:

1. Debian's ``dataset-fashion-mnist`` package (``/usr/share/datasets/fashion-mnist/*.gz``, offline). The four IDX
   files are gunzipped once into ``<cache>/FashionMNIST/raw/`` (cache = ``$PTDIAG_CACHE_DIR`` or
   ``~/.cache/ptdiag``); the system folder is only read.
2. torchvision's downloader into the same cache folder (works for users who are online).

Each loader returns ``(images, labels, classes)``: ``uint8`` images ``(N, H, W)`` (grayscale, 0 = black), ``int64``
labels in ``[0, len(classes))`` and the class names. Arrays are cached per process and returned read-only, so
callers copy before editing.
"""

from __future__ import annotations

import functools
import gzip
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ptdiag.errors import DataError, UsageError

DEBIAN_FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
CACHE_ENV_VAR = "PTDIAG_CACHE_DIR"
SPLITS = ("train", "test")

# torchvision.datasets.FashionMNIST reads these (ungzipped) names from <root>/FashionMNIST/raw/.
_FASHION_MNIST_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
_EXPECTED_SIZES = {"train": 60_000, "test": 10_000}

Source = tuple[np.ndarray, np.ndarray, list[str]]

HOW_TO_GET_FASHION_MNIST = (
    "install it offline with `apt-get install dataset-fashion-mnist` (Debian/Ubuntu), or run once while online "
    "so torchvision can download it"
)


def default_cache_dir() -> Path:
    """The folder ptdiag caches datasets in: ``$PTDIAG_CACHE_DIR``, else ``~/.cache/ptdiag``."""
    env = os.environ.get(CACHE_ENV_VAR)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "ptdiag"


def fashion_mnist_available(cache_dir: str | Path | None = None) -> bool:
    """Whether Fashion-MNIST loads without a download: the Debian copy or an earlier cached copy is present."""
    root = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    raw_dir = root / "FashionMNIST" / "raw"
    return all(
        (raw_dir / name).is_file() or (DEBIAN_FASHION_MNIST_DIR / f"{name}.gz").is_file()
        for name in _FASHION_MNIST_FILES
    )


def load_fashion_mnist(split: str = "train", cache_dir: str | Path | None = None, *, download: bool = True) -> Source:
    """Load one Fashion-MNIST split as numpy arrays.

    Args:
        split: ``"train"`` (60,000 images) or ``"test"`` (10,000 images).
        cache_dir: Where the raw files are kept; default `default_cache_dir()`.
        download: Fall back to torchvision's downloader when the Debian copy is missing.

    Returns:
        ``(images, labels, classes)``: ``uint8 (N, 28, 28)``, ``int64 (N,)``, the 10 class names.

    Raises:
        UsageError: Unknown split.
        DataError: The data is neither installed nor downloadable, or the cached files are damaged.
    """
    _check_split(split)
    root = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    return _load_fashion_mnist_cached(split, str(root.resolve()), download)


@functools.lru_cache(maxsize=4)
def _load_fashion_mnist_cached(split: str, root: str, download: bool) -> Source:
    raw_dir = Path(root) / "FashionMNIST" / "raw"
    _stage_debian_copy(raw_dir)
    if not all((raw_dir / name).is_file() for name in _FASHION_MNIST_FILES):
        if not download:
            raise DataError(f"Fashion-MNIST is not in {DEBIAN_FASHION_MNIST_DIR} or {raw_dir}", hint=_hint())
        _download_with_torchvision(Path(root))
    return _read_with_torchvision(Path(root), split)


def _stage_debian_copy(raw_dir: Path) -> None:
    """Gunzip the Debian package's files into ``raw_dir`` once (each file appears whole or not at all)."""
    for name in _FASHION_MNIST_FILES:
        target = raw_dir / name
        source = DEBIAN_FASHION_MNIST_DIR / f"{name}.gz"
        if target.is_file() or not source.is_file():
            continue
        try:
            raw_dir.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=raw_dir)
            try:
                with gzip.open(source, "rb") as src, os.fdopen(fd, "wb") as dst:
                    shutil.copyfileobj(src, dst, length=1 << 20)
                os.replace(tmp, target)  # atomic: a concurrent reader never sees half a file
            finally:
                Path(tmp).unlink(missing_ok=True)
        except (OSError, EOFError, gzip.BadGzipFile) as exc:
            raise DataError(
                f"cannot unpack {source} into {raw_dir}: {exc}",
                hint=f"set {CACHE_ENV_VAR} to a writable folder, or reinstall dataset-fashion-mnist",
            ) from exc


def _download_with_torchvision(root: Path) -> None:
    """Download Fashion-MNIST into ``root/FashionMNIST/raw`` with torchvision; any failure becomes a DataError."""
    from torchvision.datasets import FashionMNIST

    try:
        FashionMNIST(str(root), train=True, download=True)
    except Exception as exc:  # torchvision raises RuntimeError/URLError/OSError depending on what failed
        raise DataError(
            f"Fashion-MNIST is not installed in {DEBIAN_FASHION_MNIST_DIR} and downloading it failed "
            f"({type(exc).__name__}: {exc})".replace("\n", " "),
            hint=_hint(),
        ) from exc


def _read_with_torchvision(root: Path, split: str) -> Source:
    from torchvision.datasets import FashionMNIST

    raw_dir = root / "FashionMNIST" / "raw"
    try:
        dataset = FashionMNIST(str(root), train=split == "train", download=False)
    except Exception as exc:  # a damaged IDX file trips torchvision's asserts or numpy reshapes
        raise DataError(
            f"the Fashion-MNIST files in {raw_dir} are unreadable ({type(exc).__name__}: {exc})",
            hint=f"delete {raw_dir} and rerun; ptdiag unpacks or downloads them again",
        ) from exc
    images = dataset.data.numpy()
    labels = dataset.targets.numpy().astype(np.int64)
    if len(images) != _EXPECTED_SIZES[split] or len(labels) != len(images) or images.shape[1:] != (28, 28):
        raise DataError(
            f"the Fashion-MNIST {split} files in {raw_dir} hold {images.shape} images and {len(labels)} labels, "
            f"expected ({_EXPECTED_SIZES[split]}, 28, 28)",
            hint=f"delete {raw_dir} and rerun",
        )
    return _read_only(images), _read_only(labels), list(dataset.classes)


def load_digits(split: str = "train") -> Source:
    """scikit-learn's bundled 8×8 handwritten digits (1,797 images, no download), as a tiny test source.

    The two splits are a fixed stratified half/half partition, so "train" and "test" never share an image.

    Returns:
        ``(images, labels, classes)``: ``uint8 (N, 8, 8)`` scaled from 0–16 to 0–255, ``int64 (N,)``, ``"0"``–``"9"``.
    """
    _check_split(split)
    return _load_digits_cached(split)


@functools.lru_cache(maxsize=2)
def _load_digits_cached(split: str) -> Source:
    from sklearn.datasets import load_digits as sklearn_load_digits
    from sklearn.model_selection import train_test_split

    bunch = sklearn_load_digits()
    images = np.rint(bunch.images * (255 / 16)).astype(np.uint8)
    labels = bunch.target.astype(np.int64)
    train_idx, test_idx = train_test_split(np.arange(len(labels)), test_size=0.5, stratify=labels, random_state=0)
    idx = np.sort(train_idx if split == "train" else test_idx)
    return _read_only(images[idx]), _read_only(labels[idx]), [str(d) for d in bunch.target_names]


SOURCES: dict[str, Callable[..., Source]] = {"fashion-mnist": load_fashion_mnist, "digits": load_digits}


def load_source(name: str, split: str, cache_dir: str | Path | None = None) -> Source:
    """Load split ``split`` of the source called ``name`` (one of `SOURCES`)."""
    if name not in SOURCES:
        raise UsageError(f"unknown image source {name!r}; choose one of: {', '.join(SOURCES)}")
    if name == "fashion-mnist":
        return load_fashion_mnist(split, cache_dir)
    return SOURCES[name](split)


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise UsageError(f"unknown split {split!r}; choose one of: {', '.join(SPLITS)}")


def _read_only(array: np.ndarray) -> np.ndarray:
    array.flags.writeable = False  # cached and shared between callers
    return array


def _hint() -> str:
    return f"Fashion-MNIST is needed: {HOW_TO_GET_FASHION_MNIST}"
