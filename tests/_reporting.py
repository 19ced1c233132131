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


def _interval(mid: float, half: float = 0.1) -> dict[str, float]:
    return {"lower": mid - half, "mid": mid, "upper": mid + half}


def remedy_rows(name: str = "lite0/last-layer", gap: float | None = 0.78) -> list[dict]:
    """A measured last-layer remedy and an inapplicable reweighting, as results.json rows."""
    from ptdiag.remedies.summary import remedy_row

    dfr = dict(name=name, method="last-layer", data="labelled-shift", variant="shift-only", base=name.split("/")[0],
               base_kind="pretrained", held_out=True, applicable=True, note="2-fold cross-fitted",
               n_shift_labelled=200)
    acc = {"ref_acc": 0.9, "shift_acc": 0.8, "in_acc": 0.82, "out_acc": 0.7}
    scored = {"er": _interval(0.05), "er_in": _interval(0.06), "er_out": None,
              "recovered": {"gap": _interval(gap) if gap is not None else None, "bias": _interval(0.7),
                            "extrapolation": None}}
    budget = [{"n_per_class": 5, "shift_acc": 0.7, "in_acc": 0.72, "out_acc": 0.6},
              {"n_per_class": 10, "shift_acc": 0.76, "in_acc": 0.78, "out_acc": 0.65}]
    reweight = dict(dfr, name="lite0/reweight", method="reweight", data="reference-reweighted",
                    variant="reference-only", applicable=False,
                    note="not applicable: reweighting cannot reach inputs the reference never shows")
    return [remedy_row(dfr, acc, budget, scored).to_dict(), remedy_row(reweight, acc, None, None).to_dict()]


def remedy_results(**kwargs) -> dict:
    """The basic fixture with `remedy_rows(**kwargs)` as its remedies."""
    results = fixture("basic")
    results["remedies"] = remedy_rows(**kwargs)
    return results
