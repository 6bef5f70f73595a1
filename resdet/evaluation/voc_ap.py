"""PASCAL VOC average precision (the devkit's rules), vectorised with numpy.

Rules, as in the VOC devkit: detections of a class are ranked by score over the whole
set; each is matched to the ground-truth box of its class (in its image) with the
largest IoU; IoU > ``iou_thr`` (strictly) and that box not yet taken -> true positive;
a box already taken, or IoU too low -> false positive; if the best box is ``difficult``
the detection is neither (and difficult boxes do not count in the recall denominator).

Because a detection's best box does not depend on earlier matches, "true positive" is
"first detection (in score order) whose best box is this one" -- computed with one IoU
matrix per image and ``np.unique``, no loop over boxes.

``plus_one``: the devkit's pixel convention. Boxes (continuous ``x1, y1, x2, y2``) are
converted to the devkit's 1-based inclusive pixel indices (``x1 + 1, y1 + 1, x2, y2``, as
a VOC xml stores them) and widths are ``x2 - x1 + 1``. For continuous boxes the two
shifts cancel, so ``plus_one=False`` (plain continuous IoU) gives the same IoU up to float
rounding; ``plus_one`` reproduces the devkit's arithmetic literally.
"""

from __future__ import annotations

import numpy as np


def pairwise_iou(boxes_a: np.ndarray, boxes_b: np.ndarray, plus_one: bool = False) -> np.ndarray:
    """IoU of ``A x 4`` and ``B x 4`` xyxy boxes -> ``A x B`` (float64)."""
    a = np.asarray(boxes_a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(boxes_b, dtype=np.float64).reshape(-1, 4)
    offset = 0.0
    if plus_one:
        a = a + np.array([1.0, 1.0, 0.0, 0.0])
        b = b + np.array([1.0, 1.0, 0.0, 0.0])
        offset = 1.0
    iw = np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]) + offset
    ih = np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]) + offset
    inter = np.clip(iw, 0, None) * np.clip(ih, 0, None)
    area_a = (a[:, 2] - a[:, 0] + offset) * (a[:, 3] - a[:, 1] + offset)
    area_b = (b[:, 2] - b[:, 0] + offset) * (b[:, 3] - b[:, 1] + offset)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


def average_precision(recall: np.ndarray, precision: np.ndarray, method: str = "area") -> float:
    """AP of a precision/recall curve (points in rank order).

    ``'11point'``: VOC2007 -- mean over t in {0, 0.1, ..., 1} of the best precision at
    recall >= t (0 if none). ``'area'``: VOC2010+ -- area under the monotone precision
    envelope ("every point").
    """
    recall = np.asarray(recall, dtype=np.float64)
    precision = np.asarray(precision, dtype=np.float64)
    if method == "11point":
        thresholds = np.linspace(0.0, 1.0, 11)
        reached = recall[None, :] >= thresholds[:, None]  # 11 x K
        best = np.where(reached, precision[None, :], -np.inf).max(axis=1, initial=-np.inf)
        return float(np.where(np.isfinite(best), best, 0.0).sum() / 11.0)
    if method != "area":
        raise ValueError(f"AP method must be '11point' or 'area', got {method!r}")
    mrec = np.concatenate([[0.0], recall, [1.0]])
    mpre = np.concatenate([[0.0], precision, [0.0]])
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]
    changes = np.flatnonzero(mrec[1:] != mrec[:-1])
    return float(((mrec[changes + 1] - mrec[changes]) * mpre[changes + 1]).sum())


