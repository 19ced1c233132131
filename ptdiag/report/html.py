"""The self-contained HTML report: one file, inline CSS, inline SVG plots, thumbnails as data URIs, no script.

Rendered with Jinja2 with autoescaping on, so every user string (class, file and model names) is text.
Only markup this module builds itself (the matplotlib SVG) is marked safe.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import re
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup, escape
from PIL import Image, UnidentifiedImageError

from ptdiag._io import write_text_atomic
from ptdiag.report import _format as fmt
from ptdiag.report.gate import collect_warnings

THUMBNAIL_PX = 96
GALLERIES = {
    "most_out_of_support": (
        "Most out-of-support shifted images",
        "Shifted images the domain classifier finds least like any reference image (smallest ρ).",
    ),
    "in_support_baseline_errors": (
        "In-support shifted images the baselines get wrong",
        "Shifted images that look like reference data yet most baselines misclassify: evidence of dataset bias.",
    ),
    "most_shift_like_reference": (
        "Most shift-like reference images",
        "Reference images the domain classifier mistakes most for shifted ones.",
    ),
}

# What each remedy the verdict can recommend actually is, keyed by the recommendation codes that call for it.
EXPLANATIONS = {
    "pretrain": (
        "Fine-tuning a pre-trained model",
        "Start from weights trained on a large, diverse dataset and train on your reference data: a linear probe "
        "(LP) trains only a new last layer on frozen features; full fine-tuning (FT) trains all weights; LP-FT "
        "does LP first, then FT, which tends to keep more of the pre-trained features. Pre-training helps with "
        "shifted images unlike anything in the reference data (extrapolation), not with biases of the reference "
        "data itself.",
    ),
    "reweight": (
        "Group or density-ratio reweighting",
        "Train with example weights that up-weight under-represented groups (when group labels exist) or weight "
        "reference images by an estimated density ratio p_shift/p_ref, so training resembles the shifted "
        "distribution where the two overlap.",
    ),
    "dfr": (
        "Last-layer retraining (Deep Feature Reweighting, DFR)",
        "Keep the trained feature extractor and retrain only the last layer on a small group-balanced set, "
        "removing reliance on spurious features the full training set rewards.",
    ),
    "curate": (
        "A curated, de-biased dataset",
        "Collect or relabel a small set in which the spurious cue no longer predicts the class (balanced or "
        "counterfactual examples); use it to train, fine-tune or validate. `ptdiag curate` chooses which shifted "
        "images to label from a finished run.",
    ),
    "evidence": (
        "More evidence",
        "More and more diverse from-scratch baselines (data fractions, seeds, architectures) narrow the line's "
        "interval; more shifted images narrow the per-split accuracies.",
    ),
    "label-sample": (
        "Labelling a random sample of the shifted set",
        "Effective robustness needs the from-scratch baselines' accuracy on the shifted set, which their confidence "
        "does not give. Labels on a uniform random sample (`ptdiag curate --from shift --random` lists one) measure "
        "every model without bias; `--shift-labels FILE` then estimates the rest with the models' confidence, and "
        "the intervals carry the estimate's error. Measured: 200 labels of 2,000 put shifted accuracies within "
        "about 3 points of the fully labelled run (docs/VALIDATION.md §9).",
    ),
}
# Recommendation code (ptdiag.stats.verdict_text.REMEDIES, or measured-<method>) -> the explanations it calls for.
CODE_EXPLANATIONS = {
    "pretrain": ("pretrain",), "pretrain-whole": ("pretrain",), "try-other-pretrained": ("pretrain", "curate"),
    "debias": ("reweight", "dfr", "curate"), "check-bias": ("reweight", "dfr", "curate"),
    "measured-last-layer": ("dfr",), "measured-reweight": ("reweight",),
    "more-baselines": ("evidence",), "more-shift-data": ("evidence",), "resolve-recovery": ("evidence",),
    "support-split": ("evidence",), "label-shift-sample": ("label-sample",), "label-more-shift": ("label-sample",),
}


def render_html(results: dict[str, Any], image_root: str | Path | None = None,
                curated: dict[str, list[dict[str, Any]]] | None = None) -> str:
    """The report as one HTML string. `image_root` resolves relative gallery paths (e.g. the run directory);
    `curated` (manifest name -> its rows, as `ptdiag curate` wrote them) adds one gallery per curated set."""
    env = _environment()
    context = _context(results, Path(image_root) if image_root is not None else None)
    context["galleries"] += _curated_galleries(curated or {}, Path(image_root) if image_root is not None else None)
    return env.get_template("report.html.j2").render(**context,
                                                     results_digest=report_digest(results, image_root, curated))


def write_html(results: dict[str, Any], path: str | Path, image_root: str | Path | None = None, *,
               reuse: bool = True, curated: dict[str, list[dict[str, Any]]] | None = None) -> Path:
    """Render and write the report atomically; returns the path.

    With `reuse`, a report at `path` rendered by this ptdiag version from the same results (its digest is in the
    page's head) is kept as it is: drawing the plots is most of a finished run's rerun time.
    """
    path = Path(path)
    if reuse and _rendered_from(path) == report_digest(results, image_root, curated):
        return path
    return write_text_atomic(path, render_html(results, image_root, curated))


def report_digest(results: dict[str, Any], image_root: str | Path | None,
                  curated: dict[str, list[dict[str, Any]]] | None = None) -> str:
    """What a rendered report depends on: the results, the image root, the curated sets and the ptdiag version."""
    from ptdiag import __version__

    blob = json.dumps([results, str(image_root), __version__, *([curated] if curated else [])], sort_keys=True,
                      default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


_DIGEST = re.compile(r'<meta name="ptdiag-results" content="([0-9a-f]+)">')


def _rendered_from(path: Path) -> str | None:
    """The results digest in an existing report's head, or None (no file, not ours, unreadable)."""
    try:
        with path.open(encoding="utf-8", errors="replace") as handle:
            match = _DIGEST.search(handle.read(4096))
    except OSError:
        return None
    return match.group(1) if match else None


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("ptdiag.report", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(pct=fmt.pct, points=fmt.points, interval=fmt.interval, number=fmt.number, seconds=fmt.seconds,
                       code_spans=code_spans)
    return env


_CODE_SPAN = re.compile(r"`([^`\n]+)`")


def code_spans(text: Any) -> Markup:
    """Escape ``text`` and show its `backtick` spans (flag names in the verdict's texts) as <code>."""
    escaped = str(escape(str(text)))
    return Markup(_CODE_SPAN.sub(lambda m: f"<code>{m.group(1)}</code>", escaped))


def _context(results: dict[str, Any], image_root: Path | None) -> dict[str, Any]:
    from ptdiag.report import plots, remedies_view  # matplotlib and scipy load only when a report is drawn

    plots.reset_ids()  # ids restart per report, so the same results render to the same file
    support = results.get("support")
    panels = [
        {
            "key": key,
            "title": fmt.SPLIT_LABELS[key],
            "fit": results["fit"].get(key),
            "svg": _safe(plots.line_panel(results, key)),
        }
        for key in plots.SPLITS
    ]
    verdict = results["verdict"]
    return {
        "r": results,
        "run_folder": image_root.name if image_root is not None else None,
        "verdict": verdict,
        "verdict_title": fmt.verdict_title(verdict["kind"]),
        "verdict_meaning": fmt.VERDICT_MEANINGS.get(verdict["kind"], ""),
        "key_numbers": fmt.key_numbers(results),
        "unlabelled": results["data"].get("shift_labelled") == "none",
        "warnings": collect_warnings(results),
        "class_rows": _class_rows(results["data"]),
        "panels": panels,
        "split_labels": fmt.SPLIT_LABELS,
        "support": support,
        "support_total": (support["n_in"] + support["n_out"]) if support else 0,
        "support_plots": {
            "histogram": _safe(plots.log_ratio_histogram(support)),
            "epsilon": _safe(plots.epsilon_curve(support)),
            "calibration": _safe(plots.calibration_plot(support)),
        },
        "decomposition_svg": _safe(plots.decomposition_chart(results["decomposition"])),
        "galleries": _galleries(results.get("galleries") or {}, image_root),
        "remedies": _remedies(verdict.get("recommendation_codes") or []),
        "measured_remedies": [{"row": row, "what": remedies_view.what(row), "recovered": remedies_view.recovered(row)}
                              for row in remedies_view.remedies(results)],
        "budget_svg": _safe(remedies_view.label_budget_plot(results)),
        "size_curve": dict(zip(("header", "rows"), remedies_view.size_curve_table(results), strict=True)),
        "config_json": json.dumps(results["config"], indent=2, sort_keys=True),
        "seeds": _seeds(results),
    }


def _safe(svg: str | None) -> Markup | None:
    # Only our own matplotlib output is trusted; its text is drawn as paths and comments are stripped.
    return Markup(svg) if svg else None


def _class_rows(data: dict[str, Any]) -> list[tuple[str, int | None, int | None]]:
    ref, shift = data["reference"], data["shift"]
    ref_counts, shift_counts = ref.get("class_counts") or {}, shift.get("class_counts") or {}
    names = list(dict.fromkeys([*ref["classes"], *shift["classes"]]))
    return [(name, ref_counts.get(name), shift_counts.get(name)) for name in names]


def _galleries(galleries: dict[str, Any], image_root: Path | None) -> list[dict[str, Any]]:
    out = []
    for key, items in galleries.items():
        title, description = GALLERIES.get(key, (key.replace("_", " "), ""))
        entries = []
        for item in items or []:
            path = str(item.get("path", ""))
            embedded = item.get("thumbnail")
            src = embedded if isinstance(embedded, str) and _EMBEDDED_PNG.fullmatch(embedded) else None
            entries.append({**item, "path": path, "src": src or thumbnail_data_uri(path, image_root)})
        out.append({"key": key, "title": title, "description": description, "items": entries})
    return out


CURATED_SHOWN = 60  # thumbnails per curated set (the manifest lists them all)


def _curated_galleries(curated: dict[str, list[dict[str, Any]]], image_root: Path | None) -> list[dict[str, Any]]:
    """One gallery per `ptdiag curate` manifest: the images to label (captioned with the predicted class and the
    density ratio) or the reference images kept (captioned with their label)."""
    out = []
    for name, rows in curated.items():
        to_label = any(not str(r.get("label") or "").strip() for r in rows)
        items = []
        for row in rows[:CURATED_SHOWN]:
            path = str(row.get("path", ""))
            caption = (f"predicted {row.get('predicted')}" if to_label else str(row.get("label", "")))
            rho = _float_or_none(row.get("density_ratio"))
            items.append({"path": path, "label": caption, "rho": rho, "src": thumbnail_data_uri(path, image_root)})
        what = "shifted images to label" if to_label else "reference images resampled to match the shifted set"
        more = f"; the first {CURATED_SHOWN} shown" if len(rows) > CURATED_SHOWN else ""
        out.append({"key": f"curated:{name}", "title": f"Curated set {name}",
                    "description": f"{len(rows)} {what} (ptdiag curate; each row's stratum and reason are in the "
                                   f"manifest{more}).", "items": items})
    return out


def _float_or_none(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if number == number else None  # NaN: an empty cell


# A thumbnail embedded by the analysis (images inside datasets/shards); anything else in results.json is ignored.
_EMBEDDED_PNG = re.compile(r"data:image/png;base64,[A-Za-z0-9+/]{1,400000}={0,2}")


def thumbnail_data_uri(path: str, image_root: Path | None = None, size: int = THUMBNAIL_PX) -> str | None:
    """A PNG data URI of the image at `path` shrunk to `size` px, or None when it cannot be read.

    The images are the user's files: they are only opened for reading.
    """
    candidates = [Path(path)]
    if image_root is not None and not Path(path).is_absolute():
        candidates.insert(0, image_root / path)
    for candidate in candidates:
        try:
            with Image.open(candidate) as image:
                image = image.convert("RGB")
                image.thumbnail((size, size))
                buffer = io.BytesIO()
                image.save(buffer, format="PNG", optimize=True)
        except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError):
            continue
        return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
    return None


def _remedies(codes: list[str]) -> list[tuple[str, str]]:
    """The explanations the verdict's recommendations call for (every one when none does, e.g. no-shift)."""
    keys = dict.fromkeys(key for code in codes for key in CODE_EXPLANATIONS.get(code, ()))
    return [EXPLANATIONS[key] for key in keys] or list(EXPLANATIONS.values())


def _seeds(results: dict[str, Any]) -> list[tuple[str, Any]]:
    seeds: list[tuple[str, Any]] = []
    if "seed" in results["config"]:
        seeds.append(("config", results["config"]["seed"]))
    values = sorted({m["seed"] for m in results["baselines"] if m.get("seed") is not None})
    if values:
        seeds.append(("baselines", ", ".join(str(v) for v in values)))
    for model in results["pretrained"]:  # one entry per candidate, averaged over its seeds: count them
        if model.get("n_seeds"):
            seeds.append((model["name"], f"{model['n_seeds']} fine-tuning seed(s)"))
    return seeds
