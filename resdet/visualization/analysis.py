"""Pictures of a detection analysis (``resdet.evaluation.analysis``): per-class precision-recall
curves, the confusion matrix and the AP lost per error type (matplotlib, the optional extra
``plots``), and images with their ground truth and typed detections (OpenCV)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import cv2
import numpy as np

from ..utils.io import atomic_save_figure
from .draw import _dashed_rectangle, draw_panel, draw_text_box
from .layout import auto_font_scale, auto_thickness, fit_text, label_size, layout_labels

# RGB colour of each kind of box in the error pictures
KIND_COLOURS = {
    "tp": (40, 200, 60),
    "cls": (255, 140, 0),
    "loc": (255, 220, 0),
    "both": (190, 90, 255),
    "dupe": (0, 200, 230),
    "bkg": (240, 40, 40),
    "gt": (255, 255, 255),
    "miss": (255, 60, 160),
}
MAX_AXES = 16  # classes drawn as separate matplotlib axes in pr_curves.png
KIND_LABELS = {
    "tp": "correct",
    "cls": "wrong class",
    "loc": "poor box",
    "both": "class+box",
    "dupe": "duplicate",
    "bkg": "background",
    "gt": "ground truth",
    "miss": "missed object",
}


def matplotlib_available() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_pr_curves(curves: Mapping[str, Mapping], out: str, dpi: int = 100) -> None:
    """One panel per class: COCO's interpolated precision against recall at IoU 0.5 (its mean
    is the class's AP50; it drops to 0 past the highest recall reached), the class's AP50 and
    object count in the title. Past ``MAX_AXES`` classes the panels are drawn as a grid inside one axes (one
    matplotlib axes per class over 80 COCO classes takes tens of seconds)."""
    plt = _pyplot()
    names = list(curves)
    if len(names) > MAX_AXES:
        _plot_pr_grid(plt, curves, out, dpi)
        return
    cols = min(4, max(1, len(names)))
    rows = max(1, math.ceil(len(names) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.9 * rows), squeeze=False)
    for ax in axes.flat[len(names) :]:
        ax.axis("off")
    for ax, name in zip(axes.flat, names):
        curve = curves[name]
        recall, precision = np.asarray(curve["recall"]), np.asarray(curve["precision"])
        if curve["num_dets"]:
            ax.step(recall, precision, where="post", linewidth=2.0, color="C0")
        ap = curve.get("ap50")
        ax.set_title(
            f"{name}: AP50 {100 * ap:.1f} ({curve['num_gt']} obj.)" if ap is not None else f"{name}: no ground truth",
            fontsize=9,
        )
        ax.set_xlim(0, 1.0)
        ax.set_ylim(0, 1.02)
        ax.set_xlabel("recall", fontsize=8)
        ax.set_ylabel("precision", fontsize=8)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    atomic_save_figure(fig, out, dpi=dpi)
    plt.close(fig)


def _plot_pr_grid(plt, curves: Mapping[str, Mapping], out: str, dpi: int) -> None:
    """Many classes: unit squares (recall 0..1 right, precision 0..1 up) laid out in one axes."""
    names = list(curves)
    cols = 8
    rows = math.ceil(len(names) / cols)
    fig, ax = plt.subplots(figsize=(2.0 * cols, 2.0 * rows + 0.4))
    step_x, step_y = 1.15, 1.35
    for i, name in enumerate(names):
        x0, y0 = (i % cols) * step_x, -(i // cols) * step_y
        ax.plot([x0, x0 + 1, x0 + 1, x0, x0], [y0, y0, y0 + 1, y0 + 1, y0], color="0.6", linewidth=0.6)
        for level in (0.25, 0.5, 0.75):
            ax.plot([x0, x0 + 1], [y0 + level] * 2, color="0.9", linewidth=0.4)
        curve = curves[name]
        recall, precision = np.asarray(curve["recall"]), np.asarray(curve["precision"])
        if curve["num_dets"]:
            ax.step(x0 + recall, y0 + precision, where="post", linewidth=1.4, color="C0")
        ap = curve.get("ap50")
        ax.text(
            x0 + 0.5,
            y0 + 1.04,
            f"{name}: {100 * ap:.1f}" if ap is not None else f"{name}: no GT",
            ha="center",
            va="bottom",
            fontsize=7,
        )
    ax.set_xlim(-0.05, cols * step_x)
    ax.set_ylim(-(rows - 1) * step_y - 0.05, 1.3)
    ax.axis("off")
    ax.set_title("precision (up) against recall (right) at IoU 0.5 per class, AP50 in the title", fontsize=9)
    fig.subplots_adjust(left=0.01, right=0.99, bottom=0.01, top=1 - 0.35 / (2.0 * rows + 0.4))
    atomic_save_figure(fig, out, dpi=dpi)
    plt.close(fig)


def plot_confusion_matrix(
    matrix: Sequence[Sequence[int]], labels: Sequence[str], out: str, title: str = "", dpi: int = 100
) -> None:
    """Rows: ground truth, columns: prediction (``background`` last in both); colours are row
    fractions, numbers are counts (shown up to 30 classes)."""
    plt = _pyplot()
    counts = np.asarray(matrix, dtype=np.int64)
    fractions = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    size = min(max(4.0, 0.45 * len(labels) + 2.0), 16.0)
    fig, ax = plt.subplots(figsize=(size + 1.0, size))
    image = ax.imshow(fractions, cmap="Blues", vmin=0.0, vmax=1.0)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="fraction of the row")
    ax.set_xticks(range(len(labels)), labels, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(len(labels)), labels, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("ground truth")
    ax.set_title(title, fontsize=9)
    if len(labels) > 31:  # COCO: smaller ticks, no numbers in the cells
        ax.tick_params(labelsize=5)
    else:
        for (r, c), value in np.ndenumerate(counts):
            if value:
                ax.text(
                    c,
                    r,
                    str(value),
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="white" if fractions[r, c] > 0.5 else "black",
                )
    # margins in inches for the class names (tight_layout is slow with 80 classes)
    fig.subplots_adjust(left=1.4 / (size + 1.0), bottom=1.4 / size, right=1 - 0.2 / (size + 1.0), top=1 - 0.4 / size)
    atomic_save_figure(fig, out, dpi=dpi)
    plt.close(fig)


def plot_error_breakdown(errors: Mapping, out: str, dpi: int = 100) -> None:
    """Bars: the AP50 points each error type costs (``dAP``), its count on the bar."""
    plt = _pyplot()
    kinds = list(errors["dAP"])
    values = [100 * errors["dAP"][k] for k in kinds]
    fig, ax = plt.subplots(figsize=(6.4, 3.4))
    bars = ax.bar(
        [KIND_LABELS.get(k, k) if k != "miss" else "missed" for k in kinds],
        values,
        color=[tuple(c / 255 for c in KIND_COLOURS.get(k, (120, 120, 120))) for k in kinds],
        edgecolor="black",
        linewidth=0.5,
    )
    for bar, kind in zip(bars, kinds):
        ax.annotate(
            f"n={errors['counts'][kind]}",
            (bar.get_x() + bar.get_width() / 2, bar.get_height()),
            ha="center",
            va="bottom",
            fontsize=8,
        )
    ax.set_ylabel("AP50 gained by fixing (points)")
    ax.set_title(f"AP50 {100 * errors['ap50']:.1f}: where the rest goes (TIDE error types)", fontsize=10)
    ax.tick_params(axis="x", labelsize=8)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    atomic_save_figure(fig, out, dpi=dpi)
    plt.close(fig)


def draw_error_image(
    image: np.ndarray,
    gt_boxes,
    gt_names: Sequence[str],
    gt_missed,
    det_boxes,
    det_names: Sequence[str],
    det_scores,
    det_kinds: Sequence[str],
    title: str | None = None,
    min_side: int = 480,
) -> np.ndarray:
    """A copy of ``image`` (``H x W x 3`` uint8 RGB) with its ground truth (dashed: white, or
    pink when missed) and detections (solid, coloured by kind: ``tp`` or an error type, labelled
    ``kind: class score``); boxes ``N x 4`` xyxy in the image's pixels. A legend lists the kinds
    shown, under ``title``. A picture whose longer side is under ``min_side`` is enlarged first
    (labels need room)."""
    canvas = np.ascontiguousarray(np.asarray(image, np.uint8).copy())
    scale = min_side / max(canvas.shape[:2]) if max(canvas.shape[:2]) < min_side else 1.0
    if scale > 1.0:
        size = (int(round(canvas.shape[1] * scale)), int(round(canvas.shape[0] * scale)))
        canvas = cv2.resize(canvas, size, interpolation=cv2.INTER_NEAREST if scale >= 2 else cv2.INTER_LINEAR)
    h, w = canvas.shape[:2]
    thickness, font_scale = auto_thickness(h, w), auto_font_scale(h, w)
    gt_boxes = np.asarray(gt_boxes, np.float64).reshape(-1, 4) * scale
    det_boxes = np.asarray(det_boxes, np.float64).reshape(-1, 4) * scale
    missed = np.asarray(gt_missed, bool).reshape(-1)
    for box, is_missed in zip(gt_boxes, missed):
        colour = KIND_COLOURS["miss" if is_missed else "gt"]
        _dashed_rectangle(
            canvas,
            (int(round(box[0])), int(round(box[1]))),
            (int(round(box[2])), int(round(box[3]))),
            colour,
            thickness,
        )
    order = np.argsort(-np.asarray(det_scores, np.float64), kind="mergesort")
    for i in order[::-1]:
        box = det_boxes[i]
        cv2.rectangle(
            canvas,
            (int(round(box[0])), int(round(box[1]))),
            (int(round(box[2])), int(round(box[3]))),
            KIND_COLOURS.get(det_kinds[i], (128, 128, 128)),
            thickness,
            lineType=cv2.LINE_AA,
        )
    shown = sorted(
        {det_kinds[i] for i in order} | ({"gt"} if (~missed).any() else set()) | ({"miss"} if missed.any() else set()),
        key=list(KIND_COLOURS).index,
    )
    rows = ([(None, title)] if title else []) + [(KIND_COLOURS[k], KIND_LABELS[k]) for k in shown]
    occupied = [draw_panel(canvas, rows, font_scale, np.concatenate([det_boxes, gt_boxes]))] if rows else []
    labelled = [
        (
            det_boxes[i],
            f"{det_kinds[i]}: {det_names[i]} {float(det_scores[i]):.2f}",
            KIND_COLOURS.get(det_kinds[i], (128, 128, 128)),
        )
        for i in order
    ]
    labelled += [
        (box, f"missed: {name}", KIND_COLOURS["miss"])
        for box, name, is_missed in zip(gt_boxes, gt_names, missed)
        if is_missed
    ]
    texts = [fit_text(text, font_scale, w) for _, text, _ in labelled]
    rects = layout_labels([b for b, _, _ in labelled], [label_size(t, s)[:2] for t, s in texts], (h, w), occupied)
    for (_, _, colour), (text, scale), rect in reversed(list(zip(labelled, texts, rects))):
        if text:
            draw_text_box(canvas, rect, text, colour, scale)
    return canvas
