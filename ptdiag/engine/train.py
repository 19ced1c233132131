"""The one training loop, used for from-scratch baselines and full fine-tuning alike.

Images arrive as uint8 NHWC arrays (from the decode cache); batches are converted, normalised and augmented on
the device. AdamW with linear warm-up and cosine decay, gradient clipping, optional frozen BatchNorm statistics
(fine-tuning a pre-trained backbone on a small set otherwise wrecks its running statistics), mixed precision on GPU.
Models and batches use the channels-last memory layout: faster per step on CPUs for the small CNN and
EfficientNet-Lite0 alike (docs/VALIDATION.md), and the usual choice with AMP on GPUs.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ptdiag.data.types import ArraySet  # re-exported: the training loop's input type
from ptdiag.engine.depthwise import tiny_depthwise
from ptdiag.engine.folding import FoldOnFirstCall
from ptdiag.stats.atc import confidence_scores


@dataclass(frozen=True)
class TrainConfig:
    epochs: int
    lr: float
    batch_size: int = 64
    weight_decay: float = 0.05
    warmup_epochs: float = 0.5
    label_smoothing: float = 0.1
    grad_clip: float = 1.0
    freeze_bn: bool = False
    augment: bool = True
    seed: int = 0


ProgressFn = Callable[[int, int], None]  # (steps done, total steps)


def resize_images(images: np.ndarray, size: int) -> np.ndarray:
    """Antialiased resize of a uint8 NHWC array to size×size (done once, not per epoch)."""
    if images.shape[1] == size and images.shape[2] == size:
        return images
    out = np.empty((len(images), size, size, 3), dtype=np.uint8)
    for start in range(0, len(images), 1024):
        chunk = torch.from_numpy(np.ascontiguousarray(images[start:start + 1024])).permute(0, 3, 1, 2).float()
        chunk = F.interpolate(chunk, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
        out[start:start + 1024] = chunk.round().clamp(0, 255).byte().permute(0, 2, 3, 1).numpy()
    return out


class Normalizer:
    """uint8 NHWC numpy batch -> normalised float NCHW tensor on the device."""

    def __init__(self, mean: tuple[float, ...], std: tuple[float, ...], device: torch.device):
        self.device = device
        self.mean = torch.tensor(mean, device=device).view(1, 3, 1, 1) * 255.0
        self.std = torch.tensor(std, device=device).view(1, 3, 1, 1) * 255.0

    def __call__(self, batch: np.ndarray | torch.Tensor) -> torch.Tensor:
        if isinstance(batch, torch.Tensor):  # already resident on the device (see `on_device`)
            x = batch
        else:
            x = torch.from_numpy(np.ascontiguousarray(batch)).to(self.device, non_blocking=True)
        return channels_last((x.permute(0, 3, 1, 2).float() - self.mean) / self.std)


class DeviceImages:
    """uint8 images uploaded to an accelerator once; indexing with numpy indices returns a device tensor."""

    def __init__(self, images: np.ndarray, device: torch.device):
        self.tensor = torch.from_numpy(np.ascontiguousarray(images)).to(device)
        self.device = device

    def __len__(self) -> int:
        return self.tensor.shape[0]

    def __getitem__(self, idx: np.ndarray) -> torch.Tensor:
        return self.tensor[torch.from_numpy(np.asarray(idx)).to(self.device)]


RESIDENT_SHARE = 0.25  # keep images on the accelerator when they take at most this share of its free memory


def on_device(images: np.ndarray, device: torch.device, *, force: bool = False) -> np.ndarray | DeviceImages:
    """Images resident on a CUDA device when they fit (no host-to-device copy per batch), else unchanged."""
    if isinstance(images, DeviceImages) or not isinstance(images, np.ndarray):  # disk-backed images stay on the host
        return images
    if not force:
        if device.type != "cuda":
            return images
        free, _total = torch.cuda.mem_get_info(device)
        if images.nbytes > RESIDENT_SHARE * free:
            return images
    return DeviceImages(images, device)


def channels_last(x: torch.Tensor) -> torch.Tensor:
    return x.contiguous(memory_format=torch.channels_last)


def prepare_model(model: nn.Module, device: torch.device) -> nn.Module:
    """Move to the device in the channels-last layout (in place; returns the model)."""
    return model.to(device=device, memory_format=torch.channels_last)


def augment(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random horizontal flip and a random translation of up to 1/8 of the side (reflect padding)."""
    n, _, h, w = x.shape
    flip = torch.rand(n, generator=generator) < 0.5
    x = torch.where(flip.to(x.device).view(n, 1, 1, 1), x.flip(3), x)
    pad = max(1, h // 8)
    padded = F.pad(x, (pad, pad, pad, pad), mode="reflect")
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=generator).tolist()
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=generator).tolist()
    return torch.stack([padded[i, :, dy[i]:dy[i] + h, dx[i]:dx[i] + w] for i in range(n)])


