"""Image classifier = preprocessor -> backbone -> head, so every backbone trains as a classifier.

Calling convention (torchvision-style, see docs/CONTRACTS.md):
- train mode: ``model(inputs, targets) -> {'loss_cls': scalar, 'train_err': scalar}``
  (``train_err`` is the top-1 error of the batch in [0, 1], read by e.g. ``WarmupUntilLR``);
- eval mode: ``model(inputs) -> N x C`` logits.
``inputs`` is a uint8 ``N x 3 x H x W`` batch (normalised by the preprocessor) or a float
batch taken as already normalised.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ...registry import MODELS
from ..backbones.vgg import VGG
from ..utils.init import normal_init

IMAGENET_MEAN = (123.675, 116.28, 103.53)  # RGB, 0..255 units (torchvision's, x255)
IMAGENET_STD = (58.395, 57.12, 57.375)


class ClsPreprocessor(nn.Module):
    """Normalise uint8 images on the model's device: ``(x - mean) / std``.

    ``mean`` is per channel (3 values) or per pixel (``3 x H x W``, the paper's per-pixel mean
    subtraction; bilinearly resized when the input size differs). ``std`` is per channel or
    ``None`` (no scaling). Float inputs are returned unchanged (taken as already normalised).
    Both are buffers, so a per-pixel mean computed from data is saved with the checkpoint.
    """

    def __init__(
        self,
        mean: Sequence[float] | torch.Tensor = IMAGENET_MEAN,
        std: Sequence[float] | torch.Tensor | None = IMAGENET_STD,
    ) -> None:
        super().__init__()
        # validate on the CPU (works under ``with torch.device('meta')`` too), then move to
        # the default device of the surrounding construction context
        mean_t = torch.as_tensor(mean, dtype=torch.float32, device="cpu")
        if mean_t.dim() == 1 and mean_t.numel() == 3:
            mean_t = mean_t.view(1, 3, 1, 1)
        elif mean_t.dim() == 3 and mean_t.shape[0] == 3:
            mean_t = mean_t.unsqueeze(0)
        else:
            raise ValueError(f"mean must have 3 values or shape 3 x H x W, got shape {tuple(mean_t.shape)}")
        std_t = torch.ones(3, device="cpu") if std is None else torch.as_tensor(std, dtype=torch.float32, device="cpu")
        if std_t.numel() != 3:
            raise ValueError(f"std must have 3 values (or be None), got shape {tuple(std_t.shape)}")
        if (std_t <= 0).any():
            raise ValueError(f"std must be positive, got {std_t.tolist()}")
        device = torch.empty(0).device
        self.register_buffer("mean", mean_t.to(device))
        self.register_buffer("std", std_t.view(1, 3, 1, 1).to(device))

    def forward(self, inputs: torch.Tensor | Sequence[torch.Tensor]) -> torch.Tensor:
        if isinstance(inputs, (list, tuple)):
            inputs = torch.stack(list(inputs))
        if inputs.dim() != 4 or inputs.shape[1] != 3:
            raise ValueError(f"classifier inputs must be N x 3 x H x W, got shape {tuple(inputs.shape)}")
        if inputs.is_floating_point():
            return inputs
        x = inputs.float()
        mean = self.mean
        if mean.shape[-2:] != (1, 1) and mean.shape[-2:] != x.shape[-2:]:
            mean = F.interpolate(mean, size=x.shape[-2:], mode="bilinear", align_corners=False)
        return (x - mean) / self.std


@MODELS.register_module()
class LinearClsHead(nn.Module):
    """Global average pooling + fc (the ResNet classifier). ``N x C x H x W -> N x num_classes``."""

    def __init__(self, in_channels: int, num_classes: int = 1000, dropout: float = 0.0) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.fc = nn.Linear(in_channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.dropout(torch.flatten(self.pool(x), 1)))


@MODELS.register_module()
class VGGClsHead(nn.Module):
    """pool5 (2x2 max) -> adaptive average pool to 7x7 -> fc6 -> fc7 -> fc8 (with ReLU and
    dropout), as torchvision's VGG. ``N x 512 x H x W -> N x num_classes``."""

    def __init__(
        self,
        in_channels: int = 512,
        num_classes: int = 1000,
        hidden_channels: int = 4096,
        dropout: float = 0.5,
        pool_size: int = 7,
    ) -> None:
        super().__init__()
        self.pool5 = nn.MaxPool2d(kernel_size=2, stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d(pool_size)
        self.fc6 = nn.Linear(in_channels * pool_size * pool_size, hidden_channels)
        self.fc7 = nn.Linear(hidden_channels, hidden_channels)
        self.fc8 = nn.Linear(hidden_channels, num_classes)
        self.relu = nn.ReLU(inplace=True)
        self.dropout = nn.Dropout(dropout)
        for fc in (self.fc6, self.fc7, self.fc8):
            normal_init(fc, std=0.01)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.flatten(self.avgpool(self.pool5(x)), 1)
        x = self.dropout(self.relu(self.fc6(x)))
        x = self.dropout(self.relu(self.fc7(x)))
        return self.fc8(x)


def _labels_from(targets) -> torch.Tensor:
    if isinstance(targets, dict):
        if "labels" not in targets:
            raise KeyError(f"classification targets need a 'labels' entry, got keys {sorted(targets)}")
        return targets["labels"]
    if isinstance(targets, torch.Tensor):
        return targets
    raise TypeError(f"targets must be {{'labels': int64 N}} or an int64 tensor, got {type(targets).__name__}")


@MODELS.register_module()
class ImageClassifier(nn.Module):
    """Backbone + classification head + softmax cross-entropy.

    Args:
        backbone: config dict (or module) of a registered backbone (ResNet, CifarResNet, VGG).
        num_classes: number of classes C.
        head: config dict of the head; ``None`` picks ``VGGClsHead`` (fc6/fc7/fc8) for a VGG
            and ``LinearClsHead`` (global average pooling + fc) otherwise. ``in_channels`` and
            ``num_classes`` are filled in.
        mean, std: preprocessor normalisation in 0..255 units (RGB).
        feature_key: which backbone output feeds the head (default: the last one).
        label_smoothing: passed to the cross-entropy loss.
    """

    def __init__(
        self,
        backbone: dict | nn.Module,
        num_classes: int = 1000,
        head: dict | None = None,
        mean: Sequence[float] | torch.Tensor = IMAGENET_MEAN,
        std: Sequence[float] | torch.Tensor | None = IMAGENET_STD,
        feature_key: str | None = None,
        label_smoothing: float = 0.0,
    ) -> None:
        super().__init__()
        if not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError(f"num_classes must be a positive int, got {num_classes!r}")
        self.num_classes = num_classes
        self.preprocessor = ClsPreprocessor(mean=mean, std=std)
        self.backbone = MODELS.build(backbone) if isinstance(backbone, dict) else backbone
        out_channels = getattr(self.backbone, "out_channels", None)
        if not out_channels:
            raise ValueError(f"backbone {type(self.backbone).__name__} has no 'out_channels' dict")
        self.feature_key = feature_key or list(out_channels)[-1]
        if self.feature_key not in out_channels:
            raise ValueError(
                f"feature_key {self.feature_key!r} is not a backbone output; available: {', '.join(out_channels)}"
            )
        if head is None:
            head = dict(type="VGGClsHead" if isinstance(self.backbone, VGG) else "LinearClsHead")
        head = dict(head)
        head.setdefault("in_channels", out_channels[self.feature_key])
        head.setdefault("num_classes", num_classes)
        self.head = MODELS.build(head)
        self.label_smoothing = label_smoothing

    def extract_features(self, inputs: torch.Tensor) -> dict[str, torch.Tensor]:
        """Backbone feature maps of a (uint8 or normalised float) ``N x 3 x H x W`` batch."""
        return self.backbone(self.preprocessor(inputs))

    def forward(self, inputs: torch.Tensor, targets=None):
        """Train: ``{'loss_cls', 'train_err'}``; eval: ``N x C`` logits."""
        logits = self.head(self.extract_features(inputs)[self.feature_key])
        if not self.training:
            return logits
        if targets is None:
            raise ValueError(
                "ImageClassifier in train mode needs targets ({'labels': int64 N}); call model.eval() for predictions"
            )
        labels = _labels_from(targets).to(logits.device).long()
        loss = F.cross_entropy(logits, labels, label_smoothing=self.label_smoothing)
        with torch.no_grad():
            train_err = (logits.argmax(dim=1) != labels).float().mean()
        return {"loss_cls": loss, "train_err": train_err}
