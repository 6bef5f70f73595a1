"""``LocalizationError``: ImageNet-style localization error (top-1, top-5, class given).

Prediction format (one dict per image, original image coordinates):

* ``labels``  int ``k``      -- the k class guesses (any order; ranked here by score),
* ``scores``  float ``k``    -- their confidences,
* ``boxes``   float ``k x 4`` -- one xyxy box per guess,
* ``class_boxes`` float ``C x 4`` (optional) -- a box for every class (per-class
  regression), used for the error with the ground-truth class given ("oracle").

Ground truth per image: ``labels`` (M) and ``boxes`` (M x 4 xyxy, original coordinates),
from the bound dataset's ``get_ann`` (looked up by ``img_id``) or, without a dataset,
from the batch targets (taken as original coordinates).

An image is correct at top-k when one of the k best-scored guesses has a ground-truth
class and a box with IoU >= ``iou_thr`` to a ground-truth box of that class. Oracle:
the box for the ground-truth class (``class_boxes[c]``, else the best-scored guess of
class ``c``) must reach the IoU; the image is correct if that holds for any of its
ground-truth classes. Result keys: ``loc_top1_err``, ``loc_top5_err``, ``loc_oracle_err``,
``cls_top1_err``, ``cls_top5_err`` (fractions) and ``loc_num_samples``.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np

from resdet.data.datasets.imagenet_loc import ImageNetLocDataset
from resdet.evaluation.base import BaseMetric, to_numpy
from resdet.evaluation.results import ResultsError, detections_to_coco_results, load_json_file, write_results_json
from resdet.evaluation.voc_ap import pairwise_iou
from resdet.registry import METRICS
from resdet.utils import dist

_FLAGS = ("loc_top1", "loc_top5", "loc_oracle", "cls_top1", "cls_top5")


def localization_flags(
    pred: dict, gt_labels: np.ndarray, gt_boxes: np.ndarray, iou_thr: float = 0.5, topk: int = 5
) -> tuple[bool, ...]:
    """Correctness of one image: ``(loc_top1, loc_top5, loc_oracle, cls_top1, cls_top5)``."""
    labels = to_numpy(pred["labels"], np.int64).reshape(-1)
    scores = to_numpy(pred["scores"], np.float64).reshape(-1)
    boxes = to_numpy(pred["boxes"], np.float64).reshape(-1, 4)
    if not (len(labels) == len(scores) == len(boxes)):
        raise ValueError(
            f"LocalizationError: a prediction needs as many labels, scores and boxes; "
            f"got {len(labels)}, {len(scores)}, {len(boxes)}"
        )
    gt_labels = np.asarray(gt_labels, np.int64).reshape(-1)
    gt_boxes = np.asarray(gt_boxes, np.float64).reshape(-1, 4)
    order = np.argsort(-scores, kind="stable")[:topk]
    labels, boxes = labels[order], boxes[order]
    class_ok = np.isin(labels, gt_labels)  # k
    same = labels[:, None] == gt_labels[None, :]  # k x M
    box_ok = ((pairwise_iou(boxes, gt_boxes) >= iou_thr) & same).any(1)  # k
    hit = class_ok & box_ok
    class_boxes = pred.get("class_boxes")
    oracle = False
    for c in np.unique(gt_labels):
        if class_boxes is not None:
            box = to_numpy(class_boxes, np.float64).reshape(-1, 4)[c : c + 1]
        else:
            all_labels = to_numpy(pred["labels"], np.int64).reshape(-1)
            of_class = np.flatnonzero(all_labels == c)
            if of_class.size == 0:
                continue
            best = of_class[np.argmax(scores[of_class])]
            box = to_numpy(pred["boxes"], np.float64).reshape(-1, 4)[best : best + 1]
        if (pairwise_iou(box, gt_boxes[gt_labels == c]) >= iou_thr).any():
            oracle = True
            break
    return (bool(hit[:1].any()), bool(hit.any()), oracle, bool(class_ok[:1].any()), bool(class_ok.any()))


@METRICS.register_module()
class LocalizationError(BaseMetric):
    """ImageNet localization error (see the module docstring for the formats).

    Args:
        iou_thr: a box is correct with IoU >= this against a ground-truth box of its class.
        topk: how many guesses the top-k error allows (5 in ILSVRC).
        results_file: if set, rank 0 writes each image's ``topk`` best guesses there (COCO
            results format: ``image_id``, ``category_id`` = the dataset's class id, e.g. the
            wnid, ``bbox`` xywh, ``score``), which ``tools/eval.py --ann ROOT --results FILE
            --metric loc-err`` scores again.
    """

    higher_is_better = False
    primary_key = "loc_top5_err"

    def __init__(self, iou_thr: float = 0.5, topk: int = 5, results_file: str | None = None) -> None:
        super().__init__()
        self.iou_thr, self.topk = iou_thr, int(topk)
        self.results_file = results_file
        self._index: dict | None = None

    def bind(self, dataset: Any) -> LocalizationError:
        super().bind(dataset)
        if hasattr(dataset, "get_ann") and hasattr(dataset, "img_ids"):
            self._index = {img_id: i for i, img_id in enumerate(dataset.img_ids)}
        return self

    def _ground_truth(self, key: Hashable, target: dict | None) -> tuple[np.ndarray, np.ndarray]:
        if self._index is not None and key in self._index:
            ann = self.dataset.get_ann(self._index[key])
            return np.asarray(ann["labels"]), np.asarray(ann["boxes"])
        if target is None or "labels" not in target or "boxes" not in target:
            raise KeyError(
                f"LocalizationError: no ground truth for image {key!r}: bind a dataset "
                f"with get_ann/img_ids or pass targets with 'labels' and 'boxes'"
            )
        return to_numpy(target["labels"]), to_numpy(target["boxes"])

    def process(self, predictions: Sequence[dict], targets: Any) -> None:
        keys = self._sample_keys(targets, len(predictions))
        target_list = targets if isinstance(targets, (list, tuple)) else [None] * len(predictions)
        for key, pred, target in zip(keys, predictions, target_list):
            gt_labels, gt_boxes = self._ground_truth(key, target)
            flags = localization_flags(pred, gt_labels, gt_boxes, self.iou_thr, self.topk)
            self._records.append((key, (flags, self._top_guesses(pred) if self.results_file else None)))

    def _top_guesses(self, pred: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        scores = to_numpy(pred["scores"], np.float64).reshape(-1)
        order = np.argsort(-scores, kind="stable")[: self.topk]
        return (
            to_numpy(pred["labels"], np.int64).reshape(-1)[order],
            scores[order],
            to_numpy(pred["boxes"], np.float64).reshape(-1, 4)[order],
        )

    def _write_results(self, records: list[tuple[Hashable, Any]]) -> None:
        names = list(getattr(self.dataset, "class_names", None) or [])
        rows = []
        for key, (_, (labels, scores, boxes)) in records:
            class_ids = names or list(range(1, int(labels.max(initial=-1)) + 2))  # else 1-based labels
            rows.extend(detections_to_coco_results(key, boxes, scores, labels, class_ids))
        write_results_json(rows, self.results_file)

    def evaluate(self, records: list[tuple[Hashable, Any]]) -> dict[str, float]:
        if self.results_file and dist.is_main_process():
            self._write_results(records)
        flags = np.asarray([f for _, (f, _) in records], dtype=bool).reshape(-1, len(_FLAGS))
        out = {f"{name}_err": (float(1.0 - flags[:, i].mean()) if len(flags) else 0.0) for i, name in enumerate(_FLAGS)}
        out["loc_num_samples"] = int(len(flags))
        return out

    def format_table(self, results: dict[str, float]) -> str:
        pct = {k: 100 * v for k, v in results.items() if k.endswith("_err")}
        return (
            f"localization ({results['loc_num_samples']} images, IoU >= {self.iou_thr}): "
            f"top-1 loc error {pct['loc_top1_err']:.2f}%, top-{self.topk} loc error "
            f"{pct['loc_top5_err']:.2f}%, GT-class-known error {pct['loc_oracle_err']:.2f}% "
            f"(classification: top-1 {pct['cls_top1_err']:.2f}%, top-{self.topk} "
            f"{pct['cls_top5_err']:.2f}%)"
        )


def predictions_to_loc_results(
    predictions: Sequence[dict], img_ids: Sequence, class_names: Sequence[str]
) -> list[dict]:
    """Localization predictions (``labels``, ``scores``, ``boxes`` xyxy per image) -> a
    COCO-results-style list: one ``{'image_id', 'category_id' (the class id, e.g. the wnid),
    'bbox' [x, y, w, h], 'score'}`` per class guess."""
    out = []
    for pred, img_id in zip(predictions, img_ids):
        out.extend(
            detections_to_coco_results(
                img_id,
                to_numpy(pred["boxes"], np.float64).reshape(-1, 4),
                to_numpy(pred["scores"], np.float64).reshape(-1),
                to_numpy(pred["labels"], np.int64).reshape(-1),
                class_names,
            )
        )
    return out


def evaluate_loc_results_file(
    root: str, results: str | list, split: str = "val", iou_thr: float = 0.5, topk: int = 5, **dataset_kwargs
) -> dict:
    """Score a localization results file (``predictions_to_loc_results``' format; ``category_id``
    a class id string or a 1-based label) against the ILSVRC-layout ground truth at ``root``.
    Images without results count as wrong. Returns ``LocalizationError``'s numbers plus
    ``'table'`` (its text)."""
    dataset = ImageNetLocDataset(root, split, strict=False, **dataset_kwargs)
    if isinstance(results, str):
        results = load_json_file(results, "localization results file")
    if not isinstance(results, list):
        raise ResultsError("localization results must be a json list of {image_id, category_id, bbox, score}")
    index = {str(i): n for n, i in enumerate(dataset.img_ids)}
    grouped: dict[int, list[tuple[int, float, list]]] = {}
    for entry in results:
        try:
            cat, img = entry["category_id"], str(entry["image_id"])
            label = dataset.cat_id_to_label[cat] if isinstance(cat, str) else int(cat) - 1
            score, (x, y, w, h) = float(entry["score"]), (float(v) for v in entry["bbox"])
        except (KeyError, TypeError, ValueError) as err:
            raise ResultsError(
                f"localization result {entry!r}: {type(err).__name__} {err} (needs image_id, "
                "category_id (class id or 1-based label), bbox [x, y, w, h], score)"
            ) from None
        if img not in index or not 0 <= label < len(dataset.class_names):
            raise ResultsError(f"localization result for image {img!r}, class {cat!r}: not in {dataset.img_dir}")
        grouped.setdefault(index[img], []).append((label, score, [x, y, x + w, y + h]))
    metric = LocalizationError(iou_thr=iou_thr, topk=topk).bind(dataset)
    predictions, targets = [], []
    for n, img_id in enumerate(dataset.img_ids):
        rows = grouped.get(n, [])
        predictions.append(
            {
                "labels": np.asarray([r[0] for r in rows], np.int64),
                "scores": np.asarray([r[1] for r in rows], np.float64),
                "boxes": np.asarray([r[2] for r in rows], np.float64).reshape(-1, 4),
            }
        )
        targets.append({"img_id": img_id})
    metric.process(predictions, targets)
    numbers = metric.compute()
    return dict(numbers, table=metric.format_table(numbers))
