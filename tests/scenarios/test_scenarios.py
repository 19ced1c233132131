"""Known-answer scenarios: the pixels, class proportions and truth files they write, the registry, the folder rules."""

from __future__ import annotations

import csv
import hashlib
import json
import os

import numpy as np
import pytest
from PIL import Image
from scipy.stats import ks_2samp
from torchvision.datasets import ImageFolder

from ptdiag.errors import UsageError
from ptdiag.scenarios import get_scenario, list_scenarios, register_scenario, registry
from ptdiag.scenarios import sources as datasets
from ptdiag.scenarios.building import class_counts
from ptdiag.scenarios.sources import fashion_mnist_available, load_digits, load_fashion_mnist
from ptdiag.schema import VERDICT_KINDS

ALL_NAMES = ["tint-bias", "unseen-tint", "vflip", "invert", "label-shift", "no-shift", "toy"]


@pytest.fixture(scope="module")
def fmnist_cache(tmp_path_factory):
    cache = tmp_path_factory.mktemp("cache")
    if not fashion_mnist_available(cache):
        pytest.skip(
            "Fashion-MNIST absent: install it with `apt-get install dataset-fashion-mnist`; tests never download"
        )
    return cache


@pytest.fixture(scope="module")
def fmnist(fmnist_cache):
    """name -> generate(**params) on Fashion-MNIST, writing under one module temp folder."""

    def generate(name, tmp_path, **params):
        return get_scenario(name).generate(tmp_path / name, cache_dir=fmnist_cache, **params)

    return generate


def read_side(data, side):
    """(truth rows, RGB images) of one side, in file order."""
    with data.truth_path.open(newline="") as fh:
        rows = [row for row in csv.DictReader(fh) if row["side"] == side]
    images = np.stack([np.asarray(Image.open(data.root / row["path"])) for row in rows])
    return rows, images


def source_images(rows, cache_dir, split):
    images = load_fashion_mnist(split, cache_dir)[0] if cache_dir else load_digits(split)[0]
    return images[[int(row["source_index"]) for row in rows]]


def expected_tint(gray, colours, alpha=0.25):
    """The paper's tint, written out independently: pixel <- (1-alpha)*x + alpha*colour in [0, 1], rounded."""
    return np.rint(255 * ((1 - alpha) * gray[..., None] / 255 + alpha * colours[:, None, None, :])).astype(np.uint8)


def decode_tint_class(rgb, gray, palette, alpha=0.25):
    """Recover each image's tint colour from its pixels alone and return the nearest palette entry."""
    colour = ((rgb / 255 - (1 - alpha) * gray[..., None] / 255) / alpha).mean(axis=(1, 2))
    return np.argmin(((colour[:, None, :] - palette[None]) ** 2).sum(-1), axis=1)


def file_digest(root):
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(path.relative_to(root).as_posix().encode() + path.read_bytes())
    return digest.hexdigest()


# ---------------------------------------------------------------------------------------------------------------------
# Registry and parameters


def test_registry_lists_every_scenario_with_valid_metadata():
    assert [s.name for s in list_scenarios()] == ALL_NAMES
    for scenario in list_scenarios():
        meta = scenario.to_dict()
        assert set(meta["expected"]) <= set(VERDICT_KINDS) and meta["expected"]
        assert meta["description"] and meta["paper"] and meta["true_ratio"]
        assert {"n_reference", "n_shift", "seed", "source", "n_classes"} <= set(meta["params"])
    assert get_scenario("tint-bias").expected == ("dataset-bias",)
    assert get_scenario("no-shift").expected == ("no-shift",)
    assert get_scenario("unseen-tint").expected == ("pretraining-helps",)


def test_unknown_scenario_names_the_closest_match_and_the_valid_ones():
    with pytest.raises(UsageError, match="unknown scenario 'tint-bais'; did you mean 'tint-bias'") as info:
        get_scenario("tint-bais")
    assert all(name in info.value.message for name in ALL_NAMES)
    with pytest.raises(UsageError) as info:
        get_scenario("zzzzzz")
    assert "did you mean" not in info.value.message and "vflip" in info.value.message


def test_registering_a_taken_name_or_bad_metadata_fails():
    common = dict(description="d", support="none", paper="p", true_ratio="1")
    with pytest.raises(ValueError, match="already registered"):
        register_scenario("vflip", expected=("no-shift",), **common)(lambda ctx: None)
    with pytest.raises(ValueError, match="bad expected"):
        register_scenario("new-one", expected=("works",), **common)(lambda ctx: None)
    assert "new-one" not in [s.name for s in list_scenarios()]


