"""Run directories.

A run directory holds config.json, split.json, jobs/, predictions.parquet, results.json and ptdiag.log. Without
`--out`, rerunning the same command finds the run with the same resolved config and resumes it.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path

from ptdiag.config import AnalyzeConfig, result_identity

RUNS_ROOT = Path("ptdiag-runs")


def default_name(config: AnalyzeConfig) -> str:
    name = config.name or f"{Path(config.train).resolve().name}-vs-{Path(config.shift).resolve().name}"
    return re.sub(r"[^\w.-]+", "_", name).strip("_") or "run"  # \w keeps letters of every script readable


def resolve_run_dir(config: AnalyzeConfig, root: Path = RUNS_ROOT) -> tuple[Path, bool]:
    """(run dir, resumed?): `--out` if given, else the newest run with the same config, else a new timestamped one."""
    if config.out:
        out = Path(config.out)
        return out, (out / "config.json").exists()
    wanted = result_identity(config.to_dict())
    if root.is_dir():
        for candidate in sorted(root.iterdir(), reverse=True):
            saved = candidate / "config.json"
            try:
                if saved.exists() and result_identity(json.loads(saved.read_text())) == wanted:
                    return candidate, True
            except (ValueError, OSError):
                continue
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return root / f"{stamp}-{default_name(config)}", False
