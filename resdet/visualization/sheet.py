"""Contact sheets: a grid of images under a title bar (one class of a classification set)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import cv2
import numpy as np

from .layout import FONT, fit_text, label_size, text_thickness

BACKGROUND = (32, 32, 32)
TILE_BACKGROUND = (64, 64, 64)


def fit_tile(image: np.ndarray, tile: int) -> np.ndarray:
    """``image`` scaled to fit a ``tile x tile`` square (aspect kept, centred on grey): small
    images are enlarged with nearest-neighbour pixels (a 32-px CIFAR image stays crisp),
    large ones shrunk with area averaging."""
    h, w = image.shape[:2]
    scale = tile / max(h, w)
    nh, nw = max(1, int(round(h * scale))), max(1, int(round(w * scale)))
    resized = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_NEAREST if scale > 1 else cv2.INTER_AREA)
    out = np.empty((tile, tile, 3), np.uint8)
    out[:] = TILE_BACKGROUND
    y0, x0 = (tile - nh) // 2, (tile - nw) // 2
    out[y0 : y0 + nh, x0 : x0 + nw] = resized
    return out


def contact_sheet(
    images: Sequence[np.ndarray],
    title: str,
    tile: int = 128,
    columns: int | None = None,
    gap: int = 4,
    font_scale: float = 0.5,
) -> np.ndarray:
    """A ``H x W x 3`` uint8 RGB grid of ``images`` (each ``h x w x 3`` uint8 RGB, fitted into
    ``tile`` px squares, ``columns`` per row: default about square, at most 8) under a dark
    title bar reading ``title``."""
    count = len(images)
    columns = columns or min(8, max(1, math.ceil(math.sqrt(count))))
    rows = max(1, math.ceil(count / columns))
    bar_h = label_size("Ag", font_scale)[1] + 8
    width = max(columns * (tile + gap) + gap, min(label_size(title, font_scale)[0] + 2 * gap, 1200))
    height = bar_h + rows * (tile + gap) + gap
    sheet = np.empty((height, width, 3), np.uint8)
    sheet[:] = BACKGROUND
    text, scale = fit_text(title, font_scale, width - 2 * gap)
    baseline = label_size(text, scale)[2]
    cv2.putText(
        sheet,
        text,
        (gap, bar_h - 4 - baseline),
        FONT,
        scale,
        (255, 255, 255),
        text_thickness(scale),
        lineType=cv2.LINE_AA,
    )
    for i, image in enumerate(images):
        r, c = divmod(i, columns)
        y, x = bar_h + gap + r * (tile + gap), gap + c * (tile + gap)
        sheet[y : y + tile, x : x + tile] = fit_tile(np.asarray(image, np.uint8), tile)
    return sheet
