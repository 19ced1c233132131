"""Dense per-channel depthwise convolutions on tiny maps (ptdiag.engine.depthwise) against torch's convolution."""

from __future__ import annotations

import copy
from unittest import mock

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ptdiag.engine import depthwise
from ptdiag.engine.depthwise import is_depthwise, tiny_depthwise
from ptdiag.engine.train import ArraySet, Normalizer, TrainConfig, train_model

CASES = [  # (input height, width, conv keyword arguments)
    (2, 2, dict(kernel_size=3, padding=1)),  # EfficientNet-Lite0's last block at 64 px
    (1, 1, dict(kernel_size=3, padding=1)),
    (2, 1, dict(kernel_size=3, padding=1)),
    (2, 2, dict(kernel_size=3, padding=1, stride=2)),
    (2, 2, dict(kernel_size=3, padding=2, dilation=2)),
    (2, 2, dict(kernel_size=5, padding=2, bias=True)),
    (2, 2, dict(kernel_size=(1, 3), padding=(0, 1))),
]


def _grads(conv: nn.Conv2d, x: torch.Tensor, grad: torch.Tensor) -> tuple[torch.Tensor, ...]:
    conv.zero_grad()
    x = x.detach().clone().requires_grad_()
    out = conv(x)
    out.backward(grad)
    extra = (conv.bias.grad.clone(),) if conv.bias is not None else ()
    return (out.detach(), x.grad, conv.weight.grad.clone(), *extra)


@pytest.mark.parametrize("channels_last", [True, False])
@pytest.mark.parametrize(("height", "width", "kwargs"), CASES)
def test_dense_form_equals_the_convolution(height, width, kwargs, channels_last):
    torch.manual_seed(0)
    kwargs = dict(kwargs)  # CASES is shared by the parametrised runs
    conv = nn.Conv2d(24, 24, groups=24, bias=kwargs.pop("bias", False), **kwargs)
    x = torch.randn(5, 24, height, width)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    grad = torch.randn_like(conv(x))
    expected = _grads(conv, x, grad)
    with tiny_depthwise(conv) as switched, mock.patch.object(depthwise._PerChannelMap, "apply",
                                                             wraps=depthwise._PerChannelMap.apply) as dense:
        got = _grads(conv, x, grad)
    assert switched == 1 and dense.call_count == 1
    for a, b in zip(got, expected, strict=True):
        assert a.shape == b.shape and _layouts(a) == _layouts(b)  # same values in the same memory layout
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def _layouts(t: torch.Tensor) -> tuple[bool, bool]:
    return t.is_contiguous(), t.is_contiguous(memory_format=torch.channels_last) if t.dim() == 4 else False


def test_larger_maps_and_other_convolutions_keep_the_kernel():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1, groups=8), nn.Conv2d(8, 16, 3, padding=1, groups=8),
                          nn.Conv2d(16, 16, 1))
    x = torch.randn(2, 8, 3, 3)  # 9 positions: more than MAX_POSITIONS
    expected = model(x)
    with tiny_depthwise(model) as switched, mock.patch.object(depthwise._PerChannelMap, "apply") as dense:
        got = model(x)
    assert switched == 1  # only the first: the second has two filters per channel, the third is dense
    assert not is_depthwise(model[1]) and not is_depthwise(model[2])
    dense.assert_not_called()
    assert torch.equal(got, expected)


def test_padding_strings_autocast_and_other_dtypes_keep_the_kernel():
    same = nn.Conv2d(4, 4, 3, padding="same", groups=4)
    conv = nn.Conv2d(4, 4, 3, padding=1, groups=4)
    x = torch.randn(2, 4, 2, 2)
    with tiny_depthwise(same) as switched:
        assert switched == 0
    with tiny_depthwise(conv), mock.patch.object(depthwise._PerChannelMap, "apply") as dense:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            assert conv(x).dtype == torch.bfloat16
        with pytest.raises(RuntimeError):
            conv(x.double())  # float64 input, float32 weights: the kernel's own error, not a silent cast
    dense.assert_not_called()


