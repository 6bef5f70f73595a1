"""Anchor boxes of the RPN: a few sizes and aspect ratios at every feature-map position."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor, nn

from ...registry import MODELS
from ..utils.shape_spec import PER_BATCH, ShapeError, ShapeSpec, derive, describe_outputs


def _per_level(value, num_levels: int, name: str) -> list[tuple[float, ...]]:
    """Accept one tuple for all levels or one tuple per level."""
    value = list(value)
    if value and not isinstance(value[0], (list, tuple)):
        return [tuple(float(v) for v in value)] * num_levels
    if len(value) != num_levels:
        raise ValueError(f"AnchorGenerator: {name} has {len(value)} levels, sizes has {num_levels}")
    return [tuple(float(v) for v in level) for level in value]


@MODELS.register_module()
class AnchorGenerator(nn.Module):
    """Anchors for one or more feature maps.

    Args:
        sizes: per level, the anchor sizes (square root of the area) in input pixels, e.g.
            ``((32, 64, 128, 256, 512),)`` for the C4 detector (one level, 5 sizes) or
            ``((32,), (64,), (128,), (256,), (512,))`` for FPN's P2-P6 (one size per level).
        aspect_ratios: height / width ratios, one tuple for all levels or one per level.
        strides: per-level strides in pixels, or ``PER_BATCH`` (``'per_batch'``): measured on
            every batch as ``padded_image_size // feature_size`` (torchvision's rule, kept for
            parity). ``None``: derived from ``input_shape`` (``anchor_strides``), else per batch.
        offset: anchor centres at ``(i + offset) * stride``; 0 is torchvision's convention.
        input_shape: the feature maps of the levels, in order (handed down by the RPN).
        size_divisor: the preprocessor pads every batch to a multiple of this (handed down).

    Anchors of a level are ordered by location (row-major over H, W), then by aspect ratio,
    then by size: the layout the RPN head's ``A`` channels are flattened in.
    Cell anchors are ``round([-w/2, -h/2, w/2, h/2])`` with ``h = size * sqrt(ratio)``.
    """

    def __init__(
        self,
        sizes: Sequence = ((32, 64, 128, 256, 512),),
        aspect_ratios: Sequence = (0.5, 1.0, 2.0),
        strides: Sequence[int] | str | None = None,
        offset: float = 0.0,
        input_shape: Mapping[str, ShapeSpec] | None = None,
        size_divisor: int = 1,
    ) -> None:
        super().__init__()
        sizes = [tuple(float(s) for s in level) for level in sizes]
        self.sizes = sizes
        self.aspect_ratios = _per_level(aspect_ratios, len(sizes), "aspect_ratios")
        if strides != PER_BATCH and input_shape is not None:
            strides = derive_strides(strides, input_shape, size_divisor)
        if strides is None or strides == PER_BATCH:
            self.strides: list[int] | str = PER_BATCH
        elif isinstance(strides, str):
            raise ShapeError(
                "strides",
                f"{{key}} = {strides!r} unknown; give one stride per level or {PER_BATCH!r} (measured on every batch)",
            )
        elif len(strides) != len(sizes):
            raise ValueError(f"AnchorGenerator: {len(strides)} strides for {len(sizes)} levels of sizes")
        else:
            self.strides = [int(s) for s in strides]
        self.offset = float(offset)
        self.cell_anchors = [self.make_cell_anchors(s, r) for s, r in zip(self.sizes, self.aspect_ratios)]
        self._cache: dict[tuple, list[Tensor]] = {}

    @staticmethod
    def make_cell_anchors(sizes: Sequence[float], aspect_ratios: Sequence[float]) -> Tensor:
        """``(len(ratios) * len(sizes)) x 4`` anchors centred on 0 (ratio-major)."""
        scales = torch.tensor(sizes, dtype=torch.float32)
        ratios = torch.tensor(aspect_ratios, dtype=torch.float32)
        h_ratios = torch.sqrt(ratios)
        w_ratios = 1 / h_ratios
        ws = (w_ratios[:, None] * scales[None, :]).reshape(-1)
        hs = (h_ratios[:, None] * scales[None, :]).reshape(-1)
        return (torch.stack([-ws, -hs, ws, hs], dim=1) / 2).round()

    @property
    def num_anchors_per_location(self) -> list[int]:
        return [len(s) * len(r) for s, r in zip(self.sizes, self.aspect_ratios)]

    def describe_anchors(self) -> str:
        """How the anchors of a location come about: ``'5 sizes x 3 aspect ratios'``."""
        return f"{len(self.sizes[0])} sizes x {len(self.aspect_ratios[0])} aspect ratios"

    def level_strides(self, image_size: Sequence[int], feature_sizes: Sequence[Sequence[int]]) -> list[tuple[int, int]]:
        if self.strides != PER_BATCH:
            return [(s, s) for s in self.strides]
        return [(image_size[0] // h, image_size[1] // w) for h, w in feature_sizes]

    def forward(
        self, image_size: Sequence[int], feature_sizes: Sequence[Sequence[int]], device: torch.device | str = "cpu"
    ) -> list[Tensor]:
        """Anchors per level for a padded batch of ``image_size = (H, W)``.

        ``feature_sizes``: ``(h_l, w_l)`` per level -> list of ``(h_l * w_l * A_l) x 4`` tensors
        (the same for every image of the batch). Results are cached per geometry and device;
        while ``torch.export`` traces, the grid is built from the symbolic sizes instead.
        """
        if len(feature_sizes) != len(self.cell_anchors):
            raise ValueError(
                f"AnchorGenerator has {len(self.cell_anchors)} levels of sizes but got "
                f"{len(feature_sizes)} feature maps"
            )
        strides = self.level_strides(image_size, feature_sizes)
        if torch.compiler.is_exporting():  # symbolic sizes: no cache, no Python ints
            return [
                self._grid(cell.to(device), size, stride)
                for cell, size, stride in zip(self.cell_anchors, feature_sizes, strides)
            ]
        strides = [(int(sy), int(sx)) for sy, sx in strides]
        key = (tuple(tuple(int(v) for v in s) for s in feature_sizes), tuple(strides), str(device))
        if key not in self._cache:
            if len(self._cache) > 64:
                self._cache.clear()
            self._cache[key] = [
                self._grid(cell.to(device), size, stride)
                for cell, size, stride in zip(self.cell_anchors, feature_sizes, strides)
            ]
        return self._cache[key]

    def _grid(self, cell: Tensor, size: Sequence[int], stride: tuple[int, int]) -> Tensor:
        height, width = size[0], size[1]
        shifts_x = (torch.arange(width, device=cell.device, dtype=torch.float32) + self.offset) * stride[1]
        shifts_y = (torch.arange(height, device=cell.device, dtype=torch.float32) + self.offset) * stride[0]
        shift_y, shift_x = torch.meshgrid(shifts_y, shifts_x, indexing="ij")
        shifts = torch.stack((shift_x, shift_y, shift_x, shift_y), dim=-1).reshape(-1, 1, 4)
        return (shifts + cell[None]).reshape(-1, 4)


def anchor_strides(nominal: Sequence[int], size_divisor: int) -> tuple[int, ...] | str:
    """The strides of anchors on feature maps of these nominal strides.

    The strides themselves when the preprocessor pads every batch to a multiple of each: then
    a map has exactly ``padded / stride`` cells and anchors spaced by the stride are those of
    the per-batch rule. Otherwise ``PER_BATCH``, torchvision's rule: anchors spaced by
    ``padded size // feature size`` (FPN's P6, stride 64, on a batch padded to 800 has 13
    cells: 61 pixels apart), as torchvision's weights were trained with.
    """
    if all(size_divisor % stride == 0 for stride in nominal):
        return tuple(int(s) for s in nominal)
    return PER_BATCH


def derive_strides(
    strides: Sequence[int] | None, input_shape: Mapping[str, ShapeSpec], size_divisor: int
) -> Sequence[int] | str | None:
    """Stated ``strides`` checked against the levels' published strides, or derived from them
    (``anchor_strides``); unchanged when a level's stride is unknown."""
    nominal = tuple(spec.stride for spec in input_shape.values())
    if None in nominal:
        return strides
    if strides is None:
        return anchor_strides(nominal, size_divisor)
    return derive("strides", strides, nominal, describe_outputs(input_shape, f"strides {nominal}"))
