"""One resampling scheme for every interval the verdict uses (vectorised numpy).

Each replicate draws, at once:

* baseline training runs with replacement, as clusters (all checkpoints of a run share the run's weight);
* reference-test examples and shifted examples with replacement, *paired* across models (one multiset per set,
  used for every model, so shared difficulty cancels as in the point estimate); the baselines take only the
  shared part of that redraw, since their own binomial noise is already in the run-to-run scatter;
* fine-tuning seeds of each candidate with replacement (evaluations with the same name are seeds);
* one of the support split's fold-assignment masks (so the mask's variation enters the intervals).

The lines are refitted per replicate (weighted least squares with the run weights, slope corrected for the
binomial noise in the baselines' reference accuracies), and every quantity the verdict reads is recomputed:
ER / ER_in / ER_out, the baseline-line gap and its bias/extrapolation components at each candidate's reference
accuracy, what the candidate leaves and recovers of each, and the pooled reference-to-shift gap.

Row 0 of every array is the point estimate (all weights 1, the point mask): the same code computes both. The same
code also computes the leave-one-run-out estimates (the jackknife over training runs), which widen the intervals
when there are few runs (`Replicates.interval`, `effects.small_cluster_factor`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import stats

from ptdiag.stats.decompose import components
from ptdiag.stats.effects import percentile_interval, recentred, small_cluster_factor
from ptdiag.stats.intervals import Interval
from ptdiag.stats.line import inverse_transform, transform

# Below this reliability (share of the baselines' reference-accuracy spread that is not binomial noise) the
# errors-in-x correction is capped: the slope is then poorly determined anyway and a check says so.
MIN_RELIABILITY = 0.5
_CHUNK_ENTRIES = 3_000_000


@dataclass(frozen=True)
class Design:
    """What is resampled.

    Attributes:
        base_ref, base_shift: per-example correctness of the baseline checkpoints (B × n_ref, B × n_shift).
        run_index: training run of each baseline checkpoint (B,), ints in [0, n_runs).
        seed_ref, seed_shift: per-example correctness of every seed of every group (S × n_ref, S × n_shift).
        group_index: group (candidate or remedy) of each seed row (S,), ints in [0, n_groups).
        pooled: groups that enter the pooled gap (pre-trained candidates, not remedies) (n_groups,) bool.
        masks: in-support masks (M × n_shift): row 0 the point mask, further rows the fold-assignment draws;
            None without a support split.
        matched: out-of-support difficulty-matching weights per mask row (M × n_shift) at the point (every run
            once; the average of the two folds' weights), or None; reported, and redrawn in every replicate.
        matched_fold: cross-fitting fold (0 or 1) of each baseline checkpoint, by training run (B,); None without
            matching. Fold f's difficulty weights the other fold's checkpoints (never their own) and, averaged with
            the other fold's, every candidate.
        scale: "probit" or "logit".
    """

    base_ref: np.ndarray
    base_shift: np.ndarray
    run_index: np.ndarray
    seed_ref: np.ndarray
    seed_shift: np.ndarray
    group_index: np.ndarray
    pooled: np.ndarray
    masks: np.ndarray | None = None
    matched: np.ndarray | None = None
    matched_fold: np.ndarray | None = None
    scale: str = "probit"

    @property
    def n_groups(self) -> int:
        return int(self.pooled.size)


@dataclass
class Replicates:
    """Resampled quantities: `values[name]` is (1 + n_boot) × n_groups, `pooled_gap` (1 + n_boot,); row 0 = point.

    `lines[split]` holds (slope, intercept, reliability) per replicate; `residual_sd[split]` the point fit's
    weighted residual SD (transformed units). `jackknife`, `jackknife_pooled_gap` and `jackknife_lines` hold the
    same quantities with one training run left out at a time (R rows; empty with a single run). Read intervals
    through `interval` / `pooled_interval` / `slope_interval`: they carry the small-cluster correction.
    """

    values: dict[str, np.ndarray]
    pooled_gap: np.ndarray
    lines: dict[str, np.ndarray]
    residual_sd: dict[str, float]
    jackknife: dict[str, np.ndarray] = field(default_factory=dict)
    jackknife_pooled_gap: np.ndarray | None = None
    jackknife_lines: dict[str, np.ndarray] = field(default_factory=dict)
    run_share: dict[str, float] = field(default_factory=dict)

    def _stretch(self, column: np.ndarray, jackknife: np.ndarray | None, split: str, confidence: float) -> float:
        """Small-cluster stretch of one replicate column read against `split`'s line (1 with a single run)."""
        return small_cluster_factor(column, jackknife, confidence, self.run_share.get(split, 1.0))

    def factor(self, name: str, g: int, confidence: float) -> float:
        """Small-cluster stretch of quantity `name` of group g at this level."""
        jack = self.jackknife.get(name)
        return self._stretch(self.values[name][:, g], None if jack is None else jack[:, g], line_of(name), confidence)

    def interval(self, name: str, g: int, confidence: float) -> Interval | None:
        """Percentile interval of quantity `name` of group g, re-centred and corrected for few runs."""
        return percentile_interval(self.values[name][:, g], confidence, self.factor(name, g, confidence))

    def pooled_interval(self, confidence: float) -> Interval | None:
        factor = self._stretch(self.pooled_gap, self.jackknife_pooled_gap, "shift", confidence)
        return percentile_interval(self.pooled_gap, confidence, factor)

    def slope_interval(self, split: str, confidence: float) -> Interval | None:
        jack = self.jackknife_lines.get(split)
        column = self.lines[split][:, 0]
        return percentile_interval(column, confidence,
                                   self._stretch(column, None if jack is None else jack[:, 0], split, confidence))

    def spread(self, name: str, g: int, confidence: float) -> np.ndarray:
        """Replicates of `name` for group g re-centred on the point and stretched like its interval at this
        level (what the verdict's stability and the prediction band read)."""
        return recentred(self.values[name][:, g], self.factor(name, g, confidence))

    def pooled_spread(self, confidence: float) -> np.ndarray:
        return recentred(self.pooled_gap, self._stretch(self.pooled_gap, self.jackknife_pooled_gap, "shift",
                                                        confidence))


def resample(design: Design, n_boot: int, seed: int = 0, jackknife: bool = True) -> Replicates:
    """Point estimate (row 0) plus `n_boot` replicates of every quantity the verdict uses, and (`jackknife`) the
    leave-one-run-out estimates that widen the intervals for few runs."""
    rng = np.random.default_rng(seed)
    n_ref, n_shift = design.base_ref.shape[1], design.base_shift.shape[1]
    cov_u = _reference_noise(design.base_ref, design.scale)
    total = 1 + n_boot
    chunk = max(1, _CHUNK_ENTRIES // max(n_ref, n_shift))
    parts: list[tuple[dict[str, np.ndarray], np.ndarray, dict[str, np.ndarray]]] = []
    for start in range(0, total, chunk):
        b = min(chunk, total - start)
        parts.append(_chunk(design, cov_u, _draw(rng, design, b, n_ref, n_shift, point=start == 0)))
    values = {k: np.vstack([p[0][k] for p in parts]) for k in parts[0][0]}
    lines = {k: np.vstack([p[2][k] for p in parts]) for k in parts[0][2]}
    residuals = {split: _residuals(design, split) for split in lines}
    residual_sd = {split: _residual_sd(res) for split, res in residuals.items()}
    reps = Replicates(values, np.concatenate([p[1] for p in parts]), lines, residual_sd)
    n_runs = int(design.run_index.max()) + 1
    if jackknife and n_runs >= 2:
        jack_values, jack_gap, jack_lines = _chunk(design, cov_u, _leave_one_run_out(design, n_runs, n_ref, n_shift))
        reps.jackknife, reps.jackknife_pooled_gap, reps.jackknife_lines = jack_values, jack_gap, jack_lines
        reps.run_share = {split: run_heterogeneity(res, design.run_index) for split, res in residuals.items()}
    return reps


def line_of(name: str) -> str:
    """The baseline line (split) a resampled quantity is read against: its name says which."""
    if "out_matched" in name:
        return "out_matched"
    if "out_of_support" in name or "extrapolation" in name:
        return "out_of_support"
    if "in_support" in name or "bias" in name:
        return "in_support"
    return "shift"


def matching_weights(difficulty: np.ndarray, in_support: np.ndarray, bins: int = 10) -> np.ndarray:
    """Method §4.7, row by row: weights p_in(d)/p_out(d) on out-of-support examples (0 in-support), d an example's
    difficulty (share of baselines wrong), from difficulties and in-support masks (b × n) -> weights (b × n).

    Re-weighted, the out-of-support examples' difficulty histogram matches the in-support split's (all zero when
    they share no difficulty band, or a split is empty).
    """
    b = difficulty.shape[0]
    mask = np.asarray(in_support, dtype=bool)
    edges = np.linspace(0.0, 1.0, bins + 1)
    level = np.clip(np.digitize(difficulty, edges[1:-1]), 0, bins - 1)
    cell = level + bins * np.arange(b)[:, None]
    with np.errstate(invalid="ignore", divide="ignore"):
        p_in = np.bincount(cell[mask], minlength=b * bins).reshape(b, bins) / mask.sum(axis=1, keepdims=True)
        p_out = np.bincount(cell[~mask], minlength=b * bins).reshape(b, bins) / (~mask).sum(axis=1, keepdims=True)
        ratio = np.where(p_out > 0, p_in / p_out, 0.0)
    return np.where(mask, 0.0, np.take_along_axis(np.nan_to_num(ratio), level, axis=1))


def fold_matching_weights(base_shift: np.ndarray, fold: np.ndarray, run_weights: np.ndarray,
                          in_support: np.ndarray) -> list[np.ndarray]:
    """Per cross-fitting fold, the matching weights (b × n) from that fold's checkpoints' difficulty, with the
    replicate's run multiplicities (b × B); a replicate that drew none of a fold's runs uses every checkpoint."""
    wrong = 1.0 - np.asarray(base_shift, dtype=float)
    every = run_weights @ wrong / np.maximum(run_weights.sum(axis=1, keepdims=True), 1e-12)
    out = []
    for f in (0, 1):
        sel = fold == f
        total = run_weights[:, sel].sum(axis=1, keepdims=True)
        difficulty = np.where(total > 0, run_weights[:, sel] @ wrong[sel] / np.maximum(total, 1e-12), every)
        out.append(matching_weights(difficulty, in_support))
    return out


# --- draws -----------------------------------------------------------------------------------------------------


@dataclass
class _Draw:
    ref: np.ndarray  # b × n_ref example multiplicities
    shift: np.ndarray  # b × n_shift
    runs: np.ndarray  # b × B checkpoint weights (run multiplicities)
    seeds: np.ndarray  # b × S seed weights, summing to 1 within each group
    mask_row: np.ndarray  # b mask-row indices


def _draw(rng: np.random.Generator, d: Design, b: int, n_ref: int, n_shift: int, point: bool) -> _Draw:
    n_runs = int(d.run_index.max()) + 1
    runs = _counts(rng, b, n_runs)[:, d.run_index]
    seeds = np.zeros((b, d.group_index.size))
    for g in range(d.n_groups):
        idx = np.flatnonzero(d.group_index == g)
        seeds[:, idx] = _counts(rng, b, idx.size) / idx.size
    n_masks = 0 if d.masks is None else d.masks.shape[0]
    mask_row = rng.integers(1, n_masks, size=b) if n_masks > 1 else np.zeros(b, dtype=int)
    draw = _Draw(_counts(rng, b, n_ref), _counts(rng, b, n_shift), runs, seeds, mask_row)
    if point:  # row 0: the data as observed
        _observed(draw, d, slice(0, 1))
    return draw


def _observed(draw: _Draw, d: Design, rows: slice) -> None:
    """Set `rows` of a draw to the data as observed: every example, run and seed once, the point mask."""
    draw.ref[rows], draw.shift[rows], draw.runs[rows], draw.mask_row[rows] = 1.0, 1.0, 1.0, 0
    for g in range(d.n_groups):
        idx = d.group_index == g
        draw.seeds[rows, idx] = 1.0 / idx.sum()


def _leave_one_run_out(d: Design, n_runs: int, n_ref: int, n_shift: int) -> _Draw:
    """R rows: the observed data with training run r's checkpoints left out of the baselines in row r."""
    draw = _Draw(np.ones((n_runs, n_ref)), np.ones((n_runs, n_shift)), np.ones((n_runs, d.run_index.size)),
                 np.zeros((n_runs, d.group_index.size)), np.zeros(n_runs, dtype=int))
    _observed(draw, d, slice(None))
    draw.runs = (d.run_index[None, :] != np.arange(n_runs)[:, None]).astype(float)
    return draw


def _counts(rng: np.random.Generator, b: int, n: int) -> np.ndarray:
    """b rows of multiplicities of n items drawn with replacement (each row sums to n)."""
    idx = rng.integers(0, n, size=(b, n)) + (np.arange(b) * n)[:, None]
    return np.bincount(idx.ravel(), minlength=b * n).reshape(b, n).astype(float)


# --- one chunk of replicates -----------------------------------------------------------------------------------


def _chunk(d: Design, cov_u: np.ndarray, w: _Draw) -> tuple[dict[str, np.ndarray], np.ndarray, dict[str, np.ndarray]]:
    n_base = d.base_ref.shape[0]
    models_ref = np.vstack([d.base_ref, d.seed_ref])
    models_shift = np.vstack([d.base_shift, d.seed_shift])
    scatter = _noise_in_scatter(d)
    acc_ref = _shared_only(w.ref @ models_ref.T, models_ref.sum(axis=1)[None, :], scatter, n_base) / d.base_ref.shape[1]
    weights = {"shift": w.shift}
    fixed = {"shift": np.ones_like(w.shift)}  # the same splits with every example once (no example resampling)
    pi_in = np.full(w.shift.shape[0], np.nan)
    if d.masks is not None:
        masks = d.masks[w.mask_row].astype(float)
        weights["in_support"], fixed["in_support"] = w.shift * masks, masks
        weights["out_of_support"], fixed["out_of_support"] = w.shift * (1.0 - masks), 1.0 - masks
        pi_in = weights["in_support"].sum(axis=1) / w.shift.sum(axis=1)
    group = np.zeros((d.group_index.size, d.n_groups))
    group[np.arange(d.group_index.size), d.group_index] = 1.0
    factors = _seed_factors(d)
    ref_b, ref_g = acc_ref[:, :n_base], _seed_average(acc_ref[:, n_base:], w.seeds, group, factors["ref"])
    n_ref = d.base_ref.shape[1]
    out: dict[str, np.ndarray] = {"ref": ref_g, "pi_in": np.repeat(pi_in[:, None], d.n_groups, axis=1)}
    lines: dict[str, np.ndarray] = {}
    for split, acc_y, size in _split_accuracies(d, w, weights, fixed, models_shift, scatter, n_base):
        y_b, y_g = acc_y[:, :n_base], _seed_average(acc_y[:, n_base:], w.seeds, group, factors[split])
        if split == "shift":
            shift_b = y_b
        slope, intercept, reliability = _weighted_line(ref_b, y_b, w.runs, cov_u, d.scale, n_ref, size)
        lines[split] = np.column_stack([slope, intercept, reliability])
        u_g = transform(ref_g, d.scale, n_ref)  # type: ignore[arg-type]
        pred = inverse_transform(slope[:, None] * u_g + intercept[:, None], d.scale)  # type: ignore[arg-type]
        out[f"acc_{split}"], out[f"pred_{split}"], out[f"er_{split}"] = y_g, pred, y_g - pred
    components(out, d.masks is not None)
    return out, _pooled_gap(ref_b, shift_b, out, w, d), lines


def _split_accuracies(d: Design, w: _Draw, weights: dict[str, np.ndarray], fixed: dict[str, np.ndarray],
                      models_shift: np.ndarray, scatter: np.ndarray, n_base: int):
    """(split, accuracy of every model per replicate, example weight per replicate) for each shifted split; the
    difficulty-matched split cross-fitted over two folds of runs, its weights redrawn in every replicate."""
    def accuracy(wy: np.ndarray, fix: np.ndarray) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return _shared_only(wy @ models_shift.T / wy.sum(axis=1, keepdims=True),
                                fix @ models_shift.T / fix.sum(axis=1, keepdims=True), scatter, n_base)

    for split, wy in weights.items():
        yield split, accuracy(wy, fixed[split]), wy.sum(axis=1, keepdims=True)
    if d.matched is None or d.matched_fold is None or d.masks is None:
        return
    folds = fold_matching_weights(d.base_shift, d.matched_fold, w.runs, d.masks[w.mask_row])
    acc = [accuracy(w.shift * W, W) for W in folds]
    out = 0.5 * (acc[0] + acc[1])  # candidates: both folds' weights
    # A baseline checkpoint is weighted by the other fold's difficulty, never by its own errors.
    out[:, :n_base] = np.where(d.matched_fold[None, :] == 0, acc[1][:, :n_base], acc[0][:, :n_base])
    yield "out_matched", out, 0.5 * sum((w.shift * W).sum(axis=1, keepdims=True) for W in folds)


def _seed_average(acc: np.ndarray, weights: np.ndarray, group: np.ndarray, factor: np.ndarray) -> np.ndarray:
    """Seed-weighted accuracy per group; the seed-resampling deviation is scaled by `factor` (see _seed_factors)."""
    k = group.sum(axis=0)
    uniform = (acc / k[np.argmax(group, axis=1)]) @ group
    return uniform + ((acc * weights) @ group - uniform) * factor


def _seed_factors(d: Design) -> dict[str, np.ndarray]:
    """Per split and group: the factor that makes the seed resampling carry only the *training* part of the seed
    scatter, at its unbiased size.

    The observed between-seed variance s² holds the true seed effect plus each seed's own binomial noise σ², which
    the example resampling already redraws; resampling k seeds also shrinks s²/k by (k − 1)/k. Method of moments:
    f² = max(s² − σ², 0)/s² · k/(k − 1), with σ² = mean over examples of the across-seed variance of correctness / n.
    """
    splits = {"ref": (d.seed_ref, None)}
    shift_masks = {"shift": np.ones(d.seed_shift.shape[1], bool)}
    if d.masks is not None:
        shift_masks |= {"in_support": d.masks[0], "out_of_support": ~d.masks[0], "out_matched": ~d.masks[0]}
    splits |= {name: (d.seed_shift[:, m], None) for name, m in shift_masks.items()}
    out = {}
    for name, (x, _) in splits.items():
        factors = np.zeros(d.n_groups)
        for g in range(d.n_groups):
            rows = x[d.group_index == g]
            k = rows.shape[0]
            if k < 2 or rows.shape[1] == 0:
                continue
            s2 = rows.mean(axis=1).var(ddof=1)
            sigma2 = rows.var(axis=0, ddof=1).mean() / rows.shape[1]
            factors[g] = np.sqrt(max(s2 - sigma2, 0.0) / s2 * k / (k - 1)) if s2 > 0 else 0.0
        out[name] = factors
    return out


def _noise_in_scatter(d: Design) -> np.ndarray:
    """Model columns whose own binomial noise is already in a resampled scatter: the baselines (runs)."""
    # Candidate seeds keep the full example resample: with ~3 seeds their scatter is too unstable an estimate of
    # their binomial noise (measured: ER_out coverage 86 % on a flat line), so that part is counted from examples.
    return np.r_[np.ones(d.base_ref.shape[0], bool), np.zeros(d.group_index.size, bool)]


def _shared_only(resampled: np.ndarray, observed: np.ndarray, scatter: np.ndarray, n_base: int) -> np.ndarray:
    """Columns in `scatter` keep their observed accuracy plus only the *shared* effect of the example resampling.

    A baseline's own binomial noise is already part of the run-to-run scatter the run resampling redraws (a
    candidate seed's, of the seed-to-seed scatter); redrawing it through the examples again counts it twice
    (measured in the simulator: intervals ~1.5x too wide, coverage ~100 %). The shared part (which examples were
    drawn) moves every model alike and moves the line with the candidates: those columns get the mean shift of
    the baselines. Single-seed candidates keep the full resample (nothing else carries their own noise).
    """
    out = resampled.copy()
    delta = (resampled - observed)[:, :n_base].mean(axis=1, keepdims=True)
    out[:, scatter] = observed[:, scatter] + delta
    return out


def _weighted_line(u_acc: np.ndarray, v_acc: np.ndarray, w: np.ndarray, cov_u: np.ndarray, scale: str, n_ref: int,
                   n_y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Weighted OLS per row, slope divided by the reliability of u (binomial noise in x removed, capped)."""
    u = transform(u_acc, scale, n_ref)  # type: ignore[arg-type]
    v = transform(v_acc, scale, np.maximum(n_y, 1))  # type: ignore[arg-type]
    total = w.sum(axis=1)
    u_mean = (w * u).sum(axis=1) / total
    v_mean = (w * v).sum(axis=1) / total
    du = u - u_mean[:, None]
    suu = (w * du**2).sum(axis=1)
    suv = (w * du * (v - v_mean[:, None])).sum(axis=1)
    noise = (w * np.diag(cov_u)).sum(axis=1) - np.einsum("ri,ij,rj->r", w, cov_u, w) / total
    with np.errstate(invalid="ignore", divide="ignore"):
        reliability = np.clip((suu - noise) / suu, MIN_RELIABILITY, 1.0)
        slope = suv / (suu * reliability)
    return slope, v_mean - slope * u_mean, reliability


def _reference_noise(base_ref: np.ndarray, scale: str) -> np.ndarray:
    """Covariance of the baselines' transformed reference accuracies from test-set sampling (delta method)."""
    x = np.asarray(base_ref, dtype=float)
    n = x.shape[1]
    acc = x.mean(axis=1)
    centred = x - acc[:, None]
    cov_acc = centred @ centred.T / (n * max(n - 1, 1))
    p = np.clip(acc, 0.5 / n, 1 - 0.5 / n)
    slope = 1 / stats.norm.pdf(stats.norm.ppf(p)) if scale == "probit" else 1 / (p * (1 - p))
    return cov_acc * np.outer(slope, slope)


def _pooled_gap(ref_b: np.ndarray, shift_b: np.ndarray, out: dict[str, np.ndarray], w: _Draw,
                d: Design) -> np.ndarray:
    """The reference-to-shift gap aimed at the pre-trained recipes: per recipe the average of its own gap and the
    baseline line's gap at its reference accuracy (two estimates of the same zero under no shift, with partly
    independent noise), averaged over the recipes. Without recipes: the baseline checkpoints' own gaps
    (run-weighted)."""
    if d.pooled.any():
        return (0.5 * (out["remaining_gap"][:, d.pooled] + out["gap"][:, d.pooled])).mean(axis=1)
    return (w.runs * (ref_b - shift_b)).sum(axis=1) / w.runs.sum(axis=1)


def _residuals(d: Design, split: str) -> np.ndarray | None:
    """Residuals of single baseline checkpoints around the point line (transformed units), or None."""
    ref = d.base_ref.mean(axis=1)
    if split == "shift":
        y = d.base_shift.mean(axis=1)
    elif d.masks is None:
        return None
    else:
        weights = {"in_support": d.masks[0].astype(float), "out_of_support": 1.0 - d.masks[0],
                   "out_matched": d.matched[0] if d.matched is not None else None}[split]
        if weights is None or weights.sum() <= 0:
            return None
        y = d.base_shift @ weights / weights.sum()
    u = transform(ref, d.scale, d.base_ref.shape[1])  # type: ignore[arg-type]
    v = transform(y, d.scale, d.base_shift.shape[1])  # type: ignore[arg-type]
    if u.size < 3:
        return None
    return v - np.polyval(np.polyfit(u, v, 1), u)


def _residual_sd(res: np.ndarray | None) -> float:
    """Residual SD of the point line (transformed units): the scatter of single baseline models around it."""
    return float("nan") if res is None else float(np.sqrt((res**2).sum() / (res.size - 2)))


def run_heterogeneity(res: np.ndarray | None, run_index: np.ndarray) -> float:
    """Share of the variance of a run's mean residual that is the run's own deviation off the line (0..1).

    One-way ANOVA of the baselines' residuals around a line (`res`, one per checkpoint) by training run
    (`run_index`): between-run mean square B, within-run W;
    (B − W)/B estimates τ²/(τ² + σ²/m) for run deviations of variance τ² and checkpoint scatter σ² (m
    checkpoints per run). 1 (all of it, the cautious reading) when the two cannot be told apart: every run has a
    single checkpoint, or the split has no line.
    """
    n_runs = int(run_index.max()) + 1
    if res is None or n_runs < 2 or res.size <= n_runs:
        return 1.0
    counts = np.bincount(run_index, minlength=n_runs)
    means = np.bincount(run_index, weights=res, minlength=n_runs) / np.maximum(counts, 1)
    between = float((counts * (means - res.mean()) ** 2).sum() / (n_runs - 1))
    within = float(((res - means[run_index]) ** 2).sum() / (res.size - n_runs))
    return float(np.clip((between - within) / between, 0.0, 1.0)) if between > 0 else 0.0
