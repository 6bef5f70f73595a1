"""Box helpers on ``N x 4`` float ``xyxy`` tensors in absolute, continuous pixel coordinates.

Conversions to and from other formats happen only at the edges (dataset loading, result
writing); everything inside resdet uses ``xyxy``. The geometry itself comes from
``torchvision.ops``; these helpers add the image-level bookkeeping (clip, flip, rescale;
mapping predictions back to the original image is ``image_meta``'s).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor
from torchvision.ops import batched_nms, box_area, box_convert, box_iou, clip_boxes_to_image, nms  # noqa: F401

__all__ = [
    "box_area",
    "box_iou",
    "box_ioa",
    "clip_boxes",
    "grouped_nms",
    "flip_boxes",
    "scale_boxes",
    "nonempty_mask",
    "xyxy_to_xywh",
    "xywh_to_xyxy",
]


def xyxy_to_xywh(boxes: Tensor) -> Tensor:
    """``N x 4`` xyxy -> ``N x 4`` COCO-style ``(x, y, w, h)``."""
    return box_convert(boxes, "xyxy", "xywh")


def xywh_to_xyxy(boxes: Tensor) -> Tensor:
    """``N x 4`` COCO-style ``(x, y, w, h)`` -> ``N x 4`` xyxy."""
    return box_convert(boxes, "xywh", "xyxy")


def box_ioa(boxes: Tensor, regions: Tensor) -> Tensor:
    """Intersection over the area of ``boxes``: ``N x 4``, ``M x 4`` -> ``N x M``.

    Used for ignore regions (crowd / difficult): an anchor mostly inside a crowd box has a
    high IoA even when its IoU with the (large) crowd box is small.
    """
    top_left = torch.max(boxes[:, None, :2], regions[None, :, :2])
    bottom_right = torch.min(boxes[:, None, 2:], regions[None, :, 2:])
    inter = (bottom_right - top_left).clamp(min=0).prod(dim=2)
    return inter / box_area(boxes).clamp(min=1e-6)[:, None]


def grouped_nms(boxes: Tensor, scores: Tensor, groups: Tensor, iou_threshold: float, num_groups: int) -> Tensor:
    """NMS within each group (class, FPN level) of ``groups`` (``N`` int64 in ``0..num_groups-1``):
    indices kept, by decreasing score. ``torchvision.ops.batched_nms`` in eager mode; while
    exporting, one ``nms`` per group (torchvision's exact per-group algorithm, which it uses
    itself above 1000 boxes), since its choice between the two reads the box count."""
    if not torch.compiler.is_exporting():
        return batched_nms(boxes, scores, groups, iou_threshold)
    kept = torch.zeros_like(scores, dtype=torch.bool)
    for group in range(num_groups):
        members = (groups == group).nonzero().squeeze(1)
        kept[members[nms(boxes[members], scores[members], iou_threshold)]] = True
    keep = kept.nonzero().squeeze(1)
    return keep[scores[keep].sort(descending=True)[1]]


def clip_boxes(boxes: Tensor, size: Sequence[int]) -> Tensor:
    """Clip ``... x 4`` boxes to an image of ``size = (h, w)`` (ints, or symbolic sizes)."""
    height, width = size[0], size[1]
    if not isinstance(height, torch.SymInt) and not isinstance(width, torch.SymInt):
        height, width = int(height), int(width)
    x = boxes[..., 0::2].clamp(min=0, max=width)
    y = boxes[..., 1::2].clamp(min=0, max=height)
    return torch.stack((x[..., 0], y[..., 0], x[..., 1], y[..., 1]), dim=-1)


def flip_boxes(boxes: Tensor, width: float) -> Tensor:
    """Mirror ``... x 4`` boxes horizontally in an image ``width`` pixels wide."""
    return torch.stack((width - boxes[..., 2], boxes[..., 1], width - boxes[..., 0], boxes[..., 3]), dim=-1)


def scale_boxes(boxes: Tensor, w_scale: float, h_scale: float) -> Tensor:
    """Multiply x coordinates by ``w_scale`` and y coordinates by ``h_scale``."""
    factors = boxes.new_tensor([w_scale, h_scale, w_scale, h_scale])
    return boxes * factors


def nonempty_mask(boxes: Tensor, min_size: float = 0.0) -> Tensor:
    """``N`` bool: both sides of the box longer than ``min_size``."""
    return ((boxes[:, 2] - boxes[:, 0]) > min_size) & ((boxes[:, 3] - boxes[:, 1]) > min_size)
