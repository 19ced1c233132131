"""Remedies on small generated features (real sklearn fits): held-out cross-fitting, degenerate weights, budgets."""

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from ptdiag.remedies.heads import balanced_weights, crossfit_folds, effective_sample_share
from ptdiag.remedies.lastlayer import crossfit_last_layer, feasible_budgets
from ptdiag.remedies.reweight import crossfit_reweighted_probe, xy_density_weights
from ptdiag.remedies.summary import accuracies, label_budget, remedy_row


@pytest.fixture(autouse=True)
def _one_blas_thread():
    with threadpool_limits(limits=1):  # as the remedies job runs them (small fits, no thread contention)
        yield


def _spurious(n: int, p_spurious: float, rng: np.random.Generator, k: int = 3, d: int = 8):
    """Class signal in dim 0..k-1 (weak) plus a 'colour' in dim k..2k-1 that equals the class with p_spurious."""
    y = rng.integers(0, k, n)
    colour = np.where(rng.random(n) < p_spurious, y, rng.integers(0, k, n))
    x = rng.normal(0, 1, (n, d))
    x[np.arange(n), y] += 1.0
    x[np.arange(n), k + colour] += 3.0
    return x, y


def test_balanced_weights_give_each_cell_equal_mass():
    labels = np.array([0, 0, 0, 1, 1, 2])
    groups = np.array(["a", "a", "b", "a", "a", "b"])
    for g in (None, groups):
        w = balanced_weights(labels, g)
        cells = [f"{y}|{gg}" for y, gg in zip(labels, g if g is not None else labels, strict=True)]
        mass = {c: w[[i for i, cc in enumerate(cells) if cc == c]].sum() for c in set(cells)}
        assert np.allclose(list(mass.values()), list(mass.values())[0])
        assert w.mean() == pytest.approx(1.0)


def test_every_shifted_example_is_scored_once_by_a_head_that_never_saw_it():
    rng = np.random.default_rng(0)
    ref_x, ref_y = _spurious(300, 0.9, rng)
    shift_x, shift_y = _spurious(120, 0.0, rng)
    folds = crossfit_folds(shift_y, n_folds=2, seed=0)
    for ref in ((None, None), (ref_x, ref_y)):
        fit = crossfit_last_layer(shift_x, shift_y, ref_x[:50], folds, ref_x=ref[0], ref_y=ref[1], seed=0)
        assert (fit.pred_shift >= 0).all() and (fit.pred_test >= 0).all()
        covered = np.zeros(len(shift_y), dtype=int)
        for k, fitted in enumerate(fit.fitted_on):
            scored = np.flatnonzero(fit.scored_by == k)
            assert not np.intersect1d(scored, fitted).size  # structural: the scoring head never saw them
            covered[scored] += 1
        assert (covered == 1).all()


def test_held_out_scores_differ_from_in_sample_scores_on_memorisable_labels():
    # Random labels: a head can only memorise them, so a leak would show as accuracy far above chance.
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(200, 50)), rng.integers(0, 2, 200)
    fit = crossfit_last_layer(x, y, x[:10], crossfit_folds(y, n_folds=2, seed=0), C=100.0, seed=0)
    assert abs((fit.pred_shift == y).mean() - 0.5) < 0.15


def test_last_layer_on_shifted_labels_beats_the_biased_reference_probe():
    rng = np.random.default_rng(2)
    ref_x, ref_y = _spurious(600, 1.0, rng)
    shift_x, shift_y = _spurious(300, 0.0, rng)
    fit = crossfit_last_layer(shift_x, shift_y, ref_x[:60], crossfit_folds(shift_y, seed=0), seed=0)
    from ptdiag.remedies.heads import fit_head

    biased = fit_head(ref_x, ref_y).predict(shift_x)
    assert (fit.pred_shift == shift_y).mean() > (biased == shift_y).mean() + 0.1


def test_label_budget_points_follow_the_data():
    rng = np.random.default_rng(3)
    x, y = _spurious(90, 0.0, rng)  # ~15 per class per training fold
    folds = crossfit_folds(y, seed=0)
    budgets = feasible_budgets(y, folds)
    assert budgets == [b for b in (5, 10, 25, 50, 100) if b <= min(np.bincount(y[folds == 0]).min(),
                                                                 np.bincount(y[folds == 1]).min())]
    fit = crossfit_last_layer(x, y, x[:5], folds, seed=0)
    assert fit.budgets == budgets and fit.budget_preds.shape == (len(budgets), len(y))
    assert (fit.budget_preds >= 0).all()
    points = label_budget(fit.budgets, fit.budget_preds, y, None)
    assert [p["n_per_class"] for p in points] == budgets and all(p["in_acc"] is None for p in points)


