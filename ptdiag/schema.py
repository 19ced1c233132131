"""results.json, schema_version 2: the contract between `analyze` and `report`, `check` and CI users.

Every ER interval comes from one resampling scheme (runs, examples, seeds, support mask). `verdict` holds the kind,
its `confidence` and `stability` (share of resamples giving the same kind), `primary` and `helping_recipe`,
`decided_on` (the recipes that may carry the "helps" claim), `recipes` (each recipe's own reading) and `effects`
(each {lower, mid, upper, class}); docs/REPORTS.md describes every key and CHANGELOG.md how the file changed.

`RESULTS_SCHEMA` is a JSON Schema (draft 2020-12). Required keys are the ones documented in the README;
objects allow extra keys so the file can grow without a version bump.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema

from ptdiag.errors import ResultsError

SCHEMA_VERSION = 2

VERDICT_KINDS = ("pretraining-helps", "dataset-bias", "both", "no-shift", "inconclusive")
# The gap components `recovered` shares are keyed by, as reports and verdict texts name them.
GAP_NAMES = {"gap": "whole accuracy drop", "bias": "bias gap", "extrapolation": "extrapolation gap"}
# A share of a gap recovered is quoted only when its interval lies in this range and is at most 100 points wide;
# outside it the share divides by a gap near 0 and means nothing (e.g. "-393 % [-4661, 2677]").
QUOTABLE_SHARE = (-2.0, 3.0)
MAX_SHARE_WIDTH = 1.0


def share_is_quotable(share: dict | None) -> bool:
    """Whether a share interval ({lower, mid, upper}, fractions) is narrow and bounded enough to print or gate on."""
    if not share:
        return False
    lower, upper = share["lower"], share["upper"]
    return QUOTABLE_SHARE[0] <= lower and upper <= QUOTABLE_SHARE[1] and upper - lower <= MAX_SHARE_WIDTH


_num = {"type": "number"}
_opt_num = {"type": ["number", "null"]}
_interval = {
    "type": "object",
    "required": ["lower", "mid", "upper"],
    "properties": {"lower": _num, "mid": _num, "upper": _num},
}
_opt_interval = {"anyOf": [_interval, {"type": "null"}]}
_fit = {
    "type": "object",
    "required": ["n", "slope", "intercept", "r2", "residual_se", "ref_range"],
    "properties": {
        "n": {"type": "integer"},
        "slope": _num,
        "intercept": _num,
        "r2": _num,
        "residual_se": _num,
        "ref_range": {"type": "array", "items": _num, "minItems": 2, "maxItems": 2},
    },
}
_opt_fit = {"anyOf": [_fit, {"type": "null"}]}
_decomp_row = {
    "type": "object",
    "required": ["name", "ref_acc", "gap", "bias_component", "extrapolation_component"],
    "properties": {
        "name": {"type": "string"},
        "ref_acc": _num,
        "gap": _num,
        "bias_component": _opt_num,
        "extrapolation_component": _opt_num,
    },
}
_recovered = {
    "type": "object",
    "required": ["gap", "bias", "extrapolation"],
    "properties": {"gap": _opt_interval, "bias": _opt_interval, "extrapolation": _opt_interval},
}
# One measured remedy. `held_out`: every shifted score comes from a head / weights fitted without that
# example's label (2-fold cross-fitting). Accuracies are null when the remedy is not applicable (see `note`).
_remedy = {
    "type": "object",
    "required": ["name", "method", "data", "base", "n_shift_labelled", "held_out", "applicable", "note",
                 "ref_acc", "shift_acc", "in_acc", "out_acc", "er", "er_in", "er_out", "recovered"],
    "properties": {
        "name": {"type": "string"},
        "method": {"enum": ["last-layer", "reweight", "curated-finetune"]},
        "data": {"enum": ["labelled-shift", "reference-reweighted", "curated-shift", "random-shift"]},
        "base": {"type": "string"},
        "n_shift_labelled": {"type": "integer", "minimum": 0},
        "held_out": {"type": "boolean"},
        "applicable": {"type": "boolean"},
        "note": {"type": "string"},
        "ref_acc": _opt_num, "shift_acc": _opt_num, "in_acc": _opt_num, "out_acc": _opt_num,
        "er": _opt_interval, "er_in": _opt_interval, "er_out": _opt_interval,
        "recovered": _recovered,
        "label_budget": {
            "type": "array",
            "items": {"type": "object", "required": ["n_per_class", "shift_acc", "in_acc", "out_acc"],
                      "properties": {"n_per_class": {"type": "integer", "minimum": 1}, "shift_acc": _opt_num,
                                     "in_acc": _opt_num, "out_acc": _opt_num}},
        },
        "judged_by": {"enum": ["in_acc", "shift_acc"]},
        "size_curve": {
            "type": "array",
            "items": {"type": "object", "required": ["n_images", "shift_acc", "in_acc", "out_acc"],
                      "properties": {"n_images": {"type": "integer", "minimum": 1}, "shift_acc": _opt_num,
                                     "in_acc": _opt_num, "out_acc": _opt_num, "interval": _opt_interval,
                                     "minus_random": _opt_interval}},
        },
    },
    "allOf": [{"if": {"properties": {"method": {"const": "last-layer"}}}, "then": {"required": ["label_budget"]}},
              {"if": {"properties": {"method": {"const": "curated-finetune"}}}, "then": {"required": ["size_curve"]}}],
}

RESULTS_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "ptdiag results.json",
    "type": "object",
    "required": [
        "schema_version", "ptdiag_version", "created", "config", "data", "baselines", "pretrained",
        "fit", "support", "decomposition", "verdict", "timings", "environment",
    ],
    "properties": {
        "schema_version": {"const": SCHEMA_VERSION},
        "ptdiag_version": {"type": "string"},
        "created": {"type": "string"},
        "config": {"type": "object"},
        "data": {
            "type": "object",
            "required": ["reference", "shift", "split"],
            "properties": {
                "reference": {"$ref": "#/$defs/dataset"},
                "shift": {"$ref": "#/$defs/dataset"},
                "split": {
                    "type": "object",
                    "required": ["train", "val", "test"],
                    "properties": {"train": {"type": "integer"}, "val": {"type": "integer"},
                                   "test": {"type": "integer"}},
                },
            },
        },
        "baselines": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name", "ref_acc", "shift_acc", "in_acc", "out_acc", "epoch", "fraction", "arch"],
                "properties": {
                    "name": {"type": "string"}, "ref_acc": _num, "shift_acc": _num,
                    "in_acc": _opt_num, "out_acc": _opt_num, "epoch": {"type": "integer"},
                    "fraction": _num, "arch": {"type": "string"},
                },
            },
        },
        "pretrained": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name", "strategy", "lr", "ref_acc", "shift_acc", "in_acc", "out_acc",
                             "er", "er_in", "er_out"],
                "properties": {
                    "name": {"type": "string"}, "strategy": {"type": "string"}, "lr": _opt_num,
                    "ref_acc": _num, "shift_acc": _num, "in_acc": _opt_num, "out_acc": _opt_num,
                    "er": _opt_interval, "er_in": _opt_interval, "er_out": _opt_interval,
                    "er_out_matched": _opt_interval, "effects": {"type": "object"}, "decided": {"type": "boolean"},
                },
            },
        },
        "fit": {
            "type": "object",
            "required": ["shift", "in_support", "out_of_support"],
            "properties": {"shift": _opt_fit, "in_support": _opt_fit, "out_of_support": _opt_fit},
        },
        "support": {
            "anyOf": [
                {"type": "null"},
                {
                    "type": "object",
                    "required": ["epsilon", "n_in", "n_out", "domain_auc", "temperature", "ece", "epsilon_sweep"],
                    "properties": {
                        "epsilon": _num, "n_in": {"type": "integer"}, "n_out": {"type": "integer"},
                        "domain_auc": _num, "temperature": _num, "ece": _num,
                        "epsilon_sweep": {
                            "type": "array",
                            "items": {"type": "object", "required": ["epsilon", "n_in", "n_out"]},
                        },
                    },
                },
            ]
        },
        "decomposition": {
            "type": "object",
            "required": ["baseline", "pretrained"],
            "properties": {
                "baseline": {"type": "array", "items": _decomp_row},
                "pretrained": {"type": "array", "items": _decomp_row},
            },
        },
        "verdict": {
            "type": "object",
            "required": ["kind", "confidence", "reasons", "recommendations"],
            "properties": {
                "kind": {"enum": list(VERDICT_KINDS)},
                "confidence": {"enum": ["low", "medium", "high"]},
                "stability": _opt_num,
                "decided_on": {"type": "array", "items": {"type": "string"}},
                "helping_recipe": {"type": ["string", "null"]},
                "equivalence_margin": _opt_num,
                "recommendation_codes": {"type": "array", "items": {"type": "string"}},
                "recipes": {"type": "array", "items": {"type": "object", "required": ["name", "kind", "classes"]}},
                "effects": {"type": "object"},
                "reasons": {"type": "array", "items": {"type": "string"}},
                "recommendations": {"type": "array", "items": {"type": "string"}},
            },
        },
        "remedies": {"type": "array", "items": _remedy},
        "timings": {"type": "object", "additionalProperties": _num},
        "environment": {
            "type": "object",
            "required": ["python", "torch", "timm", "device"],
        },
    },
    "$defs": {
        "dataset": {
            "type": "object",
            "required": ["n", "classes", "fingerprint"],
            "properties": {
                "n": {"type": "integer"},
                "classes": {"type": "array", "items": {"type": "string"}},
                "fingerprint": {"type": "string"},
            },
        }
    },
}


def validate_results(results: Any, source: str = "results") -> dict[str, Any]:
    """Check a results dict against the current schema_version; raise ResultsError naming the first problem."""
    if not isinstance(results, dict):
        raise ResultsError(f"{source}: expected a JSON object at top level")
    version = results.get("schema_version")
    if version != SCHEMA_VERSION:
        raise ResultsError(
            f"{source}: schema_version {version!r} is not supported (this ptdiag reads {SCHEMA_VERSION})",
            hint="re-run `ptdiag analyze` with this version of ptdiag",
        )
    validator = jsonschema.Draft202012Validator(RESULTS_SCHEMA)
    error = jsonschema.exceptions.best_match(validator.iter_errors(results))
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "(top level)"
        raise ResultsError(f"{source}: invalid results at {where}: {error.message}")
    return results


def load_results(path: str | Path) -> dict[str, Any]:
    """Read and validate a results.json file (or a run directory containing one)."""
    path = Path(path)
    if path.is_dir():
        path = path / "results.json"
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ResultsError(f"{path}: no such results file", hint="run `ptdiag analyze` first") from None
    except OSError as exc:
        raise ResultsError(f"{path}: cannot read ({exc.strerror})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ResultsError(f"{path}: not valid JSON (line {exc.lineno}: {exc.msg})") from None
    return validate_results(data, source=str(path))
