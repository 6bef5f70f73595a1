"""Per-RoI feature heads: ResNet conv5 (the paper's C4 detector), fully connected
(VGG-16's fc6/fc7, FPN's 2-FC).

Each takes the shape of the pooled features it reads (``input_shape``, the pooler's
``output_shape()``, handed down by the RoI heads), derives its input size from it, and publishes
what it makes: ``output_shape() -> {'box_features': ShapeSpec(C)}`` for the ``R x C`` vectors its
``forward`` returns (the box predictor's input), plus ``'res5'`` for the C4 head's per-RoI conv5
map (the C4 mask head's input). ``stride`` is ``None``: RoI features are not on the image grid.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ...registry import MODELS
from ..backbones.resnet import make_res_stage, stage_out_channels
from ..utils.init import init_conv_and_norm
from ..utils.shape_spec import ShapeSpec, derive, derive_channels


@MODELS.register_module()
class Res5BoxHead(nn.Module):
    """ResNet conv5_x on each pooled RoI (first block stride 2), then global average pooling.

    Args:
        depth, stride_in_1x1, shortcut, norm: as for ``ResNet`` (``norm='FrozenBN'`` keeps the
            ImageNet statistics fixed, as in the paper).
        in_channels: channels of the pooled C4 features (1024 for bottleneck nets): derived from
            ``input_shape`` (default without it: the conv4 width of ``depth``).
        input_shape: the box pooler's ``output_shape()``.

    ``forward(x: R x in_channels x 14 x 14) -> R x out_channels`` (2048 for ResNet-50/101);
    ``res5(x)`` is the ``R x out_channels x 7 x 7`` map before the average pooling.
    Parameters are named ``res5.<block>...``: a classification checkpoint's ``layer4.*``.
    """

    def __init__(
        self,
        depth: int = 101,
        in_channels: int | None = None,
        stride_in_1x1: bool = True,
        shortcut: str = "B",
        norm: str = "FrozenBN",
        input_shape: ShapeSpec | None = None,
    ) -> None:
        super().__init__()
        in_channels = derive_channels(in_channels, input_shape, default=stage_out_channels(depth, 2))
        self.res5 = make_res_stage(
            depth, 3, in_channels, stride=2, shortcut=shortcut, stride_in_1x1=stride_in_1x1, norm=norm
        )
        self.depth, self.out_channels = depth, stage_out_channels(depth, 3)
        init_conv_and_norm(self)

    def output_shape(self) -> dict[str, ShapeSpec]:
        """``{'res5': ShapeSpec(2048), 'box_features': ShapeSpec(2048)}`` for ResNet-50/101."""
        return {"res5": ShapeSpec(self.out_channels), "box_features": ShapeSpec(self.out_channels)}

    def forward(self, x: Tensor) -> Tensor:
        return self.res5(x).mean(dim=(2, 3))


@MODELS.register_module()
class FCBoxHead(nn.Module):
    """Flatten, then ``num_fcs`` fully connected layers with ReLU (named ``fc6``, ``fc7``, ...).

    VGG-16: ``in_channels=512, pooled_size=7, fc_dim=4096, dropout=0.5`` (its ImageNet
    fc6/fc7 load here); FPN: ``in_channels=256, pooled_size=7, fc_dim=1024`` (torchvision's
    ``TwoMLPHead``). ``in_channels`` and ``pooled_size`` are derived from ``input_shape`` (the
    box pooler's ``output_shape()``; defaults without it: 256 and 7).

    ``forward(x: R x C x S x S) -> R x fc_dim``.
    """

    def __init__(
        self,
        in_channels: int | None = None,
        pooled_size: int | None = None,
        num_fcs: int = 2,
        fc_dim: int = 1024,
        dropout: float = 0.0,
        input_shape: ShapeSpec | None = None,
    ) -> None:
        super().__init__()
        in_channels = derive_channels(in_channels, input_shape, default=256)
        if input_shape is not None and input_shape.size is not None:
            pooled_size = derive(
                "pooled_size", pooled_size, input_shape.size, input_shape.has(f"size {input_shape.size}")
            )
        pooled_size = 7 if pooled_size is None else pooled_size
        if num_fcs < 1:
            raise ValueError(f"FCBoxHead needs num_fcs >= 1, got {num_fcs}")
        self.num_fcs, self.dropout = num_fcs, float(dropout)
        dim = in_channels * pooled_size * pooled_size
        for index in range(num_fcs):
            fc = nn.Linear(dim, fc_dim)
            nn.init.kaiming_uniform_(fc.weight, a=1)
            nn.init.zeros_(fc.bias)
            self.add_module(f"fc{6 + index}", fc)
            dim = fc_dim
        self.out_channels = fc_dim

    def output_shape(self) -> dict[str, ShapeSpec]:
        """``{'box_features': ShapeSpec(fc_dim)}``."""
        return {"box_features": ShapeSpec(self.out_channels)}

    def forward(self, x: Tensor) -> Tensor:
        x = x.flatten(1)
        for index in range(self.num_fcs):
            x = torch.relu(getattr(self, f"fc{6 + index}")(x))
            if self.dropout > 0:
                x = nn.functional.dropout(x, self.dropout, self.training)
        return x