def match_detections(
    gt_boxes: list[np.ndarray],
    gt_labels: list[np.ndarray],
    gt_difficult: list[np.ndarray],
    det_image: np.ndarray,
    det_boxes: np.ndarray,
    det_labels: np.ndarray,
    det_scores: np.ndarray,
    iou_thr: float = 0.5,
    plus_one: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Devkit matching of all detections at once.

    Args:
        gt_boxes / gt_labels / gt_difficult: per image ``M_i x 4``, ``M_i``, ``M_i`` (bool).
        det_image: ``N`` image index of each detection; det_boxes ``N x 4``; det_labels,
            det_scores ``N``.

    Returns:
        ``(order, tp, fp)``: detection indices sorted by descending score (stable), and
        bool ``N`` flags in that order (a detection on a difficult box has both False).
    """
    order = np.argsort(-np.asarray(det_scores, dtype=np.float64), kind="stable")
    n = order.size
    tp = np.zeros(n, dtype=bool)
    fp = np.zeros(n, dtype=bool)
    if n == 0:
        return order, tp, fp
    images = np.asarray(det_image)[order]
    by_image = np.argsort(images, kind="stable")  # score order kept inside an image
    starts = np.flatnonzero(np.r_[True, images[by_image][1:] != images[by_image][:-1]])
    ends = np.r_[starts[1:], n]
    boxes = np.asarray(det_boxes, dtype=np.float64)[order]
    labels = np.asarray(det_labels)[order]
    for start, end in zip(starts, ends):
        rows = by_image[start:end]  # positions in the ranked list
        image = images[rows[0]]
        gboxes, glabels = gt_boxes[image], gt_labels[image]
        if len(glabels) == 0:
            fp[rows] = True
            continue
        iou = pairwise_iou(boxes[rows], gboxes, plus_one=plus_one)
        iou = np.where(labels[rows][:, None] == np.asarray(glabels)[None, :], iou, -np.inf)
        best = iou.argmax(axis=1)
        hit = iou[np.arange(len(rows)), best] > iou_thr
        difficult = np.asarray(gt_difficult[image], dtype=bool)[best]
        candidates = np.flatnonzero(hit & ~difficult)
        first = np.zeros(len(rows), dtype=bool)
        if candidates.size:
            _, first_pos = np.unique(best[candidates], return_index=True)
            first[candidates[first_pos]] = True
        tp[rows] = first
        fp[rows] = ~hit | (hit & ~difficult & ~first)
    return order, tp, fp


def voc_eval(
    gt_boxes: list[np.ndarray],
    gt_labels: list[np.ndarray],
    gt_difficult: list[np.ndarray],
    det_image: np.ndarray,
    det_boxes: np.ndarray,
    det_labels: np.ndarray,
    det_scores: np.ndarray,
    num_classes: int,
    iou_thr: float = 0.5,
    method: str = "area",
    plus_one: bool = False,
) -> dict[str, np.ndarray]:
    """Per-class VOC AP.

    Returns ``{'ap': C (nan for a class without non-difficult GT), 'num_gts': C,
    'num_dets': C, 'recall': C (final recall)}``.
    """
    order, tp, fp = match_detections(
        gt_boxes,
        gt_labels,
        gt_difficult,
        det_image,
        det_boxes,
        det_labels,
        det_scores,
        iou_thr=iou_thr,
        plus_one=plus_one,
    )
    all_labels = (
        np.concatenate([np.asarray(lab, dtype=np.int64).reshape(-1) for lab in gt_labels])
        if gt_labels
        else np.zeros(0, np.int64)
    )
    all_difficult = (
        np.concatenate([np.asarray(d, dtype=bool).reshape(-1) for d in gt_difficult])
        if gt_difficult
        else np.zeros(0, bool)
    )
    num_gts = np.bincount(all_labels[~all_difficult], minlength=num_classes)[:num_classes]
    ranked_labels = np.asarray(det_labels, dtype=np.int64)[order]
    counted = tp | fp  # drop detections on difficult boxes
    ap = np.full(num_classes, np.nan)
    recall_final = np.zeros(num_classes)
    num_dets = np.bincount(ranked_labels, minlength=num_classes)[:num_classes]
    for c in range(num_classes):
        sel = (ranked_labels == c) & counted
        tp_cum = np.cumsum(tp[sel])
        fp_cum = np.cumsum(fp[sel])
        if num_gts[c] == 0:
            continue
        recall = tp_cum / float(num_gts[c])
        precision = tp_cum / np.maximum(tp_cum + fp_cum, np.finfo(np.float64).eps)
        ap[c] = average_precision(recall, precision, method)
        recall_final[c] = recall[-1] if recall.size else 0.0
    return {"ap": ap, "num_gts": num_gts, "num_dets": num_dets, "recall": recall_final}
