"""``analyze_detections``: per-class precision-recall curves, a confusion matrix with a
background row and column, the TIDE-style breakdown of AP lost by error type
(``resdet.evaluation.analysis_errors``) and the images with the most errors, for COCO-format
results against a COCO ground truth. Numbers only (json-ready); ``resdet.visualization``
draws them and ``resdet analyze`` writes both.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .analysis_errors import ERROR_NAMES, ERROR_TYPES, FG_IOU, ErrorAnalysis, analyze_errors, box_ious, error_breakdown

RECALL_POINTS = np.linspace(0.0, 1.0, 101)  # COCOeval's recall thresholds


def precision_recall(is_tp: np.ndarray, scores: np.ndarray, num_gt: int) -> tuple[np.ndarray, np.ndarray]:
    """Precision and recall after each detection, in descending score (``N`` each) from the
    true-positive flags and scores of one class's ``N`` detections and its ``num_gt`` objects."""
    order = np.argsort(-np.asarray(scores, np.float64), kind="mergesort")
    tp = np.cumsum(np.asarray(is_tp, bool)[order])
    fp = np.cumsum(~np.asarray(is_tp, bool)[order])
    recall = tp / max(num_gt, 1)
    precision = tp / np.maximum(tp + fp, np.finfo(np.float64).eps)
    return precision, recall


