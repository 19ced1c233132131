"""Benchmark the support split: 50,000 examples × 1,280 features, 10 folds (target ≤ 30 s on 2 CPU cores).

Prints ptdiag's time next to a naive baseline measured in the same run: scikit-learn's default
LogisticRegression (float64, raw unscaled features, L-BFGS with its default 100 iterations, no warm start
along the C grid) doing the same C selection and 10-fold cross-fitting. Both report the out-of-fold AUC so the
speed-up is not bought with a worse classifier. Also prints the same split with every fit run one at a time on
all BLAS threads (ptdiag before 2026-12-04) against ptdiag's one-thread fits side by side (`ptdiag.stats.fits`).

    .venv/bin/python benchmarks/bench_support.py [--n 50000] [--dim 1280] [--folds 10] [--skip-naive]
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold, train_test_split

from ptdiag.stats.fits import shared_blas
from ptdiag.stats.support import SupportConfig, estimate_support


def make_features(n: int, dim: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Backbone-like features: a 64-d latent through a random linear map plus noise, ReLU'd like pooled CNN
    features. 60 % reference, 40 % shifted; a third of the shifted set moves along new latent directions."""
    rng = np.random.default_rng(seed)
    n_ref = int(0.6 * n)
    n_shift = n - n_ref
    latent_dim = 64
    proj = rng.standard_normal((latent_dim, dim)).astype(np.float32) / np.sqrt(latent_dim)
    z_ref = rng.standard_normal((n_ref, latent_dim)).astype(np.float32)
    z_shift = rng.standard_normal((n_shift, latent_dim)).astype(np.float32)
    z_shift[:, :4] += 0.5  # mild in-support drift for everyone
    out = rng.random(n_shift) < 1 / 3
    z_shift[out, 4:8] += 3.0  # out-of-support block
    ref = np.maximum(z_ref @ proj + 0.3 * rng.standard_normal((n_ref, dim), dtype=np.float32), 0) * 2.0 + 1.0
    shift = np.maximum(z_shift @ proj + 0.3 * rng.standard_normal((n_shift, dim), dtype=np.float32), 0) * 2.0 + 1.0
    return ref, shift


def naive_support(ref: np.ndarray, shift: np.ndarray, c_grid: tuple[float, ...], folds: int) -> float:
    """Same protocol with sklearn defaults; returns the out-of-fold AUC."""
    x = np.vstack([ref, shift]).astype(np.float64)
    y = np.r_[np.zeros(len(ref), dtype=int), np.ones(len(shift), dtype=int)]
    train, test = train_test_split(np.arange(len(y)), test_size=0.1, stratify=y, random_state=0)
    aucs = []
    for c in c_grid:
        model = LogisticRegression(C=c).fit(x[train], y[train])
        aucs.append(roc_auc_score(y[test], model.decision_function(x[test])))
    c_best = c_grid[int(np.argmax(aucs))]
    logits = np.empty(len(y))
    for tr, te in StratifiedKFold(folds, shuffle=True, random_state=0).split(x, y):
        logits[te] = LogisticRegression(C=c_best).fit(x[tr], y[tr]).decision_function(x[te])
    return float(roc_auc_score(y, logits))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=50_000)
    parser.add_argument("--dim", type=int, default=1280)
    parser.add_argument("--folds", type=int, default=10)
    parser.add_argument("--skip-naive", action="store_true")
    args = parser.parse_args()
    warnings.filterwarnings("ignore", category=ConvergenceWarning)

    ref, shift = make_features(args.n, args.dim)
    config = SupportConfig(folds=args.folds)
    print(f"support split: {len(ref)} reference + {len(shift)} shifted examples × {args.dim} features, "
          f"{args.folds} folds, C grid {config.c_grid}")
    start = time.perf_counter()
    split = estimate_support(ref, shift, config=config)
    ours = time.perf_counter() - start
    print(f"ptdiag : {ours:7.1f} s  (out-of-fold AUC {split.domain_auc:.4f}, C={split.C:g}, α={split.temperature:.3f}, "
          f"n_in={split.n_in}, n_out={split.n_out}, ECE={split.ece:.3f}) target ≤ 30 s")
    for w in split.warnings:
        print(f"         warning: {w}")
    # The earlier threading: each fit alone, with as many BLAS threads as the library starts.
    with shared_blas():
        start = time.perf_counter()
        shared = estimate_support(ref, shift, config=config)
        one_at_a_time = time.perf_counter() - start
    print(f"fits one at a time on all BLAS threads: {one_at_a_time:7.1f} s (AUC {shared.domain_auc:.4f}); "
          f"one thread per fit, side by side: {ours:.1f} s = {one_at_a_time / ours:.1f}× faster")
    if args.skip_naive:
        return
    start = time.perf_counter()
    naive_auc = naive_support(ref, shift, config.c_grid, args.folds)
    naive = time.perf_counter() - start
    print(f"naive  : {naive:7.1f} s  (out-of-fold AUC {naive_auc:.4f}; sklearn defaults, float64, unscaled)")
    print(f"speed-up: {naive / ours:.1f}×")


if __name__ == "__main__":
    main()
