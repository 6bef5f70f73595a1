"""Drawing detections on images: boxes, class names with scores, translucent masks."""
from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np


def color_palette(num_colors: int, seed: int = 3) -> np.ndarray:
    """``num_colors x 3`` uint8 RGB colours, bright and well separated (golden-ratio hues)."""
    hues = (np.arange(num_colors) * 0.618033988749895 + seed * 0.1) % 1.0
    hsv = np.stack([hues * 179.0, np.full(num_colors, 200.0), np.full(num_colors, 255.0)], 1)
    rgb = cv2.cvtColor(hsv.astype(np.uint8)[None], cv2.COLOR_HSV2RGB)[0]
    return rgb.astype(np.uint8)


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
        return order[:int(top_k)]
    return order[scores[order] >= score_thr]


def draw_detections(image: np.ndarray, boxes, labels, scores=None, masks=None,
                    class_names: Sequence[str] | None = None, score_thr: float = 0.5,
                    mask_alpha: float = 0.45, thickness: int | None = None,
                    font_scale: float | None = None, top_k: int | None = None) -> np.ndarray:
    """Draw detections on a copy of ``image``.

    Args:
        image: ``H x W x 3`` uint8 RGB.
        boxes: ``N x 4`` xyxy in the image's pixels (numpy or tensor).
        labels: ``N`` int class indices; scores: ``N`` floats (``None``: draw all, no score).
        masks: optional ``N x H x W`` (bool, 0/1 or probabilities thresholded at 0.5),
            blended in the class colour with opacity ``mask_alpha``.
        class_names: names indexed by label (default: the label number).
        score_thr: detections with a lower score are not drawn.
        top_k: draw the ``top_k`` highest-scoring predictions whatever ``score_thr`` (ranked
            guesses, e.g. a localizer's top-5 classes), each label prefixed by its rank.

    Returns the annotated ``H x W x 3`` uint8 RGB copy.
    """
    canvas = np.ascontiguousarray(np.asarray(image, dtype=np.uint8).copy())
    if canvas.ndim != 3 or canvas.shape[2] != 3:
        raise ValueError(f"expected an H x W x 3 uint8 image, got shape {canvas.shape}")
    boxes = _to_numpy(boxes).reshape(-1, 4).astype(np.float32)
    labels = _to_numpy(labels).reshape(-1).astype(np.int64)
    scores_np = _to_numpy(scores)
    keep = np.zeros(len(boxes), dtype=bool)
    keep[select_detections(scores_np, len(boxes), score_thr=score_thr, top_k=top_k)] = True
    rank = np.zeros(len(boxes), dtype=np.int64)
    if top_k is not None and scores_np is not None:
        rank[np.argsort(-scores_np.reshape(-1), kind="stable")] = np.arange(len(boxes))
    num_classes = max(int(labels.max()) + 1 if len(labels) else 1, len(class_names or []))
    palette = color_palette(num_classes)
    h, w = canvas.shape[:2]
    thickness = thickness or max(1, int(round(min(h, w) / 300)))
    font_scale = font_scale or max(0.35, min(h, w) / 900)

    masks_np = _to_numpy(masks)
    if masks_np is not None and len(masks_np):
        masks_np = masks_np.reshape(len(masks_np), *masks_np.shape[-2:]) > 0.5
        if masks_np.shape[1:] != (h, w):
            raise ValueError(f"masks are {masks_np.shape[1:]} but the image is {(h, w)}")
        overlay = canvas.astype(np.float32)
        for i in np.nonzero(keep)[0]:
            colour = palette[labels[i] % len(palette)].astype(np.float32)
            region = masks_np[i]
            overlay[region] = overlay[region] * (1 - mask_alpha) + colour * mask_alpha
        canvas = overlay.round().clip(0, 255).astype(np.uint8)

    order = np.nonzero(keep)[0]
    if scores_np is not None:  # draw low scores first so the confident ones stay on top
        order = order[np.argsort(scores_np.reshape(-1)[order], kind="stable")]
    for i in order:
        colour = tuple(int(c) for c in palette[labels[i] % len(palette)])
        x1, y1, x2, y2 = (int(round(v)) for v in boxes[i])
        cv2.rectangle(canvas, (x1, y1), (x2, y2), colour, thickness, lineType=cv2.LINE_AA)
        name = (class_names[labels[i]] if class_names is not None and 0 <= labels[i] < len(class_names)
                else str(int(labels[i])))
        text = name if scores_np is None else f"{name} {float(scores_np.reshape(-1)[i]):.2f}"
        if top_k is not None and scores_np is not None:
            text = f"{rank[i] + 1}. {text}"
        (tw, th), baseline = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font_scale, 1)
        ty = y1 - 2 if y1 - th - baseline - 2 >= 0 else min(h - 1, y1 + th + baseline + 2)
        cv2.rectangle(canvas, (x1, ty - th - baseline), (x1 + tw + 2, ty + 1), colour, -1)
        text_colour = (0, 0, 0) if sum(colour) > 380 else (255, 255, 255)
        cv2.putText(canvas, text, (x1 + 1, ty - baseline + 1), cv2.FONT_HERSHEY_SIMPLEX, font_scale,
                    text_colour, 1, lineType=cv2.LINE_AA)
    return canvas


def save_image(image: np.ndarray, path: str) -> None:
    """Write an ``H x W x 3`` uint8 RGB image (format from the extension); errors name the file."""
    import os

    from ..utils.io import atomic_write_bytes
    ext = os.path.splitext(path)[1].lower()
    try:
        ok, encoded = cv2.imencode(ext, cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2BGR))
    except cv2.error:
        ok = False
    if not ok:
        raise OSError(f"could not write image {path}: unsupported extension {ext!r}")
    atomic_write_bytes(encoded.tobytes(), path)  # a kill mid-write never leaves a truncated picture
