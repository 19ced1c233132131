"""Top-block fine-tuning on cached activations (ptdiag.engine.partial)."""

import numpy as np
import pytest
import timm
import torch

from ptdiag.engine.models import normalization
from ptdiag.engine.partial import lower_activations, predict_upper, split_at, train_top, view_for
from ptdiag.engine.train import Normalizer, TrainConfig, predict


@pytest.fixture(scope="module")
def lite0():
    torch.manual_seed(0)
    return timm.create_model("tf_efficientnet_lite0", pretrained=False, num_classes=3)


def _images(n, size=32, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


@pytest.mark.parametrize("k", [1, 3, 5, 6])
def test_split_reproduces_the_model(lite0, k):
    split = split_at(lite0, k)
    assert split is not None and split.n_blocks == 7
    normalize = Normalizer(*normalization(lite0), torch.device("cpu"))
    images = _images(6)
    acts = lower_activations(split, images, normalize)
    assert acts.dtype == np.float16
    via_split = predict_upper(split, acts, torch.device("cpu"))
    direct = predict(lite0, images, normalize)
    np.testing.assert_allclose(via_split, direct, atol=0.05)  # float16 activations


def test_resnet_and_convnext_layouts_are_found():
    for arch, blocks in (("resnet18", 4), ("convnext_atto", 4)):
        model = timm.create_model(arch, pretrained=False, num_classes=2)
        split = split_at(model, 2)
        assert split is not None and split.n_blocks == blocks, arch


def test_unknown_layout_or_bad_block_gives_none(lite0):
    vit = timm.create_model("vit_tiny_patch16_224", pretrained=False, num_classes=2, img_size=64)
    assert split_at(vit, 2) is None
    assert split_at(lite0, 0) is None and split_at(lite0, 7) is None


def test_train_top_changes_only_the_upper_blocks(lite0):
    model = timm.create_model("tf_efficientnet_lite0", pretrained=False, num_classes=3)
    model.load_state_dict(lite0.state_dict())
    split = split_at(model, 5)
    normalize = Normalizer(*normalization(model), torch.device("cpu"))
    images, labels = _images(24), np.arange(24) % 3
    views = [lower_activations(split, images, normalize, view_seed=v) for v in range(2)]
    assert not np.array_equal(views[0], views[1])  # augmented views differ
    before = {k: v.clone() for k, v in model.state_dict().items()}
    train_top(split, views, labels, TrainConfig(epochs=2, lr=1e-2, batch_size=8, freeze_bn=True), torch.device("cpu"))
    after = model.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and all(k.startswith(("blocks.5", "blocks.6", "conv_head", "bn2", "classifier")) for k in changed)
    assert any(k.startswith("blocks.5") for k in changed)
    # frozen BatchNorm: running statistics of the trained blocks do not move either
    assert not any(k.endswith(("running_mean", "running_var")) for k in changed)


def test_each_seed_sees_every_view_once_per_cycle():
    for seed in range(4):
        assert sorted(view_for(epoch, seed, 3) for epoch in (1, 2, 3)) == [0, 1, 2]
    assert view_for(1, 0, 3) != view_for(1, 1, 3)


def test_features_from_cached_activations_equal_the_backbones_own(lite0):
    from ptdiag.engine.features import extract_features
    from ptdiag.engine.partial import upper_features

    split = split_at(lite0, 6)
    normalize = Normalizer(*normalization(lite0), torch.device("cpu"))
    images = _images(5)
    acts = lower_activations(split, images, normalize, dtype=torch.float32)
    np.testing.assert_allclose(upper_features(split, acts, torch.device("cpu")),
                               extract_features(lite0, images, normalize), rtol=1e-5, atol=1e-5)


def test_cpu_chunked_forward_gives_the_whole_batch_numbers(lite0, monkeypatch):
    """Chunking a CPU forward (to keep activations off fresh mmap'ed pages) gives the whole batch's numbers.

    Not bit for bit: oneDNN picks kernels by batch size and CPU (AVX2 and AVX-512 round differently; 8e-7 was
    measured on an AVX-512 Intel CPU), so float32 logits are compared to 1e-5 and the float16 activations to one
    float16 rounding step (a float32 difference of 1e-6 can flip the last of its 11 bits).
    """
    import ptdiag.engine.train as train

    normalize = Normalizer(*normalization(lite0), torch.device("cpu"))
    images = _images(75)  # not a multiple of the chunk
    split = split_at(lite0, 6)
    monkeypatch.setattr(train, "CPU_CHUNK_VALUES", 10**9)
    whole = (predict(lite0, images, normalize), lower_activations(split, images, normalize, view_seed=1))
    monkeypatch.setattr(train, "CPU_CHUNK_VALUES", 16 * 3 * 32 * 32)  # 16 rows
    chunked = (predict(lite0, images, normalize), lower_activations(split, images, normalize, view_seed=1))
    np.testing.assert_allclose(whole[0], chunked[0], rtol=1e-5, atol=1e-5)
    assert whole[1].dtype == chunked[1].dtype == np.float16 and whole[1].shape == chunked[1].shape
    np.testing.assert_allclose(whole[1].astype(np.float32), chunked[1].astype(np.float32), rtol=2e-3, atol=1e-3)
    # a chunking bug (rows out of order, a chunk dropped or repeated) would move values by far more than that
    assert np.abs(whole[1][1:].astype(np.float32) - whole[1][:-1].astype(np.float32)).max() > 0.1
