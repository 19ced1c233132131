"""Assembling results.json and predictions.parquet from a finished run (pure reads of the run's outputs)."""

from __future__ import annotations

import base64
import io
import platform
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import timm
import torch
from PIL import Image

from ptdiag import __version__
from ptdiag._io import atomic_write
from ptdiag.engine.jobs import JobOutput
from ptdiag.engine.rundata import RunData
from ptdiag.remedies.summary import RemedyRow
from ptdiag.schema import SCHEMA_VERSION
from ptdiag.stats.atc import SCORES
from ptdiag.stats.score import ModelEval
from ptdiag.stats.support import SupportSplit


def assemble_results(config, data: RunData, scores: dict, support: SupportSplit | None, support_out: JobOutput | None,
                     evals, timings, device, remedies: list[RemedyRow]) -> dict:
    """The whole results.json, made once from finished parts (the scores already include the remedies' recoveries
    and the verdict that quotes them)."""
    pair = data.pair
    not_measured = {} if config.remedies else {"remedies_note": "remedies were not measured (--no-remedies)"}
    labelled = data.shift_labelled
    if config.remedies and labelled is not None:
        not_measured = {"remedies_note": f"remedies were not measured: they train on labelled shifted images, and "
                                         f"{int(labelled.sum())} of {labelled.size} are labelled"}

    def describe(image_set, index, labels) -> dict[str, Any]:
        counts = {pair.classes[c]: int((labels == c).sum()) for c in range(len(pair.classes))}
        return {"n": int(len(index)), "n_total": len(image_set.labels), "root": str(image_set.root),
                "classes": list(pair.classes), "fingerprint": image_set.fingerprint, "class_counts": counts,
                "n_labelled": int((labels >= 0).sum())}

    return {
        "schema_version": SCHEMA_VERSION,
        "ptdiag_version": __version__,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "config": config.to_dict(),
        "data": {
            "reference": describe(pair.reference, data.ref_index, data.reference.labels),
            "shift": describe(pair.shift, data.shift_index, data.shift.labels),
            "shift_labelled": "all" if labelled is None else ("sample" if labelled.any() else "none"),
            "split": {k: int(len(v)) for k, v in data.split.items()},
            "findings": [f.to_dict() if hasattr(f, "to_dict") else dict(vars(f)) for f in pair.findings],
            "fingerprint": data.fingerprint,
            "shift_labels_digest": data.shift_labels_digest,
        },
        **scores,
        "support": support.to_dict() if support is not None else None,
        "galleries": _galleries(data, evals, support, support_out) if support is not None else {},
        "timings": {k: round(v, 2) for k, v in timings.items()},
        "environment": {"python": platform.python_version(), "torch": torch.__version__, "timm": timm.__version__,
                        "numpy": np.__version__, "device": str(device), "platform": platform.platform(),
                        "threads": torch.get_num_threads()},
        "remedies": [row.to_dict() for row in remedies],
        **not_measured,
    }


def _galleries(data: RunData, evals: list[ModelEval], support: SupportSplit, support_out: JobOutput,
               k: int = 12) -> dict[str, list]:
    """Example lists for the report (paths are the user's files; the report reads them, never writes)."""
    pair, rho, rho_ref, in_support = data.pair, support.rho_shift, support.rho_reference, support.in_support
    base = [e.shift_correct for e in evals if e.kind == "baseline"]
    error_rate = 1.0 - np.mean(base, axis=0) if base else np.zeros(len(rho))
    if data.shift_labelled is not None:  # baselines' errors are known on labelled images only
        error_rate = np.where(data.shift_labelled, error_rate, np.nan)

    def shift_item(i: int) -> dict[str, Any]:
        j, label = data.shift_index[i], data.shift.labels[i]
        return _with_thumbnail({"path": str(pair.shift.paths[j]), "label": pair.classes[label] if label >= 0 else "",
                                "rho": float(rho[i]),
                               "baseline_error_rate": None if np.isnan(error_rate[i]) else float(error_rate[i])},
                               pair.shift.paths[j], data.shift.images, i)

    most_out = [shift_item(i) for i in np.argsort(rho)[:k]]
    candidates = np.flatnonzero(in_support)
    candidates = candidates[~np.isnan(error_rate[candidates])]
    wrong = [shift_item(i) for i in candidates[np.argsort(-error_rate[candidates], kind="stable")][:k]
             if error_rate[i] > 0.5]
    sample = support_out.arrays["sample"]
    ref_items = []
    for pos in np.argsort(rho_ref)[:k]:
        j = data.ref_index[sample[pos]]
        ref_items.append(_with_thumbnail({"path": str(pair.reference.paths[j]),
                                          "label": pair.classes[pair.reference.labels[j]], "rho": float(rho_ref[pos])},
                                         pair.reference.paths[j], data.reference.images, int(sample[pos])))
    return {"most_out_of_support": most_out, "in_support_baseline_errors": wrong,
            "most_shift_like_reference": ref_items}


