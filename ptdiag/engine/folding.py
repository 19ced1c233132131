"""BatchNorm folded into the convolution before it, for frozen (eval-mode) forward passes.

In eval mode a BatchNorm is a fixed per-channel affine map, so conv → BatchNorm is one convolution with rescaled
weights and a bias (`torch.nn.utils.fuse_conv_bn_eval`), and the separate BatchNorm pass over every activation goes
away (`benchmarks/bench_folding.py` measures it; docs/VALIDATION.md has the figures). Outputs agree to float
rounding (relative ~1e-6), not bitwise.

Pairs are found by registration order (a Conv2d immediately followed by a BatchNorm2d among a module's children),
which is how timm and torchvision build their networks. Because registration order need not be the order of the
forward pass, `inference_form` checks the folded copy against the original on a sample batch and keeps the
original when they differ. Training never sees a folded module: the copy is made for inference and thrown away.
`FoldOnFirstCall` is how the forward passes use it: the first batch they run is the sample.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterator
from itertools import pairwise

import torch
from timm.layers import BatchNormAct2d
from torch import nn
from torch.nn.utils import fuse_conv_bn_eval

# A folded forward pass agrees with the original to float rounding; far looser than that, far tighter than a bug.
_RTOL = 1e-3
CHECK_ROWS = 4  # inputs of the first batch on which a folded copy must reproduce the original


def folded_copy(module: nn.Module) -> tuple[nn.Module, int]:
    """An eval-mode deep copy of `module` with every Conv2d → BatchNorm2d pair folded; (copy, pairs folded)."""
    folded = copy.deepcopy(module).eval()
    return folded, _fold_children(folded)


def _fold_children(parent: nn.Module) -> int:
    count = 0
    for (conv_name, conv), (norm_name, norm) in _foldable_pairs(parent):
        setattr(parent, conv_name, fuse_conv_bn_eval(conv, norm))
        setattr(parent, norm_name, _after_norm(norm))
        count += 1
    return count + sum(_fold_children(child) for _, child in parent.named_children())


def _foldable_pairs(parent: nn.Module) -> list[tuple[tuple[str, nn.Module], tuple[str, nn.Module]]]:
    """(conv, BatchNorm) children of `parent`, adjacent in registration order, that can be merged."""
    return [(a, b) for a, b in pairwise(parent.named_children())
            if isinstance(a[1], nn.Conv2d) and _after_norm(b[1]) is not None and a[1].out_channels == b[1].num_features]


def has_foldable_pairs(module: nn.Module) -> bool:
    """Whether `module` has anything to fold (checked without copying it: a ViT has no BatchNorm at all)."""
    return any(_foldable_pairs(m) for m in module.modules())


def _after_norm(norm: nn.Module) -> nn.Module | None:
    """What remains of a foldable BatchNorm once its affine map is in the convolution (None: not foldable)."""
    if not isinstance(norm, nn.BatchNorm2d) or norm.running_mean is None or norm.running_var is None:
        return None
    if type(norm) is nn.BatchNorm2d:
        return nn.Identity()
    if type(norm) is BatchNormAct2d:  # timm: BatchNorm, then dropout and activation
        return nn.Sequential(norm.drop, norm.act)
    return None  # another subclass may do more than BatchNorm: leave it alone


_UNFOLDED = False


@contextlib.contextmanager
def unfolded() -> Iterator[None]:
    """Within the block `inference_form` keeps every module as it is (benchmarks time both forms in one process)."""
    global _UNFOLDED
    previous, _UNFOLDED = _UNFOLDED, True
    try:
        yield
    finally:
        _UNFOLDED = previous


@torch.no_grad()
def inference_form(module: nn.Module, batch: torch.Tensor) -> nn.Module:
    """`module`'s folded copy when it reproduces `module` (in eval mode) on the first rows of `batch`, else `module`.

    The check runs in float32, autocast or not. The copy is in eval mode, on `batch`'s device, channels-last;
    `module` itself is not changed.
    """
    if _UNFOLDED or not has_foldable_pairs(module):
        return module
    sample = batch[:CHECK_ROWS].float()
    folded, _count = folded_copy(module)
    folded = _like(folded, sample)
    with torch.autocast(sample.device.type, enabled=False):
        reference, candidate = module(sample), folded(sample)
    scale = max(1.0, float(reference.abs().max())) if reference.numel() else 1.0
    same = candidate.shape == reference.shape and torch.allclose(candidate.float(), reference.float(), rtol=_RTOL,
                                                                  atol=_RTOL * scale)
    return folded if same else module


class FoldOnFirstCall:
    """Calls `module` (in eval mode), through its folded copy once the first batch has checked it (`inference_form`)."""

    def __init__(self, module: nn.Module):
        self.module = module
        self._chosen: nn.Module | None = None

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self._chosen is None:
            self._chosen = inference_form(self.module, x)
        return self._chosen(x)


def _like(module: nn.Module, sample: torch.Tensor) -> nn.Module:
    """`module` on `sample`'s device, channels-last as the rest of the engine runs (`train.prepare_model`)."""
    return module.to(device=sample.device, memory_format=torch.channels_last)
