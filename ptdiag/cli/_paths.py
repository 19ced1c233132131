"""Output paths checked before any work starts: a clear UsageError (exit 2) instead of a traceback at the end."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from ptdiag.errors import UsageError


def _nearest_existing(path: Path) -> Path:
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return Path.cwd()


def _check_writable_folder(folder: Path, flag: str, target: Path) -> None:
    if not folder.is_dir():
        raise UsageError(f"{flag} {target}: {folder} is a file, not a folder")
    try:
        fd, probe = tempfile.mkstemp(prefix=".ptdiag-write-check.", dir=folder)
    except OSError as exc:
        raise UsageError(f"{flag} {target}: cannot write in {folder} ({exc.strerror or exc})") from None
    os.close(fd)
    Path(probe).unlink(missing_ok=True)


def check_output_file(path: str | Path | None, flag: str) -> None:
    """``path`` can be written as a file: not a folder, and its folder (or the nearest existing one) writable."""
    if path is None:
        return
    path = Path(path).expanduser()
    if path.is_dir():
        raise UsageError(f"{flag} {path}: is a folder; give a file name inside it")
    _check_writable_folder(_nearest_existing(path.parent), flag, path)


def check_output_folder(path: str | Path | None, flag: str) -> None:
    """``path`` can hold a run: an existing folder or a new one under a writable folder, never a file."""
    if path is None:
        return
    path = Path(path).expanduser()
    if path.exists() and not path.is_dir():
        raise UsageError(f"{flag} {path}: is a file; give a folder for the run (it is created if missing)")
    _check_writable_folder(_nearest_existing(path), flag, path)
