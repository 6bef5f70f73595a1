"""``VOCMetric``: PASCAL VOC mAP@0.5 (11-point VOC2007 or area VOC2010+), per-class table.

Predictions: one dict per image (``boxes`` K x 4 xyxy in original pixels, ``scores``,
``labels`` ``0..C-1``); targets carry ``img_id``. Ground truth comes from the bound
dataset's ``get_ann`` (``ignore`` = the xml's ``difficult`` flag), or, for results files,
from a VOC root and split (``load_voc_gt``). Result keys: ``voc_mAP50`` and
``voc_AP50/<class>`` (values in [0, 1]; a class without non-difficult ground truth has
AP nan and is left out of the mean).
"""

from __future__ import annotations

import os
import warnings
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np

from resdet.data.datasets.voc import VOC_CLASSES, difficult_flag
from resdet.evaluation.base import BaseMetric, format_class_table, mean_of_finite, to_numpy
from resdet.evaluation.results import ResultsError, detections_to_coco_results, write_results_json
from resdet.evaluation.voc_ap import voc_eval
from resdet.registry import METRICS
from resdet.utils import dist


class VOCGroundTruth:
    """Per-image ground truth of a VOC split: ``img_ids`` (file stems), ``boxes`` (list of
    ``M x 4`` continuous xyxy: the xml's ``xmin - 1, ymin - 1, xmax, ymax``), ``labels``,
    ``difficult``, ``class_names``; ``root`` and ``split`` where it came from."""

    def __init__(
        self,
        img_ids: list,
        boxes: list,
        labels: list,
        difficult: list,
        class_names: Sequence[str],
        root: str = "",
        split: str = "",
    ) -> None:
        self.img_ids, self.boxes, self.labels, self.difficult = img_ids, boxes, labels, difficult
        self.class_names = list(class_names)
        self.root, self.split = root, split
        self.index = {img_id: i for i, img_id in enumerate(img_ids)}


def _parse_xml(path: str) -> list[tuple[str, list[float], bool]]:
    try:
        tree = ET.parse(path)
    except ET.ParseError as err:
        raise ResultsError(f"VOC annotation {path} is not valid xml: {err}") from err
    objects = []
    for i, obj in enumerate(tree.findall("object")):
        name, box = obj.findtext("name"), obj.find("bndbox")
        if name is None or box is None:
            raise ResultsError(f"VOC annotation {path}: object {i} lacks <name> or <bndbox>")
        try:
            coords = [float(box.findtext(k)) for k in ("xmin", "ymin", "xmax", "ymax")]
        except (TypeError, ValueError):
            raise ResultsError(
                f"VOC annotation {path}: object {i} ({name}) has a missing or non-numeric bndbox coordinate"
            ) from None
        difficult = difficult_flag(obj.findtext("difficult"))  # the dataset's rule (CONTRACTS.md)
        if difficult is None:
            raise ResultsError(
                f"VOC annotation {path}: object {i} ({name}) has <difficult> "
                f"{obj.findtext('difficult')!r}; it must be 0 or 1"
            )
        objects.append((name.strip(), coords, difficult))
    return objects


