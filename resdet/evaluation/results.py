"""Detection results files: reading, validation, and writing in the COCO results format.

A results file is a json list, one entry per detection::

    {"image_id": 42, "category_id": 18, "bbox": [x, y, w, h], "score": 0.93,
     "segmentation": {"size": [h, w], "counts": "..."}}        # masks only (RLE)

``bbox`` is in original image pixels, continuous (``x + w`` is the right edge). For VOC,
``image_id`` is the file stem (``"000001"``) and ``category_id`` a class name or a 1-based
class index. Every problem is reported as a ``ResultsError`` that names the file, the entry
and the field, instead of an assertion from inside pycocotools.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np

from resdet.utils.errors import DataError
from resdet.utils.io import atomic_write_json


class ResultsError(DataError):
    """A results or ground-truth file that cannot be evaluated (the message names it)."""


def load_json_file(path: str, what: str = "results file") -> Any:
    """``json.load`` with errors that name the file and the position of a syntax error."""
    if not os.path.isfile(path):
        raise ResultsError(f"{what} {path} does not exist")
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except json.JSONDecodeError as err:
        size = os.path.getsize(path)
        hint = " (the file looks truncated)" if err.pos >= size - 1 else ""
        raise ResultsError(
            f"{what} {path} is not valid json: {err.msg} at line {err.lineno}, column {err.colno}{hint}"
        ) from err
    except UnicodeDecodeError as err:
        raise ResultsError(f"{what} {path} is not a utf-8 json text file: {err}") from err
    except RecursionError:  # e.g. 100,000 nested brackets: no results or annotation file looks like that
        raise ResultsError(
            f"{what} {path} is nested too deeply to be json data (deeper than Python's recursion "
            "limit); check that it is the right file"
        ) from None


def _preview(values: Sequence, limit: int = 5) -> str:
    shown = ", ".join(repr(v) for v in list(values)[:limit])
    return shown + (f", ... ({len(values)} in all)" if len(values) > limit else "")


def validate_detection_results(
    anns: Any,
    path: str = "<results>",
    *,
    iou_type: str = "bbox",
    img_ids: set | None = None,
    cat_ids: set | None = None,
    cat_name_to_id: dict | None = None,
) -> list[dict]:
    """Check a loaded COCO-format results list; return it with plain float boxes/scores.

    Args:
        anns: the parsed json (must be a list of dicts).
        path: the file name used in messages.
        iou_type: ``'bbox'`` (needs ``bbox``) or ``'segm'`` (needs an RLE ``segmentation``).
        img_ids: the ground truth's image ids; unknown ids are an error.
        cat_ids: the ground truth's category ids; unknown ids are an error.
        cat_name_to_id: optional class-name -> id map: string ``category_id`` values are
            translated with it (VOC results may name the class).

    Returns:
        The entries (new dicts), with ``category_id`` translated and ``bbox`` / ``score`` as
        Python floats. An empty list warns (every AP is then 0).
    """
    if isinstance(anns, dict) and "annotations" in anns:
        raise ResultsError(
            f"results file {path} is a ground-truth style dict (has 'annotations'); expected a list of detections"
        )
    if not isinstance(anns, list):
        raise ResultsError(f"results file {path} must hold a json list of detections, got {type(anns).__name__}")
    if not anns:
        warnings.warn(f"results file {path} holds no detections: every AP/AR is 0", stacklevel=2)
        return []
    required = ("image_id", "category_id", "score") + (("bbox",) if iou_type == "bbox" else ("segmentation",))
    for i, ann in enumerate(anns):
        if not isinstance(ann, dict):
            raise ResultsError(f"results file {path}, entry {i}: expected an object, got {type(ann).__name__}")
        missing = [k for k in required if k not in ann]
        if missing:
            raise ResultsError(
                f"results file {path}, entry {i}: missing field(s) {missing} "
                f"(required for iou_type='{iou_type}': {list(required)})"
            )
    out = [dict(ann) for ann in anns]
    if cat_name_to_id is not None:
        for i, ann in enumerate(out):
            cat = ann["category_id"]
            if isinstance(cat, str):
                if cat not in cat_name_to_id:
                    raise ResultsError(
                        f"results file {path}, entry {i}: category_id {cat!r} is not "
                        f"a class of the ground truth ({_preview(sorted(cat_name_to_id))})"
                    )
                ann["category_id"] = cat_name_to_id[cat]
    _check_numbers(out, path, "score", width=None)
    if "bbox" in out[0] or iou_type == "bbox":
        if not all("bbox" in ann for ann in out):
            first = next(i for i, ann in enumerate(out) if "bbox" not in ann)
            raise ResultsError(
                f"results file {path}, entry {first}: missing field 'bbox' (the first entry has one, so all must)"
            )
        _check_numbers(out, path, "bbox", width=4)
    if iou_type == "segm":
        for i, ann in enumerate(out):
            seg = ann["segmentation"]
            if not (isinstance(seg, dict) and "size" in seg and "counts" in seg):
                raise ResultsError(
                    f"results file {path}, entry {i}: 'segmentation' must be an RLE "
                    f"object with 'size' and 'counts' (got {type(seg).__name__})"
                )
    if img_ids is not None:
        unknown = sorted({ann["image_id"] for ann in out if ann["image_id"] not in img_ids}, key=str)
        if unknown:
            raise ResultsError(f"results file {path}: image_id(s) not in the ground truth: {_preview(unknown)}")
    if cat_ids is not None:
        unknown = sorted({ann["category_id"] for ann in out if ann["category_id"] not in cat_ids}, key=str)
        if unknown:
            raise ResultsError(
                f"results file {path}: category_id(s) not in the ground truth: "
                f"{_preview(unknown)} (known: {_preview(sorted(cat_ids, key=str), 10)})"
            )
    return out


def _check_numbers(anns: list[dict], path: str, field: str, width: int | None) -> None:
    """Vectorised type/finiteness check of one numeric field; boxes also need w, h >= 0."""
    values = [ann[field] for ann in anns]
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        for i, v in enumerate(values):
            try:
                row = np.asarray(v, dtype=np.float64)
                if width is not None and row.shape != (width,):
                    raise ValueError
            except (TypeError, ValueError):
                shape = f"a list of {width} numbers" if width else "a number"
                raise ResultsError(f"results file {path}, entry {i}: '{field}' must be {shape}, got {v!r}") from None
        raise ResultsError(f"results file {path}: '{field}' values have mixed shapes") from None
    expected = (len(anns), width) if width else (len(anns),)
    if array.shape != expected:
        raise ResultsError(
            f"results file {path}: every '{field}' must be "
            f"{'[x, y, w, h]' if width else 'a number'} (got shape {array.shape[1:]})"
        )
    bad = ~np.isfinite(array) if width is None else ~np.isfinite(array).all(axis=1)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ResultsError(
            f"results file {path}, entry {i}: '{field}' is not finite: {values[i]!r} ({int(bad.sum())} such entries)"
        )
    if width == 4:
        negative = (array[:, 2] < 0) | (array[:, 3] < 0)
        if negative.any():
            i = int(np.flatnonzero(negative)[0])
            raise ResultsError(
                f"results file {path}, entry {i}: 'bbox' has a negative width or "
                f"height: {values[i]!r} ({int(negative.sum())} such entries; "
                f"bbox is [x, y, w, h], not [x1, y1, x2, y2])"
            )
    for ann, row in zip(anns, array.tolist()):
        ann[field] = row


def detections_to_coco_results(
    image_id: Hashable,
    boxes_xyxy: np.ndarray,
    scores: np.ndarray,
    labels: np.ndarray,
    label_to_cat_id: Sequence,
    rles: list[dict] | None = None,
) -> list[dict]:
    """One image's detections in the COCO results format.

    Args:
        image_id: the dataset's own image id.
        boxes_xyxy: float ``K x 4`` continuous xyxy, original image pixels.
        scores: float ``K``; labels: int ``K`` contiguous labels ``0..C-1``.
        label_to_cat_id: label -> the dataset's category id.
        rles: optional ``K`` RLE dicts (``counts`` as str) for masks.
    """
    boxes = np.asarray(boxes_xyxy, dtype=np.float64).reshape(-1, 4)
    xywh = np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], axis=1)
    cat_ids = [label_to_cat_id[int(label)] for label in np.asarray(labels).reshape(-1)]
    image_id = image_id.item() if isinstance(image_id, np.generic) else image_id
    results = [
        {"image_id": image_id, "category_id": cat, "bbox": [round(v, 3) for v in box], "score": round(score, 5)}
        for cat, box, score in zip(cat_ids, xywh.tolist(), np.asarray(scores, np.float64).tolist())
    ]
    if rles is not None:
        for entry, rle in zip(results, rles):
            entry["segmentation"] = rle
    return results


def write_results_json(results: list[dict], path: str) -> None:
    """Write a results list atomically (compact json)."""
    atomic_write_json(results, path, indent=None)
