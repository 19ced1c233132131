"""Depthwise convolutions on tiny feature maps, trained as per-channel dense maps on a CPU.

At 64 px, EfficientNet-Lite0's last block runs its depthwise 3×3 convolution on 2×2 maps. oneDNN's CPU kernels for
a kernel larger than the map are slow on some CPUs and were a large part of a top-block training step. On a
map of P ≤ 4 positions the convolution is, per channel, a P×P matrix whose entries are kernel taps, so it is a
handful of vector multiply-adds over the channels (`benchmarks/bench_depthwise.py` measures both; the figures are in
docs/VALIDATION.md).

The map from taps to matrix entries is computed once per input size by running the convolution itself on one-hot
kernels and basis images, so stride, padding and dilation mean exactly what they mean to `F.conv2d`. Outputs equal
the convolution's to float rounding (the forward pass was bitwise equal on the shapes tested), and gradients agree
to ~1e-6 relative. `tiny_depthwise(model)` switches it on for training and restores the modules afterwards; the
model's parameters and state dict are untouched. CPU autocast and mixed dtypes keep the kernel.
"""

from __future__ import annotations

import contextlib
import types
import weakref
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import nn

# Largest map (H×W) handled densely: oneDNN's kernel is slow only when the 3×3 kernel exceeds the map; at 3×3 and
# 4×4 the dense form's P² multiply-adds are the slower of the two (measured by benchmarks/bench_depthwise.py).
MAX_POSITIONS = 4


class _PerChannelMap(torch.autograd.Function):
    """y[:, o, c] = Σ_i x[:, i, c] · M[o, i, c] for x [B, P_in, C] and M [P_out, P_in, C]."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, matrix: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x, matrix)
        out = x.new_empty((x.shape[0], matrix.shape[0], x.shape[2]))
        for o in range(matrix.shape[0]):
            acc = torch.mul(x[:, 0], matrix[o, 0])
            for i in range(1, matrix.shape[1]):
                acc.addcmul_(x[:, i], matrix[o, i])
            out[:, o] = acc
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        x, matrix = ctx.saved_tensors
        grad = grad.contiguous()
        grad_x = (grad.unsqueeze(2) * matrix.unsqueeze(0)).sum(1) if ctx.needs_input_grad[0] else None
        grad_matrix = (grad.unsqueeze(2) * x.unsqueeze(1)).sum(0) if ctx.needs_input_grad[1] else None
        return grad_x, grad_matrix


def is_depthwise(module: nn.Module) -> bool:
    """A plain Conv2d with one filter per input channel and numeric zero padding (the form `tiny_depthwise` rewrites).

    Subclasses are left alone: they may change the forward pass (timm's `Conv2dSame` pads its input itself)."""
    return (type(module) is nn.Conv2d and module.groups == module.in_channels == module.out_channels
            and module.padding_mode == "zeros" and module.groups > 1 and not isinstance(module.padding, str))


def _tap_map(conv: nn.Conv2d, height: int, width: int) -> torch.Tensor:
    """S [taps, P_out, P_in]: which kernel tap links input position i to output position o (0 or 1)."""
    positions = height * width
    basis = torch.eye(positions).view(positions, 1, height, width)
    kh, kw = conv.kernel_size
    taps = torch.eye(kh * kw).view(kh * kw, 1, kh, kw)
    out = F.conv2d(basis, taps, stride=conv.stride, padding=conv.padding, dilation=conv.dilation)  # [P_in, taps, ..]
    return out.flatten(2).permute(1, 2, 0).contiguous()


def _dense_forward(conv: nn.Conv2d, cache: dict[tuple[int, int], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    batch, channels, height, width = x.shape
    if (height, width) not in cache:
        cache[(height, width)] = _tap_map(conv, height, width)
    taps = cache[(height, width)].to(x.dtype)
    n_taps, p_out, p_in = taps.shape
    matrix = (taps.view(n_taps, -1).T @ conv.weight.view(channels, n_taps).T).view(p_out, p_in, channels)
    flat = x.permute(0, 2, 3, 1).reshape(batch, p_in, channels)  # a view for channels-last inputs
    out = _PerChannelMap.apply(flat, matrix)
    if conv.bias is not None:
        out = out + conv.bias
    out_h, out_w = _out_size(conv, height, width)
    out = out.view(batch, out_h, out_w, channels).permute(0, 3, 1, 2)  # channels-last strides
    return out.contiguous(memory_format=_layout(x))  # the layout the kernel would return


def _layout(x: torch.Tensor) -> torch.memory_format:
    channels_last = x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()
    return torch.channels_last if channels_last else torch.contiguous_format


def _out_size(conv: nn.Conv2d, height: int, width: int) -> tuple[int, int]:
    sizes = [(size + 2 * p - d * (k - 1) - 1) // s + 1 for size, k, s, d, p
             in zip((height, width), conv.kernel_size, conv.stride, conv.dilation, conv.padding, strict=True)]
    return sizes[0], sizes[1]


# Convolutions switched on by an open `tiny_depthwise` block, each with its tap maps by input size. A module that is
# not in here (e.g. a deep copy made inside the block) runs its class's forward even if it carries the patched one.
_ACTIVE: weakref.WeakKeyDictionary[nn.Conv2d, dict[tuple[int, int], torch.Tensor]] = weakref.WeakKeyDictionary()


_KERNEL_ONLY = False


@contextlib.contextmanager
def kernel_only() -> Iterator[None]:
    """Within the block every depthwise convolution takes torch's kernel, switched on or not (benchmarks compare the
    two forms in one process with it)."""
    global _KERNEL_ONLY
    previous, _KERNEL_ONLY = _KERNEL_ONLY, True
    try:
        yield
    finally:
        _KERNEL_ONLY = previous


def _tiny_forward(self: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
    """The forward `tiny_depthwise` installs on an instance: dense on small CPU maps while active, else the kernel."""
    cache = _ACTIVE.get(self)
    dense = (cache is not None and not _KERNEL_ONLY and x.device.type == "cpu" and x.dim() == 4
             and x.shape[2] * x.shape[3] <= MAX_POSITIONS and x.dtype == self.weight.dtype
             and not torch.is_autocast_enabled("cpu"))
    return _dense_forward(self, cache, x) if dense else type(self).forward(self, x)


@contextlib.contextmanager
def tiny_depthwise(model: nn.Module) -> Iterator[int]:
    """Within the block, `model`'s depthwise convolutions run as dense per-channel maps on CPU inputs of at most
    MAX_POSITIONS positions (other inputs, and autocast, take the usual kernel); yields how many were switched.

    The switch is an instance attribute `forward` bound to each convolution and removed on exit. A deep copy made
    inside the block computes with the kernel (it is not registered as active); a trace records the dense form."""
    convs = [m for m in model.modules() if is_depthwise(m) and m not in _ACTIVE]  # nested use: switched once
    for conv in convs:
        _ACTIVE[conv] = {}
        conv.forward = types.MethodType(_tiny_forward, conv)
    try:
        yield len(convs)
    finally:
        for conv in convs:
            _ACTIVE.pop(conv, None)
            vars(conv).pop("forward", None)  # back to the class's method
