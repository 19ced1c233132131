"""Decode every image once into a uint8 array store keyed by file content and resolution.

Layout: ``<root>/v1/<size>px/<chunk>.npy`` holds an ``(n, size, size, 3)`` uint8 array and ``<chunk>.json`` lists
the content hash (sha1 of the file bytes) and the original width, height, mode and format of each row. A chunk is
written by one worker (array first, index last, both by atomic rename), so concurrent runs and interrupted runs
never leave a half-visible chunk, and a later run reuses whatever was finished. Every chunk is verified when the
index is read (the array's header, its shape against the index and the file's size against the header), so one
left damaged by a full disk or a killed copy is dropped (both files removed) and its images decoded again.

Resize policy, identical for every domain so that a domain classifier cannot use format cues: apply the EXIF
orientation, convert to RGB (alpha composited on white, 16-bit scaled to 8-bit), resize the shorter side to
``size`` and center-crop to ``size x size`` (``PIL.ImageOps.fit``, bilinear, antialiased), the same geometry as
torchvision's ``Resize(size) + CenterCrop(size)``.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import multiprocessing
import os
import re
import sys
import uuid
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from ptdiag._io import write_json_atomic
from ptdiag.data.diskarray import DiskImages
from ptdiag.data.sources import ImageSource
from ptdiag.errors import DataError, ResourceError

CACHE_VERSION = "v1"
CACHE_ENV = "PTDIAG_CACHE_DIR"
# Below this many files a process pool costs more to start than it saves.
PARALLEL_MIN_FILES = 64
_MAX_CHUNK = 256
_WHITE = (255, 255, 255, 255)
_SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")


def default_cache_dir() -> Path:
    """``$PTDIAG_CACHE_DIR`` when set, else ``~/.cache/ptdiag`` (``$XDG_CACHE_HOME/ptdiag`` when that is set)."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "ptdiag"


def default_workers() -> int:
    """The CPU cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS, Windows
        return max(1, os.cpu_count() or 1)


@dataclass(frozen=True)
class ImageMeta:
    """What a scan learns about one file besides its pixels."""

    width: int
    height: int
    mode: str
    format: str
    exif_rotated: bool = False

    def to_list(self) -> list:
        return [self.width, self.height, self.mode, self.format, self.exif_rotated]

    @classmethod
    def from_list(cls, values: Sequence) -> ImageMeta:
        return cls(int(values[0]), int(values[1]), str(values[2]), str(values[3]), bool(values[4]))


@dataclass(frozen=True)
class FileResult:
    """The outcome of scanning one file: its content hash, and either its metadata or why it is unusable."""

    hash: str | None
    meta: ImageMeta | None
    error_code: str | None = None
    error: str | None = None
    from_cache: bool = False  # only hashed: the cache already held its decoding

    @property
    def ok(self) -> bool:
        return self.error_code is None


# ---------------------------------------------------------------------------------------------------- decoding


def to_rgb(image: Image.Image) -> Image.Image:
    """Convert any PIL mode to 8-bit RGB without clipping or garbage from hidden alpha.

    16-bit and 32-bit integer grey ("I;16*", "I") is read as 0..65535 and rounded to 0..255 (PIL's own
    conversion clips at 255); float ("F") is read as 0..1. Transparent pixels are composited on white, because
    the colour stored under alpha 0 is arbitrary. CMYK, palette, 1-bit, L and YCbCr use PIL's conversions.
    """
    if image.mode in _SIXTEEN_BIT_MODES:
        wide = np.asarray(image, dtype=np.int64).clip(0, 65535)
        image = Image.fromarray(((wide * 255 + 32767) // 65535).astype(np.uint8), mode="L")
    elif image.mode == "F":
        unit = np.nan_to_num(np.asarray(image, dtype=np.float64)).clip(0.0, 1.0)
        image = Image.fromarray(np.round(unit * 255).astype(np.uint8), mode="L")
    if image.mode in ("RGBA", "RGBa", "LA", "La", "PA") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        return Image.alpha_composite(Image.new("RGBA", rgba.size, _WHITE), rgba).convert("RGB")
    return image if image.mode == "RGB" else image.convert("RGB")


def decode_file(fh, size: int | None) -> tuple[np.ndarray | None, ImageMeta]:
    """Decode an open image file; return the ``(size, size, 3)`` uint8 array (None when ``size`` is None).

    With ``size=None`` the image is still decoded in full, at the smallest JPEG DCT scale, which is what finds
    truncated files. Raises PIL's or the OS's exception for an unusable file.
    """
    with Image.open(fh) as image:
        meta_size, mode, fmt = image.size, image.mode, image.format or "?"
        # JPEG can decode straight to 1/2..1/8 scale; ask for no less than the target so quality is kept.
        image.draft(None, (size, size) if size else (1, 1))
        image.load()
        rotated = _exif_orientation(image) not in (None, 1)
        if rotated:
            image = ImageOps.exif_transpose(image)
        meta = ImageMeta(meta_size[0], meta_size[1], mode, fmt, rotated)
        if size is None:
            return None, meta
        rgb = ImageOps.fit(to_rgb(image), (size, size), method=Image.Resampling.BILINEAR)
        return np.asarray(rgb, dtype=np.uint8), meta


def _exif_orientation(image: Image.Image) -> int | None:
    try:
        return image.getexif().get(0x0112)
    except Exception:  # a malformed EXIF block is no reason to drop an image that decodes
        return None


def file_hash(fh) -> str:
    """sha1 of a binary file's bytes, read in 1 MiB chunks (``hashlib.file_digest`` needs Python 3.11)."""
    digest = hashlib.sha1(usedforsecurity=False)
    for block in iter(lambda: fh.read(1 << 20), b""):
        digest.update(block)
    return digest.hexdigest()


