"""Hugging Face datasets as image sets: a ``save_to_disk`` folder, Parquet or Arrow files, or a hub id.

Columns come from the features: the ``Image`` column and the ``ClassLabel`` column (whose names are the classes);
``image_column`` / ``label_column`` override, and plain columns named ``image``/``img`` and ``label`` are found
too. Integer labels without names become classes named by their value (an info finding says so). The images are
not decoded here: each row becomes a :class:`~ptdiag.data.sources.TableRow` that the decode workers read.

The ``datasets`` library (``pip install 'ptdiag[hf]'``) reads the folder layouts and the features; the workers only
need pyarrow. Nothing is written into the dataset's folder.
"""

from __future__ import annotations

import os
from pathlib import Path

from ptdiag.data.sources import TableRow
from ptdiag.data.types import UNLABELLED_NAME, Finding, Listing, SourceOptions, quote_names, unlabelled_finding
from ptdiag.errors import DataError

HUB_PREFIX = "hf://datasets/"
_OFFLINE_VARS = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")
_IMAGE_NAMES = ("image", "img", "images", "picture", "jpg", "png")
_LABEL_NAMES = ("label", "labels", "class", "cls", "target", "fine_label", "coarse_label")
_PARQUET_SUFFIXES = (".parquet", ".pq")


def is_saved_dataset(path: Path) -> bool:
    """A ``save_to_disk`` folder: one Dataset (state.json + dataset_info.json) or a DatasetDict."""
    if not path.is_dir():
        return False
    single = all((path / name).is_file() for name in ("state.json", "dataset_info.json"))
    return single or (path / "dataset_dict.json").is_file()


def is_image_table(path: Path) -> bool:
    """An Arrow file, or a Parquet file with an image column (``{bytes, path}`` structs or binary), not a manifest."""
    suffix = path.suffix.lower()
    if suffix == ".arrow":
        return True
    if suffix not in _PARQUET_SUFFIXES or not path.is_file():
        return False
    import pyarrow.parquet as pq

    try:
        schema = pq.read_schema(path)
    except Exception:  # noqa: BLE001  not readable as Parquet: the manifest reader gives the message
        return False
    metadata = schema.metadata or {}
    if b'"_type": "Image"' in metadata.get(b"huggingface", b""):
        return True
    return any(_is_image_type(schema.field(i).type) for i in range(len(schema)))


def _is_image_type(arrow_type) -> bool:
    import pyarrow as pa

    if pa.types.is_struct(arrow_type):
        return "bytes" in {arrow_type.field(i).name for i in range(arrow_type.num_fields)}
    return pa.types.is_binary(arrow_type) or pa.types.is_large_binary(arrow_type)


def _datasets():
    try:
        import datasets
    except ImportError:
        raise DataError(
            "reading a Hugging Face dataset needs the `datasets` library", hint="pip install 'ptdiag[hf]'"
        ) from None
    datasets.logging.set_verbosity_error()
    datasets.disable_progress_bars()
    return datasets


# ------------------------------------------------------------------------------------------------------ discovery


def discover_hf(source: str | Path, role: str, options: SourceOptions) -> Listing:
    """List the rows of a Hugging Face dataset (folder, Parquet/Arrow file, or ``hf://datasets/ORG/NAME``)."""
    if str(source).startswith(HUB_PREFIX):
        return _discover_hub(str(source), role, options)
    path = Path(source).absolute()
    if path.is_dir():
        dataset, split = _load_saved(path, role, options.split)
        files = tuple(f["filename"] for f in dataset.cache_files)
        return _listing(role, path, split, dataset.features, dataset.data.schema, files, "arrow", dataset, options)
    if path.suffix.lower() == ".arrow":
        datasets = _datasets()
        try:
            dataset = datasets.Dataset.from_file(str(path))
        except Exception as exc:  # noqa: BLE001  pyarrow raises many types for a bad file
            raise DataError(f"cannot read {role} Arrow file {path}: {_reason(exc)}") from exc
        schema = dataset.data.schema
        return _listing(role, path, None, dataset.features, schema, (str(path),), "arrow", dataset, options)
    return _discover_parquet(path, role, options)


def _load_saved(path: Path, role: str, split: str | None):
    datasets = _datasets()
    try:
        loaded = datasets.load_from_disk(str(path))
    except Exception as exc:  # noqa: BLE001
        raise DataError(f"cannot read {role} dataset folder {path}: {_reason(exc)}") from exc
    if not isinstance(loaded, datasets.DatasetDict):
        if split is not None and loaded.split is not None and str(loaded.split) != split:
            raise DataError(f"{role}: {path} holds the single split '{loaded.split}', not '{split}'")
        return loaded, split
    names = list(loaded)
    if split is None:
        split = names[0] if len(names) == 1 else ("train" if role == "train" and "train" in names else None)
    if split not in loaded:
        wanted = f"split '{split}' is not in" if split else "which split? pick one of the splits of"
        raise DataError(
            f"{role}: {wanted} {path} ({quote_names(names)})",
            hint=f"pass --{role}-split NAME or {path}:NAME",
        )
    return loaded[split], split


def _discover_parquet(path: Path, role: str, options: SourceOptions) -> Listing:
    import pyarrow.parquet as pq

    datasets = _datasets()
    try:
        schema = pq.read_schema(path)
        features = datasets.Features.from_arrow_schema(schema)
    except Exception as exc:  # noqa: BLE001
        raise DataError(f"cannot read {role} Parquet file {path}: {_reason(exc)}") from exc
    return _listing(role, path, None, features, schema, (str(path),), "parquet", None, options)


