"""Drawing detections and ground truth on images: boxes in a stable colour per class, labels
that stay inside the image and avoid each other, translucent masks with outlines, and a
legend (class name + colour swatch) when many classes are drawn."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np

from ..structures.masks import PolygonMasks, masks_to_bitmaps
from ..utils.containers import class_name
from .layout import (
    FONT,
    auto_font_scale,
    auto_thickness,
    fit_text,
    label_size,
    layout_labels,
    place_panel,
    text_thickness,
)
from .palette import class_color, color_palette, text_color_on

LEGEND_MIN_CLASSES = 9  # draw a legend automatically from this many distinct classes on


def _to_numpy(x) -> np.ndarray | None:
    if x is None:
        return None
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def select_detections(scores, num: int, score_thr: float = 0.5, top_k: int | None = None) -> np.ndarray:
    """Indices of the predictions to draw, highest score first: the ``top_k`` best whatever
    their score when ``top_k`` is given, else those scoring at least ``score_thr`` (all ``num``
    when ``scores`` is ``None``)."""
    if scores is None:
        return np.arange(num if top_k is None else min(num, int(top_k)))
    scores = _to_numpy(scores).reshape(-1)
    order = np.argsort(-scores, kind="stable")
    if top_k is not None:
        if top_k < 0:
            raise ValueError(f"top_k must be >= 0, got {top_k}")
        return order[: int(top_k)]
    return order[scores[order] >= score_thr]


def as_bitmaps(masks: Any, height: int, width: int) -> np.ndarray | None:
    """``masks`` (``N x H x W`` bool / 0-1 / probabilities, a tensor, or ``PolygonMasks``)
    as ``N x height x width`` bool (probabilities thresholded at 0.5)."""
    if masks is None:
        return None
    if isinstance(masks, PolygonMasks):
        return masks_to_bitmaps(masks, height, width).astype(bool)
    arr = _to_numpy(masks)
    if arr.size == 0:
        return np.zeros((0, height, width), dtype=bool)
    arr = arr.reshape(-1, *arr.shape[-2:])
    if arr.shape[1:] != (height, width):
        raise ValueError(f"masks are {arr.shape[1:]} but the image is {(height, width)}")
    return arr > 0.5


def draw_masks(
    canvas: np.ndarray, masks: np.ndarray, colors: Sequence[Sequence[int]], alpha: float = 0.45, outline: int = 1
) -> np.ndarray:
    """Blend each of ``masks`` (``N x H x W`` bool) into ``canvas`` (in place) in its colour with
    opacity ``alpha``, then outline its contours (holes included) ``outline`` px wide."""
    if len(masks) == 0:
        return canvas
    blended = canvas.astype(np.float32)
    for mask, colour in zip(masks, colors):
        blended[mask] = blended[mask] * (1 - alpha) + np.asarray(colour, np.float32) * alpha
    canvas[:] = blended.round().clip(0, 255).astype(np.uint8)
    if outline > 0:
        for mask, colour in zip(masks, colors):
            contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_CCOMP, cv2.CHAIN_APPROX_NONE)
            cv2.drawContours(canvas, contours, -1, tuple(int(c) for c in colour), outline, lineType=cv2.LINE_8)
    return canvas


def _dashed_rectangle(canvas: np.ndarray, p1: tuple[int, int], p2: tuple[int, int], colour, thickness: int) -> None:
    (x1, y1), (x2, y2) = p1, p2
    dash = 4 * thickness + 2
    for (ax, ay), (bx, by) in (((x1, y1), (x2, y1)), ((x2, y1), (x2, y2)), ((x2, y2), (x1, y2)), ((x1, y2), (x1, y1))):
        length = max(abs(bx - ax), abs(by - ay))
        for start in range(0, length + 1, 2 * dash):
            end = min(start + dash, length)
            t0, t1 = start / max(length, 1), end / max(length, 1)
            cv2.line(
                canvas,
                (int(round(ax + (bx - ax) * t0)), int(round(ay + (by - ay) * t0))),
                (int(round(ax + (bx - ax) * t1)), int(round(ay + (by - ay) * t1))),
                colour,
                thickness,
            )


def draw_text_box(canvas: np.ndarray, rect: tuple, text: str, background, font_scale: float) -> None:
    """A filled ``rect`` in ``background`` with ``text`` in black or white, clipped to the image."""
    x0, y0, x1, y1 = rect
    cv2.rectangle(canvas, (x0, y0), (x1 - 1, y1 - 1), tuple(int(c) for c in background), -1)
    baseline = label_size(text, font_scale)[2]
    cv2.putText(
        canvas,
        text,
        (x0 + 1, y1 - 1 - baseline),
        FONT,
        font_scale,
        text_color_on(background),
        text_thickness(font_scale),
        lineType=cv2.LINE_AA,
    )


def draw_panel(
    canvas: np.ndarray,
    rows: Sequence[tuple[Any, str]],
    font_scale: float,
    boxes: Sequence[Sequence[float]] = (),
    occupied: Sequence[tuple] = (),
) -> tuple:
    """A dark, translucent panel of ``rows`` (``(RGB swatch colour or None, text)``: a legend or a
    caption) in the image corner that hides the fewest ``boxes``; in columns when it would be
    taller than the image. Draws in place and returns the panel's rectangle."""
    h, w = canvas.shape[:2]
    texts = [fit_text(text, font_scale, max(8, w - 8))[0] for _, text in rows]
    row_h = max(label_size("Ag", font_scale)[1], 6)
    swatch = row_h - 2 if any(c is not None for c, _ in rows) else 0
    col_w = 4 + swatch + (3 if swatch else 0) + max(label_size(t, font_scale)[0] for t in texts)
    per_col = max(1, min(len(rows), (h - 4) // row_h))
    num_cols = -(-len(rows) // per_col)
    size = (min(w, num_cols * col_w + 2), min(h, per_col * row_h + 4))
    x0, y0, x1, y1 = rect = place_panel(size, (h, w), boxes, occupied)
    region = canvas[y0:y1, x0:x1].astype(np.float32)
    canvas[y0:y1, x0:x1] = (region * 0.35).round().astype(np.uint8)  # 65 % black: reads on any photo
    baseline = label_size("Ag", font_scale)[2]
    for i, ((colour, _), text) in enumerate(zip(rows, texts)):
        cx, cy = x0 + 2 + (i // per_col) * col_w, y0 + 2 + (i % per_col) * row_h
        if cx >= x1 or cy + row_h > y1 + 1:
            break
        if colour is not None:
            cv2.rectangle(canvas, (cx + 1, cy + 1), (cx + swatch, cy + swatch), tuple(int(c) for c in colour), -1)
        tx = cx + 2 + swatch + (3 if swatch else 0)
        cv2.putText(
            canvas,
            text,
            (tx, cy + row_h - 1 - baseline),
            FONT,
            font_scale,
            (255, 255, 255),
            text_thickness(font_scale),
            lineType=cv2.LINE_AA,
        )
    return rect


def draw_detections(
    image: np.ndarray,
    boxes,
    labels,
    scores=None,
    masks=None,
    class_names: Sequence[str] | None = None,
    score_thr: float = 0.5,
    mask_alpha: float = 0.45,
    thickness: int | None = None,
    font_scale: float | None = None,
    top_k: int | None = None,
    ignore=None,
    legend: bool | None = None,
    caption: str | None = None,
    caption_label: int | None = None,
) -> np.ndarray:
    """Draw detections (or ground truth) on a copy of ``image``.

    Args:
        image: ``H x W x 3`` uint8 RGB.
        boxes: ``N x 4`` xyxy in the image's pixels (numpy or tensor).
        labels: ``N`` int class indices; each class has a fixed colour (``color_palette``).
        scores: ``N`` floats (``None``: draw all, no score in the labels).
        masks: optional ``N x H x W`` (bool, 0/1 or probabilities thresholded at 0.5) or
            ``PolygonMasks``: blended in the class colour with opacity ``mask_alpha`` and outlined.
        class_names: names indexed by label (default: the label number).
        score_thr: detections with a lower score are not drawn.
        thickness, font_scale: default from the image size (smaller text on small images).
        top_k: draw the ``top_k`` highest-scoring predictions whatever ``score_thr`` (ranked
            guesses, e.g. a localizer's top-5 classes), each label prefixed by its rank.
        ignore: optional ``N`` bool (crowd / difficult ground truth): dashed box, label
            suffixed ``(ignored)``.
        legend: a panel of class names with colour swatches; ``None``: only when at least
            ``LEGEND_MIN_CLASSES`` (9) distinct classes are drawn.
        caption: a line of text in a panel (e.g. an image's class), with the colour swatch of
            ``caption_label`` when given.

    Labels go above their box when there is room, else inside it, and move to avoid earlier
    (higher-scoring) labels and the legend; they never leave the image.

    Returns the annotated ``H x W x 3`` uint8 RGB copy.
    """
    canvas = np.ascontiguousarray(np.asarray(image, dtype=np.uint8).copy())
    if canvas.ndim != 3 or canvas.shape[2] != 3:
        raise ValueError(f"expected an H x W x 3 uint8 image, got shape {canvas.shape}")
    h, w = canvas.shape[:2]
    boxes = _to_numpy(boxes).reshape(-1, 4).astype(np.float32)
    labels = _to_numpy(labels).reshape(-1).astype(np.int64)
    if len(labels) != len(boxes):
        raise ValueError(f"{len(boxes)} boxes but {len(labels)} labels")
    scores_np = None if scores is None else _to_numpy(scores).reshape(-1).astype(np.float32)
    ignore_np = np.zeros(len(boxes), bool) if ignore is None else _to_numpy(ignore).reshape(-1).astype(bool)
    order = select_detections(scores_np, len(boxes), score_thr=score_thr, top_k=top_k)  # most important first
    rank = np.zeros(len(boxes), dtype=np.int64)
    rank[order] = np.arange(len(order))
    palette = color_palette(max(int(labels.max()) + 1 if len(labels) else 1, len(class_names or []), 1))
    colours = [tuple(int(c) for c in palette[max(int(label), 0) % len(palette)]) for label in labels]
    thickness = thickness or auto_thickness(h, w)
    font_scale = font_scale or auto_font_scale(h, w)

    bitmaps = as_bitmaps(masks, h, w)
    if bitmaps is not None and len(bitmaps):
        if len(bitmaps) != len(boxes):
            raise ValueError(f"{len(bitmaps)} masks but {len(boxes)} boxes")
        draw_masks(canvas, bitmaps[order], [colours[i] for i in order], alpha=mask_alpha, outline=thickness)

    for i in order[::-1]:  # least important first: the confident boxes end on top
        p1 = (int(round(boxes[i, 0])), int(round(boxes[i, 1])))
        p2 = (int(round(boxes[i, 2])), int(round(boxes[i, 3])))
        if ignore_np[i]:
            _dashed_rectangle(canvas, p1, p2, colours[i], thickness)
        else:
            cv2.rectangle(canvas, p1, p2, colours[i], thickness, lineType=cv2.LINE_AA)

    occupied = []
    kept_boxes = boxes[order]
    drawn_labels = sorted({int(labels[i]) for i in order})
    if legend or (legend is None and len(drawn_labels) >= LEGEND_MIN_CLASSES):
        rows = [(palette[label % len(palette)], class_name(label, class_names)) for label in drawn_labels]
        occupied.append(draw_panel(canvas, rows, font_scale, kept_boxes))
    if caption:
        swatch = None if caption_label is None else class_color(caption_label)
        occupied.append(draw_panel(canvas, [(swatch, caption)], font_scale, kept_boxes, occupied))

    texts, scales, sizes = [], [], []
    for i in order:
        text = class_name(labels[i], class_names)
        if scores_np is not None:
            text = f"{text} {float(scores_np[i]):.2f}"
        if top_k is not None and scores_np is not None:
            text = f"{rank[i] + 1}. {text}"
        if ignore_np[i]:
            text += " (ignored)"
        text, scale = fit_text(text, font_scale, w)
        texts.append(text)
        scales.append(scale)
        sizes.append(label_size(text, scale)[:2])
    rects = layout_labels(kept_boxes, sizes, (h, w), occupied)
    for k in range(len(order) - 1, -1, -1):  # the most important label drawn last, on top
        if texts[k]:
            draw_text_box(canvas, rects[k], texts[k], colours[order[k]], scales[k])
    return canvas
