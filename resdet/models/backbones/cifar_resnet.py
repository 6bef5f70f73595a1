"""CIFAR-10 ResNets of Sec. 4.2 / Table 6: 6n+2 weighted layers.

A 3x3 stem with 16 filters, then three stages of ``n`` basic blocks with {16, 32, 64}
filters on {32, 16, 8} maps (stride-2 at the first block of stages 2 and 3), option A
shortcuts by default; the classifier adds global average pooling and the fc layer.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ...registry import MODELS
from ..utils.init import init_conv_and_norm
from ..utils.shape_spec import ShapeSpec
from .norm import build_norm, check_norm
from .resnet import BasicBlock, check_shortcut

CIFAR_WIDTHS = (16, 32, 64)
CIFAR_STAGE_NAMES = ("layer1", "layer2", "layer3")
PAPER_CIFAR_DEPTHS = (20, 32, 44, 56, 110, 1202)


def cifar_num_blocks(depth: int) -> int:
    """``n`` of a 6n+2-layer CIFAR ResNet; ``ValueError`` unless ``(depth - 2) % 6 == 0``."""
    if not isinstance(depth, int) or depth < 8 or (depth - 2) % 6 != 0:
        raise ValueError(
            f"CIFAR ResNet depth must be 6n+2 with n >= 1 (e.g. "
            f"{', '.join(str(d) for d in PAPER_CIFAR_DEPTHS)}), got {depth!r}"
        )
    return (depth - 2) // 6


@MODELS.register_module()
class CifarResNet(nn.Module):
    """ResNet-20/32/44/56/110/1202 (and any 6n+2) for 32x32 inputs.

    Args:
        depth: number of weighted layers, 6n+2 (the fc layer counted, as in the paper).
        shortcut: 'A' (paper), 'B' or 'C'.
        plain: no shortcuts (the plain-20/32/44/56/110 baselines of Fig. 6).
        out_indices: stage outputs to return (0..2 -> keys 'layer1'..'layer3').
        norm: 'BN', 'FrozenBN' or 'SyncBN'.
        zero_init_residual: zero the last BN of every block.

    ``forward(x: N x 3 x 32 x 32) -> {'layer3': N x 64 x 8 x 8}`` (for the default
    out_indices); ``layer1`` is ``N x 16 x 32 x 32`` and ``layer2`` ``N x 32 x 16 x 16``.
    """

    def __init__(
        self,
        depth: int = 20,
        shortcut: str = "A",
        plain: bool = False,
        out_indices: Sequence[int] = (2,),
        norm: str = "BN",
        zero_init_residual: bool = False,
        in_channels: int = 3,
    ) -> None:
        super().__init__()
        num_blocks = cifar_num_blocks(depth)
        check_shortcut(shortcut)
        check_norm(norm)
        out_indices = tuple(int(i) for i in out_indices)
        if not out_indices or any(i not in range(3) for i in out_indices):
            raise ValueError(f"out_indices {out_indices} must be non-empty values in 0..2")
        if plain and zero_init_residual:
            raise ValueError("zero_init_residual=True needs shortcuts (plain=False)")
        self.depth, self.num_blocks, self.shortcut, self.plain = depth, num_blocks, shortcut, plain
        self.out_indices = out_indices
        self.conv1 = nn.Conv2d(in_channels, CIFAR_WIDTHS[0], 3, padding=1, bias=False)
        self.bn1 = build_norm(norm, CIFAR_WIDTHS[0])
        self.relu = nn.ReLU(inplace=True)
        channels = CIFAR_WIDTHS[0]
        self.out_channels: dict[str, int] = {}
        self.strides: dict[str, int] = {}
        for stage, width in enumerate(CIFAR_WIDTHS):
            blocks = []
            for index in range(num_blocks):
                stride = 2 if stage > 0 and index == 0 else 1
                blocks.append(BasicBlock(channels, width, stride=stride, shortcut=shortcut, norm=norm, plain=plain))
                channels = width
            self.add_module(CIFAR_STAGE_NAMES[stage], nn.Sequential(*blocks))
            if stage in out_indices:
                self.out_channels[CIFAR_STAGE_NAMES[stage]] = width
                self.strides[CIFAR_STAGE_NAMES[stage]] = 2**stage
        init_conv_and_norm(self)
        if zero_init_residual:
            for module in self.modules():
                if isinstance(module, BasicBlock) and hasattr(module.last_norm, "weight"):
                    nn.init.zeros_(module.last_norm.weight)

    def output_shape(self) -> dict[str, ShapeSpec]:
        """``{'layer3': ShapeSpec(channels=64, stride=4)}`` for the default out_indices."""
        return {name: ShapeSpec(self.out_channels[name], self.strides[name]) for name in self.out_channels}

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        x = self.relu(self.bn1(self.conv1(x)))
        outputs = {}
        for stage, name in enumerate(CIFAR_STAGE_NAMES):
            x = getattr(self, name)(x)
            if stage in self.out_indices:
                outputs[name] = x
        return outputs

    def response_norms(self) -> list[nn.Module]:
        """The BN layer after each 3x3 convolution, in depth order (Fig. 7 reads their outputs)."""
        norms: list[nn.Module] = [self.bn1]
        for name in CIFAR_STAGE_NAMES:
            for block in getattr(self, name):
                norms += [block.bn1, block.bn2]
        return norms
