"""Matplotlib figures for the HTML report, returned as inline SVG strings that need nothing external.

Each function reads the results dict and returns sanitised SVG markup, or None when the section has no data.
Glyphs are drawn as paths (`svg.fonttype = "path"`), so no font is loaded; XML prologue, DOCTYPE, metadata,
comments and namespace declarations are removed (inline SVG in HTML5 needs none of them), and element ids
are prefixed per figure so several plots can share one page.

Drawing the fitted line and its 95 % band from the stored slope, intercept, residual SE and t* is drawing,
not analysis: the band uses the textbook half-width t*·s·sqrt(1/n + (u − ū)²/SSx) of the stats core.
"""

from __future__ import annotations

import io
import itertools
import math
import re
from collections.abc import Callable
from functools import wraps
from typing import Any

import matplotlib
import numpy as np
from matplotlib.figure import Figure
from scipy import stats

# Okabe-Ito colours: distinguishable with the common colour-vision deficiencies.
BASELINE_COLOR = "#0072B2"
PRETRAINED_COLORS = ["#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000"]
SHIFT_COLOR, REFERENCE_COLOR = "#D55E00", "#0072B2"
BIAS_COLOR, EXTRAPOLATION_COLOR = "#E69F00", "#56B4E9"

SPLITS = {
    "shift": ("shift_acc", "er", "whole shifted set"),
    "in_support": ("in_acc", "er_in", "in-support shifted images"),
    "out_of_support": ("out_acc", "er_out", "out-of-support shifted images"),
}
_PROBIT_TICKS = [0.001, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99, 0.999]
_ACC_CLIP = 1e-3  # Accuracies of exactly 0 or 1 have no probit; draw them at the edge of the axis.
_RC = {"svg.fonttype": "path", "svg.hashsalt": "ptdiag", "font.size": 9, "font.family": "DejaVu Sans"}
_figure_ids = itertools.count(1)
# Fixed margins instead of tight_layout, which costs as much as drawing the figure; labels fit these sizes.
_MARGINS = {"left": 0.16, "right": 0.97, "bottom": 0.14, "top": 0.97}


def _styled(plot: Callable[..., str | None]) -> Callable[..., str | None]:
    """Build the figure under the report's rcParams. Figures are made without pyplot: no backend, no global state."""

    @wraps(plot)
    def wrapper(*args: Any, **kwargs: Any) -> str | None:
        with matplotlib.rc_context(_RC):
            return plot(*args, **kwargs)

    return wrapper


def legend(ax: Any, **kwargs: Any) -> None:
    """A legend readable over the data: opaque white box, 8 pt text, placed where it covers least."""
    kwargs.setdefault("loc", "best")
    ax.legend(fontsize=8, frameon=True, framealpha=0.92, facecolor="white", edgecolor="#cccccc", **kwargs)


def remedy_tag(row: dict[str, Any]) -> str:
    """A short name for a remedy's point: 'DFR', 'DFR+ref' or 'reweight'."""
    if row.get("method") == "last-layer":
        return "DFR+ref" if "reference" in (row.get("variant") or "") else "DFR"
    return str(row.get("method", "remedy"))


def probit(values: Any) -> np.ndarray:
    return stats.norm.ppf(np.clip(np.asarray(values, dtype=float), _ACC_CLIP, 1 - _ACC_CLIP))


def short(text: str, limit: int = 38) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


