"""Fine-tuning the top of a network on cached activations of its frozen lower blocks.

On a CPU most of a fine-tuning step is the backward pass through the early, high-resolution blocks (measured on
EfficientNet-Lite0 at 64 px: `convolution_backward` is ~70 % of the step). With the lower blocks frozen (their
BatchNorm statistics are frozen anyway), their output for an image is a constant, so it is computed once per
image and augmented view and every fine-tuning run (each learning rate and seed) trains only the blocks above it.
This is exactly "fine-tune blocks k.. with blocks ..k frozen"; the one difference from a full fine-tune is that the
augmented views are shared across runs (a run sees view (epoch + seed) mod V in each epoch instead of a fresh draw).

`TopSplit` cuts a timm model into `lower` (stem + blocks[:k]) and `upper` (blocks[k:] + neck + head) for the
families whose `forward_features` is a plain chain of children (EfficientNet/MobileNet, ResNet, ConvNeXt). Other
architectures report `None` and are fine-tuned end to end.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ptdiag.engine.folding import FoldOnFirstCall
from ptdiag.engine.train import (
    Normalizer,
    ProgressFn,
    TrainConfig,
    _autocast,
    _batches,
    augment,
    channels_last,
    fit_loop,
    forward_in_chunks,
    prepare_model,
)

# Chain layouts: (modules before the repeated blocks, name of the block container, modules after it).
_LAYOUTS = (
    (("conv_stem", "bn1"), "blocks", ("conv_head", "bn2")),  # EfficientNet, MobileNetV2/V3 (timm)
    (("stem",), "stages", ("norm_pre",)),  # ConvNeXt
)
_RESNET = (("conv1", "bn1", "act1", "maxpool"), ("layer1", "layer2", "layer3", "layer4"))


@dataclass
class TopSplit:
    """A model cut at block `k`: `lower` is frozen and cached, `upper` is trained."""

    model: nn.Module
    lower_modules: list[nn.Module]
    upper_modules: list[nn.Module]
    k: int
    n_blocks: int

    def lower(self, x: torch.Tensor) -> torch.Tensor:
        for module in self.lower_modules:
            x = module(x)
        return x

    def upper(self, h: torch.Tensor) -> torch.Tensor:
        for module in self.upper_modules:
            h = module(h)
        return self.model.forward_head(h)

    def upper_parameters(self) -> list[nn.Parameter]:
        params = [p for m in self.upper_modules for p in m.parameters()]
        params += list(self.model.get_classifier().parameters())
        return params

    def freeze_lower(self) -> None:
        """Frozen lower blocks: no gradients, eval mode (dropout off, BatchNorm statistics fixed)."""
        for module in self.lower_modules:
            module.eval()
            for p in module.parameters():
                p.requires_grad_(False)


def split_at(model: nn.Module, k: int) -> TopSplit | None:
    """Cut `model` before its k-th block (k ≥ 1), or None when the architecture has no known chain layout."""
    chain = _chain(model)
    if chain is None:
        return None
    before, blocks, after = chain
    if not 1 <= k < len(blocks):
        return None
    split = TopSplit(model, [*before, *blocks[:k]], [*blocks[k:], *after], k, len(blocks))
    return split if _matches_forward(split) else None


def _chain(model: nn.Module) -> tuple[list[nn.Module], list[nn.Module], list[nn.Module]] | None:
    for before, container, after in _LAYOUTS:
        names = (*before, container, *after)
        if all(hasattr(model, n) for n in names):
            return ([getattr(model, n) for n in before], list(getattr(model, container)),
                    [getattr(model, n) for n in after])
    if all(hasattr(model, n) for n in (*_RESNET[0], *_RESNET[1])):
        return [getattr(model, n) for n in _RESNET[0]], [getattr(model, n) for n in _RESNET[1]], []
    return None


@torch.no_grad()
def _matches_forward(split: TopSplit) -> bool:
    """The chain reproduces the model's own forward (guards against layouts with hidden extra steps)."""
    model = split.model
    was_training = model.training
    model.eval()
    x = torch.randn(1, 3, 32, 32)
    try:
        ok = torch.allclose(split.upper(split.lower(x)), model(x), rtol=1e-4, atol=1e-4)
    except RuntimeError:
        ok = False
    model.train(was_training)
    return bool(ok)


@torch.no_grad()
def lower_activations(split: TopSplit, images: np.ndarray, normalize: Normalizer, *, batch_size: int = 256,
                      view_seed: int | None = None, dtype: torch.dtype = torch.float16) -> np.ndarray:
    """Outputs of the frozen lower blocks (NCHW, `dtype`) for every image; augmented when `view_seed` is given."""
    prepare_model(split.model, normalize.device)
    split.freeze_lower()
    generator = torch.Generator().manual_seed(view_seed) if view_seed is not None else None
    outs = []
    lower = FoldOnFirstCall(nn.Sequential(*split.lower_modules))  # BatchNorm folded: the frozen pass is the job
    for idx in _batches(len(images), batch_size, None):
        x = normalize(images[idx])
        if generator is not None:
            x = channels_last(augment(x, generator))
        with _autocast(normalize.device):
            outs.append(forward_in_chunks(lower, x).to(dtype).cpu().numpy())
    return np.concatenate(outs)


def predict_upper(split: TopSplit, activations: np.ndarray, device: torch.device, batch_size: int = 256) -> np.ndarray:
    """Logits of the upper part for cached lower activations."""
    return _upper_outputs(split, activations, device, batch_size, pre_logits=False)


def upper_features(split: TopSplit, activations: np.ndarray, device: torch.device, batch_size: int = 256) -> np.ndarray:
    """Pooled pre-logit features (float32) from lower activations: the backbone's features without its lower pass."""
    return _upper_outputs(split, activations, device, batch_size, pre_logits=True)


@torch.no_grad()
def _upper_outputs(split: TopSplit, activations: np.ndarray, device: torch.device, batch_size: int,
                   pre_logits: bool) -> np.ndarray:
    split.model.eval()
    outs = []
    upper = FoldOnFirstCall(nn.Sequential(*split.upper_modules))
    for idx in _batches(len(activations), batch_size, None):
        h = channels_last(torch.from_numpy(activations[idx]).to(device).float())
        with _autocast(device):
            outs.append(split.model.forward_head(upper(h), pre_logits=pre_logits).float().cpu().numpy())
    return np.concatenate(outs)


def view_for(epoch: int, seed: int, n_views: int) -> int:
    """Which cached augmented view a run with `seed` reads in `epoch` (1-based): each view once per n_views epochs."""
    return (epoch - 1 + seed) % n_views


def train_top(split: TopSplit, views: list[np.ndarray], labels: np.ndarray, cfg: TrainConfig, device: torch.device,
              *, on_step: ProgressFn | None = None) -> None:
    """Train `split.upper` in place on cached activations: `views[v]` holds view v of every training image."""
    torch.manual_seed(cfg.seed)
    prepare_model(split.model, device)
    split.freeze_lower()

    def inputs(idx: np.ndarray, epoch: int, _generator: torch.Generator) -> torch.Tensor:
        view = views[view_for(epoch, cfg.seed, len(views))]
        return channels_last(torch.from_numpy(view[idx]).to(device).float())

    params = [p for p in split.upper_parameters() if p.requires_grad]
    fit_loop(split.model, split.upper, params, labels, inputs, cfg, device, on_step=on_step,
             on_train=split.freeze_lower)