def _discover_hub(source: str, role: str, options: SourceOptions) -> Listing:
    name = source[len(HUB_PREFIX) :].strip("/")
    split = options.split
    if ":" in name:
        name, split = name.split(":", 1)
    if any(os.environ.get(v, "").lower() in ("1", "true", "yes", "on") for v in _OFFLINE_VARS):
        raise DataError(
            f"{role}: the hub dataset {name} needs the network, but HF_HUB_OFFLINE is set",
            hint="on a machine online, datasets.load_dataset(...).save_to_disk(DIR), then pass --"
            f"{role} DIR",
        )
    datasets = _datasets()
    try:
        dataset = datasets.load_dataset(name, split=split or ("train" if role == "train" else None))
    except Exception as exc:  # noqa: BLE001  network, auth, missing dataset or split
        raise DataError(f"{role}: cannot load the hub dataset {name}: {_reason(exc)}") from exc
    if isinstance(dataset, datasets.DatasetDict):
        raise DataError(f"{role}: which split of {name}? ({quote_names(list(dataset))})", hint=f"pass --{role}-split")
    files = tuple(f["filename"] for f in dataset.cache_files)
    root = Path(files[0]).parent if files else Path(".")
    listing = _listing(role, root, split, dataset.features, dataset.data.schema, files, "arrow", dataset, options)
    listing.findings.append(Finding("info", "hub-dataset", f"{role}: hub dataset {name} read from {root}", source))
    return listing


# ----------------------------------------------------------------------------------------------------- the rows


def _listing(role, path, split, features, schema, files, kind, dataset, options: SourceOptions) -> Listing:
    image_col = _pick_column(role, path, features, schema, options.image_column, "image")
    label_col = _label_column(role, path, features, schema, options)
    names = getattr(features.get(label_col), "names", None) if label_col else None
    values = (_label_values(dataset, files, kind, label_col, role, path) if label_col
              else [None] * _row_count(dataset, files, kind))
    where = f"{path}" + (f"[{split}]" if split else "")
    base = str(path if path.is_dir() else path.parent)
    listing = Listing(role, path, "hf", path, [], [])
    missing, by_value = [], False
    for row, value in enumerate(values):
        ref = f"hf:{where}#row={row}"
        label = _label_name(value, names)
        if label is None and role == "shift":  # an unlabelled shifted image (see ptdiag.data.shift_labels)
            label = UNLABELLED_NAME
        elif label is None:
            missing.append(Finding("warning", "missing-label", f"{role}: {ref} has no label; skipped", ref))
            continue
        by_value = by_value or (names is None and not isinstance(value, str))
        listing.paths.append(TableRow(ref, f"row={row}", files, kind, image_col, row, base))
        listing.class_names.append(label)
    listing.findings += missing
    listing.findings += unlabelled_finding(listing.class_names, "rows", str(path))
    if by_value:
        listing.findings.append(
            Finding(
                "info",
                "labels-by-value",
                f"{role}: column '{label_col}' holds integers without class names; classes are matched by value",
                str(path),
            )
        )
    return listing


def _label_column(role, path, features, schema, options: SourceOptions) -> str | None:
    """The label column; None for a shifted set without one (all its rows unlabelled)."""
    try:
        return _pick_column(role, path, features, schema, options.label_column, "label")
    except DataError:
        if role != "shift" or options.label_column is not None:
            raise
        return None


def _row_count(dataset, files, kind) -> int:
    if dataset is not None:
        return int(dataset.num_rows)
    import pyarrow as pa
    import pyarrow.parquet as pq

    if kind == "parquet":
        return sum(pq.ParquetFile(name).metadata.num_rows for name in files)
    return sum(pa.ipc.open_stream(pa.memory_map(name)).read_all().num_rows for name in files)


def _pick_column(role, path, features, schema, override: str | None, what: str) -> str:
    columns = list(schema.names)
    if override is not None:
        if override not in columns:
            raise DataError(f"{role}: {path} has no column '{override}'; columns: {quote_names(columns)}")
        return override
    datasets = _datasets()
    kind = datasets.Image if what == "image" else datasets.ClassLabel
    typed = [c for c in columns if isinstance(features.get(c), kind)]
    if what == "image" and not typed:
        typed = [c for c in columns if _is_image_type(schema.field(c).type)]
    named = [c for c in columns if c.lower() in (_IMAGE_NAMES if what == "image" else _LABEL_NAMES)]
    chosen = typed if len(typed) == 1 else (named[:1] if not typed else [])
    if not chosen:
        found = f"several {what} columns ({quote_names(typed)})" if typed else f"no {what} column"
        raise DataError(
            f"{role}: {path}: {found}; columns: {quote_names(columns)}",
            hint=f"name it with --{what}-column",
        )
    return chosen[0]


def _label_values(dataset, files, kind, column, role, path) -> list:
    if dataset is not None:
        return dataset.data.column(column).to_pylist()
    import pyarrow.parquet as pq

    try:
        return [v for name in files for v in pq.read_table(name, columns=[column]).column(0).to_pylist()]
    except Exception as exc:  # noqa: BLE001
        raise DataError(f"cannot read the labels of {role} {path}: {_reason(exc)}") from exc


def _label_name(value, names: list[str] | None) -> str | None:
    """The class name of one label cell; None for a missing label (None, empty, or ClassLabel's -1)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool) or not isinstance(value, int | str):
        return str(value)
    if isinstance(value, str):
        return value.strip()
    if value < 0:
        return None
    if names is not None:
        return names[value] if value < len(names) else None
    return str(value)


def _reason(exc: BaseException) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