def _with_thumbnail(item: dict[str, Any], source: Any, images, row: int) -> dict[str, Any]:
    """Images inside a dataset or shard (not a file the report can open) carry a PNG data URI of their decoded
    pixels, so the HTML report shows them without reading the dataset again."""
    if isinstance(source, (str, Path)):
        return item
    buffer = io.BytesIO()
    Image.fromarray(np.asarray(images[row], dtype=np.uint8)).save(buffer, format="PNG", optimize=True)
    return dict(item, thumbnail="data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii"))


def write_predictions(run_dir: Path, data: RunData, evals: list[ModelEval], support_out: JobOutput | None,
                      extra: list[pd.DataFrame] | None = None) -> None:
    """Per-example predictions (long format): one row per model × evaluated example.

    `extra` frames (the remedies' held-out predictions and reference weights) are appended; their own columns
    (`remedy_fold`, `weight`) are empty on the other rows.
    """
    pair = data.pair
    test_pos = data.split["test"]
    test_paths = [str(pair.reference.paths[data.ref_index[i]]) for i in test_pos]
    shift_paths = [str(pair.shift.paths[j]) for j in data.shift_index]
    rho = support_out.arrays["rho_shift"] if support_out is not None else np.full(len(shift_paths), np.nan)
    frames, partial = [], data.shift_labelled is not None
    for e in evals:
        for set_name, paths, labels, pred, correct, ratio, scores in (
            ("reference", test_paths, data.part("test").labels, e.ref_pred, _known(e.ref_correct, None, partial),
             np.full(len(test_paths), np.nan), e.ref_scores),
            ("shift", shift_paths, data.shift.labels, e.shift_pred,
             _known(e.shift_correct, data.shift_labelled, partial), rho, e.shift_scores),
        ):
            missing = np.full(len(paths), np.nan, dtype=np.float32)
            frames.append(pd.DataFrame({
                "model": e.name, "kind": e.kind, "seed": e.meta.get("seed"), "example_id": np.arange(len(paths)),
                "path": paths, "set": set_name, "split": "test" if set_name == "reference" else "shift",
                "label": labels, "prediction": pred, "correct": correct, "density_ratio": ratio,
                **{name: scores[row].astype(np.float32) if scores is not None else missing
                   for row, name in enumerate(SCORES)},  # max_softmax, neg_entropy
            }))
    table = pd.concat(frames + list(extra or []), ignore_index=True)
    atomic_write(run_dir / "predictions.parquet", lambda fh: table.to_parquet(fh, index=False), mode="wb")


def _known(correct: np.ndarray, labelled: np.ndarray | None, partial: bool) -> np.ndarray:
    """Correctness where the label is known, NaN elsewhere (an unlabelled image is neither right nor wrong); float
    in a run with unlabelled shifted images, so every row of the column has one type."""
    if not partial:
        return correct
    return np.asarray(correct, dtype=float) if labelled is None else np.where(labelled, correct.astype(float), np.nan)
