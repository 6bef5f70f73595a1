"""One interface over the models ``resdet demo`` runs: a detector (or localizer) and a
classifier each predict a batch of RGB frames, draw a result, describe it in one line and
turn it into json entries."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import Any

import numpy as np
from torch import nn

from ..evaluation.coco_api import masks_to_rles
from ..evaluation.results import detections_to_coco_results
from ..models.classifiers.image_classifier import ImageClassifier
from ..utils.errors import DataError
from ..visualization import draw_detections, select_detections
from .classify import inference_classifier
from .detect import class_names_of, describe_detections, inference_detector
from .model import fast_path


def categories_of_json(ann_file: str, classes: Sequence[str] | None = None) -> list[dict]:
    """The ``categories`` of a COCO json in label order: ascending id, or the order of
    ``classes`` (the categories of those names) when given, as ``CocoDataset`` numbers them.
    Raises ``DataError`` naming the file when it has none."""
    try:
        with open(ann_file, encoding="utf-8") as fh:
            cats = sorted(json.load(fh).get("categories") or [], key=lambda c: c["id"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
        raise DataError(f"cannot read the categories of {ann_file}: {err}") from err
    if not cats:
        raise DataError(f"{ann_file} has no 'categories' list (a COCO instances json has one)")
    if classes:
        by_name: dict = {}
        for cat in cats:
            by_name.setdefault(cat.get("name"), cat)
        cats = [by_name[name] for name in classes if name in by_name]
    return cats


def label_to_category_ids(cfg: Any, class_names: Sequence[str] | None, num_labels: int) -> tuple[list, str]:
    """The dataset category id of each contiguous label, for COCO results files, and where they
    come from: the config's test (or val) COCO annotation file when it is readable, else
    ``1..C`` (``'label + 1'``)."""
    for key in ("test_dataloader", "val_dataloader"):
        dataset = ((cfg or {}).get(key) or {}).get("dataset") or {}
        ann_file = dataset.get("ann_file")
        if not (isinstance(ann_file, str) and os.path.isfile(ann_file)):
            continue
        try:
            cats = categories_of_json(ann_file, dataset.get("classes"))
        except DataError:
            continue
        if len(cats) >= num_labels:
            return [c["id"] for c in cats], ann_file
    return list(range(1, max(num_labels, len(class_names or [])) + 1)), "label + 1"


class DetectorPredictor:
    """Detections of a detector / localizer: boxes, scores, labels (and masks). A Faster / Mask
    R-CNN runs on its fast path (``fast_path``: an optimised copy, made once, unless ``model``
    is optimised already), ``model`` itself left as it is."""

    kind = "detector"

    def __init__(
        self,
        model: nn.Module,
        class_names: Sequence[str] | None = None,
        score_thr: float = 0.5,
        top_k: int | None = None,
        cat_ids: Sequence | None = None,
    ) -> None:
        self.model, self.score_thr, self.top_k = fast_path(model), float(score_thr), top_k
        self.cfg = getattr(model, "cfg", None)
        self.class_names = class_names_of(self.cfg, model, class_names)
        if cat_ids is not None:
            self.cat_ids, self.cat_ids_from = list(cat_ids), "given"
        else:
            self.cat_ids, self.cat_ids_from = label_to_category_ids(
                self.cfg, self.class_names, len(self.class_names or [])
            )

    def predict(self, frames: Sequence[np.ndarray]) -> list[dict]:
        return inference_detector(
            self.model, list(frames), batch_size=max(len(frames), 1), cfg=self.cfg, class_names=self.class_names
        )

    def _top_k(self, result: dict) -> int | None:
        # a localizer's ranked class guesses are all drawn (see draw_and_save)
        return len(result["labels"]) if self.top_k is None and "class_boxes" in result else self.top_k

    def shown(self, result: dict) -> np.ndarray:
        return select_detections(
            result["scores"], len(result["boxes"]), score_thr=self.score_thr, top_k=self._top_k(result)
        )

    def draw(self, frame: np.ndarray, result: dict) -> np.ndarray:
        return draw_detections(
            frame,
            result["boxes"],
            result["labels"],
            result["scores"],
            masks=result.get("masks"),
            class_names=self.class_names,
            score_thr=self.score_thr,
            top_k=self._top_k(result),
        )

    def describe(self, result: dict) -> str:
        return describe_detections(result, self.shown(result).tolist())

    def _cat_ids(self, labels: np.ndarray) -> list:
        if len(labels) and int(labels.max()) >= len(self.cat_ids):  # more labels than known ids
            self.cat_ids = self.cat_ids + list(range(len(self.cat_ids) + 1, int(labels.max()) + 2))
        return self.cat_ids

    def coco_entries(self, image_id: Any, result: dict) -> list[dict]:
        """Every detection (no score cut: an evaluation needs them all) in the COCO results
        format, category ids mapped back (``cat_ids``), masks as RLE."""
        labels = np.asarray(result["labels"]).reshape(-1)
        masks = result.get("masks")
        rles = masks_to_rles(np.asarray(masks)) if masks is not None and len(labels) else None
        return detections_to_coco_results(
            image_id, np.asarray(result["boxes"]), np.asarray(result["scores"]), labels, self._cat_ids(labels), rles
        )

    def frame_entries(self, result: dict) -> list[dict]:
        """The drawn detections of a video frame: bbox (xywh), score, label, class name, category id."""
        shown = self.shown(result).tolist()
        labels = np.asarray(result["labels"]).reshape(-1)
        cat_ids = self._cat_ids(labels)
        out = []
        for i in shown:
            x1, y1, x2, y2 = (float(v) for v in result["boxes"][i].tolist())
            out.append(
                {
                    "bbox": [round(x1, 2), round(y1, 2), round(x2 - x1, 2), round(y2 - y1, 2)],
                    "score": round(float(result["scores"][i]), 5),
                    "label": int(labels[i]),
                    "category_id": cat_ids[int(labels[i])],
                    "class_name": result["class_names"][i],
                }
            )
        return out

    def categories(self) -> list[dict]:
        names = self.class_names or []
        return [{"id": cat, "name": names[i] if i < len(names) else str(cat)} for i, cat in enumerate(self.cat_ids)]


class ClassifierPredictor:
    """The top-k classes of an image classifier, written as a caption on the picture."""

    kind = "classifier"

    def __init__(self, model: nn.Module, top_k: int | None = None) -> None:
        self.model, self.top_k = model, int(top_k or 5)

    def predict(self, frames: Sequence[np.ndarray]) -> list[dict]:
        return inference_classifier(self.model, list(frames), topk=self.top_k)

    def _names(self, result: dict) -> list[str]:
        return result.get("class_names") or [str(label) for label in result["labels"]]

    def draw(self, frame: np.ndarray, result: dict) -> np.ndarray:
        caption = ", ".join(f"{name} {score:.2f}" for name, score in zip(self._names(result), result["scores"]))
        return draw_detections(
            frame,
            np.zeros((0, 4)),
            np.zeros(0, np.int64),
            caption=caption,
            caption_label=int(result["labels"][0]) if result["labels"] else None,
        )

    def describe(self, result: dict) -> str:
        pairs = [
            f"{i + 1}. {name} {score:.3f}" for i, (name, score) in enumerate(zip(self._names(result), result["scores"]))
        ]
        return "top-" + str(len(pairs)) + ": " + "; ".join(pairs)

    def coco_entries(self, image_id: Any, result: dict) -> list[dict]:
        return [
            {
                "image_id": image_id,
                "labels": list(result["labels"]),
                "scores": [round(s, 5) for s in result["scores"]],
                "class_names": self._names(result),
            }
        ]

    def frame_entries(self, result: dict) -> list[dict]:
        return [
            {"label": label, "class_name": name, "score": round(score, 5)}
            for label, name, score in zip(result["labels"], self._names(result), result["scores"])
        ]

    def categories(self) -> list[dict]:
        names = getattr(self.model, "class_names", None) or (getattr(self.model, "cfg", None) or {}).get("classes")
        return [{"id": i, "name": str(n)} for i, n in enumerate(names or [])]


def make_predictor(
    model: nn.Module,
    *,
    class_names: Sequence[str] | None = None,
    score_thr: float = 0.5,
    top_k: int | None = None,
    cat_ids: Sequence | None = None,
):
    """A ``ClassifierPredictor`` for an ``ImageClassifier``, else a ``DetectorPredictor``."""
    if isinstance(model, ImageClassifier):
        if class_names:
            model.class_names = list(class_names)
        return ClassifierPredictor(model, top_k=top_k)
    return DetectorPredictor(model, class_names=class_names, score_thr=score_thr, top_k=top_k, cat_ids=cat_ids)
