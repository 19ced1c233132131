"""Images that are not files of their own: encoded bytes in a dataset table row or a member of a tar shard.

A source is a small picklable reference, not the bytes: the decode workers resolve it themselves (a seek into a
shard, a memory-mapped Arrow column, one Parquet row group), so a large dataset never travels through the process
pool or sits in memory whole. ``ref`` names the image in findings and results, e.g.
``hf:/data/pets#row=17`` or ``wds:/data/train-000003.tar#key=cat_0042``; ``rel`` is its location relative to the
set's root (what the data fingerprint hashes). Only the standard library and pyarrow are used here, so decode
workers never import ``datasets``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class ImageSource:
    """An image stored inside something else. Subclasses implement :meth:`read_bytes`."""

    ref: str
    rel: str

    def read_bytes(self) -> bytes:
        raise NotImplementedError

    def __str__(self) -> str:
        return self.ref


@dataclass(frozen=True)
class TarMember(ImageSource):
    """``size`` bytes at ``offset`` of an uncompressed tar shard (one WebDataset sample's image)."""

    shard: str = ""
    offset: int = 0
    size: int = 0

    def read_bytes(self) -> bytes:
        with open(self.shard, "rb") as fh:
            fh.seek(self.offset)
            data = fh.read(self.size)
        if len(data) != self.size:
            raise EOFError(f"shard ends {self.size - len(data)} bytes early")
        return data


@dataclass(frozen=True)
class TableRow(ImageSource):
    """Row ``row`` (counted across ``files``) of an image column in Arrow stream files or Parquet files.

    The cell is a ``{bytes, path}`` struct (the ``datasets`` Image layout), raw binary, or a path string; a path
    without bytes is read relative to ``base`` when it is not absolute.
    """

    files: tuple[str, ...] = ()
    kind: str = "arrow"  # "arrow" (save_to_disk / hub cache files) or "parquet"
    column: str = "image"
    row: int = 0
    base: str = ""

    def read_bytes(self) -> bytes:
        return cell_bytes(_cell(self), self.base)


def cell_bytes(cell, base: str) -> bytes:
    """The encoded image bytes of one table cell. ValueError for a cell that holds no image."""
    path = None
    if isinstance(cell, dict):
        if cell.get("bytes") is not None:
            return bytes(cell["bytes"])
        path = cell.get("path")
    elif isinstance(cell, bytes | bytearray | memoryview):
        return bytes(cell)
    elif isinstance(cell, str):
        path = cell
    if not path:
        raise ValueError("the image cell is empty (no bytes and no path)")
    with open(os.path.join(base, path), "rb") as fh:
        return fh.read()


# ------------------------------------------------------------------------------------- table access (per process)

_ARROW: dict[tuple, object] = {}  # (files, column) -> pyarrow ChunkedArray, memory-mapped
_PARQUET_META: dict[str, tuple[object, list[int]]] = {}  # file -> (ParquetFile, row-group start rows)
_PARQUET_GROUPS: dict[tuple, object] = {}  # (file, group, column) -> Array; the last two groups read
_GROUP_CACHE = 2


def _cell(source: TableRow):
    if source.kind == "parquet":
        return _parquet_cell(source)
    key = (source.files, source.column)
    if key not in _ARROW:
        import pyarrow as pa

        chunks = []
        for name in source.files:
            table = pa.ipc.open_stream(pa.memory_map(name)).read_all()
            chunks.extend(table.column(source.column).chunks)
        _ARROW[key] = pa.chunked_array(chunks) if chunks else None
    column = _ARROW[key]
    if column is None or source.row >= len(column):
        raise IndexError(f"row {source.row} is past the end of the table")
    return column[source.row].as_py()


def _parquet_cell(source: TableRow):
    import bisect

    row = source.row
    for name in source.files:
        if name not in _PARQUET_META:
            import pyarrow.parquet as pq

            handle = pq.ParquetFile(name, memory_map=True)
            starts, total = [], 0
            for i in range(handle.metadata.num_row_groups):
                starts.append(total)
                total += handle.metadata.row_group(i).num_rows
            starts.append(total)
            _PARQUET_META[name] = (handle, starts)
        handle, starts = _PARQUET_META[name]
        if row >= starts[-1]:
            row -= starts[-1]
            continue
        group = bisect.bisect_right(starts, row) - 1
        key = (name, group, source.column)
        if key not in _PARQUET_GROUPS:
            while len(_PARQUET_GROUPS) >= _GROUP_CACHE:
                _PARQUET_GROUPS.pop(next(iter(_PARQUET_GROUPS)))
            _PARQUET_GROUPS[key] = handle.read_row_group(group, columns=[source.column]).column(0)
        return _PARQUET_GROUPS[key][row - starts[group]].as_py()
    raise IndexError(f"row {source.row} is past the end of the table")
