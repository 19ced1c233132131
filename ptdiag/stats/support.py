"""Split the shifted set into in-support and out-of-support examples with a cross-fitted domain classifier.

Method (Cohen-Wang et al. 2024, App. B.4.1; method.md §4), on feature vectors from a frozen backbone:

1. a regularised logistic regression tells reference (label 0) from shifted (label 1) features; its C is chosen
   from a small grid by ROC-AUC on one 90/10 held-out split;
2. K-fold cross-fitting (GroupKFold when shifted examples come in groups, e.g. near-duplicates) gives every
   example an *out-of-fold* logit f: no example is ever scored by a model that saw it (in-sample scores make
   everything look out-of-support);
3. one temperature α minimises the binary cross-entropy of q = σ(α·(f − b) + b) on the pooled out-of-fold
   logits, where b = log(n_shift/n_ref) is the pool's prior log-odds. The paper scales f itself (q = σ(α·f));
   with unequal pools that also scales the prior: a weak classifier (α ≪ 1) then pulls q towards 1/2 instead of
   towards the prior, and ρ of data with no shift at all comes out at n_shift/n_ref instead of 1 (measured on the
   no-shift control: median ρ 0.68 for a true 1). Scaling only the evidence f − b keeps one scalar and fixes that;
   with equal pools the two are identical;
4. density ratio ρ(x) = p_ref(x)/p_shift(x) = (1 − q)/q · n_shift/n_ref = exp(−α·(f − b)) (the prior correction
   undoes the pooled class proportions); a shifted example is out-of-support when ρ < ε (default 0.2).

Speed: features are standardised once (label-free, so it cannot leak the domain label), fits run in float32
with L-BFGS capped at `max_iter` iterations (standardised features converge in tens of iterations), the C
grid is walked with warm starts on the holdout split only, and the cross-fits of every fold assignment run
side by side with one BLAS thread each (`ptdiag.stats.fits`). See benchmarks/bench_support.py.

Pure numpy/scipy/scikit-learn: no torch import.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field, replace

import numpy as np
from scipy import optimize, stats
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import GroupKFold, GroupShuffleSplit, StratifiedKFold, train_test_split
from sklearn.preprocessing import StandardScaler

from ptdiag.errors import DataError
from ptdiag.stats.fits import fit_workers, map_fits, single_threaded
from ptdiag.stats.thresholds import VerdictConfig

EPSILON_GRID: tuple[float, ...] = (1e-4, 2e-4, 5e-4, 1e-3, 2e-3, 5e-3, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5)
_MAX_LOG_RATIO = 700.0  # keeps exp() finite; far beyond any threshold of interest
_AUC_TIE = 0.005  # holdout AUCs closer than this are treated as equal when choosing C


@dataclass(frozen=True)
class SupportConfig:
    """Settings of the support split.

    Attributes:
        epsilon: out-of-support threshold on ρ = p_ref/p_shift (paper: 0.2).
        folds: cross-fitting folds (paper: 10).
        c_grid: inverse regularisation strengths tried on the 90/10 holdout.
        max_iter, tol: L-BFGS budget per fit (tol 1e-3 on the mean loss's gradient: the ranking and the
            calibrated ratio are unchanged against 1e-4 at about half the iterations).
        pca_components: project standardised features onto this many principal components first (None: off).
        calibration_bins: equal-count bins of the calibration table (paper plots 100; fewer for small sets).
        min_per_bin: fewest examples per calibration bin (fewer bins are used for small sets).
        histogram_bins: bins of the log10-ratio histogram.
        min_split_examples: warn when a split has fewer shifted examples (claims about it are inconclusive).
        seed: seeds the holdout split, the folds and PCA.
        assignments: cross-fitting fold assignments (fold seeds seed, seed + 1, ...); the split uses log ρ
            averaged over them, and each assignment's own mask is kept so the intervals can redraw it.
    """

    epsilon: float = 0.2
    folds: int = 10
    c_grid: tuple[float, ...] = (0.001, 0.01, 0.1, 1.0)
    max_iter: int = 100
    tol: float = 1e-3
    pca_components: int | None = None
    calibration_bins: int = 20
    min_per_bin: int = 25
    histogram_bins: int = 30
    min_split_examples: int = VerdictConfig.min_split_examples
    seed: int = 0
    assignments: int = 3


@dataclass(frozen=True)
class SupportSplit:
    """Result of the support split. Per-example arrays are for the predictions file, not for `to_dict()`.

    Attributes:
        rho_shift: ρ = p_ref/p_shift for every shifted example (input order).
        rho_reference: ρ for every example of the reference sample.
        in_support: rho_shift ≥ epsilon.
        logit_shift, logit_reference: out-of-fold domain logits f (before temperature).
        domain_auc: out-of-fold ROC-AUC of the domain classifier (0.5: indistinguishable sets).
        temperature: the calibration scalar α.
        c_selection: (C, holdout AUC) for every C tried.
        warnings: warnings about the classifier; `all_warnings()` adds the split-size ones for the current ε.
        rho_shift_draws: ρ of every shifted example under each fold assignment (assignments × n_shift), or None.
        backbone: the features the domain classifier was trained on (None: unknown or not from a backbone).
        source: "domain-classifier", or "given" when the split was supplied with the predictions.
    """

    epsilon: float
    rho_shift: np.ndarray
    rho_reference: np.ndarray
    logit_shift: np.ndarray
    logit_reference: np.ndarray
    domain_auc: float
    temperature: float
    C: float
    c_selection: tuple[tuple[float, float], ...]
    folds: int
    fold_kind: str
    ece: float
    calibration: list[dict[str, float]]
    log_ratio_histogram: dict[str, object]
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0
    min_split_examples: int = VerdictConfig.min_split_examples
    rho_shift_draws: np.ndarray | None = None
    backbone: str | None = None
    source: str = "domain-classifier"
    in_support: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "in_support", np.asarray(self.rho_shift) >= self.epsilon)

    @property
    def n_in(self) -> int:
        return int(self.in_support.sum())

    @property
    def n_out(self) -> int:
        return int(self.in_support.size - self.in_support.sum())

    @property
    def pi_in(self) -> float:
        return self.n_in / max(self.in_support.size, 1)

    @property
    def pi_out(self) -> float:
        return self.n_out / max(self.in_support.size, 1)

    @property
    def n_draws(self) -> int:
        return 0 if self.rho_shift_draws is None else int(np.shape(self.rho_shift_draws)[0])

    def in_support_draws(self) -> np.ndarray:
        """One in-support mask per fold assignment at the current ε (0 × n_shift when there are none)."""
        if self.rho_shift_draws is None:
            return np.zeros((0, np.size(self.rho_shift)), dtype=bool)
        return np.asarray(self.rho_shift_draws) >= self.epsilon

    def epsilon_sweep(self, grid: tuple[float, ...] = EPSILON_GRID) -> list[dict[str, float]]:
        """Split sizes at every ε of the grid (the paper's code keeps this whole grid)."""
        rho = np.asarray(self.rho_shift)
        return [{"epsilon": eps, "n_in": int((rho >= eps).sum()), "n_out": int((rho < eps).sum())} for eps in grid]

    def all_warnings(self) -> list[str]:
        """Split-size warnings for the current ε, then the classifier's own warnings."""
        out = []
        for name, n in (("in-support", self.n_in), ("out-of-support", self.n_out)):
            if n < self.min_split_examples:
                out.append(f"only {n} {name} shifted examples at ε = {self.epsilon:g} (< {self.min_split_examples}): "
                           f"{name} claims are inconclusive")
        return out + [w for w in self.warnings if w not in out]

    def at_epsilon(self, epsilon: float) -> SupportSplit:
        """The same split at another threshold (nothing is refitted)."""
        return replace(self, epsilon=epsilon)

    def to_dict(self) -> dict[str, object]:
        return {
            "epsilon": self.epsilon, "n_in": self.n_in, "n_out": self.n_out, "pi_in": self.pi_in,
            "pi_out": self.pi_out, "domain_auc": self.domain_auc, "temperature": self.temperature, "ece": self.ece,
            "C": self.C, "c_selection": [{"C": c, "holdout_auc": a} for c, a in self.c_selection],
            "folds": self.folds, "fold_kind": self.fold_kind, "n_reference_sample": int(np.size(self.rho_reference)),
            "n_shift": int(np.size(self.rho_shift)), "epsilon_sweep": self.epsilon_sweep(),
            "calibration": self.calibration, "log_ratio_histogram": self.log_ratio_histogram,
            "warnings": self.all_warnings(), "seconds": self.seconds, "assignments": self.n_draws,
            "mask_agreement": self.mask_agreement(), "backbone": self.backbone, "source": self.source,
        }

    def mask_agreement(self) -> float | None:
        """Share of shifted examples whose in/out label is the same under every fold assignment."""
        draws = self.in_support_draws()
        if draws.shape[0] == 0:
            return None
        return float((draws.all(axis=0) | (~draws).all(axis=0)).mean())


def estimate_support(
    ref_features: np.ndarray,
    shift_features: np.ndarray,
    *,
    shift_groups: np.ndarray | None = None,
    config: SupportConfig = SupportConfig(),
) -> SupportSplit:
    """Estimate ρ = p_ref/p_shift for every shifted (and reference-sample) example and split at ε.

    Args:
        ref_features: (n_ref, d) features of a reference *sample* drawn from the training data, never the
            reference test set.
        shift_features: (n_shift, d) features of every shifted example.
        shift_groups: optional group id per shifted example; a group never straddles folds.
        config: see `SupportConfig`.

    Raises:
        DataError: mismatched shapes, non-finite features, or too few examples for the folds.
    """
    start = time.perf_counter()
    x, y, groups = _pool(ref_features, shift_features, shift_groups, config.folds)
    x = _preprocess(x, config)
    workers = fit_workers()
    with single_threaded():
        c_best, c_selection = _select_c(x, y, groups, config)
    n_ref, n_shift = int((y == 0).sum()), int((y == 1).sum())
    prior = float(np.log(n_shift / n_ref))
    draws, fold_kind, not_converged = _cross_fit(x, y, groups, c_best, config, workers)
    # Averaging the out-of-fold logits over assignments averages log ρ (up to the temperature): still out-of-fold.
    logits = np.mean(draws, axis=0)
    alpha = fit_temperature(logits, y, prior)
    rho = _ratio(logits, alpha, prior)
    rho_draws = np.vstack([_ratio(d, fit_temperature(d, y, prior), prior)[y == 1] for d in draws])
    q = _sigmoid(alpha * (logits - prior) + prior)
    calibration, ece = calibration_table(q, y, config)
    split = SupportSplit(
        epsilon=config.epsilon, rho_shift=rho[y == 1], rho_reference=rho[y == 0],
        logit_shift=logits[y == 1], logit_reference=logits[y == 0], domain_auc=float(roc_auc_score(y, logits)),
        temperature=alpha, C=c_best, c_selection=c_selection, folds=config.folds, fold_kind=fold_kind, ece=ece,
        calibration=calibration, log_ratio_histogram=log_ratio_histogram(rho[y == 1], rho[y == 0], config),
        min_split_examples=config.min_split_examples, rho_shift_draws=rho_draws if len(draws) > 1 else None,
    )
    object.__setattr__(split, "warnings", _warnings(split, not_converged, config))
    object.__setattr__(split, "seconds", round(time.perf_counter() - start, 3))
    return split


# --- steps -----------------------------------------------------------------------------------------------------


def _pool(ref: np.ndarray, shift: np.ndarray, shift_groups: np.ndarray | None,
          folds: int) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    ref, shift = np.asarray(ref), np.asarray(shift)
    if ref.ndim != 2 or shift.ndim != 2 or ref.shape[1] != shift.shape[1]:
        raise DataError(f"support features must be 2-D with the same width (reference {ref.shape}, "
                        f"shifted {shift.shape})")
    minimum = max(2 * folds, 10)
    if len(ref) < minimum or len(shift) < minimum:
        raise DataError(f"support split needs at least {minimum} reference and shifted examples for {folds} folds "
                        f"(got {len(ref)} and {len(shift)})")
    x = np.vstack([ref, shift]).astype(np.float32, copy=False)
    if not np.isfinite(x).all():
        raise DataError("support features contain NaN or infinite values")
    y = np.r_[np.zeros(len(ref), dtype=int), np.ones(len(shift), dtype=int)]
    if shift_groups is None:
        return x, y, None
    shift_groups = np.asarray(shift_groups)
    if shift_groups.shape != (len(shift),):
        raise DataError(f"shift_groups must have one id per shifted example ({len(shift)}), got {shift_groups.shape}")
    _, codes = np.unique(shift_groups, return_inverse=True)
    # Each reference example is its own group; shifted groups get ids after them.
    groups = np.r_[np.arange(len(ref)), len(ref) + codes]
    if len(np.unique(codes)) < folds:
        raise DataError(f"only {len(np.unique(codes))} shifted groups for {folds} folds")
    return x, y, groups


def _preprocess(x: np.ndarray, config: SupportConfig) -> np.ndarray:
    # Standardising uses no labels, so fitting it on the pooled data leaks nothing about the domain.
    x = StandardScaler(copy=False).fit_transform(x)
    if config.pca_components and config.pca_components < x.shape[1]:
        x = PCA(config.pca_components, random_state=config.seed, svd_solver="randomized").fit_transform(x)
    return x.astype(np.float32, copy=False)


def _new_classifier(c: float, config: SupportConfig, warm_start: bool = False) -> LogisticRegression:
    return LogisticRegression(C=c, max_iter=config.max_iter, tol=config.tol, warm_start=warm_start)


def _select_c(x: np.ndarray, y: np.ndarray, groups: np.ndarray | None,
              config: SupportConfig) -> tuple[float, tuple[tuple[float, float], ...]]:
    """Pick C by ROC-AUC on one 90/10 holdout (grouped when groups are given). Only C is reused from here."""
    if groups is None:
        train, test = train_test_split(np.arange(len(y)), test_size=0.1, stratify=y, random_state=config.seed)
    else:
        train, test = next(GroupShuffleSplit(1, test_size=0.1, random_state=config.seed).split(x, y, groups))
    if len(np.unique(y[test])) < 2:
        return float(config.c_grid[-1]), ()
    # Walk the grid from strong to weak regularisation, warm-starting each fit from the previous one.
    model = _new_classifier(config.c_grid[0], config, warm_start=True)
    weight = _train_weight(len(y), test)
    scores = []
    for c in sorted(config.c_grid):
        model.set_params(C=c)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(x, y, sample_weight=weight)
        scores.append((float(c), float(roc_auc_score(y[test], model.decision_function(x[test])))))
    # AUC only ranks, so near-ties (within _AUC_TIE) are common; they go to the weaker regularisation (larger C):
    # a heavily shrunk weight vector with an unshrunk intercept is miscalibrated, and one temperature cannot fix it.
    top = max(a for _, a in scores)
    best = max(c for c, a in scores if a >= top - _AUC_TIE)
    return best, tuple(scores)


def _cross_fit(x: np.ndarray, y: np.ndarray, groups: np.ndarray | None, c: float, config: SupportConfig,
               workers: int) -> tuple[list[np.ndarray], str, int]:
    """Out-of-fold logits for each fold assignment: every example scored by a model trained on the other folds.

    Returns the logits per assignment, the kind of folds, and how many fits stopped at `max_iter`.
    """
    assignments = max(1, config.assignments)
    tasks, kind = [], "stratified"
    for k in range(assignments):
        splits, kind = _folds(x, y, groups, config.folds, config.seed + k)
        tasks += [(k, test) for _, test in splits]
    with warnings.catch_warnings():  # set once here: the fits run in threads, which must not touch the filters
        warnings.simplefilter("ignore", ConvergenceWarning)
        fits = map_fits(lambda task: _fit_fold(x, y, task[1], c, config), tasks, workers)
    draws = [np.full(len(y), np.nan) for _ in range(assignments)]
    for (k, test), (logits, _) in zip(tasks, fits, strict=True):
        draws[k][test] = logits
    not_converged = sum(n_iter >= config.max_iter for _, n_iter in fits)
    return draws, kind, not_converged


def _folds(x: np.ndarray, y: np.ndarray, groups: np.ndarray | None, folds: int, seed: int):
    if groups is None:
        return StratifiedKFold(folds, shuffle=True, random_state=seed).split(x, y), "stratified"
    return GroupKFold(folds, shuffle=True, random_state=seed).split(x, y, groups), "group"


def _fit_fold(x: np.ndarray, y: np.ndarray, test: np.ndarray, c: float,
              config: SupportConfig) -> tuple[np.ndarray, int]:
    """Logits of the held-out fold `test` and the L-BFGS iterations used (== max_iter: not converged).

    A fresh model per fold: warm-starting from a model that saw `test` would leak it when L-BFGS stops early.
    """
    model = _new_classifier(c, config).fit(x, y, sample_weight=_train_weight(len(y), test))
    return model.decision_function(x[test]), int(np.max(model.n_iter_))


def _train_weight(n: int, held_out: np.ndarray) -> np.ndarray:
    """Weight 1 for training rows, 0 for held-out rows.

    Fitting on the full array with zero weights is exactly fitting on the training rows (their loss and gradient
    terms vanish) and avoids copying a (0.9·n × d) training matrix per fit, which costs as much as a third of
    the fit at 50,000 × 1,280.
    """
    weight = np.ones(n, dtype=np.float32)
    weight[held_out] = 0.0
    return weight


def fit_temperature(logits: np.ndarray, labels: np.ndarray, prior: float = 0.0) -> float:
    """The scalar α minimising the binary cross-entropy of σ(α·(f − prior) + prior) against the labels.

    `prior` is the pool's log-odds log(n_1/n_0); 0 gives the paper's σ(α·f) (no bias term either way).
    """
    f = np.asarray(logits, dtype=float) - prior
    sign = np.where(np.asarray(labels) == 1, -1.0, 1.0)

    def loss(log_alpha: float) -> float:
        return float(np.logaddexp(0.0, sign * (np.exp(log_alpha) * f + prior)).mean())

    result = optimize.minimize_scalar(loss, bounds=(np.log(1e-3), np.log(1e3)), method="bounded")
    return float(np.exp(result.x))


def calibration_table(q: np.ndarray, labels: np.ndarray,
                      config: SupportConfig = SupportConfig()) -> tuple[list[dict[str, float]], float]:
    """Equal-count bins of the calibrated P(shift|x): mean prediction, observed shifted fraction with its
    Clopper–Pearson 95 % interval, and the expected calibration error (count-weighted |frac − p_mean|)."""
    q = np.asarray(q, dtype=float)
    labels = np.asarray(labels)
    n_bins = int(max(1, min(config.calibration_bins, len(q) // max(config.min_per_bin, 1))))
    order = np.argsort(q, kind="stable")
    rows, ece = [], 0.0
    for idx in np.array_split(order, n_bins):
        k, n = int(labels[idx].sum()), len(idx)
        lower, upper = clopper_pearson(k, n)
        p_mean, frac = float(q[idx].mean()), k / n
        ece += n / len(q) * abs(frac - p_mean)
        rows.append({"p_mean": p_mean, "frac": frac, "lower": lower, "upper": upper, "n": n})
    return rows, float(ece)


def clopper_pearson(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Exact (Clopper–Pearson) interval of a binomial proportion k/n."""
    alpha = 1 - confidence
    lower = 0.0 if k == 0 else float(stats.beta.ppf(alpha / 2, k, n - k + 1))
    upper = 1.0 if k == n else float(stats.beta.ppf(1 - alpha / 2, k + 1, n - k))
    return lower, upper


def log_ratio_histogram(rho_shift: np.ndarray, rho_reference: np.ndarray,
                        config: SupportConfig = SupportConfig()) -> dict[str, object]:
    """Histogram of log10 ρ for the shifted set and the reference sample on shared edges."""
    ls, lr = np.log10(rho_shift), np.log10(rho_reference)
    edges = np.histogram_bin_edges(np.r_[ls, lr], bins=config.histogram_bins)
    return {"base": 10, "edges": [float(e) for e in edges],
            "shift": np.histogram(ls, edges)[0].tolist(), "reference": np.histogram(lr, edges)[0].tolist()}


def _warnings(split: SupportSplit, not_converged: int, config: SupportConfig) -> list[str]:
    """Warnings about the classifier (split-size warnings depend on ε and come from `SupportSplit.all_warnings`)."""
    out = []
    if split.domain_auc > 0.999:
        out.append(f"the domain classifier separates the sets almost perfectly (AUC {split.domain_auc:.4f}): "
                   "check for format artefacts (resolution, JPEG quality, borders) before trusting the split")
    if split.ece > 0.05:
        out.append(f"the domain classifier is poorly calibrated (ECE {split.ece:.3f} > 0.05): ρ is approximate")
    if not_converged:
        out.append(f"L-BFGS stopped at max_iter={config.max_iter} in {not_converged} fold fits "
                   f"({split.folds} folds × {max(1, config.assignments)} assignments)")
    return out


def _ratio(logits: np.ndarray, alpha: float, prior: float) -> np.ndarray:
    """ρ = p_ref/p_shift = exp(−α·(f − b)), clipped so exp() stays finite."""
    return np.exp(np.clip(-alpha * (logits - prior), -_MAX_LOG_RATIO, _MAX_LOG_RATIO))


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return np.exp(-np.logaddexp(0.0, -z))