@_styled
def line_panel(results: dict[str, Any], split: str) -> str | None:
    """Accuracy on the line in probit axes for one split: baselines, fitted line + 95 % band, pre-trained ER."""
    acc_key, er_key, label = SPLITS[split]
    fit = results["fit"].get(split)
    baselines = [b for b in results["baselines"] if b.get(acc_key) is not None]
    models = [m for m in results["pretrained"] if m.get(acc_key) is not None]
    remedies = [r for r in results.get("remedies") or [] if r.get("applicable") and r.get(acc_key) is not None
                and r.get("ref_acc") is not None]
    if fit is None and not baselines:
        return None

    fig = Figure(figsize=(4.6, 4.2))
    ax = fig.add_subplot()
    xs = [b["ref_acc"] for b in baselines] + [m["ref_acc"] for m in models] + [r["ref_acc"] for r in remedies]
    ys = [b[acc_key] for b in baselines] + [m[acc_key] for m in models] + [r[acc_key] for r in remedies]
    u_lo, u_hi = _padded(probit(xs))
    grid = np.linspace(u_lo, u_hi, 200)

    ax.plot(grid, grid, color="#999999", lw=0.8, ls=":", label="y = x (no drop)")
    y_extent = list(probit(ys))
    if fit is not None:
        y_extent += _draw_fit(ax, fit, grid, baselines)
    ax.scatter(
        probit([b["ref_acc"] for b in baselines]),
        probit([b[acc_key] for b in baselines]),
        s=18,
        color=BASELINE_COLOR,
        label=f"from-scratch baselines ({len(baselines)})",
        zorder=3,
    )
    for color, model in zip(itertools.cycle(PRETRAINED_COLORS), models, strict=False):
        y_extent += _draw_model(ax, model, acc_key, model.get(er_key), color)
    if remedies:  # measured remedies: held-out points, no ER bar
        ax.scatter(probit([r["ref_acc"] for r in remedies]), probit([r[acc_key] for r in remedies]), marker="s", s=22,
                   facecolor="none", edgecolor="#444444", lw=1.0, zorder=4,
                   label=f"remedies, held-out ({len(remedies)})")
        for r in remedies:  # each square says which remedy it is
            ax.annotate(remedy_tag(r), (probit([r["ref_acc"]])[0], probit([r[acc_key]])[0]), xytext=(4, -3),
                        textcoords="offset points", fontsize=7, color="#444444")

    v_lo, v_hi = _padded(np.asarray(y_extent))
    ax.set_xlim(u_lo, u_hi)
    ax.set_ylim(v_lo, v_hi)
    _probit_axis(ax.xaxis, u_lo, u_hi)
    _probit_axis(ax.yaxis, v_lo, v_hi)
    ax.set_xlabel("reference accuracy (probit scale)")
    ax.set_ylabel(f"accuracy on {label} (probit scale)")
    ax.grid(True, color="#dddddd", lw=0.5)
    legend(ax, loc="best")
    fig.subplots_adjust(**_MARGINS)
    return to_svg(fig)


def _draw_fit(ax: Any, fit: dict[str, Any], grid: np.ndarray, baselines: list[dict[str, Any]]) -> list[float]:
    """The fitted line (solid over the baselines' range, dashed where extrapolated) and its 95 % band."""
    line = fit["slope"] * grid + fit["intercept"]
    n = fit["n"]
    u_ref = probit([b["ref_acc"] for b in baselines]) if baselines else np.array([0.0])
    u_mean = fit.get("u_mean", float(np.mean(u_ref)))
    ssx = fit.get("ssx", float(np.sum((u_ref - np.mean(u_ref)) ** 2)))
    t_star = fit.get("t_star") or (float(stats.t.ppf(0.975, n - 2)) if n > 2 else math.nan)
    extent = list(line)
    if ssx > 0 and n > 2 and math.isfinite(t_star):
        half = t_star * fit["residual_se"] * np.sqrt(1 / n + (grid - u_mean) ** 2 / ssx)
        ax.fill_between(grid, line - half, line + half, color=BASELINE_COLOR, alpha=0.15, lw=0, label="95 % band")
    lo, hi = probit(fit["ref_range"])
    inside = (grid >= lo) & (grid <= hi)
    ax.plot(grid[inside], line[inside], color=BASELINE_COLOR, lw=1.5, label=f"fit: r² {fit['r2']:.2f}, n {n}")
    for part in (grid <= lo, grid >= hi):
        ax.plot(grid[part], line[part], color=BASELINE_COLOR, lw=1.0, ls="--")
    return extent


def _draw_model(ax: Any, model: dict[str, Any], acc_key: str, er: dict[str, float] | None, color: str) -> list[float]:
    """A pre-trained model: its point, a dotted drop from the line's prediction, and the ER interval as a bar.

    Returns the probit y values drawn, so the axis can include them.
    """
    u, acc = probit([model["ref_acc"]])[0], model[acc_key]
    label = short(model["name"])
    drawn = [float(probit([acc])[0])]
    if er is not None:
        predicted = acc - er["mid"]
        ax.plot([u, u], probit([predicted, acc]), color=color, lw=0.8, ls=":")
        # The ER interval carried onto the point: ER is acc − line, so its uncertainty is the line's.
        low, high = probit([acc - (er["mid"] - er["lower"]), acc + (er["upper"] - er["mid"])])
        ax.plot([u, u], [low, high], color=color, lw=1.8, solid_capstyle="butt")
        label += f": ER {100 * er['mid']:+.1f}"
        drawn += [float(low), float(high)]
    ax.scatter([u], probit([acc]), marker="D", s=30, color=color, edgecolor="white", lw=0.5, zorder=4, label=label)
    return drawn