def _batches(n: int, batch_size: int, generator: torch.Generator | None) -> Iterator[np.ndarray]:
    order = torch.randperm(n, generator=generator).numpy() if generator is not None else np.arange(n)
    for start in range(0, n, batch_size):
        yield np.sort(order[start:start + batch_size])  # sorted indices read a memmap sequentially


def set_bn_eval(model: nn.Module) -> None:
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.eval()


CPU_CHUNK_VALUES = 32 * 3 * 64 * 64  # input values per forward call on a CPU: 32 images at 64 px


def forward_in_chunks(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """`fn(x)` evaluated a few rows at a time on a CPU (one call elsewhere); same numbers per row.

    On a CPU a 256-image batch at 64 px makes activation tensors of 30-100 MB, which glibc serves with fresh
    mmap'ed pages each call, and page faults take a large share of a frozen forward pass. Chunks of
    CPU_CHUNK_VALUES input values (32 images at 64 px, 128 at 32 px) stay in the reused heap. Rows are independent
    in eval mode, so each row's outputs equal the whole batch's to float rounding (kernels are chosen per batch
    size and CPU, so not always bitwise; tested with stated tolerances).
    """
    rows = max(1, CPU_CHUNK_VALUES // max(1, x[0].numel())) if len(x) else 1
    if x.device.type != "cpu" or len(x) <= rows:
        return fn(x)
    return torch.cat([fn(x[start:start + rows]) for start in range(0, len(x), rows)])


def _autocast(device: torch.device):
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16)
    return torch.autocast(device.type, enabled=False)


@torch.no_grad()
def predict(model: nn.Module, images: np.ndarray, normalize: Normalizer, batch_size: int = 256) -> np.ndarray:
    """Outputs of `model` in eval mode (BatchNorm folded, `ptdiag.engine.folding`) for every image, float32."""
    prepare_model(model, normalize.device).eval()
    images = on_device(images, normalize.device)
    outs = []
    fast = FoldOnFirstCall(model)
    for idx in _batches(len(images), batch_size, None):
        with _autocast(normalize.device):
            out = forward_in_chunks(fast, normalize(images[idx]))
        outs.append(out.float().cpu().numpy())
    return np.concatenate(outs) if outs else np.zeros((0, 0), dtype=np.float32)


def train_model(
    model: nn.Module,
    train: ArraySet,
    cfg: TrainConfig,
    normalize: Normalizer,
    *,
    eval_sets: dict[str, np.ndarray] | None = None,
    eval_epochs: tuple[int, ...] = (),
    on_step: ProgressFn | None = None,
    scores: dict[int, dict[str, np.ndarray]] | None = None,
) -> dict[int, dict[str, np.ndarray]]:
    """Train in place; return {epoch: {set name: predicted labels}} for each epoch in `eval_epochs` (and, when a
    `scores` dict is given, fill it the same way with each prediction's `confidence_scores`)."""
    torch.manual_seed(cfg.seed)
    prepare_model(model, normalize.device)
    images = on_device(train.images, normalize.device)

    def inputs(idx: np.ndarray, epoch: int, generator: torch.Generator) -> torch.Tensor:
        x = normalize(images[idx])
        return channels_last(augment(x, generator)) if cfg.augment else x

    def after_epoch(epoch: int) -> None:
        if epoch in eval_epochs and eval_sets:
            logits = {name: predict(model, images, normalize) for name, images in eval_sets.items()}
            results[epoch] = {name: out.argmax(1) for name, out in logits.items()}
            if scores is not None:
                scores[epoch] = {name: confidence_scores(out) for name, out in logits.items()}

    results: dict[int, dict[str, np.ndarray]] = {}
    params = [p for p in model.parameters() if p.requires_grad]
    fit_loop(model, model, params, train.labels, inputs, cfg, normalize.device, on_step=on_step,
             after_epoch=after_epoch)
    return results


# One fused AdamW kernel per step instead of ~10 ops per parameter tensor (faster top-block steps, docs/VALIDATION.md),
# the same update to float rounding. torch has it for these devices from 2.4 (we require 2.5).
FUSED_ADAMW_DEVICES = ("cpu", "cuda")

BatchInputs = Callable[[np.ndarray, int, torch.Generator], torch.Tensor]  # (indices, epoch, generator) -> batch


def fit_loop(model: nn.Module, forward: Callable[[torch.Tensor], torch.Tensor], params: list[nn.Parameter],
             labels: np.ndarray, inputs: BatchInputs, cfg: TrainConfig, device: torch.device, *,
             on_step: ProgressFn | None = None, on_train: Callable[[], None] | None = None,
             after_epoch: Callable[[int], None] | None = None) -> None:
    """The optimisation itself: AdamW (no decay on biases/norms), warm-up + cosine, clipping, AMP on GPU.

    `inputs` builds each batch, so the same loop trains on images or on cached activations; `on_train` runs after
    `model.train()` at each epoch (e.g. to keep frozen parts in eval mode).
    """
    generator = torch.Generator().manual_seed(cfg.seed)
    decay = [p for p in params if p.ndim > 1]
    no_decay = [p for p in params if p.ndim <= 1]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                                   {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr,
                                  fused=device.type in FUSED_ADAMW_DEVICES or None)
    steps_per_epoch = math.ceil(len(labels) / cfg.batch_size)
    total = steps_per_epoch * cfg.epochs
    warmup = int(cfg.warmup_epochs * steps_per_epoch)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: _lr_factor(s, warmup, total))
    scaler = torch.amp.GradScaler(enabled=device.type == "cuda" and not torch.cuda.is_bf16_supported())
    targets = torch.from_numpy(labels.astype(np.int64))
    step = 0
    for epoch in range(1, cfg.epochs + 1):
        model.train()
        if cfg.freeze_bn:
            set_bn_eval(model)
        if on_train is not None:
            on_train()
        with tiny_depthwise(model):  # CPU steps only; evaluation in after_epoch sees the model as built
            for idx in _batches(len(labels), cfg.batch_size, generator):
                x = inputs(idx, epoch, generator)
                y = targets[idx].to(device)
                with _autocast(device):
                    loss = F.cross_entropy(forward(x), y, label_smoothing=cfg.label_smoothing)
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                if cfg.grad_clip:
                    scaler.unscale_(optimizer)
                    nn.utils.clip_grad_norm_(params, cfg.grad_clip)
                scaler.step(optimizer)
                scaler.update()
                scheduler.step()
                step += 1
                if on_step is not None:
                    on_step(step, total)
        if not math.isfinite(float(loss.detach())):
            raise FloatingPointError(f"training diverged at epoch {epoch} (loss {float(loss.detach())}); lower the lr")
        if after_epoch is not None:
            after_epoch(epoch)


def _lr_factor(step: int, warmup: int, total: int) -> float:
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))