def open_image_bytes(path: Path | ImageSource):
    """A binary file object for a file, or for the bytes of an image inside a dataset table or shard."""
    return _SourceBytes(path) if isinstance(path, ImageSource) else open(path, "rb")


class _SourceBytes(io.BytesIO):
    """In-memory bytes that PIL's messages name by the source's reference, not by an object address."""

    def __init__(self, source: ImageSource):
        super().__init__(source.read_bytes())
        self.ref = source.ref

    def __repr__(self) -> str:
        return repr(self.ref)


def _as_source(path: str | ImageSource) -> Path | ImageSource:
    return path if isinstance(path, ImageSource) else Path(path)


def scan_file(
    path: Path | ImageSource, size: int | None, known: dict[str, ImageMeta] | None = None
) -> tuple[FileResult, object]:
    """Hash and decode one file; skip decoding when its hash is in ``known``. Returns (result, array or None)."""
    try:
        with open_image_bytes(path) as fh:
            digest = file_hash(fh)
            if known is not None and digest in known:
                return FileResult(digest, known[digest], from_cache=True), None
            fh.seek(0)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # DecompressionBombWarning etc.: the error case is handled below
                array, meta = decode_file(fh, size)
            return FileResult(digest, meta), array
    except FileNotFoundError:
        return FileResult(None, None, "missing-file", f"file is missing (moved or deleted?): {path}"), None
    except PermissionError:
        return FileResult(None, None, "unreadable-file", f"permission denied: {path}"), None
    except IsADirectoryError:
        return FileResult(None, None, "unreadable-file", f"expected a file, found a folder: {path}"), None
    except Image.DecompressionBombError as exc:
        return FileResult(None, None, "decompression-bomb", f"refused as a decompression bomb: {path} ({exc})"), None
    except MemoryError:
        raise
    except Exception as exc:  # noqa: BLE001  untrusted files fail in many ways; one bad file must not stop the scan
        if _is_empty(path):
            return FileResult(None, None, "empty-file", f"file is empty (0 bytes): {path}"), None
        return FileResult(None, None, "corrupt-image", f"cannot decode {path}: {_reason(exc)}"), None


def _is_empty(path: Path | ImageSource) -> bool:
    try:
        return isinstance(path, Path) and path.stat().st_size == 0
    except OSError:
        return False


