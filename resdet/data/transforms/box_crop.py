"""``BoxRandomCrop``: the fixed-size random crops of the paper's localization training."""

from __future__ import annotations

import numpy as np

from ...registry import TRANSFORMS


@TRANSFORMS.register_module()
class BoxRandomCrop:
    """A random ``size x size`` crop (the paper's 224 x 224 localization training crops),
    padding smaller images (bottom / right). Boxes are shifted and clipped; a box keeping
    less than ``min_visible`` of its area becomes ``ignore`` (its anchors are neither positive
    nor negative). Training only: the crop offset is not recorded in the meta, so
    predictions on cropped images cannot be mapped back to the original image."""

    def __init__(self, size: int = 224, min_visible: float = 0.3, pad_value: int = 0) -> None:
        if size <= 0 or not 0.0 <= min_visible <= 1.0:
            raise ValueError(f"BoxRandomCrop needs size > 0 and min_visible in [0, 1], got {size}, {min_visible}")
        self.size, self.min_visible, self.pad_value = int(size), float(min_visible), int(pad_value)

    def __call__(self, sample: dict) -> dict:
        img = sample["img"]
        h, w = img.shape[:2]
        if h < self.size or w < self.size:
            img = np.pad(
                img, ((0, max(self.size - h, 0)), (0, max(self.size - w, 0)), (0, 0)), constant_values=self.pad_value
            )
            h, w = img.shape[:2]
        y0, x0 = int(np.random.randint(0, h - self.size + 1)), int(np.random.randint(0, w - self.size + 1))
        sample["img"] = np.ascontiguousarray(img[y0 : y0 + self.size, x0 : x0 + self.size])
        boxes = np.asarray(sample.get("boxes", np.zeros((0, 4), np.float32)), np.float32).reshape(-1, 4)
        if len(boxes):
            area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
            moved = boxes - np.array([x0, y0, x0, y0], np.float32)
            moved = moved.clip(0, self.size)
            kept_area = (moved[:, 2] - moved[:, 0]) * (moved[:, 3] - moved[:, 1])
            visible = kept_area > 0
            ignore = np.asarray(sample.get("ignore", np.zeros(len(boxes), bool)), bool)
            ignore = ignore | (kept_area < self.min_visible * np.maximum(area, 1e-6))
            sample["boxes"], sample["ignore"] = moved[visible], ignore[visible]
            sample["labels"] = np.asarray(sample["labels"]).reshape(-1)[visible]
        sample["img_shape"] = (self.size, self.size)
        return sample

    def __repr__(self) -> str:
        return f"BoxRandomCrop(size={self.size}, min_visible={self.min_visible})"
