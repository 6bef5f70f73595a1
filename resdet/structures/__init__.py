"""Data structures shared by datasets, models and evaluators (boxes; masks)."""
from .boxes import (box_area, box_ioa, box_iou, clip_boxes, flip_boxes,  # noqa: F401
                    map_boxes_to_original, nonempty_mask, scale_boxes, xywh_to_xyxy, xyxy_to_xywh)