@pytest.mark.parametrize(
    ("name", "params", "message"),
    [
        ("tint-bias", {"q": 0.5}, "has no parameter 'q'; valid: n_reference, n_shift, seed, source, n_classes, p"),
        ("vflip", {"p": 0.5}, "scenario 'vflip' has no parameter 'p'"),
        ("tint-bias", {"p": 1.5}, r"p must be a number in \[0.0, 1.0\], got 1.5"),
        ("tint-bias", {"p": True}, "p must be a number"),
        ("tint-bias", {"alpha": 0}, r"alpha must be a number in \(0.0, 1.0\)"),
        ("label-shift", {"p_minority": 1.0}, "p_minority must be a number in"),
        ("toy", {"n_reference": 0}, "n_reference must be a positive integer, got 0"),
        ("toy", {"n_shift": 2.5}, "n_shift must be a positive integer"),
        ("toy", {"seed": -1}, "seed must be a non-negative integer"),
        ("toy", {"source": "cifar"}, "source must be one of fashion-mnist, digits, got 'cifar'"),
        ("toy", {"n_classes": 1}, "n_classes must be at least 2"),
        ("toy", {"n_classes": 11}, "n_classes=11 but source 'digits' has 10 classes"),
        ("toy", {"n_shift": 3}, "n_shift=3 is too small: class 3 would get no image; use at least 4"),
        ("toy", {"n_shift": 1000}, "n_shift=1000 needs 250 images of class 0, but the source's test split has"),
    ],
)
def test_bad_parameters_are_usage_errors(tmp_path, name, params, message):
    with pytest.raises(UsageError, match=message):
        get_scenario(name).generate(tmp_path / "out", **params)
    assert not (tmp_path / "out").exists()


def test_class_counts_are_exact_and_proportional():
    assert class_counts(10, np.ones(4)).tolist() == [3, 3, 2, 2]
    assert class_counts(4000, np.where(np.arange(10) < 5, 0.25, 1.0)).tolist() == [160] * 5 + [640] * 5
    counts = class_counts(997, np.array([0.1, 0.7, 0.2]))
    assert counts.sum() == 997 and np.abs(counts - 997 * np.array([0.1, 0.7, 0.2])).max() < 1


# ---------------------------------------------------------------------------------------------------------------------
# Pixels and proportions (known answers)


@pytest.mark.parametrize("p", [0.5, 0.8])
def test_tint_bias_pixels_and_colour_frequencies(fmnist, fmnist_cache, tmp_path, p):
    data = fmnist("tint-bias", tmp_path, n_reference=1500, n_shift=1000, p=p, seed=1)
    meta = json.loads((data.root / "scenario.json").read_text())
    palette = np.array(meta["details"]["palette"])
    k = len(palette)
    assert np.allclose(palette, np.random.default_rng(0).uniform(size=(k, 3)))  # shared fixed-seed palette

    for side, split, own_rate in (("reference", "train", p + (1 - p) / k), ("shift", "test", 1 / k)):
        rows, rgb = read_side(data, side)
        gray = source_images(rows, fmnist_cache, split)
        labels = np.array([int(r["label"]) for r in rows])
        decoded = decode_tint_class(rgb, gray, palette)
        # The truth file tells the same story as the pixels, and every pixel follows the formula exactly.
        assert decoded.tolist() == [int(r["tint_class"]) for r in rows]
        assert np.array_equal(rgb, expected_tint(gray, palette[decoded]))
        # Own-colour frequency: p + (1-p)/K in the reference (a random class can be the own one), 1/K in the shift.
        own = np.mean(decoded == labels)
        assert abs(own - own_rate) < 4 * np.sqrt(own_rate * (1 - own_rate) / len(rows)), (side, own, own_rate)
        # Known density ratio p_ref/p_shift: 1-p off-class, 1-p+pK on-class.
        ratio = np.array([float(r["true_density_ratio"]) for r in rows])
        assert np.allclose(ratio, np.where(decoded == labels, 1 - p + p * k, 1 - p))