def _padded(values: np.ndarray, pad: float = 0.15) -> tuple[float, float]:
    values = values[np.isfinite(values)]
    if values.size == 0:
        return -1.0, 1.0
    lo, hi = float(values.min()), float(values.max())
    span = max(hi - lo, 0.5)
    return lo - pad * span, hi + pad * span


def _probit_axis(axis: Any, lo: float, hi: float) -> None:
    """Ticks at round accuracies, labelled in %."""
    ticks = [p for p in _PROBIT_TICKS if lo <= stats.norm.ppf(p) <= hi]
    axis.set_ticks(stats.norm.ppf(ticks))
    axis.set_ticklabels([f"{100 * p:g}%" for p in ticks])


@_styled
def log_ratio_histogram(support: dict[str, Any] | None) -> str | None:
    """Histogram of log ρ for shifted and reference samples, with the ε threshold."""
    hist = (support or {}).get("log_ratio_histogram")
    if not hist or not hist.get("edges"):
        return None
    edges = np.asarray(hist["edges"], dtype=float)
    fig = Figure(figsize=(4.6, 3.2))
    ax = fig.add_subplot()
    for key, color, label in (("reference", REFERENCE_COLOR, "reference sample"), ("shift", SHIFT_COLOR, "shifted")):
        counts = np.asarray(hist.get(key) or [], dtype=float)
        if counts.size == len(edges) - 1 and counts.sum() > 0:
            # Densities, so samples of different sizes compare by shape.
            ax.stairs(counts / counts.sum() / np.diff(edges), edges, color=color, lw=1.5, label=label)
    log = math.log10 if str(hist.get("base", "e")) == "10" else math.log
    threshold = log(support["epsilon"])
    ax.axvline(threshold, color="black", lw=1, ls="--", label=f"ε = {support['epsilon']:g}")
    ax.axvspan(edges[0], threshold, color="#999999", alpha=0.12, lw=0, label="out-of-support (ρ < ε)")
    base = "log₁₀" if log is math.log10 else "ln"
    ax.set_xlabel(f"{base} ρ,  ρ = p_ref(x) / p_shift(x)")
    ax.set_ylabel("density")
    legend(ax)
    fig.subplots_adjust(**_MARGINS)
    return to_svg(fig)


@_styled
def epsilon_curve(support: dict[str, Any] | None) -> str | None:
    """Share of shifted images out-of-support as a function of ε."""
    sweep = (support or {}).get("epsilon_sweep") or []
    sweep = [row for row in sweep if row["epsilon"] > 0 and row["n_in"] + row["n_out"] > 0]
    if not sweep:
        return None
    eps = [row["epsilon"] for row in sweep]
    out_share = [100 * row["n_out"] / (row["n_in"] + row["n_out"]) for row in sweep]
    fig = Figure(figsize=(4.6, 3.2))
    ax = fig.add_subplot()
    ax.plot(eps, out_share, marker="o", ms=4, color=SHIFT_COLOR)
    ax.axvline(support["epsilon"], color="black", lw=1, ls="--", label=f"chosen ε = {support['epsilon']:g}")
    ax.set_xscale("log")
    ax.set_ylim(0, 100)
    ax.set_xlabel("ε (threshold on ρ)")
    ax.set_ylabel("out-of-support share of shifted set (%)")
    ax.grid(True, color="#dddddd", lw=0.5)
    legend(ax)
    fig.subplots_adjust(**_MARGINS)
    return to_svg(fig)