def load_voc_gt(root: str, split: str = "test", class_names: Sequence[str] | None = None) -> VOCGroundTruth:
    """Read ``root/ImageSets/Main/<split>.txt`` and ``root/Annotations/<stem>.xml``.

    ``class_names``: default the 20 VOC classes when every object is one of them, else the
    sorted names found.
    """
    if not os.path.isdir(root):
        raise ResultsError(f"VOC root {root} does not exist")
    split_file = os.path.join(root, "ImageSets", "Main", f"{split}.txt")
    if not os.path.isfile(split_file):
        main = os.path.join(root, "ImageSets", "Main")
        found = (
            sorted(f[:-4] for f in os.listdir(main) if f.endswith(".txt") and "_" not in f)
            if os.path.isdir(main)
            else []
        )
        raise ResultsError(
            f"VOC root {root} has no split file {split_file} (splits found: {found or 'none'}; pass --split)"
        )
    with open(split_file, encoding="utf-8") as fh:
        stems = [line.split()[0] for line in fh if line.strip()]
    repeated = sorted(stem for stem, count in Counter(stems).items() if count > 1)
    if repeated:
        raise ResultsError(
            f"VOC split file {split_file} lists {len(repeated)} id(s) more than once "
            f"(e.g. {repeated[:3]}): each image would be evaluated more than once"
        )
    parsed = []
    for stem in stems:
        xml = os.path.join(root, "Annotations", f"{stem}.xml")
        if not os.path.isfile(xml):
            raise ResultsError(f"VOC annotation {xml} (listed in {split_file}) does not exist")
        parsed.append(_parse_xml(xml))
    names_found = {name for objects in parsed for name, _, _ in objects}
    if class_names is None:
        class_names = VOC_CLASSES if names_found <= set(VOC_CLASSES) else sorted(names_found)
    name_to_label = {name: i for i, name in enumerate(class_names)}
    unknown = sorted(names_found - set(name_to_label))
    if unknown:
        raise ResultsError(f"VOC root {root}: object names {unknown} are not among the classes {list(class_names)}")
    boxes, labels, difficult = [], [], []
    for objects in parsed:
        coords = np.asarray([c for _, c, _ in objects], dtype=np.float64).reshape(-1, 4)
        boxes.append(coords - np.array([1.0, 1.0, 0.0, 0.0]))
        labels.append(np.asarray([name_to_label[n] for n, _, _ in objects], dtype=np.int64))
        difficult.append(np.asarray([d for _, _, d in objects], dtype=bool))
    return VOCGroundTruth(stems, boxes, labels, difficult, class_names, root, split)


def default_ap_method(source: Any) -> str:
    """``'11point'`` for VOC2007 (a ``year`` of 2007 or '2007' in the root path), else ``'area'``."""
    if str(getattr(source, "year", "")) == "2007":
        return "11point"
    for attr in ("root", "data_root", "ann_file", "img_dir"):
        if "2007" in str(getattr(source, attr, "") or ""):
            return "11point"
    return "area"


def evaluate_voc(
    gt: VOCGroundTruth,
    det_image: np.ndarray,
    det_boxes: np.ndarray,
    det_labels: np.ndarray,
    det_scores: np.ndarray,
    iou_thr: float = 0.5,
    ap_method: str = "auto",
    plus_one: bool = True,
) -> dict[str, float]:
    """VOC AP of detections given as arrays (``det_image`` = index into ``gt.img_ids``)."""
    method = default_ap_method(gt) if ap_method == "auto" else ap_method
    out = voc_eval(
        gt.boxes,
        gt.labels,
        gt.difficult,
        det_image,
        det_boxes,
        det_labels,
        det_scores,
        num_classes=len(gt.class_names),
        iou_thr=iou_thr,
        method=method,
        plus_one=plus_one,
    )
    tag = f"{round(iou_thr * 100):d}"
    missing = [n for n, ap in zip(gt.class_names, out["ap"]) if not np.isfinite(ap)]
    if missing:
        warnings.warn(
            f"VOC evaluation: classes without (non-difficult) ground truth, left out of the mean: {missing}",
            stacklevel=2,
        )
    results = {f"voc_mAP{tag}": mean_of_finite(out["ap"])}
    for name, ap, n_gt, n_det, rec in zip(gt.class_names, out["ap"], out["num_gts"], out["num_dets"], out["recall"]):
        results[f"voc_AP{tag}/{name}"] = float(ap)
        results[f"voc_num_gts/{name}"] = int(n_gt)
        results[f"voc_num_dets/{name}"] = int(n_det)
        results[f"voc_recall{tag}/{name}"] = float(rec)
    results["voc_ap_method_11point"] = float(method == "11point")
    return results


def format_voc_results(results: dict[str, float]) -> str:
    """Per-class table (#gt, #det, recall, AP) and the mAP line."""
    key = next(k for k in results if k.startswith("voc_mAP"))
    tag = key[len("voc_mAP") :]
    prefix = f"voc_AP{tag}/"
    names = [k[len(prefix) :] for k in results if k.startswith(prefix)]
    method = "11-point (VOC2007)" if results.get("voc_ap_method_11point") else "area (VOC2010+)"
    extra = {
        "#gt": [results[f"voc_num_gts/{n}"] for n in names],
        "#det": [results[f"voc_num_dets/{n}"] for n in names],
        "recall": [f"{100 * results[f'voc_recall{tag}/{n}']:.1f}" for n in names],
    }
    table = format_class_table(
        f"VOC AP@0.{tag} per class (%), {method}", names, [results[prefix + n] for n in names], extra=extra, columns=1
    )
    return table + f"\nmAP@0.{tag} = {100 * results[key]:.2f}"


