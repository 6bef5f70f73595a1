"""The RPN's small convolutional head, shared by every feature level."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor, nn

from ...registry import MODELS
from ..utils.shape_spec import ShapeError, ShapeSpec, derive, shared_channels
from .anchors import AnchorGenerator


def derive_head_inputs(
    in_channels: int | None,
    num_anchors: int | None,
    input_shape: Mapping[str, ShapeSpec] | None,
    anchor_generator: AnchorGenerator | None,
) -> tuple[int | None, int | None]:
    """``(in_channels, num_anchors)`` of a head shared by every level: the levels' channels (equal
    on all) and the generator's anchors per location (equal on all); stated values must agree."""
    if input_shape is not None:
        channels = shared_channels(input_shape, "in_channels")
        in_channels = derive(
            "in_channels", in_channels, channels, next(iter(input_shape.values())).has(f"{channels} channels")
        )
    if anchor_generator is not None:
        counts = anchor_generator.num_anchors_per_location
        if len(set(counts)) != 1:
            raise ShapeError(
                "num_anchors",
                f"{{key}}: the anchor generator makes {counts} anchors per location "
                "on its levels, but one head reads every level: give every level "
                "as many sizes x aspect ratios",
            )
        num_anchors = derive(
            "num_anchors",
            num_anchors,
            counts[0],
            f"the anchor generator makes {counts[0]} anchors per location ({anchor_generator.describe_anchors()})",
        )
    return in_channels, num_anchors


@MODELS.register_module()
class RPNHead(nn.Module):
    """3x3 conv + ReLU, then 1x1 convs for objectness (``A`` logits) and box deltas (``4A``).

    Args:
        in_channels: feature channels (1024 for ResNet C4, 512 for VGG conv5_3, 256 for FPN):
            derived from ``input_shape`` (default without it: 1024).
        num_anchors: anchors per location ``A`` (15 for C4's 5 sizes x 3 ratios, 3 for FPN):
            derived from ``anchor_generator`` (default without it: 15).
        conv_channels: width of the 3x3 conv (default: ``in_channels``).
        input_shape, anchor_generator: the shapes of the levels the head reads and the RPN's
            anchor generator (handed down by the RPN; the generator is read, not kept).

    ``forward(features: list of N x C x H_l x W_l) -> (objectness: list of N x A x H_l x W_l,
    deltas: list of N x 4A x H_l x W_l)``.
    """

    def __init__(
        self,
        in_channels: int | None = None,
        num_anchors: int | None = None,
        conv_channels: int | None = None,
        input_shape: Mapping[str, ShapeSpec] | None = None,
        anchor_generator: AnchorGenerator | None = None,
    ) -> None:
        super().__init__()
        in_channels, num_anchors = derive_head_inputs(in_channels, num_anchors, input_shape, anchor_generator)
        in_channels, num_anchors = in_channels or 1024, num_anchors or 15
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
