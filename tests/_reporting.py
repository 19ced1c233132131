"""Shared helpers for the report and gate tests: fixture loading, golden files, fixed-width consoles."""

from __future__ import annotations

import copy
import difflib
import io
import json
import os
from pathlib import Path
from typing import Any

from rich.console import Console

FIXTURES = Path(__file__).parent / "fixtures"
GOLDEN = Path(__file__).parent / "golden"
FIXTURE_NAMES = ("basic", "inconclusive", "no_support", "hostile")
HOSTILE = "<script>alert(1)</script>"


def fixture(name: str) -> dict[str, Any]:
    """A fresh copy of tests/fixtures/results_<name>.json."""
    return copy.deepcopy(json.loads((FIXTURES / f"results_{name}.json").read_text(encoding="utf-8")))


def write_run(run_dir: Path, results: dict[str, Any]) -> Path:
    """Write results.json into a run directory (created); returns the directory."""
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "results.json").write_text(json.dumps(results), encoding="utf-8")
    return run_dir


def fixed_console() -> Console:
    """A plain, 100-column console so rendered text is identical on every machine."""
    return Console(width=100, file=io.StringIO(), force_terminal=False, color_system=None, highlight=False)


def console_text(console: Console) -> str:
    return console.file.getvalue()  # type: ignore[attr-defined]


def assert_golden(name: str, actual: str) -> None:
    """Compare with tests/golden/<name>; PTDIAG_UPDATE_GOLDEN=1 rewrites the file instead."""
    path = GOLDEN / name
    if os.environ.get("PTDIAG_UPDATE_GOLDEN") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(actual, encoding="utf-8")
        return
    assert path.exists(), f"missing golden file {path}; create it with PTDIAG_UPDATE_GOLDEN=1"
    expected = path.read_text(encoding="utf-8")
    if actual != expected:
        diff = "".join(
            difflib.unified_diff(expected.splitlines(True), actual.splitlines(True), f"golden/{name}", "actual", n=2)
        )
        raise AssertionError(f"output differs from golden/{name} (PTDIAG_UPDATE_GOLDEN=1 to accept):\n{diff}")