@METRICS.register_module()
class VOCMetric(BaseMetric):
    """VOC mAP.

    Args:
        iou_thr: match threshold (IoU must exceed it).
        ap_method: ``'11point'`` (VOC2007), ``'area'`` (VOC2010+), or ``'auto'``: 11-point
            for a VOC2007 dataset, area otherwise.
        plus_one: the devkit's +1 pixel convention (see ``voc_ap``).
        results_file: if set, rank 0 writes predictions there (COCO results format, image
            ids = the dataset's ids, category ids = class names).
    """

    def __init__(
        self, iou_thr: float = 0.5, ap_method: str = "auto", plus_one: bool = True, results_file: str | None = None
    ) -> None:
        super().__init__()
        if ap_method not in ("auto", "11point", "area"):
            raise ValueError(f"VOCMetric: ap_method must be 'auto', '11point' or 'area', got {ap_method!r}")
        self.iou_thr, self.ap_method, self.plus_one = iou_thr, ap_method, plus_one
        self.results_file = results_file
        self.primary_key = f"voc_mAP{round(iou_thr * 100):d}"
        self.gt: VOCGroundTruth | None = None

    def bind(self, dataset: Any) -> VOCMetric:
        super().bind(dataset)
        img_ids, boxes, labels, difficult = [], [], [], []
        for idx in range(len(dataset)):
            ann = dataset.get_ann(idx)
            img_ids.append(ann["img_id"])
            boxes.append(np.asarray(ann["boxes"], np.float64).reshape(-1, 4))
            labels.append(np.asarray(ann["labels"], np.int64).reshape(-1))
            difficult.append(np.asarray(ann.get("ignore", np.zeros(len(labels[-1]), bool)), bool).reshape(-1))
        names = list(getattr(dataset, "class_names", []))
        if not names:
            names = [str(c) for c in range(max((int(lab.max()) + 1 for lab in labels if lab.size), default=0))]
        self.gt = VOCGroundTruth(img_ids, boxes, labels, difficult, names)
        if self.ap_method == "auto":
            self.ap_method = default_ap_method(dataset)
        return self

    def process(self, predictions: Sequence[dict], targets: Any) -> None:
        keys = self._sample_keys(targets, len(predictions))
        for key, pred in zip(keys, predictions):
            self._records.append(
                (
                    key,
                    {
                        "boxes": to_numpy(pred["boxes"], np.float32).reshape(-1, 4),
                        "scores": to_numpy(pred["scores"], np.float32).reshape(-1),
                        "labels": to_numpy(pred["labels"], np.int64).reshape(-1),
                    },
                )
            )

    def evaluate(self, records: list[tuple[Hashable, Any]]) -> dict[str, float]:
        if self.gt is None:
            raise RuntimeError("VOCMetric: call bind(dataset) before compute()")
        if self.results_file and dist.is_main_process():
            results = []
            for img_id, p in records:
                results.extend(
                    detections_to_coco_results(img_id, p["boxes"], p["scores"], p["labels"], self.gt.class_names)
                )
            write_results_json(results, self.results_file)
        unknown = [k for k, _ in records if k not in self.gt.index]
        if unknown:
            raise KeyError(f"VOCMetric: predictions for image ids not in the dataset: {unknown[:5]}")
        counts = [len(p["scores"]) for _, p in records]
        det_image = np.repeat([self.gt.index[k] for k, _ in records], counts).astype(np.int64)
        cat = lambda key: np.concatenate([p[key] for _, p in records]) if records else np.zeros(0)
        boxes = cat("boxes").reshape(-1, 4)
        return evaluate_voc(
            self.gt,
            det_image,
            boxes,
            cat("labels").astype(np.int64),
            cat("scores"),
            iou_thr=self.iou_thr,
            ap_method=self.ap_method,
            plus_one=self.plus_one,
        )

    def format_table(self, results: dict[str, float]) -> str:
        return format_voc_results(results)
