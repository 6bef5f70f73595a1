"""The RPN's small convolutional head, shared by every feature level."""
from __future__ import annotations

import torch
from torch import Tensor, nn

from ...registry import MODELS


@MODELS.register_module()
class RPNHead(nn.Module):
    """3x3 conv + ReLU, then 1x1 convs for objectness (``A`` logits) and box deltas (``4A``).

    Args:
        in_channels: feature channels (1024 for ResNet C4, 512 for VGG conv5_3, 256 for FPN); a
            detector derives it from its backbone / neck ``output_shape()``.
        num_anchors: anchors per location ``A`` (15 for C4's 5 sizes x 3 ratios, 3 for FPN); a
            detector derives it from the anchor generator.
        conv_channels: width of the 3x3 conv (default: ``in_channels``).

    ``forward(features: list of N x C x H_l x W_l) -> (objectness: list of N x A x H_l x W_l,
    deltas: list of N x 4A x H_l x W_l)``.
    """

    def __init__(self, in_channels: int = 1024, num_anchors: int = 15,
                 conv_channels: int | None = None) -> None:
        super().__init__()
        conv_channels = conv_channels or in_channels
        self.in_channels, self.num_anchors = in_channels, num_anchors
        self.conv = nn.Conv2d(in_channels, conv_channels, 3, padding=1)
        self.cls_logits = nn.Conv2d(conv_channels, num_anchors, 1)
        self.bbox_pred = nn.Conv2d(conv_channels, num_anchors * 4, 1)
        for layer in (self.conv, self.cls_logits, self.bbox_pred):
            nn.init.normal_(layer.weight, std=0.01)
            nn.init.zeros_(layer.bias)

    def forward(self, features: list[Tensor]) -> tuple[list[Tensor], list[Tensor]]:
        objectness, deltas = [], []
        for feature in features:
            hidden = torch.relu(self.conv(feature))
            objectness.append(self.cls_logits(hidden))
            deltas.append(self.bbox_pred(hidden))
        return objectness, deltas