def _reason(exc: Exception) -> str:
    """The first line of a decoder's message without the file object's repr PIL puts in it."""
    reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    reason = re.sub(r"\s*<_?\w+(\.\w+)*( name=[^>]*)?>", "", reason).strip()
    if reason == "cannot identify image file":
        return "not an image format PIL can read (cannot identify image file)"
    return reason or type(exc).__name__


# ------------------------------------------------------------------------------------------------ cache index


class _Index:
    """Snapshot of the chunk files under a cache root: hash -> (chunk, row) per size, and hash -> metadata."""

    def __init__(self, root: Path | None):
        self.root = root
        self.rows: dict[int, dict[str, tuple[Path, int]]] = {}
        self.meta: dict[str, ImageMeta] = {}
        self.damaged: list[tuple[Path, str]] = []
        if root is None or not (root / CACHE_VERSION).is_dir():
            return
        for size_dir in sorted((root / CACHE_VERSION).glob("*px")):
            size = int(size_dir.name[:-2]) if size_dir.name[:-2].isdigit() else None
            if size is None:
                continue
            rows = self.rows.setdefault(size, {})
            for index_file in sorted(size_dir.glob("*.json")):
                try:
                    entries = json.loads(index_file.read_text(encoding="utf-8"))
                except (OSError, ValueError):
                    continue  # a chunk being written by another run, or a damaged one: decode those images again
                array_file = index_file.with_suffix(".npy")
                problem = chunk_problem(array_file, len(entries.get("hashes", [])), size)
                if problem:
                    self.damaged.append((array_file, problem))
                    continue
                for row, (digest, meta) in enumerate(zip(entries["hashes"], entries["meta"], strict=True)):
                    rows.setdefault(digest, (array_file, row))
                    self.meta.setdefault(digest, ImageMeta.from_list(meta))

    def known(self, size: int | None) -> dict[str, ImageMeta]:
        """Hashes whose decoding can be skipped: cached at ``size`` (any size when ``size`` is None)."""
        if size is None:
            return self.meta
        return {digest: self.meta[digest] for digest in self.rows.get(size, {})}


# Chunks found sound in this process, by (path, size, mtime): a chunk is written once and never changed, so a later
# index of the same cache (workers, status, load) only stats it instead of reading its header again.
_SOUND: set[tuple[str, int, int]] = set()


def chunk_problem(array_file: Path, n_rows: int, size: int) -> str | None:
    """Why a chunk's array cannot be trusted (None when it can): missing, bad header, wrong shape or truncated."""
    try:
        stat = array_file.stat()
    except FileNotFoundError:
        return "its array file is missing"
    except OSError as exc:
        return f"unreadable ({exc})"
    key = (str(array_file), stat.st_size, stat.st_mtime_ns)
    if key in _SOUND:
        return None
    try:
        with open(array_file, "rb") as fh:
            version = np.lib.format.read_magic(fh)
            read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                           else np.lib.format.read_array_header_2_0)
            shape, fortran, dtype = read_header(fh)
            header_end = fh.tell()
    except FileNotFoundError:
        return "its array file is missing"
    except (OSError, ValueError, SyntaxError) as exc:
        return f"unreadable header ({exc})"
    if dtype != np.uint8 or fortran or tuple(shape) != (n_rows, size, size, 3):
        return f"shape {tuple(shape)} {dtype} does not match its index ({n_rows} rows of {size}x{size}x3 uint8)"
    expected = header_end + n_rows * size * size * 3
    if stat.st_size != expected:
        return f"{stat.st_size:,} bytes where its header needs {expected:,} (truncated or damaged)"
    _SOUND.add(key)
    return None


def drop_damaged_chunks(root: Path | None) -> list[tuple[Path, str]]:
    """Remove every damaged chunk (array and index) under ``root``; returns (array file, why) for each."""
    damaged = _Index(root).damaged
    for array_file, _ in damaged:
        for path in (array_file.with_suffix(".json"), array_file):
            try:
                path.unlink(missing_ok=True)
            except OSError:
                pass  # a read-only cache: the index skips the chunk anyway
    return damaged


