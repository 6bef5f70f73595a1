"""Feature Pyramid Network (Lin et al. 2017) on ResNet C2-C5, with P6 by max pooling."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping, Sequence

from torch import Tensor
from torchvision.ops import FeaturePyramidNetwork
from torchvision.ops.feature_pyramid_network import LastLevelMaxPool

from ...registry import MODELS
from ..utils.shape_spec import ShapeSpec, derive, describe_outputs, select_inputs


@MODELS.register_module()
class FPN(FeaturePyramidNetwork):
    """``torchvision.ops.FeaturePyramidNetwork`` with named inputs and outputs.

    Args:
        in_channels: channels of the inputs, e.g. (256, 512, 1024, 2048) for ResNet-50 C2-C5
            (derived from ``input_shape``; without it, ResNet-50's).
        out_channels: channels of every output level (256).
        in_features: input keys, lowest level first.
        out_features: output keys; one more than the inputs when ``extra_pool`` (P6 = 1x1 max
            pool with stride 2 of P5, as torchvision / Detectron use for the RPN).
        in_strides: strides of the inputs (4, 8, 16, 32 for C2-C5), for ``output_shape``
            (derived from ``input_shape``; without it unknown).
        input_shape: the backbone's ``output_shape()`` (handed down by the detector).

    ``forward({'c2': N x 256 x H/4 x W/4, ...}) -> {'p2': N x 256 x H/4 x W/4, ..., 'p6': ... H/64}``.
    Parameter names are torchvision's (``inner_blocks.i.0``, ``layer_blocks.i.0``).
    """

    def __init__(
        self,
        in_channels: Sequence[int] | None = None,
        out_channels: int = 256,
        in_features: Sequence[str] = ("c2", "c3", "c4", "c5"),
        out_features: Sequence[str] = ("p2", "p3", "p4", "p5", "p6"),
        extra_pool: bool = True,
        in_strides: Sequence[int] | None = None,
        input_shape: Mapping[str, ShapeSpec] | None = None,
    ) -> None:
        if input_shape is not None:
            in_channels, in_strides = self._derive_inputs(in_channels, in_strides, in_features, input_shape)
        in_channels = (256, 512, 1024, 2048) if in_channels is None else in_channels
        if len(in_channels) != len(in_features):
            raise ValueError(f"FPN: {len(in_channels)} in_channels for {len(in_features)} in_features")
        if len(out_features) != len(in_features) + int(extra_pool):
            raise ValueError(
                f"FPN: out_features {tuple(out_features)} must have "
                f"{len(in_features) + int(extra_pool)} names (inputs + P6 when extra_pool)"
            )
        super().__init__(list(in_channels), out_channels, extra_blocks=LastLevelMaxPool() if extra_pool else None)
        if in_strides is not None and len(in_strides) != len(in_features):
            raise ValueError(f"FPN: {len(in_strides)} in_strides for {len(in_features)} in_features")
        self.in_features, self.out_features = tuple(in_features), tuple(out_features)
        self.out_channels = {name: out_channels for name in self.out_features}
        strides: list[int | None] = [None] * len(in_features)
        if in_strides is not None:
            strides = [int(s) for s in in_strides]
        if extra_pool:  # P6 takes every other cell of P5
            strides.append(None if strides[-1] is None else 2 * strides[-1])
        self.strides = dict(zip(self.out_features, strides))

    @staticmethod
    def _derive_inputs(
        in_channels: Sequence[int] | None,
        in_strides: Sequence[int] | None,
        in_features: Sequence[str],
        input_shape: Mapping[str, ShapeSpec],
    ) -> tuple[Sequence[int], Sequence[int] | None]:
        levels = select_inputs(input_shape, tuple(in_features), "in_features")
        channels = tuple(spec.channels for spec in levels.values())
        in_channels = derive("in_channels", in_channels, channels, describe_outputs(levels, f"{channels} channels"))
        strides = tuple(spec.stride for spec in levels.values())
        if None not in strides:
            in_strides = derive("in_strides", in_strides, strides, describe_outputs(levels, f"strides {strides}"))
        return in_channels, in_strides

    def output_shape(self) -> dict[str, ShapeSpec]:
        """``{'p2': ShapeSpec(256, 4), ..., 'p6': ShapeSpec(256, 64)}`` (strides ``None`` when
        ``in_strides`` was not given)."""
        return {name: ShapeSpec(self.out_channels[name], self.strides[name]) for name in self.out_features}

    def forward(self, features: dict[str, Tensor]) -> dict[str, Tensor]:
        missing = [k for k in self.in_features if k not in features]
        if missing:
            raise KeyError(f"FPN in_features {missing} not among the backbone outputs {list(features)}")
        outputs = super().forward(OrderedDict((k, features[k]) for k in self.in_features))
        return dict(zip(self.out_features, outputs.values()))
