"""Where text goes on a picture: font sizes that follow the image size, box labels that stay
inside the image and out of each other's way, and corner panels (legend, caption) placed where
they hide the fewest boxes. Pure geometry: rectangles are ``(x0, y0, x1, y1)`` integer pixels,
``x1`` / ``y1`` exclusive."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

FONT = cv2.FONT_HERSHEY_SIMPLEX
MIN_FONT_SCALE = 0.25
Rect = tuple  # (x0, y0, x1, y1)


def auto_font_scale(height: int, width: int) -> float:
    """Font scale for an ``height x width`` picture, growing with its short side: capital
    letters about 7 px high on a 64-px image, 9 px on 256 px, 13 px on 600 px, 20 px on
    1200 px (at most 32 px)."""
    return float(np.clip(0.23 + 0.00045 * min(height, width), MIN_FONT_SCALE, 1.2))


def auto_thickness(height: int, width: int) -> int:
    """Box line width: 1 px up to ~600 px, then growing with the image."""
    return max(1, int(round(min(height, width) / 400.0)))


def text_thickness(font_scale: float) -> int:
    return 1 if font_scale < 0.8 else 2


def label_size(text: str, font_scale: float) -> tuple[int, int, int]:
    """``(width, height, baseline)`` of the filled label box of ``text`` (1 px padding)."""
    (tw, th), baseline = cv2.getTextSize(text, FONT, font_scale, text_thickness(font_scale))
    return tw + 2, th + baseline + 2, baseline


def fit_text(text: str, font_scale: float, max_width: int) -> tuple[str, float]:
    """``text`` at ``font_scale`` if its label fits ``max_width`` pixels; else a smaller
    scale (down to ``MIN_FONT_SCALE``), then the text cut with a trailing ``..``."""
    if max_width <= 0:
        return "", font_scale
    scale = font_scale
    while label_size(text, scale)[0] > max_width and scale > MIN_FONT_SCALE:
        scale = max(MIN_FONT_SCALE, scale * 0.85)
    if label_size(text, scale)[0] <= max_width:
        return text, scale
    for end in range(len(text) - 1, 0, -1):
        cut = text[:end].rstrip() + ".."
        if label_size(cut, scale)[0] <= max_width:
            return cut, scale
    return "", scale


def overlap_area(a: Rect, b: Rect) -> int:
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    return max(0, w) * max(0, h)


def _clamp(value: float, low: int, high: int) -> int:
    return int(min(max(int(round(value)), low), max(low, high)))


def label_candidates(
    box: Sequence[float], size: tuple[int, int], image_size: tuple[int, int], max_shifts: int = 6
) -> list[Rect]:
    """Positions for a ``size = (w, h)`` label of ``box`` (xyxy) in an image of
    ``image_size = (H, W)``, best first: above the box's top-left corner when there is room,
    else inside it; then, nearest first, inside its top, shifted up or down by whole label
    heights, below the box, at the box's right edge. Every candidate lies inside the image."""
    height, width = image_size
    lw, lh = size
    x1, y1, x2, y2 = (float(v) for v in box)
    above, inside = y1 - lh, max(0.0, y1)
    ys = [above, inside] if above >= 0 else [inside]
    for k in range(1, max_shifts + 1):
        ys += [above - k * lh, inside + k * lh]
    ys += [y2, max(inside, y2 - lh)]
    xs = [_clamp(x1, 0, width - lw), _clamp(x2 - lw, 0, width - lw)]
    preferred_x, preferred_y = xs[0], _clamp(ys[0], 0, height - lh)
    out: list[Rect] = []
    for x in xs:
        for y in ys:
            y0 = _clamp(y, 0, height - lh)
            rect = (x, y0, x + min(lw, width), y0 + min(lh, height))
            if rect not in out:
                out.append(rect)
    out.sort(key=lambda r: abs(r[1] - preferred_y) + abs(r[0] - preferred_x))  # stable: ties keep the order above
    return out


def place_label(
    box: Sequence[float], size: tuple[int, int], image_size: tuple[int, int], occupied: Sequence[Rect] = ()
) -> Rect:
    """The first of ``label_candidates`` that overlaps no rectangle of ``occupied`` (earlier
    labels, a legend); when every one does, the one overlapping least."""
    best, best_overlap = None, None
    for rect in label_candidates(box, size, image_size):
        overlap = sum(overlap_area(rect, other) for other in occupied)
        if overlap == 0:
            return rect
        if best_overlap is None or overlap < best_overlap:
            best, best_overlap = rect, overlap
    return best


def layout_labels(
    boxes: Sequence[Sequence[float]],
    sizes: Sequence[tuple[int, int]],
    image_size: tuple[int, int],
    occupied: Sequence[Rect] = (),
) -> list[Rect]:
    """Rectangles of the labels of ``boxes`` (sizes ``(w, h)``), placed in the given order
    (most important first): each avoids ``occupied`` and the labels placed before it."""
    taken = list(occupied)
    rects = []
    for box, size in zip(boxes, sizes):
        rect = place_label(box, size, image_size, taken)
        rects.append(rect)
        taken.append(rect)
    return rects


def place_panel(
    size: tuple[int, int],
    image_size: tuple[int, int],
    boxes: Sequence[Sequence[float]] = (),
    occupied: Sequence[Rect] = (),
    margin: int = 2,
) -> Rect:
    """A corner for a ``size = (w, h)`` panel: the one covering the least box area and the
    fewest ``occupied`` pixels (ties: top-right, top-left, bottom-right, bottom-left)."""
    height, width = image_size
    pw, ph = min(size[0], width), min(size[1], height)
    right, bottom = max(0, width - pw - margin), max(0, height - ph - margin)
    left, top = min(margin, right), min(margin, bottom)
    corners = [(right, top), (left, top), (right, bottom), (left, bottom)]
    scored = []
    for order, (x, y) in enumerate(corners):
        rect = (x, y, x + pw, y + ph)
        cost = sum(overlap_area(rect, tuple(int(round(v)) for v in b)) for b in boxes)
        cost += sum(overlap_area(rect, r) for r in occupied)
        scored.append((cost, order, rect))
    return min(scored)[2]
