"""BatchNorm folding for inference: the folded copy reproduces the model, and is refused when it would not."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from ptdiag.engine.folding import folded_copy, inference_form
from ptdiag.engine.models import create_baseline, normalization
from ptdiag.engine.train import Normalizer, predict


def _with_running_stats(model: nn.Module, inputs: torch.Tensor) -> nn.Module:
    """Non-trivial BatchNorm statistics and affine weights, as after training."""
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(inputs)
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.weight.uniform_(0.5, 2.0)
                module.bias.uniform_(-1.0, 1.0)
    return model.eval()


def _baseline_cnn() -> nn.Module:
    torch.manual_seed(0)
    return _with_running_stats(create_baseline(4, arch="ptdiag_smallcnn", width=8), torch.randn(16, 3, 16, 16) * 2 + 1)


def test_folded_copy_reproduces_the_baseline_cnn_and_leaves_it_unchanged():
    model = _baseline_cnn()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    folded, count = folded_copy(model)
    assert count == 6  # every conv of the three stages
    assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
    x = torch.randn(8, 3, 16, 16) * 2 + 1
    with torch.no_grad():
        expected, got = model(x), folded(x)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert sum(isinstance(m, nn.BatchNorm2d) for m in model.modules()) == 6


def test_folded_copy_reproduces_efficientnet_lite0_blocks():
    timm = pytest.importorskip("timm")
    torch.manual_seed(0)
    model = _with_running_stats(timm.create_model("tf_efficientnet_lite0", pretrained=False, num_classes=5),
                                torch.randn(4, 3, 32, 32))
    folded, count = folded_copy(model)
    assert count >= 30  # stem, head and the blocks' convolutions
    assert not any(type(m).__name__ == "BatchNormAct2d" for m in folded.modules())
    x = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(folded(x), model(x), rtol=1e-3, atol=1e-4)


class _NormBeforeConv(nn.Module):
    """Registered conv-then-norm, but the forward pass normalises first: folding by order would be wrong."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 1)
        self.norm = nn.BatchNorm2d(3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(self.norm(x))


def test_inference_form_refuses_a_fold_that_changes_the_output():
    torch.manual_seed(0)
    model = _with_running_stats(_NormBeforeConv(), torch.randn(16, 3, 4, 4) * 3 + 2)
    x = torch.randn(4, 3, 4, 4)
    _folded, count = folded_copy(model)
    assert count == 1  # the order-based fold happens...
    assert inference_form(model, x) is model  # ...and the check against the original throws it away


def test_inference_form_uses_the_fold_when_it_matches():
    model = _baseline_cnn()
    chosen = inference_form(model, torch.randn(4, 3, 16, 16))
    assert chosen is not model
    assert not any(isinstance(m, nn.BatchNorm2d) for m in chosen.modules())


def test_predict_matches_the_unfolded_model_and_keeps_it_trainable():
    model = _baseline_cnn()
    images = np.random.default_rng(0).integers(0, 255, (40, 16, 16, 3), dtype=np.uint8)
    normalize = Normalizer(*normalization(model), torch.device("cpu"))
    with torch.no_grad():
        direct = model(normalize(images)).numpy()
    got = predict(model, images, normalize)
    np.testing.assert_allclose(got, direct, rtol=1e-4, atol=1e-4)
    assert (got.argmax(1) == direct.argmax(1)).all()
    assert sum(isinstance(m, nn.BatchNorm2d) for m in model.modules()) == 6  # the model itself still has them


def test_a_model_without_batchnorm_is_returned_as_is_without_a_copy(monkeypatch):
    import ptdiag.engine.folding as folding

    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.LayerNorm([4, 2, 2]), nn.ReLU())
    monkeypatch.setattr(folding.copy, "deepcopy", lambda *_: pytest.fail("copied a model with nothing to fold"))
    assert not folding.has_foldable_pairs(model)
    assert inference_form(model, torch.randn(2, 3, 4, 4)) is model


def test_fold_on_first_call_checks_in_float32_under_autocast():
    from ptdiag.engine.folding import FoldOnFirstCall

    model = _baseline_cnn()
    x = torch.randn(8, 3, 16, 16) * 2 + 1
    fast = FoldOnFirstCall(model)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        fast(x)  # bf16 rounding (~1e-2) would fail the check if it ran under autocast
    assert fast._chosen is not model
    with torch.no_grad():
        torch.testing.assert_close(fast(x), model(x), rtol=1e-4, atol=1e-4)


def test_unfolded_keeps_the_module_as_it_is_and_restores_folding():
    from ptdiag.engine.folding import unfolded

    model = _baseline_cnn()
    with unfolded():
        assert inference_form(model, torch.randn(4, 3, 16, 16)) is model
    assert inference_form(model, torch.randn(4, 3, 16, 16)) is not model
