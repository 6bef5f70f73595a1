"""Data structures shared by datasets, models and evaluators (boxes; masks; per-image meta)."""

from .boxes import (
    box_area,
    box_ioa,
    box_iou,
    clip_boxes,
    flip_boxes,  # noqa: F401
    nonempty_mask,
    scale_boxes,
    xywh_to_xyxy,
    xyxy_to_xywh,
)
from .image_meta import META_KEYS, ImageMeta, image_metas, map_boxes_to_original  # noqa: F401
