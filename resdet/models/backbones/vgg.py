"""VGG-16/19 (Simonyan & Zisserman), the paper's baseline, with and without BN.

The backbone stops at the last 3x3 convolution (conv5_3 for VGG-16, conv5_4 for VGG-19):
stride 16, no pool5, which is the feature map of the VGG Faster R-CNN. ``features`` keeps
torchvision's layer indices, so torchvision checkpoints load by prefixing names.
"""

from __future__ import annotations

import torch
from torch import nn

from ...registry import MODELS
from ..utils.init import kaiming_init
from ..utils.shape_spec import ShapeSpec
from .norm import build_norm, check_norm, is_norm

# widths of the 3x3 convolutions per block (a 2x2 max pool follows every block but the last)
VGG_SETTINGS = {
    16: ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512)),
    19: ((64, 64), (128, 128), (256,) * 4, (512,) * 4, (512,) * 4),
}


def check_vgg_depth(depth: int) -> int:
    if depth not in VGG_SETTINGS:
        raise ValueError(f"unsupported VGG depth {depth!r}; allowed values: {', '.join(str(d) for d in VGG_SETTINGS)}")
    return depth


@MODELS.register_module()
class VGG(nn.Module):
    """VGG-``depth`` convolutional trunk.

    Args:
        depth: 16 or 19.
        batch_norm: BN after every convolution (torchvision's ``vgg16_bn``).
        norm: the BN flavour when ``batch_norm`` ('BN', 'FrozenBN', 'SyncBN').
        frozen_stages: freeze conv blocks 1..k (-1: none; Faster R-CNN freezes 2).

    ``forward(x: N x 3 x H x W) -> {'conv5_3': N x 512 x H/16 x W/16}`` (key ``'conv5_4'``
    for VGG-19; ``out_feature`` holds it). Pool5 and fc6-fc8 live in the classifier head.
    """

    def __init__(
        self, depth: int = 16, batch_norm: bool = False, norm: str = "BN", frozen_stages: int = -1, in_channels: int = 3
    ) -> None:
        super().__init__()
        check_vgg_depth(depth)
        check_norm(norm)
        blocks = VGG_SETTINGS[depth]
        if frozen_stages not in range(-1, len(blocks) + 1):
            raise ValueError(f"frozen_stages must be in -1..{len(blocks)}, got {frozen_stages!r}")
        self.depth, self.batch_norm, self.frozen_stages = depth, batch_norm, frozen_stages
        layers: list[nn.Module] = []
        self._block_ends: list[int] = []  # index in ``features`` after each block's last layer
        channels = in_channels
        for block_index, widths in enumerate(blocks):
            for width in widths:
                layers.append(nn.Conv2d(channels, width, 3, padding=1))
                if batch_norm:
                    layers.append(build_norm(norm, width))
                layers.append(nn.ReLU(inplace=True))
                channels = width
            if block_index < len(blocks) - 1:
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            self._block_ends.append(len(layers))
        self.features = nn.Sequential(*layers)
        self.out_feature = f"conv5_{len(blocks[-1])}"
        self.out_channels = {self.out_feature: channels}
        self.strides = {self.out_feature: 16}
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                kaiming_init(module)
        self._freeze_stages()

    def _frozen_layers(self) -> list[nn.Module]:
        if self.frozen_stages <= 0:
            return []
        return list(self.features[: self._block_ends[self.frozen_stages - 1]])

    def _freeze_stages(self) -> None:
        for layer in self._frozen_layers():
            layer.eval()
            for param in layer.parameters():
                param.requires_grad_(False)

    def train(self, mode: bool = True) -> VGG:
        super().train(mode)
        if mode:
            for layer in self._frozen_layers():
                if is_norm(layer):
                    layer.eval()
        return self

    def output_shape(self) -> dict[str, ShapeSpec]:
        """``{'conv5_3': ShapeSpec(channels=512, stride=16)}`` (``'conv5_4'`` for VGG-19)."""
        return {self.out_feature: ShapeSpec(self.out_channels[self.out_feature], self.strides[self.out_feature])}

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {self.out_feature: self.features(x)}
