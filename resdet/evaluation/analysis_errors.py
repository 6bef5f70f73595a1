"""Where a detector's AP goes: every false positive and every missed object gets one error type,
and each type's cost is the AP gained by fixing it oracle-style (the definitions of TIDE,
Bolya et al., ECCV 2020, implemented here from the paper).

Matching follows COCOeval at the foreground IoU (``fg_iou`` 0.5): per image and category,
detections in descending score (at most ``max_dets``) take the unmatched ground truth of their
class with the highest IoU >= ``fg_iou``; a detection matching only a crowd region is ignored.
Every other detection is a false positive of the first type that applies, with ``IoU_same`` its
best IoU with a ground truth of its class (matched or not) and ``IoU_other`` with one of another
class:

- ``dupe`` (duplicate): ``IoU_same >= fg_iou`` (that object was already matched higher up);
- ``loc`` (localisation): ``bg_iou <= IoU_same < fg_iou``;
- ``cls`` (classification): ``IoU_other >= fg_iou``;
- ``both`` (classification and localisation): ``bg_iou <= IoU_other < fg_iou``;
- ``bkg`` (background): every IoU < ``bg_iou`` (0.1).

A ground truth that no detection matches and that no ``cls`` / ``loc`` error points at is
``miss``. The fixes (each applied alone to the original detections; ``dAP`` = AP after the fix
minus AP): ``cls`` takes the class of its ground truth and ``loc`` its box, unless that object is
already matched (or claimed by a higher-scoring fix): then suppressed; ``both``, ``dupe`` and
``bkg`` are suppressed; ``miss`` removes the missed objects from the ground truth.
AP is COCO's AP at IoU 0.5 (101-point interpolation, mean over categories with ground truth),
computed by ``resdet.evaluation.coco_api.evaluate_coco``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from pycocotools import mask as mask_utils

from .coco_api import coco_from_dict, evaluate_coco

FG_IOU, BG_IOU = 0.5, 0.1
ERROR_TYPES = ("cls", "loc", "both", "dupe", "bkg", "miss")
ERROR_NAMES = {
    "cls": "classification",
    "loc": "localisation",
    "both": "classification + localisation",
    "dupe": "duplicate",
    "bkg": "background",
    "miss": "missed",
}
SUPPRESSED_BY_FIX = ("both", "dupe", "bkg")


@dataclass
class ErrorAnalysis:
    """Per detection (input order): ``det_type`` (``'tp'``, ``'ignored'`` (matched a crowd),
    ``'dropped'`` (beyond ``max_dets`` of its image and class), or an error type) and
    ``det_target`` (index into ``gt_anns`` of its matched / blamed ground truth, -1 for none),
    ``det_iou`` (the IoU with that target); per ground truth (``gt_anns`` order): ``gt_matched``
    (by a true positive), ``gt_missed``, ``gt_crowd``."""

    gt_anns: list[dict]
    det_type: np.ndarray
    det_target: np.ndarray
    det_iou: np.ndarray
    gt_matched: np.ndarray
    gt_missed: np.ndarray
    gt_crowd: np.ndarray

    def counts(self) -> dict[str, int]:
        found = {t: int((self.det_type == t).sum()) for t in ERROR_TYPES[:-1]}
        found["miss"] = int(self.gt_missed.sum())
        return found


def box_ious(dets: np.ndarray, gts: np.ndarray, crowd: bool) -> np.ndarray:
    """``D x G`` IoU of xywh boxes (pycocotools; ``crowd``: intersection over the detection's area)."""
    if not len(dets) or not len(gts):
        return np.zeros((len(dets), len(gts)))
    return np.asarray(mask_utils.iou(dets, gts, [int(crowd)] * len(gts)), dtype=np.float64).reshape(len(dets), len(gts))


def _score_order(dets: Sequence[dict], indices: Sequence[int]) -> np.ndarray:
    indices = np.asarray(indices, dtype=np.int64)
    scores = np.asarray([dets[i]["score"] for i in indices], dtype=np.float64)
    return indices[np.argsort(-scores, kind="mergesort")]


def _classify_fp(k: int, same: np.ndarray, iou: np.ndarray, fg_iou: float, bg_iou: float) -> tuple[str, int]:
    """The error type of false positive ``k`` and the ground truth it is blamed on (-1: none)."""
    for mask, high, low in ((same[k], "dupe", "loc"), (~same[k], "cls", "both")):
        if mask.any():
            cand = np.flatnonzero(mask)
            j = int(cand[np.argmax(iou[k, cand])])
            if iou[k, j] >= fg_iou:
                return high, j
            if iou[k, j] >= bg_iou:
                return low, j
    return "bkg", -1


def analyze_errors(
    gt: Any, dets: Sequence[dict], fg_iou: float = FG_IOU, bg_iou: float = BG_IOU, max_dets: int = 100
) -> ErrorAnalysis:
    """Match ``dets`` (validated COCO results: ``image_id``, ``category_id``, ``bbox`` xywh,
    ``score``) to the ground truth ``gt`` (pycocotools ``COCO``) and type every error (see the
    module docstring)."""
    anns = list(gt.dataset["annotations"])
    crowd = np.asarray([bool(a.get("iscrowd", 0)) for a in anns], dtype=bool)
    det_type = np.full(len(dets), "", dtype=object)
    det_target = np.full(len(dets), -1, dtype=np.int64)
    det_iou = np.zeros(len(dets))
    matched = np.zeros(len(anns), dtype=bool)
    gts_of, dets_of = defaultdict(list), defaultdict(list)
    for j, ann in enumerate(anns):
        gts_of[ann["image_id"]].append(j)
    for i, det in enumerate(dets):
        dets_of[det["image_id"]].append(i)
    for image_id, indices in dets_of.items():
        order = _score_order(dets, indices)
        cats = np.asarray([dets[i]["category_id"] for i in order])
        rank = np.zeros(len(order), dtype=np.int64)  # position within its category, as COCOeval's maxDets
        for cat in np.unique(cats):
            rank[cats == cat] = np.arange(int((cats == cat).sum()))
        det_type[order[rank >= max_dets]] = "dropped"
        order, cats = order[rank < max_dets], cats[rank < max_dets]
        boxes = np.asarray([dets[i]["bbox"] for i in order], dtype=np.float64).reshape(-1, 4)
        g_all = np.asarray(gts_of.get(image_id, []), dtype=np.int64)
        g_idx, c_idx = g_all[~crowd[g_all]], g_all[crowd[g_all]]
        g_cats = np.asarray([anns[j]["category_id"] for j in g_idx])
        c_cats = np.asarray([anns[j]["category_id"] for j in c_idx])
        iou = box_ious(boxes, np.asarray([anns[j]["bbox"] for j in g_idx], np.float64).reshape(-1, 4), False)
        ciou = box_ious(boxes, np.asarray([anns[j]["bbox"] for j in c_idx], np.float64).reshape(-1, 4), True)
        same = cats[:, None] == g_cats[None, :] if len(g_idx) else np.zeros((len(order), 0), bool)
        taken = np.zeros(len(g_idx), dtype=bool)
        for k, i in enumerate(order):
            cand = np.flatnonzero(same[k] & ~taken & (iou[k] >= fg_iou))
            if cand.size:
                j = int(cand[np.argmax(iou[k, cand])])
                taken[j] = True
                det_type[i], det_target[i], det_iou[i] = "tp", g_idx[j], iou[k, j]
            elif len(c_idx) and ((c_cats == cats[k]) & (ciou[k] >= fg_iou)).any():
                det_type[i] = "ignored"
            else:
                kind, j = _classify_fp(k, same, iou, fg_iou, bg_iou)
                det_type[i] = kind
                if j >= 0:
                    det_target[i], det_iou[i] = g_idx[j], iou[k, j]
        matched[g_idx[taken]] = True
    blamed = np.zeros(len(anns), dtype=bool)
    pointing = np.isin(det_type, ("cls", "loc"))
    blamed[det_target[pointing]] = True
    missed = ~crowd & ~matched & ~blamed
    return ErrorAnalysis(anns, det_type, det_target, det_iou, matched, missed, crowd)


def fix_errors(gt: Any, dets: Sequence[dict], analysis: ErrorAnalysis, error_type: str) -> tuple[Any, list[dict]]:
    """The ground truth and detections after fixing every error of ``error_type`` oracle-style
    (see the module docstring); the inputs are not changed."""
    if error_type not in ERROR_TYPES:
        raise ValueError(f"unknown error type {error_type!r}; choose one of {', '.join(ERROR_TYPES)}")
    if error_type == "miss":
        data = dict(gt.dataset)
        data["annotations"] = [a for a, gone in zip(analysis.gt_anns, analysis.gt_missed) if not gone]
        return coco_from_dict(data, "ground truth without its missed objects"), list(dets)
    claimed = analysis.gt_matched.copy()
    fixed = []
    for i in _score_order(dets, range(len(dets))):
        det = dets[i]
        if analysis.det_type[i] != error_type:
            fixed.append(det)
        elif error_type in ("cls", "loc"):
            target = int(analysis.det_target[i])
            if claimed[target]:
                continue  # that object already has its true positive: the detection goes
            claimed[target] = True
            det = dict(det)
            if error_type == "cls":
                det["category_id"] = analysis.gt_anns[target]["category_id"]
            else:
                det["bbox"] = [float(v) for v in analysis.gt_anns[target]["bbox"]]
            fixed.append(det)
    return gt, fixed


def ap50(gt: Any, dets: Sequence[dict], backend: str = "auto") -> float:
    """COCO box AP at IoU 0.5 (mean over the categories with ground truth), 0 when none has."""
    value = evaluate_coco(gt, list(dets), "bbox", backend)["stats"][1]
    return max(float(value), 0.0)


def error_breakdown(gt: Any, dets: Sequence[dict], analysis: ErrorAnalysis, backend: str = "auto") -> dict:
    """``{'ap50': AP, 'dAP': {type: AP after fixing it - AP}, 'counts': {type: n}}``."""
    base = ap50(gt, dets, backend)
    deltas = {}
    for error_type in ERROR_TYPES:
        fixed_gt, fixed_dets = fix_errors(gt, dets, analysis, error_type)
        deltas[error_type] = ap50(fixed_gt, fixed_dets, backend) - base
    return {"ap50": base, "dAP": deltas, "counts": analysis.counts()}
