"""Pooling of fixed-size features for each region of interest (RoIAlign / RoI pooling)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch
from torch import Tensor, nn
from torchvision.ops import MultiScaleRoIAlign, box_area, roi_align, roi_pool

from ...registry import MODELS
from ..utils.shape_spec import PER_BATCH, ShapeError, ShapeSpec, derive, select_inputs, shared_channels

POOL_TYPES = ("align", "pool")


def infer_scale(feature: Tensor, image_sizes: Sequence[Sequence[int]]) -> float:
    """Feature-map scale (e.g. 1/16) as a power of two of ``feature size / largest image side``,
    the rule torchvision's ``MultiScaleRoIAlign`` uses."""
    max_h = max(int(s[0]) for s in image_sizes)
    max_w = max(int(s[1]) for s in image_sizes)
    scales = [2.0 ** round(math.log2(float(f) / float(s))) for f, s in zip(feature.shape[-2:], (max_h, max_w))]
    return scales[0]


@MODELS.register_module()
class RoIPooler(nn.Module):
    """Pool ``output_size x output_size`` features for boxes given in input-image pixels.

    Args:
        featmap_names: feature keys. One key pools from that map; several (FPN) assign each
            box to a level by its size (``torchvision.ops.MultiScaleRoIAlign``: level
            ``floor(4 + log2(sqrt(area) / 224))`` clamped to the available levels).
        output_size: 14 for the ResNet C4 head (conv5 then halves it), 7 for VGG / FPN.
        pool_type: ``'align'`` (RoIAlign) or ``'pool'`` (RoI max pooling, Fast R-CNN's).
        sampling_ratio: RoIAlign samples per bin side (0: adaptive).
        aligned: RoIAlign's half-pixel correction (multi-level pooling uses False, like torchvision).
        spatial_scale: ``1 / stride`` of the single feature map, or ``PER_BATCH``
            (``'per_batch'``): measured on every batch from the feature and image sizes.
            ``None``: derived from the map's stride in ``input_shape``, else per batch.
            Multi-level pooling measures each level's scale (torchvision's rule).
        input_shape: the published shapes of the features (handed down by the RoI heads); the
            pooler derives its scale and publishes ``output_shape()``, its per-RoI features.

    ``forward(features: dict[str, N x C x H x W], boxes: list of R_i x 4, image_sizes: list of
    (h, w)) -> (sum R_i) x C x output_size x output_size``, rows in image order.
    """

    def __init__(
        self,
        featmap_names: Sequence[str] = ("c4",),
        output_size: int = 14,
        pool_type: str = "align",
        sampling_ratio: int = 0,
        aligned: bool = True,
        spatial_scale: float | str | None = None,
        input_shape: Mapping[str, ShapeSpec] | None = None,
    ) -> None:
        super().__init__()
        if pool_type not in POOL_TYPES:
            raise ValueError(f"RoIPooler pool_type {pool_type!r} unknown; allowed values: {', '.join(POOL_TYPES)}")
        self.featmap_names = tuple(featmap_names)
        if not self.featmap_names:
            raise ValueError("RoIPooler needs at least one feature map name")
        self.output_size = int(output_size)
        self.pool_type, self.sampling_ratio, self.aligned = pool_type, int(sampling_ratio), aligned
        self.channels = None
        if input_shape is not None:
            levels = select_inputs(input_shape, self.featmap_names, "featmap_names")
            self.channels = shared_channels(levels, "featmap_names")
            stride = next(iter(levels.values())).stride
            if len(levels) == 1 and stride is not None and spatial_scale != PER_BATCH:
                spatial_scale = derive(
                    "spatial_scale", spatial_scale, 1.0 / stride, next(iter(levels.values())).has(f"stride {stride}")
                )
        if isinstance(spatial_scale, str) and spatial_scale != PER_BATCH:
            raise ShapeError(
                "spatial_scale",
                f"{{key}} = {spatial_scale!r} unknown; give 1 / stride or {PER_BATCH!r} (measured on every batch)",
            )
        self.spatial_scale: float | str = PER_BATCH if spatial_scale is None else spatial_scale
        self.multi_level = None
        if len(self.featmap_names) > 1:
            if pool_type != "align":
                raise ValueError("RoIPooler: multi-level pooling supports only pool_type='align'")
            self.multi_level = MultiScaleRoIAlign(list(self.featmap_names), self.output_size, self.sampling_ratio)

    def output_shape(self) -> ShapeSpec | None:
        """The pooled features, ``ShapeSpec(channels, size=output_size)`` (``None`` when the
        pooler was built without ``input_shape``: its channels are unknown)."""
        return None if self.channels is None else ShapeSpec(self.channels, size=self.output_size)

    def forward(self, features: dict[str, Tensor], boxes: list[Tensor], image_sizes: Sequence[Sequence[int]]) -> Tensor:
        missing = [k for k in self.featmap_names if k not in features]
        if missing:
            raise KeyError(f"RoIPooler featmap_names {missing} not among the features {list(features)}")
        if self.multi_level is not None and torch.compiler.is_exporting():
            return self._multi_level_graph([features[k] for k in self.featmap_names], boxes, image_sizes)
        if self.multi_level is not None:
            return self.multi_level(
                {k: features[k] for k in self.featmap_names}, boxes, [tuple(int(v) for v in s) for s in image_sizes]
            )
        feature = features[self.featmap_names[0]]
        scale = infer_scale(feature, image_sizes) if self.spatial_scale == PER_BATCH else self.spatial_scale
        boxes = [b.to(feature.dtype) for b in boxes]
        if self.pool_type == "pool":
            return roi_pool(feature, boxes, self.output_size, scale)
        return roi_align(feature, boxes, self.output_size, scale, self.sampling_ratio, self.aligned)

    def _multi_level_graph(
        self, maps: list[Tensor], boxes: list[Tensor], image_sizes: Sequence[Sequence[int]]
    ) -> Tensor:
        """``MultiScaleRoIAlign``'s result computed from symbolic sizes (for ``torch.export``):
        the same level scales ``2 ** round(log2(feature height / largest image height))`` and
        level rule, but as tensors (torchvision reads them as Python floats). A level's scale
        multiplies the boxes before RoIAlign instead of being its ``spatial_scale`` (a power
        of two: the same products)."""
        max_h = image_sizes[0][0]
        for size in image_sizes[1:]:
            max_h = torch.sym_max(max_h, size[0])
        one = torch.ones((), dtype=torch.float64, device=maps[0].device)
        scales = [torch.exp2(((one * m.shape[-2]) / max_h).float().log2().round()) for m in maps]
        k_min, k_max = -torch.log2(scales[0]), -torch.log2(scales[-1])
        rois = torch.cat([torch.cat([torch.full_like(b[:, :1], i), b], dim=1) for i, b in enumerate(boxes)])
        sides = torch.sqrt(box_area(rois[:, 1:]))
        levels = torch.floor(4 + torch.log2(sides / 224) + torch.tensor(1e-6, dtype=sides.dtype))
        levels = (torch.minimum(torch.maximum(levels, k_min), k_max) - k_min).to(torch.int64)
        result = maps[0].new_zeros((rois.shape[0], maps[0].shape[1], self.output_size, self.output_size))
        for level, (feature, scale) in enumerate(zip(maps, scales)):
            index = torch.where(levels == level)[0]
            level_rois = rois[index] * torch.cat([scale.new_ones(1), scale.expand(4)])
            result[index] = roi_align(feature, level_rois, self.output_size, 1.0, self.sampling_ratio, False)
        return result