def _write_chunk(root: Path, size: int, hashes: list[str], metas: list[ImageMeta], arrays: list[np.ndarray]) -> None:
    size_dir = root / CACHE_VERSION / f"{size}px"
    size_dir.mkdir(parents=True, exist_ok=True)
    name = uuid.uuid4().hex
    tmp = size_dir / f".{name}.npy.tmp"
    with open(tmp, "wb") as fh:
        np.save(fh, np.stack(arrays))
    os.replace(tmp, size_dir / f"{name}.npy")
    write_json_atomic(size_dir / f"{name}.json", {"hashes": hashes, "meta": [m.to_list() for m in metas]})


# ------------------------------------------------------------------------------------------------ parallel scan

_worker_known: dict[str, ImageMeta] | None = None


def _init_worker(cache_root: str | None, size: int | None, fill: bool) -> None:
    """Load the cache index once per worker process (not once per task)."""
    global _worker_known
    if cache_root is None:
        _worker_known = None
        return
    index = _Index(Path(cache_root))
    # Filling: skip what is cached at this size. Validating only: skip what was ever decoded, at any size.
    _worker_known = index.known(size if fill else None)


def _scan_chunk(paths: list[str], size: int | None, cache_root: str | None, fill: bool) -> list[FileResult]:
    results, hashes, metas, arrays, seen = [], [], [], [], set()
    for path in paths:
        result, array = scan_file(_as_source(path), size if fill else None, _worker_known)
        results.append(result)
        if array is not None and result.hash not in seen:  # identical files in one chunk are stored once
            seen.add(result.hash)
            hashes.append(result.hash)
            metas.append(result.meta)
            arrays.append(array)
    if fill and arrays:
        _write_chunk(Path(cache_root), size, hashes, metas, arrays)
    return results


def _pool_context():
    """fork on Linux, like torch's DataLoader: workers start at once and do not re-import ``__main__`` (which, for
    the ``ptdiag`` script or a notebook, would import torch in every worker or fail). The workers only run PIL,
    numpy and hashlib, so the usual fork-after-threads hazards do not apply. spawn elsewhere."""
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("fork" if sys.platform.startswith("linux") and "fork" in methods else "spawn")