def test_unseen_tint_reference_is_grey_and_shift_is_tinted(fmnist, fmnist_cache, tmp_path):
    data = fmnist("unseen-tint", tmp_path, n_reference=200, n_shift=200, alpha=0.4)
    palette = np.array(json.loads((data.root / "scenario.json").read_text())["details"]["palette"])
    rows, rgb = read_side(data, "reference")
    assert np.array_equal(rgb, np.repeat(source_images(rows, fmnist_cache, "train")[..., None], 3, -1))
    rows, rgb = read_side(data, "shift")
    gray = source_images(rows, fmnist_cache, "test")
    tints = np.array([int(r["tint_class"]) for r in rows])
    assert np.array_equal(rgb, expected_tint(gray, palette[tints], alpha=0.4))
    assert len(set(tints.tolist())) == len(palette)  # every class colour is used
    assert {r["true_density_ratio"] for r in rows} == {"0.0"}


@pytest.mark.parametrize(("name", "transform"), [("vflip", lambda x: x[:, ::-1, :]), ("invert", lambda x: 255 - x)])
def test_out_of_support_shifts_are_exact_transforms(fmnist, fmnist_cache, tmp_path, name, transform):
    data = fmnist(name, tmp_path, n_reference=100, n_shift=100)
    ref_rows, ref = read_side(data, "reference")
    shift_rows, shift = read_side(data, "shift")
    assert np.array_equal(ref[..., 0], source_images(ref_rows, fmnist_cache, "train"))
    assert np.array_equal(shift[..., 0], transform(source_images(shift_rows, fmnist_cache, "test")))
    assert np.array_equal(shift[..., 0], shift[..., 2])  # still grey, stored as RGB
    assert ref.shape[1:] == (28, 28, 3)


def test_label_shift_class_proportions_reverse(fmnist, tmp_path):
    data = fmnist("label-shift", tmp_path, n_reference=1000, n_shift=500, p_minority=0.2)
    meta = json.loads((data.root / "scenario.json").read_text())
    minority = meta["details"]["minority_classes"]
    assert len(minority) == 5
    for side, n, minority_share in (("reference", 1000, 0.2), ("shift", 500, 0.8)):
        rows, _ = read_side(data, side)
        labels = np.array([int(r["label"]) for r in rows])
        in_minority = np.isin(labels, minority)
        assert len(rows) == n and in_minority.mean() == pytest.approx(minority_share)
        counts = np.bincount(labels, minlength=10)
        assert len(set(counts[minority])) == 1 and len(set(np.delete(counts, minority))) == 1  # equal within halves
        ratio = np.array([float(r["true_density_ratio"]) for r in rows])
        assert np.allclose(ratio, np.where(in_minority, 0.25, 4.0))  # p/(1-p) and its inverse


def test_label_shift_with_an_odd_number_of_classes_keeps_rates(tmp_path):
    # 5 classes, 2 minority; rate p/(1-p) = 1/3. Reference weights (1/3, 1/3, 1, 1, 1) of 220 -> 20 and 60 each;
    # shift weights swap to (1, 1, 1/3, 1/3, 1/3) of 90 -> 30 and 10 each.
    data = get_scenario("label-shift").generate(
        tmp_path / "ls", n_reference=220, n_shift=90, source="digits", n_classes=5, p_minority=0.25
    )
    minority = json.loads((data.root / "scenario.json").read_text())["details"]["minority_classes"]
    assert len(minority) == 2
    for side, n_minority, n_majority in (("reference", 20, 60), ("shift", 30, 10)):
        rows, _ = read_side(data, side)
        counts = np.bincount([int(r["label"]) for r in rows], minlength=5)
        assert counts[minority].tolist() == [n_minority] * 2
        assert np.delete(counts, minority).tolist() == [n_majority] * 3


def test_no_shift_is_the_same_distribution_and_invert_is_not(fmnist, fmnist_cache, tmp_path):
    same = fmnist("no-shift", tmp_path, n_reference=500, n_shift=500, seed=3)
    ref_rows, ref = read_side(same, "reference")
    shift_rows, shift = read_side(same, "shift")
    assert np.array_equal(ref[..., 0], source_images(ref_rows, fmnist_cache, "train"))
    assert np.array_equal(shift[..., 0], source_images(shift_rows, fmnist_cache, "test"))
    assert {r["true_density_ratio"] for r in ref_rows + shift_rows} == {"1.0"}
    ref_counts = np.bincount([int(r["label"]) for r in ref_rows])
    assert ref_counts.tolist() == np.bincount([int(r["label"]) for r in shift_rows]).tolist() == [50] * 10
    # Fresh sample, not a copy: no shifted image equals a reference image.
    assert not {img.tobytes() for img in ref} & {img.tobytes() for img in shift}
    # Same distribution of per-image brightness; the same test flags a real shift of the same size.
    assert ks_2samp(ref.mean(axis=(1, 2, 3)), shift.mean(axis=(1, 2, 3))).pvalue > 0.01
    inverted = fmnist("invert", tmp_path, n_reference=500, n_shift=500, seed=3)
    _, inv_shift = read_side(inverted, "shift")
    assert ks_2samp(ref.mean(axis=(1, 2, 3)), inv_shift.mean(axis=(1, 2, 3))).pvalue < 1e-6


