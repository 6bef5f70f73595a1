"""Class colours: one stable colour per label, whatever else is drawn on the picture."""

from __future__ import annotations

import colorsys

import numpy as np

_GOLDEN = 0.618033988749895


def color_palette(num_colors: int, seed: int = 3) -> np.ndarray:
    """``num_colors x 3`` uint8 RGB colours, bright and well separated (golden-ratio hues).

    Row ``k`` depends on ``k`` (and ``seed``) only, so a class keeps its colour whether a
    picture shows 2 classes or 80, and from one picture to the next."""
    rows = []
    for k in range(int(num_colors)):  # per row (OpenCV's vectorised HSV path rounds by image width)
        hue = (k * _GOLDEN + seed * 0.1) % 1.0
        hue = int(hue * 179.0) / 180.0  # OpenCV's 0..179 hue steps, as the palette always had
        value = 1.0 if (k // 5) % 2 == 0 else 0.8  # every other turn of the hue circle darker
        rows.append([round(c * 255.0) for c in colorsys.hsv_to_rgb(hue, 200.0 / 255.0, value)])
    return np.asarray(rows, dtype=np.uint8).reshape(-1, 3)


def class_color(label: int) -> tuple[int, int, int]:
    """The RGB colour of class ``label`` (row ``label`` of ``color_palette``)."""
    return tuple(int(c) for c in color_palette(int(label) + 1)[int(label)])


def text_color_on(background) -> tuple[int, int, int]:
    """Black or white, whichever reads better on the RGB ``background``."""
    r, g, b = (float(c) for c in background)
    return (0, 0, 0) if 0.299 * r + 0.587 * g + 0.114 * b > 140 else (255, 255, 255)