def test_xy_weights_recover_an_interaction_bias():
    # Reference: colour == class 90 % of the time; shift: colour random. The own-colour examples must be
    # down-weighted relative to the off-colour ones, which an input-only ratio cannot do.
    rng = np.random.default_rng(4)
    ref_x, ref_y = _spurious(900, 0.9, rng)
    shift_x, shift_y = _spurious(900, 0.0, rng)
    w = xy_density_weights(ref_x, ref_y, shift_x, shift_y, seed=0)
    own = ref_x[np.arange(len(ref_y)), 3 + ref_y] > 1.5
    assert w.weights[~own].mean() > 2 * w.weights[own].mean()
    assert not w.degenerate and 0 < w.ess_share <= 1
    assert w.weights.mean() == pytest.approx(1.0)


def test_out_of_support_weights_are_degenerate_and_say_why():
    rng = np.random.default_rng(5)
    ref_x, ref_y = _spurious(300, 0.5, rng)
    shift_x, shift_y = _spurious(150, 0.5, rng)
    shift_x[:, -1] += 25.0  # a direction the reference never shows
    fit = crossfit_reweighted_probe(ref_x, ref_y, ref_x[:30], shift_x, shift_y, crossfit_folds(shift_y, seed=0))
    assert fit.degenerate
    assert "cannot reach inputs the reference never shows" in fit.note()
    assert fit.coverage < 0.2


def test_effective_sample_share():
    assert effective_sample_share(np.ones(10)) == pytest.approx(1.0)
    assert effective_sample_share(np.r_[1.0, np.zeros(9)]) == pytest.approx(0.1)


def test_remedy_rows():
    y = np.array([0, 1, 0, 1])
    mask = np.array([True, True, False, False])
    acc = accuracies(np.array([0, 1]), np.array([0, 0]), np.array([0, 1, 1, 1]), y, mask)
    assert acc == {"ref_acc": 0.5, "shift_acc": 0.75, "in_acc": 1.0, "out_acc": 0.5}
    desc = dict(name="m/last-layer", method="last-layer", data="labelled-shift", variant="shift-only", base="m",
                base_kind="pretrained", held_out=True, applicable=True, note="", n_shift_labelled=200)
    rec = {"gap": None, "bias": {"lower": 0.64, "mid": 0.78, "upper": 0.9}, "extrapolation": None}
    row = remedy_row(desc, acc, [], {"name": "m/last-layer", "er": None, "recovered": rec}).to_dict()
    assert row["shift_acc"] == 0.75 and row["label_budget"] == [] and row["recovered"]["bias"]["mid"] == 0.78
    skipped = remedy_row(dict(desc, applicable=False, note="skipped: too few"), acc, [], None).to_dict()
    assert skipped["shift_acc"] is None and skipped["recovered"] == {"gap": None, "bias": None, "extrapolation": None}


def test_curve_intervals_cover_the_true_accuracy_and_difference():
    """Wilson intervals of a curated point and the paired curated − random difference cover their truths about 95 %
    of the time over 400 simulated held-out sets (correlated correctness, as two models on the same images)."""
    from ptdiag.remedies.summary import paired_difference, wilson

    rng = np.random.default_rng(0)
    n, p_a, p_b = 400, 0.80, 0.76
    hits_acc = hits_diff = 0
    for _ in range(400):
        shared = rng.random(n)  # an image's difficulty, shared by both models
        a = shared < p_a
        b = np.where(rng.random(n) < 0.6, shared < p_b, rng.random(n) < p_b)  # correlated with a, marginal p_b
        acc, diff = wilson(int(a.sum()), n), paired_difference(a, b)
        hits_acc += acc["lower"] <= p_a <= acc["upper"]
        hits_diff += diff["lower"] <= p_a - p_b <= diff["upper"]
    assert 0.92 <= hits_acc / 400 <= 0.98
    assert 0.92 <= hits_diff / 400 <= 0.98
    assert wilson(0, 0) is None and paired_difference(np.ones(1), np.zeros(1)) is None