def test_a_copy_made_inside_the_block_computes_with_its_own_weights():
    conv = nn.Conv2d(4, 4, 3, padding=1, groups=4)
    x = torch.randn(2, 4, 2, 2)
    with tiny_depthwise(conv):
        twin = copy.deepcopy(conv)
        with torch.no_grad():
            twin.weight.zero_()
        assert torch.equal(twin(x), F.conv2d(x, twin.weight, twin.bias, padding=1, groups=4))
    with tiny_depthwise(twin) as switched:  # and it can be switched on later like any other
        assert switched == 1
    assert "forward" not in vars(twin)


def test_the_modules_are_restored_when_the_block_raises():
    conv = nn.Conv2d(4, 4, 3, padding=1, groups=4)
    with pytest.raises(KeyboardInterrupt), tiny_depthwise(conv):
        raise KeyboardInterrupt
    assert "forward" not in vars(conv)
    with mock.patch.object(depthwise._PerChannelMap, "apply") as dense:
        conv(torch.randn(1, 4, 2, 2))
    dense.assert_not_called()


class _PadsItself(nn.Conv2d):
    """Like timm's Conv2dSame: the padding lives in forward, not in `padding`."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(F.pad(x, (2, 2, 2, 2)))


def test_convolution_subclasses_keep_their_own_forward():
    conv = _PadsItself(6, 6, 5, groups=6)
    x = torch.randn(2, 6, 2, 2)
    with tiny_depthwise(conv) as switched:
        assert switched == 0 and torch.equal(conv(x), _PadsItself.forward(conv, x))


def test_the_modules_are_restored_and_their_state_untouched():
    conv = nn.Conv2d(4, 4, 3, padding=1, groups=4)
    keys = list(conv.state_dict())
    with tiny_depthwise(conv), tiny_depthwise(conv) as inner:  # nested: switched once
        assert inner == 0 and "forward" in vars(conv)
    assert "forward" not in vars(conv) and list(conv.state_dict()) == keys


def test_training_through_the_dense_form_matches_the_kernel():
    """The real training loop (fit_loop) with and without it: the same weights to float rounding."""

    def run(max_positions: int) -> tuple[list[torch.Tensor], int]:
        torch.manual_seed(0)
        model = nn.Sequential(nn.Conv2d(3, 16, 3, stride=4, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU6(),
                              nn.Conv2d(16, 16, 3, padding=1), nn.ReLU6(),  # 8 px -> 2 px: 4 positions
                              nn.Conv2d(16, 16, 3, padding=1, groups=16, bias=False), nn.BatchNorm2d(16), nn.ReLU6(),
                              nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 3))
        rng = np.random.default_rng(0)
        data = ArraySet(rng.integers(0, 255, (48, 8, 8, 3), dtype=np.uint8), np.arange(48) % 3)
        normalize = Normalizer((0.5,) * 3, (0.5,) * 3, torch.device("cpu"))
        with mock.patch.object(depthwise, "MAX_POSITIONS", max_positions), \
                mock.patch.object(depthwise._PerChannelMap, "apply", wraps=depthwise._PerChannelMap.apply) as dense:
            train_model(model, data, TrainConfig(epochs=2, lr=1e-2, batch_size=16, augment=False), normalize)
        return [p.detach() for p in model.parameters()], dense.call_count

    (dense, dense_calls), (kernel, kernel_calls) = run(4), run(0)
    assert dense_calls == 6 and kernel_calls == 0  # 3 steps per epoch, 2 epochs
    for a, b in zip(dense, kernel, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)



def test_kernel_only_switches_the_dense_form_off_and_back():
    conv = nn.Conv2d(4, 4, 3, padding=1, groups=4)
    x = torch.randn(2, 4, 2, 2)
    spy = mock.patch.object(depthwise._PerChannelMap, "apply", wraps=depthwise._PerChannelMap.apply)
    with tiny_depthwise(conv), spy as dense:
        with depthwise.kernel_only():
            conv(x)
        dense.assert_not_called()
        conv(x)
        dense.assert_called_once()
