"""Evaluate a saved results file against ground truth, with no model.

``evaluate_results_file(ann, results, metrics)``: ``ann`` is a COCO instances json (box
and mask AP) or a VOC root (``split`` picks ``ImageSets/Main/<split>.txt``; VOC mAP@0.5).
Results are in the COCO results format (see ``resdet.evaluation.results``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..evaluation.builder import canonical_metric
from ..evaluation.coco import coco_metrics_dict, format_coco_results
from ..evaluation.coco_api import evaluate_coco, load_coco_gt
from ..evaluation.localization import evaluate_loc_results_file
from ..evaluation.results import load_json_file, validate_detection_results
from ..evaluation.voc import evaluate_voc, format_voc_results, load_voc_gt

_NEEDS_MODEL = ("top1", "top5", "loc-err")


def evaluate_results_file(
    ann: str,
    results: str,
    metrics: Sequence[str],
    split: str = "test",
    backend: str = "auto",
    voc_ap_method: str = "auto",
    voc_plus_one: bool = True,
    workers: int = 1,
) -> list[dict[str, Any]]:
    """Returns one ``{'metric': str, 'results': dict, 'table': str}`` per evaluation run."""
    wanted = list(dict.fromkeys(canonical_metric(m) for m in metrics))
    if wanted == ["loc-err"] and os.path.isdir(ann):  # ILSVRC CLS-LOC root + localization results
        numbers = evaluate_loc_results_file(ann, results, split=split)
        return [{"metric": "loc-err", "table": numbers.pop("table"), "results": numbers}]
    for name in wanted:
        if name in _NEEDS_MODEL:
            raise ValueError(
                f"metric {name!r} needs a model (give CONFIG CHECKPOINT); a results "
                f"file can be scored with mAP@[.5:.95], segm-mAP@[.5:.95], mAP@0.5"
            )
    anns = load_json_file(results, "results file")
    if os.path.isdir(ann):
        return _evaluate_voc_file(ann, split, results, anns, wanted, voc_ap_method, voc_plus_one)
    return _evaluate_coco_file(ann, results, anns, wanted, backend, workers)


def _evaluate_coco_file(ann: str, path: str, anns: Any, wanted: list[str], backend: str, workers: int) -> list[dict]:
    gt = load_coco_gt(ann)
    names = {c["id"]: c.get("name", str(c["id"])) for c in gt.dataset["categories"]}
    img_ids, cat_ids = set(gt.getImgIds()), set(gt.getCatIds())
    outputs = []
    if "mAP@[.5:.95]" in wanted or "mAP@0.5" in wanted:
        valid = validate_detection_results(anns, path, iou_type="bbox", img_ids=img_ids, cat_ids=cat_ids)
        out = coco_metrics_dict(evaluate_coco(gt, valid, "bbox", backend, workers=workers), "bbox", names)
        outputs.append(
            {
                "metric": "mAP@[.5:.95]" if "mAP@[.5:.95]" in wanted else "mAP@0.5",
                "results": out,
                "table": format_coco_results(out, "bbox"),
            }
        )
    if "segm-mAP@[.5:.95]" in wanted:
        valid = validate_detection_results(anns, path, iou_type="segm", img_ids=img_ids, cat_ids=cat_ids)
        out = coco_metrics_dict(evaluate_coco(gt, valid, "segm", backend, workers=workers), "segm", names)
        outputs.append({"metric": "segm-mAP@[.5:.95]", "results": out, "table": format_coco_results(out, "segm")})
    return outputs


def _voc_image_lookup(img_ids: list[str]) -> dict:
    """Stem -> index; numeric stems also by their integer value ("000005" <- 5) when unique."""
    lookup: dict = {stem: i for i, stem in enumerate(img_ids)}
    numeric = {}
    for i, stem in enumerate(img_ids):
        if str(stem).isdigit():
            numeric.setdefault(int(stem), []).append(i)
    lookup.update({k: v[0] for k, v in numeric.items() if len(v) == 1 and k not in lookup})
    return lookup


def _evaluate_voc_file(
    root: str, split: str, path: str, anns: Any, wanted: list[str], ap_method: str, plus_one: bool
) -> list[dict]:
    unsupported = [m for m in wanted if m != "mAP@0.5"]
    if unsupported:
        raise ValueError(
            f"metric(s) {unsupported} need a COCO instances json as --ann; a VOC root ({root}) is scored with mAP@0.5"
        )
    gt = load_voc_gt(root, split)
    lookup = _voc_image_lookup(gt.img_ids)
    num_classes = len(gt.class_names)
    name_to_id = {name: i + 1 for i, name in enumerate(gt.class_names)}
    valid = validate_detection_results(
        anns,
        path,
        iou_type="bbox",
        img_ids=set(lookup),
        cat_ids=set(range(1, num_classes + 1)),
        cat_name_to_id=name_to_id,
    )
    det_image = np.asarray([lookup[a["image_id"]] for a in valid], dtype=np.int64)
    labels = np.asarray([a["category_id"] - 1 for a in valid], dtype=np.int64)
    scores = np.asarray([a["score"] for a in valid], dtype=np.float64)
    xywh = np.asarray([a["bbox"] for a in valid], dtype=np.float64).reshape(-1, 4)
    boxes = np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], axis=1)
    out = evaluate_voc(gt, det_image, boxes, labels, scores, ap_method=ap_method, plus_one=plus_one)
    return [{"metric": "mAP@0.5", "results": out, "table": format_voc_results(out)}]