def scan_files(
    paths: Sequence[Path],
    *,
    size: int | None = None,
    cache_root: Path | None = None,
    fill: bool = False,
    workers: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> list[FileResult]:
    """Hash and decode ``paths`` in parallel; with ``fill`` also store each new image in the cache at ``size``.

    Files already in the cache are only hashed. Returns one result per path, in order.
    """
    if fill and (size is None or cache_root is None):
        raise ValueError("fill needs both size and cache_root")
    workers = workers or default_workers()
    paths = [p if isinstance(p, ImageSource) else str(p) for p in paths]
    chunk = max(8, min(_MAX_CHUNK, math.ceil(len(paths) / (workers * 4) or 1)))
    chunks = [paths[i : i + chunk] for i in range(0, len(paths), chunk)]
    root = None if cache_root is None else str(cache_root)
    results: list[list[FileResult] | None] = [None] * len(chunks)
    try:
        if workers == 1 or len(paths) < PARALLEL_MIN_FILES:
            _init_worker(root, size, fill)
            try:
                for i, part in enumerate(chunks):
                    results[i] = _scan_chunk(part, size, root, fill)
                    if progress:
                        progress(len(part))
            finally:
                _init_worker(None, None, False)  # do not keep the index snapshot alive in this process
        else:
            with ProcessPoolExecutor(
                workers, mp_context=_pool_context(), initializer=_init_worker, initargs=(root, size, fill)
            ) as pool:
                futures = {pool.submit(_scan_chunk, part, size, root, fill): i for i, part in enumerate(chunks)}
                for future in as_completed(futures):
                    results[futures[future]] = future.result()
                    if progress:
                        progress(len(chunks[futures[future]]))
    except BrokenProcessPool as exc:
        raise ResourceError("a decoding worker died (out of memory?)", hint="lower --workers") from exc
    except OSError as exc:  # the cache folder, not an image: disk full, read-only, ...
        raise ResourceError(
            f"cannot write the decode cache under {cache_root}: {exc}",
            hint=f"free disk space or point {CACHE_ENV} / --cache-dir elsewhere",
        ) from exc
    return [result for part in results for result in part]


# ---------------------------------------------------------------------------------------------------- the cache


class DecodeCache:
    """Content-addressed store of decoded, resized RGB images; see the module docstring for layout and policy.

    Args:
        root: cache folder; default ``$PTDIAG_CACHE_DIR`` or ``~/.cache/ptdiag``.
        workers: decoding processes; default all usable cores.
    """

    def __init__(self, root: Path | str | None = None, workers: int | None = None):
        self.root = Path(root).expanduser() if root is not None else default_cache_dir()
        self.workers = workers

    def status(self, hashes: Sequence[str], size: int) -> tuple[int, int]:
        """(how many of ``hashes`` are cached at ``size``, how many there are)."""
        rows = _Index(self.root).rows.get(size, {})
        return sum(digest in rows for digest in hashes), len(hashes)

    def sizes(self) -> list[int]:
        """The resolutions that have at least one cached image."""
        return sorted(size for size, rows in _Index(self.root).rows.items() if rows)

    def metadata(self, hashes: Sequence[str]) -> list[ImageMeta | None]:
        """Original width, height, mode and format of each cached image (None where unknown)."""
        meta = _Index(self.root).meta
        return [meta.get(digest) for digest in hashes]

    def fill(self, paths: Sequence[Path], size: int, progress: Callable[[int], None] | None = None) -> list[FileResult]:
        """Decode and store every file of ``paths`` not yet cached at ``size``; return one result per path."""
        return scan_files(paths, size=size, cache_root=self.root, fill=True, workers=self.workers, progress=progress)

    def load(self, paths: Sequence[Path], hashes: Sequence[str], size: int) -> np.ndarray:
        """Return the images as one ``(N, size, size, 3)`` uint8 array, decoding (once) any that are missing.

        ``hashes`` are the content hashes from the scan (``ImageSet.hashes``); a file whose bytes changed since
        then, or that can no longer be decoded, raises DataError.
        """
        return self._gather(self._locate(paths, hashes, size), size)

    def open(self, paths: Sequence[Path], hashes: Sequence[str], size: int) -> DiskImages:
        """Like ``load``, but the images stay on disk: a ``DiskImages`` over the cache's chunk rows, read by batch."""
        return DiskImages.from_locations(self._locate(paths, hashes, size), (size, size, 3))

    def _locate(self, paths: Sequence[Path], hashes: Sequence[str], size: int) -> list[tuple[Path, int]]:
        """The (chunk file, row) of each image at ``size``, decoding (once) any that are missing."""
        if len(paths) != len(hashes):
            raise ValueError(f"got {len(paths)} paths but {len(hashes)} hashes")
        rows = _Index(self.root).rows.get(size, {})
        missing = [i for i, digest in enumerate(hashes) if digest not in rows]
        if missing:
            results = self.fill([paths[i] for i in missing], size)
            for i, result in zip(missing, results, strict=True):
                if not result.ok:
                    raise DataError(result.error, hint="rerun `ptdiag inspect` to list every unusable file")
                if result.hash != hashes[i]:
                    raise DataError(f"file changed since it was scanned: {paths[i]}", hint="rerun the command")
            rows = _Index(self.root).rows[size]
        return [rows[digest] for digest in hashes]

    @staticmethod
    def _gather(locations: list[tuple[Path, int]], size: int) -> np.ndarray:
        out = np.empty((len(locations), size, size, 3), dtype=np.uint8)
        by_chunk: dict[Path, list[tuple[int, int]]] = {}
        for position, (chunk, row) in enumerate(locations):
            by_chunk.setdefault(chunk, []).append((row, position))
        for chunk, pairs in by_chunk.items():
            pairs.sort()  # read each chunk front to back
            try:
                stored = np.load(chunk, mmap_mode="r")
            except (OSError, ValueError) as exc:
                raise ResourceError(
                    f"damaged decode-cache file {chunk}: {exc}", hint=f"delete {chunk.parent} and rerun"
                ) from exc
            source = np.fromiter((row for row, _ in pairs), dtype=np.int64, count=len(pairs))
            target = np.fromiter((pos for _, pos in pairs), dtype=np.int64, count=len(pairs))
            out[target] = stored[source]
        return out
