"""`analyze`: train and evaluate everything the method needs on the user's data, then score it.

Stages: ingest → decode → baselines (from scratch) → features (per pre-trained backbone) → linear probe →
fine-tunes (FT / LP-FT, LR chosen on the reference validation split) → support split → remedies (and, with
--curated-sizes, fine-tunes on curated shifted images) → statistics → results.json.
Each unit of work is a job (`ptdiag.engine.jobs`), so a rerun skips what is finished and an interrupted run resumes.
A rerun of a finished analysis (same config, same data) returns the stored results without importing torch: the
stages live in `ptdiag.engine.compute`, imported only when something has to be computed.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

from ptdiag import __version__
from ptdiag._io import write_json_atomic
from ptdiag.config import AnalyzeConfig, result_identity
from ptdiag.engine.rundata import Progress, RunData, prepare_data
from ptdiag.errors import PtdiagError
from ptdiag.schema import validate_results

log = logging.getLogger("ptdiag")


def analyze(config: AnalyzeConfig, run_dir: Path, progress: Progress | None = None) -> dict[str, Any]:
    """Run (or resume) the whole analysis in `run_dir`; return the validated results dict."""
    progress = progress or (lambda event, payload: None)
    run_dir.mkdir(parents=True, exist_ok=True)
    write_json_atomic(run_dir / "config.json", config.to_dict())
    timings: dict[str, float] = {}
    clock = time.perf_counter()
    data = prepare_data(config, run_dir, progress)
    timings["ingest"] = time.perf_counter() - clock
    finished = _finished_results(run_dir, config, data)
    if finished is not None:
        return finished  # same config, same data: the stored results are the answer (nothing is recomputed)
    from ptdiag.engine.compute import run_stages  # torch, timm, sklearn: only when something is computed

    return run_stages(config, run_dir, data, progress, timings, clock)


def _finished_results(run_dir: Path, config: AnalyzeConfig, data: RunData) -> dict[str, Any] | None:
    """The run's results.json when it was made from this config (gate aside) and this data, else None."""
    path = run_dir / "results.json"
    if not path.exists():
        return None
    try:
        old = validate_results(json.loads(path.read_text(encoding="utf-8")), source=str(path))
    except (ValueError, PtdiagError):
        return None
    same_config = result_identity(old["config"]) == result_identity(config.to_dict())
    same_data = (old["data"].get("fingerprint") == data.fingerprint
                 and old["data"].get("shift_labels_digest") == data.shift_labels_digest)  # e.g. more --shift-labels
    return old if same_config and same_data and old["ptdiag_version"] == __version__ else None