@_styled
def calibration_plot(support: dict[str, Any] | None) -> str | None:
    """Domain-classifier calibration: observed shifted fraction against mean predicted probability."""
    bins = (support or {}).get("calibration") or []
    if not bins:
        return None
    p = np.array([b["p_mean"] for b in bins], dtype=float)
    frac = np.array([b["frac"] for b in bins], dtype=float)
    fig = Figure(figsize=(3.6, 3.2))
    ax = fig.add_subplot()
    ax.plot([0, 1], [0, 1], color="#999999", lw=0.8, ls=":", label="perfect calibration")
    if all("lower" in b and "upper" in b for b in bins):
        lower = np.array([b["lower"] for b in bins], dtype=float)
        upper = np.array([b["upper"] for b in bins], dtype=float)
        yerr = np.vstack([np.clip(frac - lower, 0, None), np.clip(upper - frac, 0, None)])
        ax.errorbar(p, frac, yerr=yerr, fmt="o", ms=3, color=SHIFT_COLOR, lw=1, label="bins (95 % interval)")
    else:
        ax.plot(p, frac, "o", ms=3, color=SHIFT_COLOR, label="bins")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("mean predicted P(shift | x)")
    ax.set_ylabel("observed shifted fraction")
    legend(ax, loc="upper left")
    fig.subplots_adjust(**_MARGINS)
    return to_svg(fig)


@_styled
def decomposition_chart(decomposition: dict[str, Any]) -> str | None:
    """Bias vs extrapolation components (and the total gap), baseline line vs each pre-trained model."""
    rows = [
        row
        for row in decomposition["baseline"] + decomposition["pretrained"]
        if row.get("bias_component") is not None or row.get("extrapolation_component") is not None
    ]
    if not rows:
        return None
    # A component is None when its split is empty (π = 0): it contributes nothing to the gap, so it is drawn as 0.
    fig = Figure(figsize=(6.4, 0.9 + 0.55 * len(rows)))
    ax = fig.add_subplot()
    y = np.arange(len(rows))[::-1]
    bias = [100 * (r["bias_component"] or 0.0) for r in rows]
    extrapolation = [100 * (r["extrapolation_component"] or 0.0) for r in rows]
    ax.barh(y + 0.18, bias, height=0.34, color=BIAS_COLOR, label="bias (in-support)")
    ax.barh(y - 0.18, extrapolation, height=0.34, color=EXTRAPOLATION_COLOR, label="extrapolation (out-of-support)")
    ax.scatter([100 * r["gap"] for r in rows], y, marker="|", s=260, color="black", zorder=3, label="total gap")
    ax.axvline(0, color="black", lw=0.6)
    ax.set_yticks(y)
    ax.set_yticklabels([short(r["name"], 44) for r in rows])
    ax.set_xlabel("accuracy points lost (reference − shift)")
    ax.grid(True, axis="x", color="#dddddd", lw=0.5)
    legend(ax, loc="lower right", ncols=3, bbox_to_anchor=(1, 1))
    fig.tight_layout()
    return to_svg(fig)


def to_svg(fig: Figure) -> str:
    """Serialise a figure to inline-ready SVG (see the module docstring for what is stripped)."""
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", metadata={"Date": None})
    return sanitize_svg(buffer.getvalue(), prefix=f"f{next(_figure_ids)}-")


def reset_ids() -> None:
    """Restart figure-id numbering (so one report renders identically every time)."""
    global _figure_ids
    _figure_ids = itertools.count(1)


def sanitize_svg(svg: str, prefix: str) -> str:
    """Strip prologue, DOCTYPE, metadata, comments and xmlns declarations; prefix element ids."""
    svg = svg[svg.index("<svg") :]
    svg = re.sub(r"<metadata>.*?</metadata>", "", svg, flags=re.S)
    svg = re.sub(r"<!--.*?-->", "", svg, flags=re.S)
    svg = re.sub(r'\s+xmlns(:\w+)?="[^"]*"', "", svg)
    svg = re.sub(r'\s(width|height)="[\d.]+pt"', "", svg, count=2)
    ids = set(re.findall(r'\sid="([^"]+)"', svg))
    svg = re.sub(r'(\sid=")([^"]+)"', lambda m: f'{m.group(1)}{prefix}{m.group(2)}"', svg)
    svg = re.sub(r"#([\w.-]+)", lambda m: f"#{prefix}{m.group(1)}" if m.group(1) in ids else m.group(0), svg)
    return svg.replace("<svg", '<svg class="plot" role="img"', 1).strip()
