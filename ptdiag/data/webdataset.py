"""WebDataset tar shards as image sets: one ``.tar``, a brace pattern (``train-{000000..000009}.tar``), or a folder.

Samples are grouped as the ``webdataset`` library groups them: consecutive members sharing a ``__key__`` (the
member name up to the first dot of its base name), extensions lower-cased. A sample needs an image
(``jpg``/``jpeg``/``png``/``webp``, or another image extension) and a label: the ``cls`` member (an integer or a
class name), or with ``--label-column NAME`` the member with that extension or the field NAME of the ``json``
member. A sample without one is a finding naming its key. The shard is streamed once for the labels; images are
not read here but referenced by offset (:class:`~ptdiag.data.sources.TarMember`) for the decode workers, so shards
must be uncompressed tar. Brace patterns are expanded by ``braceexpand`` (``pip install 'ptdiag[webdataset]'``).
"""

from __future__ import annotations

import json
import re
import tarfile
from pathlib import Path

from ptdiag.data.sources import TarMember
from ptdiag.data.types import (
    IMAGE_EXTENSIONS,
    UNLABELLED_NAME,
    Finding,
    Listing,
    SourceOptions,
    quote_names,
    unlabelled_finding,
)
from ptdiag.errors import DataError

_KEY = re.compile(r"^((?:.*/|)[^.]+)[.]([^/]*)$")  # webdataset.tariterators.base_plus_ext
_IMAGE_EXTS = ("jpg", "jpeg", "png", "webp") + tuple(sorted(e[1:] for e in IMAGE_EXTENSIONS if e[1:] not in
                                                              ("jpg", "jpeg", "png", "webp")))
_LABEL_FIELDS = ("label", "cls", "class")


def is_pattern(text: str) -> bool:
    """A brace pattern of shard names, e.g. ``data/train-{000000..000009}.tar``."""
    return "{" in text and "}" in text and ".tar" in text


def is_shard(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() == ".tar"


def is_shard_folder(path: Path) -> bool:
    """A folder holding .tar files and no sub-folders (an ImageFolder tree has class sub-folders)."""
    entries = [p for p in path.iterdir() if not p.name.startswith(".")]
    return any(is_shard(p) for p in entries) and not any(p.is_dir() for p in entries)


def shard_paths(spec: str, role: str) -> tuple[Path, list[Path]]:
    """(root, shards) of a shard file, folder or brace pattern; DataError when one is missing."""
    if is_pattern(spec):
        try:
            from braceexpand import braceexpand
        except ImportError:
            raise DataError(
                f"{role}: shard patterns like {spec} need the webdataset extra", hint="pip install 'ptdiag[webdataset]'"
            ) from None
        shards = [Path(s).expanduser().absolute() for s in braceexpand(spec)]
        missing = [str(s) for s in shards if not s.is_file()]
        if missing:
            raise DataError(f"{role}: {len(missing)} of {len(shards)} shards do not exist: {quote_names(missing)}")
        return shards[0].parent, shards
    path = Path(spec).expanduser().absolute()
    if path.is_dir():
        shards = sorted(p for p in path.iterdir() if is_shard(p) and not p.name.startswith("."))
        if not shards:
            raise DataError(f"{role}: no .tar shards in {path}")
        return path, shards
    return path.parent, [path]


def discover_shards(spec: str, role: str, options: SourceOptions) -> Listing:
    """List the samples of a set of shards (labels read, images referenced by offset)."""
    root, shards = shard_paths(spec, role)
    source = Path(spec).expanduser().absolute() if not is_pattern(spec) else Path(spec)
    listing = Listing(role, source, "webdataset", root, [], [])
    by_value = False
    for shard in shards:
        for key, members, tar in _samples(shard, role):
            ref = f"wds:{shard}#key={key}"
            image_ext = next((e for e in _IMAGE_EXTS if e in members), None)
            label, why = _label(members, tar, options.label_column)
            if image_ext is None:
                listing.findings.append(_missing(role, ref, "no image", members, "missing-image"))
            elif label is None and (role != "shift" or options.label_column is not None):
                listing.findings.append(_missing(role, ref, why, members, "missing-label"))
            else:  # a shifted sample without a label is unlabelled (see ptdiag.data.shift_labels)
                label = UNLABELLED_NAME if label is None else label
                member = members[image_ext]
                rel = f"{shard.relative_to(root)}#{key}"
                listing.paths.append(TarMember(ref, rel, str(shard), member.offset_data, member.size))
                listing.class_names.append(label)
                by_value = by_value or label.lstrip("-").isdigit()
    listing.findings += unlabelled_finding(listing.class_names, "samples", str(source))
    if by_value:
        listing.findings.append(
            Finding("info", "labels-by-value", f"{role}: integer labels without class names; classes are matched "
                    "by value", str(source))
        )
    return listing


def _missing(role: str, ref: str, why: str, members: dict, code: str) -> Finding:
    has = ", ".join(sorted(members)) or "nothing"
    return Finding("warning", code, f"{role}: sample {ref} has {why} (it holds {has}); skipped", ref)


def _samples(shard: Path, role: str):
    """Yield (key, {extension: TarInfo}, open tarfile) per sample, streaming through the shard once."""
    try:
        with tarfile.open(shard, mode="r:") as tar:
            key, members = None, {}
            for info in tar:
                match = _KEY.match(info.name) if info.isfile() else None
                if match is None or Path(info.name).name.startswith("__"):
                    continue
                prefix, ext = match.group(1), match.group(2).lower()
                if prefix != key and members:
                    yield key, members, tar
                    members = {}
                key = prefix
                members.setdefault(ext, info)
            if members:
                yield key, members, tar
    except (tarfile.TarError, OSError, EOFError) as exc:
        hint = "shards must be uncompressed .tar files" if isinstance(exc, tarfile.ReadError) else None
        raise DataError(f"cannot read {role} shard {shard}: {exc}", hint=hint) from exc


def _label(members: dict, tar: tarfile.TarFile, column: str | None) -> tuple[str | None, str]:
    """(class name, or None and why not) of one sample."""
    if column is not None and column.lower() in members:
        return _text(tar, members[column.lower()]), f"an empty '{column}'"
    if column is None and "cls" in members:
        return _text(tar, members["cls"]), "an empty 'cls'"
    if "json" not in members:
        return None, f"no label ('{column}' member or json field)" if column else "no label (no 'cls' or 'json')"
    try:
        record = json.loads(_text(tar, members["json"]) or "null")
    except ValueError as exc:
        return None, f"unreadable json ({exc})"
    fields = (column,) if column else _LABEL_FIELDS
    value = next((record[f] for f in fields if isinstance(record, dict) and record.get(f) not in (None, "")), None)
    if value is None:
        return None, f"no label field {quote_names(list(fields))} in its json"
    return str(value).strip(), ""


def _text(tar: tarfile.TarFile, info: tarfile.TarInfo) -> str | None:
    fh = tar.extractfile(info)
    text = fh.read().decode("utf-8", "replace").strip() if fh is not None else ""
    return text or None
