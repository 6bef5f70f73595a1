"""Mask R-CNN's mask head (He et al. 2017): a small fully convolutional network on each
positive RoI's features, upsampled 2x by a transposed convolution, with one ``M x M``
mask logit map per class.

Layouts:
  * FPN (``num_convs=4``): RoIAlign 14x14 on P2-P5 -> 4 x (conv3x3-256, ReLU) -> deconv
    2x2/2 (256, ReLU) -> conv1x1 -> ``C x 28 x 28`` (torchvision's ``MaskRCNNHeads`` +
    ``MaskRCNNPredictor``).
  * C4 (``num_convs=0``, ``in_channels=2048``): the RoI's conv5 output of the shared box
    head (RoIAlign 14x14 on C4 -> res5, first block stride 2 -> 7x7) -> deconv 2x2/2 (256,
    ReLU) -> conv1x1 -> ``C x 14 x 14``: the standard C4 Mask R-CNN head (detectron2's
    ``Res5ROIHeads`` with ``MaskRCNNConvUpsampleHead(num_conv=0)``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ...registry import MODELS
from ..utils.shape_spec import ShapeSpec, derive_channels


@MODELS.register_module()
class MaskHead(nn.Module):
    """Per-RoI class-specific mask logits.

    Args:
        in_channels: channels of the per-RoI features (256 for FPN, 2048 for ResNet-50/101 C4):
            derived from ``input_shape`` (default without it: 256).
        num_classes: object classes ``C`` (no background channel).
        num_convs: 3x3 convolutions before the upsampling (4 for FPN, 0 for C4).
        conv_dim: channels of those convolutions and of the transposed convolution.
        class_agnostic: one mask per RoI instead of one per class.
        input_shape: the mask pooler's ``output_shape()`` or the C4 box head's ``'res5'``
            (handed down by ``MaskRoIHeads``).

    ``forward(x: R x in_channels x S x S) -> R x C x 2S x 2S`` logits (``C = 1`` when class
    agnostic). Parameters: ``mask_fcn{1..num_convs}``, ``deconv``, ``predictor``.
    """

    def __init__(
        self,
        in_channels: int | None = None,
        num_classes: int = 80,
        num_convs: int = 4,
        conv_dim: int = 256,
        class_agnostic: bool = False,
        input_shape: ShapeSpec | None = None,
    ) -> None:
        super().__init__()
        in_channels = derive_channels(in_channels, input_shape, default=256)
        if num_classes < 1:
            raise ValueError(f"MaskHead num_classes must be >= 1, got {num_classes}")
        if num_convs < 0:
            raise ValueError(f"MaskHead num_convs must be >= 0, got {num_convs}")
        self.num_classes, self.num_convs, self.class_agnostic = num_classes, num_convs, class_agnostic
        channels = in_channels
        for index in range(num_convs):
            conv = nn.Conv2d(channels, conv_dim, 3, padding=1)
            nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")
            nn.init.zeros_(conv.bias)
            self.add_module(f"mask_fcn{index + 1}", conv)
            channels = conv_dim
        self.deconv = nn.ConvTranspose2d(channels, conv_dim, 2, stride=2)
        nn.init.kaiming_normal_(self.deconv.weight, mode="fan_out", nonlinearity="relu")
        nn.init.zeros_(self.deconv.bias)
        self.predictor = nn.Conv2d(conv_dim, 1 if class_agnostic else num_classes, 1)
        nn.init.normal_(self.predictor.weight, std=0.001)
        nn.init.zeros_(self.predictor.bias)

    def forward(self, x: Tensor) -> Tensor:
        for index in range(self.num_convs):
            x = F.relu(getattr(self, f"mask_fcn{index + 1}")(x))
        return self.predictor(F.relu(self.deconv(x)))

    def select(self, logits: Tensor, labels: Tensor) -> Tensor:
        """``R x C x M x M`` logits, ``R`` labels -> ``R x M x M`` logits of each RoI's class."""
        if self.class_agnostic:
            return logits[:, 0]
        return logits[torch.arange(logits.shape[0], device=logits.device), labels]


def mask_loss(logits: Tensor, targets: Tensor) -> Tensor:
    """Mean per-pixel binary cross-entropy between ``R x M x M`` logits (of each RoI's
    ground-truth class) and ``R x M x M`` 0/1 targets; 0 (with a gradient path) when ``R = 0``."""
    if logits.numel() == 0:
        return logits.sum() * 0.0
    return F.binary_cross_entropy_with_logits(logits, targets.to(logits.dtype))