def test_toy_is_tiny_and_loads_as_matching_image_folders(tmp_path):
    data = get_scenario("toy").generate(tmp_path / "toy")
    reference, shift = ImageFolder(str(data.reference_dir)), ImageFolder(str(data.shift_dir))
    assert reference.classes == shift.classes == ["0", "1", "2", "3"]
    assert len(reference) == len(shift) == 48
    assert np.bincount(reference.targets).tolist() == [12] * 4
    image, _ = shift[0]
    assert image.mode == "RGB" and image.size == (8, 8)
    assert data.params == {"n_reference": 48, "n_shift": 48, "seed": 0, "source": "digits", "n_classes": 4}


def test_fashion_mnist_class_folders_are_path_safe(fmnist, tmp_path):
    data = fmnist("no-shift", tmp_path, n_reference=20, n_shift=20)
    assert ImageFolder(str(data.reference_dir)).classes == sorted(
        ["T-shirt_top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
    )


# ---------------------------------------------------------------------------------------------------------------------
# Determinism, reuse, complete-or-absent folders


def test_same_seed_same_bytes_other_seed_other_images(tmp_path):
    toy = get_scenario("toy")
    first = toy.generate(tmp_path / "a", seed=5)
    again = toy.generate(tmp_path / "b", seed=5)
    other = toy.generate(tmp_path / "c", seed=6)
    assert file_digest(first.root) == file_digest(again.root)
    assert (first.root / "truth.csv").read_text() != (other.root / "truth.csv").read_text()


def test_finished_folder_is_reused_and_replaced_when_parameters_change(tmp_path):
    toy = get_scenario("toy")
    first = toy.generate(tmp_path / "s")
    stamp = (first.root / "scenario.json").stat().st_mtime_ns
    reused = toy.generate(tmp_path / "s")
    assert reused.reused and not first.reused
    assert (first.root / "scenario.json").stat().st_mtime_ns == stamp

    changed = toy.generate(tmp_path / "s", n_reference=40)
    assert not changed.reused
    assert json.loads((tmp_path / "s" / "scenario.json").read_text())["params"]["n_reference"] == 40
    assert len(list((tmp_path / "s" / "reference").rglob("*.png"))) == 40
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s"]  # no temporary or old folders left


def test_a_folder_missing_images_is_regenerated(tmp_path):
    data = get_scenario("toy").generate(tmp_path / "s")
    next(data.shift_dir.rglob("*.png")).unlink()
    again = get_scenario("toy").generate(tmp_path / "s")
    assert not again.reused and len(list(again.shift_dir.rglob("*.png"))) == 48


def test_refuses_to_overwrite_a_folder_that_is_not_a_scenario(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(UsageError, match="refusing to overwrite .*mine: it is not empty and holds no scenario.json"):
        get_scenario("toy").generate(tmp_path / "mine")
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"
    (tmp_path / "file").write_text("x")
    with pytest.raises(UsageError, match="is a file"):
        get_scenario("toy").generate(tmp_path / "file")


def test_a_failed_write_leaves_no_folder_and_keeps_the_old_one(tmp_path, monkeypatch):
    toy = get_scenario("toy")
    old = toy.generate(tmp_path / "s")
    before = file_digest(old.root)

    def broken(path, rows):
        raise OSError("disk full")

    monkeypatch.setattr(registry, "write_truth_csv", broken)
    with pytest.raises(OSError, match="disk full"):
        toy.generate(tmp_path / "fresh")
    with pytest.raises(OSError, match="disk full"):
        toy.generate(tmp_path / "s", seed=9)
    assert sorted(os.listdir(tmp_path)) == ["s"]
    assert file_digest(old.root) == before


def test_source_arrays_are_not_modified(tmp_path):
    before = load_digits("test")[0].copy()
    get_scenario("invert").generate(tmp_path / "inv", n_reference=40, n_shift=40, source="digits")
    assert np.array_equal(load_digits("test")[0], before)
    assert datasets.load_digits("test")[0].flags.writeable is False
