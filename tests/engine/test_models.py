import numpy as np
import pytest
import timm
import torch

from ptdiag.engine.models import (
    BackboneSpec,
    SmallCNN,
    bundled_lite0_weights,
    create_baseline,
    create_pretrained,
    pick_device,
    remap_by_order,
)
from ptdiag.errors import ModelError


def test_smallcnn_is_a_timm_model():
    model = timm.create_model("ptdiag_smallcnn", num_classes=7, width=8)
    assert isinstance(model, SmallCNN)
    assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 7)
    assert model.forward_head(model.forward_features(torch.zeros(1, 3, 32, 32)), pre_logits=True).shape == (1, 32)


def test_remap_by_order_renames_and_checks_shapes():
    src = {"a.w": torch.ones(2, 3), "a.b": torch.zeros(2)}
    ref = {"x.weight": torch.empty(2, 3), "x.bias": torch.empty(2)}
    out = remap_by_order(src, ref)
    assert list(out) == ["x.weight", "x.bias"] and torch.equal(out["x.weight"], src["a.w"])
    with pytest.raises(ModelError, match="does not fit"):
        remap_by_order({"a": torch.ones(3, 2), "b": torch.zeros(2)}, ref)
    with pytest.raises(ModelError, match="tensors"):
        remap_by_order({"a": torch.ones(2, 3)}, ref)


def test_bundled_lite0_loads_every_tensor(tmp_path):
    path = bundled_lite0_weights(tmp_path)
    state = torch.load(path, map_location="cpu", weights_only=True)
    reference = timm.create_model("tf_efficientnet_lite0", pretrained=False).state_dict()
    assert list(state) == list(reference)
    assert all(state[k].shape == reference[k].shape for k in state)
    assert bundled_lite0_weights(tmp_path) == path  # cached, not converted again


def test_pretrained_backbone_differs_from_random_init(monkeypatch, tmp_path):
    monkeypatch.setenv("PTDIAG_CACHE_DIR", str(tmp_path))
    model = create_pretrained(BackboneSpec("tf_efficientnet_lite0"), num_classes=5)
    random = timm.create_model("tf_efficientnet_lite0", num_classes=5)
    assert model.get_classifier().out_features == 5
    assert not torch.allclose(model.conv_stem.weight, random.conv_stem.weight)


def test_local_checkpoint_roundtrip(tmp_path):
    base = create_baseline(4, arch="resnet10t")
    torch.save({"state_dict": base.state_dict()}, tmp_path / "w.pth")
    model = create_pretrained(BackboneSpec("resnet10t", str(tmp_path / "w.pth")), num_classes=3)
    assert torch.equal(model.conv1[0].weight, base.conv1[0].weight)
    with pytest.raises(ModelError, match="tensors"):
        create_pretrained(BackboneSpec("resnet18", str(tmp_path / "w.pth")), num_classes=3)
    with pytest.raises(ModelError, match="not found"):
        create_pretrained(BackboneSpec("resnet10t", str(tmp_path / "nope.pth")), num_classes=3)
    (tmp_path / "bad.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(ModelError, match="weights-only"):
        create_pretrained(BackboneSpec("resnet10t", str(tmp_path / "bad.pth")), num_classes=3)


def test_hub_model_offline_fails_fast(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelError, match="offline"):
        create_pretrained(BackboneSpec("resnet10t"), num_classes=3)
    with pytest.raises(ModelError, match="unknown timm model"):
        create_pretrained(BackboneSpec("no_such_net_xyz"), num_classes=3)


def test_device_choice():
    assert pick_device("cpu").type == "cpu"
    if not torch.cuda.is_available():
        with pytest.raises(ModelError, match="CUDA"):
            pick_device("cuda")
    assert np.isscalar(1)