def interpolated_precision(
    precision: np.ndarray, recall: np.ndarray, scores: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """COCO's precision at the 101 recalls r in {0, 0.01, ..., 1}: the best precision at a recall
    >= r (0 where that recall is never reached), and the score threshold that reaches r (NaN
    where never reached), from per-detection ``precision`` / ``recall`` / descending ``scores``."""
    precision = np.asarray(precision, np.float64)
    if not len(precision):
        return np.zeros(len(RECALL_POINTS)), np.full(len(RECALL_POINTS), np.nan)
    envelope = np.maximum.accumulate(precision[::-1])[::-1]
    index = np.searchsorted(np.asarray(recall, np.float64), RECALL_POINTS, side="left")
    reached = index < len(envelope)
    at = np.minimum(index, len(envelope) - 1)
    thresholds = np.asarray(scores, np.float64)[at] if scores is not None else np.full(len(at), np.nan)
    return np.where(reached, envelope[at], 0.0), np.where(reached, thresholds, np.nan)


def pr_curves(dets: Sequence[dict], analysis: ErrorAnalysis, cat_ids: Sequence) -> dict:
    """Per category at IoU ``FG_IOU``, COCO's interpolated curve (its mean is AP50, bounded size
    whatever the number of detections): ``{cat_id: {'recall': the 101 recall points,
    'precision': 101 values, 'score': the score threshold reaching each recall (None where never
    reached), 'ap50' (None without ground truth), 'max_recall', 'num_gt', 'num_dets'}}``;
    ignored / dropped detections left out."""
    counted = ~np.isin(analysis.det_type, ("ignored", "dropped"))
    det_cats = np.asarray([d["category_id"] for d in dets])
    scores = np.asarray([d["score"] for d in dets], np.float64)
    gt_cats = np.asarray([a["category_id"] for a in analysis.gt_anns])
    curves = {}
    for cat in cat_ids:
        mine = counted & (det_cats == cat) if len(dets) else np.zeros(0, bool)
        num_gt = int(((gt_cats == cat) & ~analysis.gt_crowd).sum()) if len(gt_cats) else 0
        precision, recall = precision_recall(analysis.det_type[mine] == "tp", scores[mine], num_gt)
        curve, thresholds = interpolated_precision(precision, recall, np.sort(scores[mine])[::-1])
        curves[cat] = {
            "recall": RECALL_POINTS.round(2).tolist(),
            "precision": curve.round(5).tolist(),
            "score": [None if np.isnan(t) else round(float(t), 5) for t in thresholds],
            "ap50": float(curve.mean()) if num_gt else None,
            "max_recall": float(recall[-1]) if len(recall) else 0.0,
            "num_gt": num_gt,
            "num_dets": int(mine.sum()),
        }
    return curves


def confusion_matrix(
    gt: Any, dets: Sequence[dict], cat_ids: Sequence, iou_thr: float = FG_IOU, score_thr: float = 0.5
) -> np.ndarray:
    """``(C + 1) x (C + 1)`` counts: row = ground-truth class, column = predicted class, in
    ``cat_ids`` order, the last row / column background. Per image, detections scoring at least
    ``score_thr`` are matched in descending score to an unmatched object with IoU >= ``iou_thr``:
    first of their own class (the diagonal), then of any class (a confusion); an unmatched
    detection counts in the background row (a false positive), an unmatched object in the
    background column (missed). Detections on crowd regions and crowd objects are left out."""
    index = {cat: k for k, cat in enumerate(cat_ids)}
    bg = len(cat_ids)
    matrix = np.zeros((bg + 1, bg + 1), dtype=np.int64)
    kept = [d for d in dets if d["score"] >= score_thr and d["category_id"] in index]
    by_image: dict = {}
    for det in kept:
        by_image.setdefault(det["image_id"], []).append(det)
    for image_id in gt.getImgIds():
        anns = [a for a in gt.imgToAnns.get(image_id, []) if a["category_id"] in index]
        objects = [a for a in anns if not a.get("iscrowd", 0)]
        crowds = [a for a in anns if a.get("iscrowd", 0)]
        found = sorted(by_image.get(image_id, []), key=lambda d: -d["score"])
        boxes = np.asarray([d["bbox"] for d in found], np.float64).reshape(-1, 4)
        iou = box_ious(boxes, np.asarray([a["bbox"] for a in objects], np.float64).reshape(-1, 4), False)
        ciou = box_ious(boxes, np.asarray([a["bbox"] for a in crowds], np.float64).reshape(-1, 4), True)
        g_cls = np.asarray([index[a["category_id"]] for a in objects], np.int64)
        d_cls = np.asarray([index[d["category_id"]] for d in found], np.int64)
        taken, det_done = np.zeros(len(objects), bool), np.zeros(len(found), bool)
        for same_class in (True, False):
            for k in range(len(found)):
                if det_done[k]:
                    continue
                ok = ~taken & (iou[k] >= iou_thr) & ((g_cls == d_cls[k]) if same_class else True)
                if ok.any():
                    j = int(np.flatnonzero(ok)[np.argmax(iou[k, ok])])
                    taken[j], det_done[k] = True, True
                    matrix[g_cls[j], d_cls[k]] += 1
        for k in np.flatnonzero(~det_done):
            if not (len(crowds) and (ciou[k] >= iou_thr).any()):
                matrix[bg, d_cls[k]] += 1
        np.add.at(matrix, (g_cls[~taken], bg), 1)
    return matrix


def image_errors(dets: Sequence[dict], analysis: ErrorAnalysis, score_thr: float = 0.5) -> dict:
    """``{image_id: {'errors': n, type: n ...}}``: per image, the typed false positives scoring
    at least ``score_thr`` and the missed objects."""
    counts: dict = {}
    for det, kind in zip(dets, analysis.det_type):
        if kind in ERROR_TYPES and det["score"] >= score_thr:
            entry = counts.setdefault(det["image_id"], {"errors": 0})
            entry[kind] = entry.get(kind, 0) + 1
            entry["errors"] += 1
    for ann, missed in zip(analysis.gt_anns, analysis.gt_missed):
        if missed:
            entry = counts.setdefault(ann["image_id"], {"errors": 0})
            entry["miss"] = entry.get("miss", 0) + 1
            entry["errors"] += 1
    return counts


def analyze_detections(
    gt: Any,
    dets: Sequence[dict],
    *,
    score_thr: float = 0.5,
    iou_thr: float = FG_IOU,
    bg_iou: float = 0.1,
    backend: str = "auto",
    top_images: int = 12,
) -> dict:
    """Everything ``resdet analyze`` reports, json-ready: ``categories`` (``[{'id', 'name'}]``),
    ``errors`` (``ap50``, ``dAP`` and ``counts`` per error type, ``fg_iou``, ``bg_iou``),
    ``pr_curves`` (per category name), ``confusion`` (``labels`` with ``background`` last,
    ``matrix`` rows = ground truth, ``iou_thr``, ``score_thr``) and ``worst_images``
    (``[{'image_id', 'errors', <type>: n}]``, most errors first, at most ``top_images``);
    ``analysis`` holds the ``ErrorAnalysis`` (not json) for drawing."""
    cats = sorted(gt.dataset["categories"], key=lambda c: c["id"])
    cat_ids = [c["id"] for c in cats]
    names = {c["id"]: str(c.get("name", c["id"])) for c in cats}
    analysis = analyze_errors(gt, dets, fg_iou=iou_thr, bg_iou=bg_iou)
    breakdown = error_breakdown(gt, dets, analysis, backend=backend)
    breakdown.update(fg_iou=iou_thr, bg_iou=bg_iou)
    curves = pr_curves(dets, analysis, cat_ids)
    matrix = confusion_matrix(gt, dets, cat_ids, iou_thr=iou_thr, score_thr=score_thr)
    per_image = image_errors(dets, analysis, score_thr=score_thr)
    worst = sorted(per_image.items(), key=lambda item: (-item[1]["errors"], str(item[0])))[:top_images]
    return {
        "num_images": len(gt.getImgIds()),
        "num_detections": len(dets),
        "num_objects": int((~analysis.gt_crowd).sum()),
        "categories": [{"id": c, "name": names[c]} for c in cat_ids],
        "errors": breakdown,
        "pr_curves": {names[c]: curve for c, curve in curves.items()},
        "confusion": {
            "labels": [names[c] for c in cat_ids] + ["background"],
            "matrix": matrix.tolist(),
            "iou_thr": iou_thr,
            "score_thr": score_thr,
        },
        "worst_images": [{"image_id": image_id, **entry} for image_id, entry in worst if entry["errors"]],
        "analysis": analysis,
    }


def format_breakdown(errors: dict) -> str:
    """The error table: count and dAP (AP points) per type, under the AP50 it starts from."""
    lines = [
        f"AP@0.5 {100 * errors['ap50']:.2f}; AP gained by fixing each error type "
        f"(TIDE, foreground IoU {errors.get('fg_iou', FG_IOU)}, background IoU {errors.get('bg_iou', 0.1)}):",
        f"  {'error type':<38} {'count':>7} {'dAP':>7}",
    ]
    for kind in ERROR_TYPES:
        lines.append(
            f"  {ERROR_NAMES[kind] + ' (' + kind + ')':<38} {errors['counts'][kind]:>7d} "
            f"{100 * errors['dAP'][kind]:>7.2f}"
        )
    return "\n".join(lines)
