"""Find the results.json a command should read: a run directory, a results.json path, or the latest run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ptdiag.errors import ResultsError
from ptdiag.schema import load_results

DEFAULT_RUNS_DIR = Path("ptdiag-runs")
RESULTS_NAME = "results.json"
# Run dirs are ptdiag-runs/<timestamp>-<name>/ or, for the demo, ptdiag-runs/demo/<scenario>/.
_MAX_DEPTH = 3


def latest_run(runs_dir: str | Path = DEFAULT_RUNS_DIR) -> Path:
    """The results.json most recently written under `runs_dir` (searched a few levels deep).

    Raises:
        ResultsError: when `runs_dir` holds no results.json.
    """
    runs_dir = Path(runs_dir)
    candidates = [
        path
        for depth in range(1, _MAX_DEPTH + 1)
        for path in runs_dir.glob("/".join(["*"] * depth) + "/" + RESULTS_NAME)
        if path.is_file()
    ]
    if not candidates:
        raise ResultsError(
            f"{runs_dir}/: no run with a {RESULTS_NAME} found",
            hint="pass a run directory or results.json, or run `ptdiag analyze` first",
        )
    # Newest by modification time; the path breaks ties so the choice is deterministic.
    return max(candidates, key=lambda p: (p.stat().st_mtime, str(p)))


def locate_results(run: str | Path | None = None, runs_dir: str | Path = DEFAULT_RUNS_DIR) -> Path:
    """Resolve RUN to a results.json path: None means the latest run under `runs_dir`.

    Raises:
        ResultsError: when RUN does not exist or its directory has no results.json.
    """
    if run is None:
        return latest_run(runs_dir)
    path = Path(run)
    if path.is_dir():
        path = path / RESULTS_NAME
        if not path.is_file():
            raise ResultsError(f"{path}: no such results file", hint="is this a ptdiag run directory?")
        return path
    if not path.exists():
        raise ResultsError(f"{path}: no such run directory or results file")
    return path


def run_containing(path: str | Path) -> Path | None:
    """The run folder (one holding a results.json) that ``path`` lies in, if any: ``RUN/out.html`` means RUN."""
    folder = Path(path).expanduser().absolute().parent
    for candidate in (folder, *folder.parents):
        if (candidate / RESULTS_NAME).is_file():
            return candidate
    return None


def load_run(run: str | Path | None = None, runs_dir: str | Path = DEFAULT_RUNS_DIR) -> tuple[Path, dict[str, Any]]:
    """Locate and load a run's results (validated against the schema); returns (results path, results)."""
    path = locate_results(run, runs_dir)
    return path, load_results(path)


def read_curated(run_dir: str | Path) -> dict[str, list[dict[str, Any]]]:
    """The `ptdiag curate` manifests in a run folder (`curated-*.csv`), by file name; unreadable ones are skipped."""
    import csv

    out: dict[str, list[dict[str, Any]]] = {}
    for path in sorted(Path(run_dir).glob("curated-*.csv")):
        try:
            with open(path, newline="", encoding="utf-8") as fh:
                out[path.name] = list(csv.DictReader(fh))
        except (OSError, UnicodeDecodeError, csv.Error):
            continue
    return out
