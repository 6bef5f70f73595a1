"""``CocoMetric``: COCO box / mask AP (the 12 standard stats and per-category AP).

Predictions (one dict per image, original image coordinates, as detectors return them in
eval mode): ``boxes`` (K x 4 float xyxy), ``scores`` (K), ``labels`` (K, contiguous
``0..C-1``), and for ``iou_type='segm'`` ``masks`` (K x H x W or K x 1 x H x W;
float masks are thresholded at 0.5). Targets: ``batch['targets']`` (each has ``img_id``).

Ground truth comes from the bound dataset: its ``coco`` (a pycocotools ``COCO``) when it
has one -- read when evaluation first needs it, not at ``bind``, since ``CocoDataset`` builds
it from its json on first use -- otherwise a COCO index built from ``get_ann`` (so
VOC-style or synthetic sets can be scored with COCO AP too). Result keys: ``bbox_AP, bbox_AP50, ... bbox_ARl`` (or
``segm_...``) and ``bbox_AP/<class name>``; values in [0, 1], -1 where pycocotools has no
ground truth for an area range.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np
from pycocotools import mask as mask_utils

from resdet.evaluation.base import BaseMetric, format_class_table, to_numpy
from resdet.evaluation.coco_api import (
    STAT_NAMES,
    coco_from_dict,
    evaluate_coco,
    format_coco_summary,
    masks_to_rles,
    resolve_backend,
)
from resdet.evaluation.results import detections_to_coco_results, write_results_json
from resdet.registry import METRICS
from resdet.utils import dist


def coco_from_dataset(dataset: Any) -> tuple[Any, dict]:
    """A pycocotools ``COCO`` built from a detection dataset's ``get_ann``.

    Returns ``(coco, img_id_map)``: COCO image ids are ``1..N`` (pycocotools and
    faster-coco-eval want integers; VOC ids are file stems), ``img_id_map`` maps the
    dataset's ids to them. Category ids are ``label + 1``; ``ignore`` objects are crowds.
    """
    images, annotations, id_map = [], [], {}
    for idx in range(len(dataset)):
        ann = dataset.get_ann(idx)
        coco_id = idx + 1
        id_map[ann["img_id"]] = coco_id
        height, width = (int(v) for v in ann["orig_size"])
        images.append({"id": coco_id, "height": height, "width": width})
        boxes = np.asarray(ann["boxes"], dtype=np.float64).reshape(-1, 4)
        xywh = np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], 1)
        masks = ann.get("masks")
        rles = masks_to_rles(masks) if masks is not None and len(boxes) else None
        labels = np.asarray(ann["labels"]).reshape(-1).tolist()
        ignore = np.asarray(ann.get("ignore", np.zeros(len(boxes), bool))).reshape(-1).tolist()
        for j, (box, label, crowd) in enumerate(zip(xywh.tolist(), labels, ignore)):
            entry = {
                "id": len(annotations) + 1,
                "image_id": coco_id,
                "category_id": int(label) + 1,
                "bbox": box,
                "area": box[2] * box[3],
                "iscrowd": int(bool(crowd)),
            }
            if rles is not None:
                entry["segmentation"] = rles[j]
                entry["area"] = float(mask_utils.area(rles[j]))
            else:  # a box polygon, so segm evaluation of box-only GT is still defined
                x, y, w, h = box
                entry["segmentation"] = [[x, y, x + w, y, x + w, y + h, x, y + h]]
            annotations.append(entry)
    names = list(getattr(dataset, "class_names", []))
    num_classes = max(len(names), max((a["category_id"] for a in annotations), default=0))
    categories = [{"id": k + 1, "name": names[k] if k < len(names) else str(k)} for k in range(num_classes)]
    data = {"images": images, "annotations": annotations, "categories": categories}
    return coco_from_dict(data, f"{type(dataset).__name__} ground truth"), id_map


@METRICS.register_module()
class CocoMetric(BaseMetric):
    """COCO AP via pycocotools (or faster-coco-eval: identical numbers).

    Args:
        iou_type: ``'bbox'`` or ``'segm'``.
        backend: ``'auto'`` (faster-coco-eval when installed), ``'pycocotools'``, ``'faster'``.
        results_file: if set, rank 0 writes the predictions there (COCO results format, the
            dataset's own image and category ids) on every ``compute``.
        classwise: add per-category AP entries.
        primary: which stat is the headline (``'AP'``, or ``'AP50'`` for ``mAP@0.5``).
        workers: pycocotools backend: evaluate categories in this many forked processes.
    """

    def __init__(
        self,
        iou_type: str = "bbox",
        backend: str = "auto",
        results_file: str | None = None,
        classwise: bool = True,
        primary: str = "AP",
        workers: int = 1,
    ) -> None:
        super().__init__()
        if iou_type not in ("bbox", "segm"):
            raise ValueError(f"CocoMetric: iou_type must be 'bbox' or 'segm', got {iou_type!r}")
        if primary not in STAT_NAMES:
            raise ValueError(f"CocoMetric: primary must be one of {STAT_NAMES}, got {primary!r}")
        resolve_backend(backend)  # fail early on a bad name / missing package
        self.iou_type, self.backend, self.results_file = iou_type, backend, results_file
        self.classwise, self.workers = classwise, int(workers)
        self.primary_key = f"{iou_type}_{primary}"
        self.coco = None
        self._img_id_map: dict | None = None
        self.label_to_cat_id: list = []
        self.class_names: list[str] = []

    def bind(self, dataset: Any) -> CocoMetric:
        super().bind(dataset)
        if _has_coco(dataset):  # its COCO is fetched in evaluate (CocoDataset builds it lazily)
            self.coco, self._img_id_map = None, None
            self.label_to_cat_id = list(dataset.label_to_cat_id)
        else:
            self.coco, self._img_id_map = coco_from_dataset(dataset)
            self.label_to_cat_id = [c["id"] for c in self.coco.dataset["categories"]]
        self.class_names = list(getattr(dataset, "class_names", [])) or [str(c) for c in self.label_to_cat_id]
        return self

    def process(self, predictions: Sequence[dict], targets: Any) -> None:
        keys = self._sample_keys(targets, len(predictions))
        for key, pred in zip(keys, predictions):
            payload = {
                "boxes": to_numpy(pred["boxes"], np.float32).reshape(-1, 4),
                "scores": to_numpy(pred["scores"], np.float32).reshape(-1),
                "labels": to_numpy(pred["labels"], np.int64).reshape(-1),
            }
            if self.iou_type == "segm" or (self.results_file and "masks" in pred):
                if "masks" not in pred:
                    raise ValueError(
                        "CocoMetric(iou_type='segm'): the model's predictions have no 'masks' (is it a Mask R-CNN?)"
                    )
                payload["rles"] = masks_to_rles(to_numpy(pred["masks"]))
            self._records.append((key, payload))

    def evaluate(self, records: list[tuple[Hashable, Any]]) -> dict[str, float]:
        if self.coco is None and self.dataset is not None and _has_coco(self.dataset):
            self.coco = self.dataset.coco
        if self.coco is None:
            raise RuntimeError(
                "CocoMetric: call bind(dataset) before compute() (the ground truth comes from the dataset)"
            )
        results = []
        for img_id, payload in records:
            results.extend(
                detections_to_coco_results(
                    img_id,
                    payload["boxes"],
                    payload["scores"],
                    payload["labels"],
                    self.label_to_cat_id,
                    payload.get("rles"),
                )
            )
        if self.results_file and dist.is_main_process():
            write_results_json(results, self.results_file)
        if self._img_id_map is not None:
            unknown = [k for k, _ in records if k not in self._img_id_map]
            if unknown:
                raise KeyError(f"CocoMetric: predictions for image ids not in the dataset: {unknown[:5]}")
            for entry in results:
                entry["image_id"] = self._img_id_map[entry["image_id"]]
        if self.iou_type == "segm":
            results = [r for r in results if "segmentation" in r]
        img_ids = (
            list(self._img_id_map.values())
            if self._img_id_map is not None
            else list(getattr(self.dataset, "img_ids", None) or self.coco.getImgIds())
        )
        evaluated = evaluate_coco(
            self.coco,
            results,
            iou_type=self.iou_type,
            backend=self.backend,
            img_ids=img_ids,
            cat_ids=self.label_to_cat_id,
            workers=self.workers,
        )
        names = dict(zip(self.label_to_cat_id, self.class_names))
        return coco_metrics_dict(evaluated, self.iou_type, names if self.classwise else None)

    def format_table(self, results: dict[str, float]) -> str:
        return format_coco_results(results, self.iou_type)


def _has_coco(dataset: Any) -> bool:
    """Whether ``dataset`` offers a pycocotools ``COCO`` (a lazy property counts, unread)."""
    return (
        isinstance(getattr(type(dataset), "coco", None), property)
        or getattr(dataset, "__dict__", {}).get("coco") is not None
    )


def coco_metrics_dict(evaluated: dict, iou_type: str, cat_names: dict | None) -> dict[str, float]:
    """Flatten ``evaluate_coco``'s output into ``{'bbox_AP': ..., 'bbox_AP/<name>': ...}``."""
    out = {f"{iou_type}_{name}": value for name, value in zip(STAT_NAMES, evaluated["stats"])}
    if cat_names is not None:
        for cat_id, ap in evaluated["per_class_ap"].items():
            out[f"{iou_type}_AP/{cat_names.get(cat_id, cat_id)}"] = ap
    return out


def format_coco_results(results: dict[str, float], iou_type: str) -> str:
    """The 12-line summary and, when present, the per-category AP table."""
    stats = [results[f"{iou_type}_{name}"] for name in STAT_NAMES]
    text = format_coco_summary(stats, iou_type)
    prefix = f"{iou_type}_AP/"
    per_class = {k[len(prefix) :]: v for k, v in results.items() if k.startswith(prefix)}
    if per_class:
        text += "\n" + format_class_table(
            f"per-category {iou_type} AP@[.5:.95] (%)", list(per_class), list(per_class.values())
        )
    return text
