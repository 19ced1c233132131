"""Images that stay on disk: a read-only ``(N, H, W, C)`` uint8 array over rows of ``.npy`` files.

Rows are read by batch with ``os.pread`` (never mapped whole and never loaded whole), so the memory a reader holds
is bounded by its batch, not by the dataset; the page cache does the caching, and evicts under pressure. An
instance pickles as file names and row indices (a few bytes per row), which is how jobs on other machines reach
the images: they reopen the same files on shared storage. Indexing follows numpy (an int, a slice or an integer
array returns an ``ndarray``); ``rows(index)`` returns a lazy view instead.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ptdiag.errors import ResourceError


def npy_layout(path: Path | str) -> tuple[int, tuple[int, ...], np.dtype]:
    """(byte offset of the data, shape, dtype) of a C-ordered ``.npy`` file."""
    with open(path, "rb") as fh:
        version = np.lib.format.read_magic(fh)
        read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, fortran, dtype = read(fh)
        if fortran:
            raise ValueError(f"{path}: Fortran-ordered arrays are not supported")
        return fh.tell(), tuple(shape), dtype


class DiskImages:
    """Row ``i`` is row ``file_row[i]`` of ``files[file_index[i]]``; every file holds rows of ``row_shape``."""

    def __init__(self, files: Sequence[str], file_index: np.ndarray, file_row: np.ndarray,
                 row_shape: tuple[int, ...], dtype: np.dtype | str = np.uint8):
        self.files = [os.path.abspath(f) for f in files]  # workers may start in another folder
        self.file_index = np.asarray(file_index, dtype=np.int32)
        self.file_row = np.asarray(file_row, dtype=np.int64)
        self.row_shape = tuple(int(s) for s in row_shape)
        self.dtype = np.dtype(dtype)
        self._offsets: dict[int, int] = {}  # per process: data offset of each opened file

    @classmethod
    def from_locations(cls, locations: Sequence[tuple[Path | str, int]], row_shape: tuple[int, ...]) -> DiskImages:
        """From ``(file, row)`` per image, e.g. the decode cache's chunk rows."""
        names: dict[str, int] = {}
        index = np.fromiter((names.setdefault(str(f), len(names)) for f, _ in locations), np.int32, len(locations))
        rows = np.fromiter((row for _, row in locations), np.int64, len(locations))
        return cls(list(names), index, rows, row_shape)

    @classmethod
    def open(cls, path: Path | str) -> DiskImages:
        """Every row of one ``.npy`` file."""
        _, shape, dtype = npy_layout(path)
        return cls([str(path)], np.zeros(shape[0], np.int32), np.arange(shape[0]), shape[1:], dtype)

    # ------------------------------------------------------------------------------------------ array protocol

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self.file_row), *self.row_shape)

    @property
    def ndim(self) -> int:
        return 1 + len(self.row_shape)

    @property
    def nbytes(self) -> int:
        return len(self) * self._row_bytes

    def __len__(self) -> int:
        return len(self.file_row)

    def __getitem__(self, key) -> np.ndarray:
        if isinstance(key, (int, np.integer)):
            return self._read(np.array([key]))[0]
        if isinstance(key, slice):
            return self._read(np.arange(len(self))[key])
        return self._read(np.asarray(key))

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        out = self._read(np.arange(len(self)))  # materialises: only for small sets or explicit requests
        return out if dtype is None else out.astype(dtype)

    def rows(self, index: np.ndarray) -> DiskImages:
        """A lazy view of the rows ``index`` (nothing is read)."""
        index = np.asarray(index)
        return DiskImages(self.files, self.file_index[index], self.file_row[index], self.row_shape, self.dtype)

    def __getstate__(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "_offsets"}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state, _offsets={})

    # -------------------------------------------------------------------------------------------------- reading

    @property
    def _row_bytes(self) -> int:
        return int(np.prod(self.row_shape, dtype=np.int64)) * self.dtype.itemsize

    def _offset(self, file: int) -> int:
        if file not in self._offsets:
            offset, shape, dtype = npy_layout(self.files[file])
            if tuple(shape[1:]) != self.row_shape or dtype != self.dtype:
                raise ValueError(f"{self.files[file]}: rows of {shape[1:]} {dtype}, expected {self.row_shape}")
            self._offsets[file] = offset
        return self._offsets[file]

    def _read(self, positions: np.ndarray) -> np.ndarray:
        if positions.dtype == bool:
            positions = np.flatnonzero(positions)
        positions = positions.astype(np.int64, copy=False)
        if len(positions) and (positions.min() < -len(self) or positions.max() >= len(self)):
            raise IndexError(f"index out of range for {len(self)} rows")
        positions = positions % max(1, len(self))
        out = np.empty((len(positions), *self.row_shape), dtype=self.dtype)
        if not len(positions):
            return out
        flat = out.reshape(len(positions), -1).view(np.uint8)
        files, rows = self.file_index[positions], self.file_row[positions]
        order = np.lexsort((rows, files))  # each file front to back; runs of consecutive rows in one read
        try:
            for start, stop in _runs(files[order], rows[order]):
                self._read_run(files[order[start]], rows[order[start]], order[start:stop], flat)
        except OSError as exc:
            raise ResourceError(f"cannot read decoded images: {exc}",
                                hint="a decode-cache file was removed or damaged while this run read it; the next "
                                     "run verifies every cache file, drops damaged ones and decodes their images "
                                     "again") from exc
        return out

    def _read_run(self, file: int, first_row: int, targets: np.ndarray, flat: np.ndarray) -> None:
        size = self._row_bytes
        fd = os.open(self.files[file], os.O_RDONLY)
        try:
            data = os.pread(fd, size * len(targets), self._offset(file) + int(first_row) * size)
        finally:
            os.close(fd)
        if len(data) != size * len(targets):
            raise OSError(f"{self.files[file]} is shorter than expected")
        flat[targets] = np.frombuffer(data, dtype=np.uint8).reshape(len(targets), size)


def _runs(files: np.ndarray, rows: np.ndarray):
    """(start, stop) of maximal runs where the file is the same and rows step by exactly one."""
    if len(files) == 0:
        return
    breaks = np.flatnonzero((np.diff(files) != 0) | (np.diff(rows) != 1)) + 1
    bounds = np.concatenate([[0], breaks, [len(files)]])
    yield from zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True)


def write_npy(path: Path, blocks, shape: tuple[int, ...], dtype: np.dtype | str = np.uint8) -> None:
    """Write an ``.npy`` of ``shape`` from an iterable of row blocks, atomically, never holding it whole."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    written = 0
    with open(tmp, "wb") as fh:
        np.lib.format.write_array_header_1_0(fh, {"descr": np.dtype(dtype).str, "fortran_order": False,
                                                  "shape": tuple(shape)})
        for block in blocks:
            fh.write(np.ascontiguousarray(block, dtype=dtype).tobytes())
            written += len(block)
    if written != shape[0]:
        tmp.unlink(missing_ok=True)
        raise ValueError(f"wrote {written} rows, expected {shape[0]}")
    os.replace(tmp, path)
