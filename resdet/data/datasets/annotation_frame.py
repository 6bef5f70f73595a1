"""Bringing an image's annotations onto its decoded pixels: EXIF rotation and wrong sizes.

Images are decoded the way viewers show them, EXIF orientation applied (``image_io``).
Annotation files say which pixels they were drawn on only through the image size they
record (COCO ``width``/``height``, VOC ``<size>``):

- **EXIF orientation** (``exif_annotations``): ``'auto'`` (default) takes the annotations as
  drawn on the *displayed* image (what COCO tools and viewers show) unless the recorded size
  has the *stored* orientation where the two differ (orientations 5-8 of a non-square image:
  the recorded width/height are swapped relative to the displayed image, i.e. landscape vs
  portrait); then boxes, polygons and masks are moved by the same rotation / mirror as the
  pixels. Orientations 2-4 (mirror, 180 degrees, flip) and square images keep the size, so
  the two cases cannot be told apart: ``'auto'`` follows COCO's convention (displayed).
  ``'stored'`` always transforms (annotation tools that ignore EXIF), ``'displayed'`` never.
- **Size mismatch** (the recorded size disagrees with the decoded pixels once oriented):
  when every box fits the recorded size, the annotations are in the recorded frame and are
  rescaled to the pixels; when they do not fit it but fit the real image, the recorded size
  is what is wrong and the boxes are kept as pixel coordinates. Boxes are clipped to the
  real image only afterwards, so nothing is lost to a wrong size.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ..image_io import apply_orientation

EXIF_ANNOTATION_MODES = ("auto", "displayed", "stored")
_SWAPS = (5, 6, 7, 8)


def orient_points(xy: np.ndarray, orientation: int, width: float, height: float) -> np.ndarray:
    """Continuous ``K x 2`` points of a ``width x height`` stored image -> displayed image
    coordinates for EXIF ``orientation`` (the pixel operation of ``image_io.apply_orientation``)."""
    x, y = xy[:, 0], xy[:, 1]
    if orientation == 2:
        out = (width - x, y)
    elif orientation == 3:
        out = (width - x, height - y)
    elif orientation == 4:
        out = (x, height - y)
    elif orientation == 5:
        out = (y, x)
    elif orientation == 6:
        out = (height - y, x)
    elif orientation == 7:
        out = (height - y, width - x)
    elif orientation == 8:
        out = (y, width - x)
    else:
        return xy
    return np.stack(out, axis=1).astype(xy.dtype, copy=False)


def orient_boxes(boxes: np.ndarray, orientation: int, width: float, height: float) -> np.ndarray:
    """``N x 4`` xyxy boxes of the stored image -> xyxy boxes of the displayed image."""
    if orientation == 1 or not len(boxes):
        return boxes
    corners = orient_points(boxes.reshape(-1, 2), orientation, width, height).reshape(-1, 2, 2)
    return np.concatenate([corners.min(1), corners.max(1)], axis=1).astype(np.float32)


def orient_polygons(polygons: list, orientation: int, width: float, height: float) -> list:
    """COCO polygons (per instance: a list of flat ``[x0, y0, x1, y1, ...]``) moved likewise."""
    if orientation == 1:
        return polygons
    return [
        [
            orient_points(np.asarray(p, np.float64).reshape(-1, 2), orientation, width, height).reshape(-1)
            for p in instance
        ]
        for instance in polygons
    ]


def orient_bitmaps(masks: np.ndarray, orientation: int) -> np.ndarray:
    """``N x H x W`` masks of the stored image -> masks of the displayed image."""
    if orientation == 1:
        return masks
    if not masks.size:
        n, h, w = masks.shape
        return np.zeros((n, w, h) if orientation in _SWAPS else (n, h, w), masks.dtype)
    return np.ascontiguousarray(apply_orientation(masks.transpose(1, 2, 0), orientation).transpose(2, 0, 1))


@dataclass(frozen=True)
class Frame:
    """How one record's annotations map onto its decoded image: first ``orientation``
    (applied in the recorded ``width x height`` frame), then ``scale`` (x, y); ``mismatch``
    says whether the recorded size was wrong, ``pixel_coordinates`` whether the boxes were
    then taken as they are (``scale`` 1) because they only fit the real image."""

    orientation: int = 1
    scale: tuple[float, float] = (1.0, 1.0)
    mismatch: bool = False
    pixel_coordinates: bool = False

    @property
    def identity(self) -> bool:
        """Nothing to do: no rotation, no rescaling and the recorded size was right."""
        return self.orientation == 1 and self.scale == (1.0, 1.0) and not self.mismatch


def _landscape(height: float, width: float) -> bool:
    return width > height


def choose_frame(
    recorded: tuple[int, int],
    decoded: tuple[int, int],
    stored: tuple[int, int],
    orientation: int,
    boxes: np.ndarray,
    mode: str = "auto",
    tolerance: float = 1.0,
) -> Frame:
    """The ``Frame`` of one image (see the module docstring).

    Args:
        recorded: ``(height, width)`` from the annotation file.
        decoded: ``(height, width)`` of the decoded (displayed) pixels.
        stored: ``(height, width)`` of the stored pixels (before the EXIF orientation).
        orientation: the EXIF orientation applied to the pixels.
        boxes: the record's unclipped ``N x 4`` boxes in the recorded frame.
        mode: ``'auto'``, ``'displayed'`` or ``'stored'`` (``exif_annotations``).
        tolerance: pixels a box may reach past an image edge and still "fit".
    """
    if mode not in EXIF_ANNOTATION_MODES:
        raise ValueError(f"exif_annotations must be one of {', '.join(EXIF_ANNOTATION_MODES)}, got {mode!r}")
    rotate = 1
    if orientation != 1 and mode == "stored":
        rotate = orientation
    elif orientation in _SWAPS and mode == "auto":
        stored_landscape, shown_landscape = _landscape(*stored), _landscape(*decoded)
        if (
            stored_landscape != shown_landscape
            and _landscape(*recorded) == stored_landscape
            and recorded[0] != recorded[1]
        ):
            rotate = orientation
    height, width = recorded
    if rotate in _SWAPS:
        height, width = width, height
        boxes = orient_boxes(boxes, rotate, recorded[1], recorded[0])
    if (height, width) == tuple(decoded):
        return Frame(orientation=rotate)
    scale = (decoded[1] / width, decoded[0] / height)
    if len(boxes):
        fits_recorded = (boxes[:, 2].max() <= width + tolerance) and (boxes[:, 3].max() <= height + tolerance)
        fits_pixels = (boxes[:, 2].max() <= decoded[1] + tolerance) and (boxes[:, 3].max() <= decoded[0] + tolerance)
        if not fits_recorded and fits_pixels:
            return Frame(orientation=rotate, mismatch=True, pixel_coordinates=True)
    return Frame(orientation=rotate, scale=scale, mismatch=True)


def apply_frame_to_boxes(boxes: np.ndarray, frame: Frame, recorded: tuple[int, int]) -> np.ndarray:
    """``N x 4`` recorded-frame boxes -> boxes on the decoded pixels (not clipped)."""
    out = orient_boxes(np.asarray(boxes, np.float32).reshape(-1, 4), frame.orientation, recorded[1], recorded[0])
    if frame.scale != (1.0, 1.0):
        sx, sy = frame.scale
        out = out * np.array([sx, sy, sx, sy], dtype=np.float32)
    return out.astype(np.float32, copy=False)


def apply_frame_to_polygons(polygons: list, frame: Frame, recorded: tuple[int, int]) -> list:
    """Per-instance COCO polygons -> polygons on the decoded pixels."""
    out = orient_polygons(polygons, frame.orientation, recorded[1], recorded[0])
    if frame.scale != (1.0, 1.0):
        factors = np.array(frame.scale, dtype=np.float64)
        out = [[(np.asarray(p, np.float64).reshape(-1, 2) * factors).reshape(-1) for p in inst] for inst in out]
    return out


def apply_frame_to_bitmaps(masks: np.ndarray, frame: Frame, decoded: tuple[int, int]) -> np.ndarray:
    """``N x h x w`` recorded-frame masks -> ``N x H x W`` masks of the decoded pixels
    (rescaled nearest-neighbour, or cropped / zero-padded for pixel coordinates)."""
    masks = orient_bitmaps(np.asarray(masks, dtype=np.uint8), frame.orientation)
    height, width = decoded
    if masks.shape[1:] == (height, width):
        return masks
    if not len(masks):
        return np.zeros((0, height, width), dtype=np.uint8)
    if frame.pixel_coordinates:
        out = np.zeros((len(masks), height, width), dtype=np.uint8)
        h, w = min(height, masks.shape[1]), min(width, masks.shape[2])
        out[:, :h, :w] = masks[:, :h, :w]
        return out
    return np.stack([cv2.resize(m, (width, height), interpolation=cv2.INTER_NEAREST) for m in masks])
