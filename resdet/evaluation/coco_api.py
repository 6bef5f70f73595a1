"""COCO evaluation backends: pycocotools (the reference) and faster-coco-eval (the default).

``evaluate_coco(gt, anns, iou_type, backend)`` returns the 12 standard stats exactly as
``COCOeval.summarize()`` computes them, plus the per-category AP. Both backends give the
same numbers (checked against pycocotools on the official fixture); faster-coco-eval does
the matching and accumulation in C++ and is a core dependency (a wheel, no compiler), so
``auto`` picks it; ``backend='pycocotools'`` stays available for reference.

Our side of the speed-up: results are handed over as the in-memory list (no json dump and
re-parse), and the results ``COCO`` object is built without ``loadRes``'s per-detection
bounding-box polygons and its quadratic-in-memory id assertion (ids are validated once, up
front, in ``resdet.evaluation.results``).
"""

from __future__ import annotations

import contextlib
import copy
import io
from collections.abc import Sequence
from typing import Any

import numpy as np
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from resdet.evaluation.results import ResultsError, load_json_file

BACKENDS = ("auto", "pycocotools", "faster")
STAT_NAMES = ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl")
_STAT_LINES = (  # (kind, IoU, area, maxDets) of COCOeval.summarize(), in order
    ("AP", "0.50:0.95", "all", 100),
    ("AP", "0.50", "all", 100),
    ("AP", "0.75", "all", 100),
    ("AP", "0.50:0.95", "small", 100),
    ("AP", "0.50:0.95", "medium", 100),
    ("AP", "0.50:0.95", "large", 100),
    ("AR", "0.50:0.95", "all", 1),
    ("AR", "0.50:0.95", "all", 10),
    ("AR", "0.50:0.95", "all", 100),
    ("AR", "0.50:0.95", "small", 100),
    ("AR", "0.50:0.95", "medium", 100),
    ("AR", "0.50:0.95", "large", 100),
)


def faster_available() -> bool:
    try:
        import faster_coco_eval  # noqa: F401
    except ImportError:
        return False
    return True


def resolve_backend(backend: str = "auto") -> str:
    """``'auto'`` -> ``'faster'`` when faster-coco-eval is installed, else ``'pycocotools'``."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown COCO evaluation backend {backend!r}; choose one of {BACKENDS}")
    if backend == "auto":
        return "faster" if faster_available() else "pycocotools"
    if backend == "faster" and not faster_available():
        raise ImportError(
            "backend='faster' needs the faster-coco-eval package: "
            "pip install faster-coco-eval  (a dependency of resdet; reinstall resdet)"
        )
    return backend


def coco_from_dict(data: dict, path: str = "<ground truth>") -> COCO:
    """A pycocotools ``COCO`` from an instances dict, after checking its structure."""
    if not isinstance(data, dict):
        raise ResultsError(
            f"ground truth {path} is not a COCO instances file: expected a json "
            f"object with 'images', 'annotations', 'categories', got {type(data).__name__}"
        )
    missing = [k for k in ("images", "annotations", "categories") if not isinstance(data.get(k), list)]
    if missing:
        raise ResultsError(
            f"ground truth {path} is not a COCO instances file: "
            f"missing list(s) {missing} (keys present: {sorted(data)[:10]})"
        )
    for key, fields in (
        ("images", ("id",)),
        ("categories", ("id",)),
        ("annotations", ("id", "image_id", "category_id", "bbox")),
    ):
        for i, entry in enumerate(data[key]):
            absent = [f for f in fields if not isinstance(entry, dict) or f not in entry]
            if absent:
                raise ResultsError(f"ground truth {path}: {key}[{i}] lacks {absent}")
    coco = COCO()
    coco.dataset = data
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    return coco


def load_coco_gt(path: str) -> COCO:
    """Read and check a COCO instances json (clear errors for anything else)."""
    return coco_from_dict(load_json_file(path, "ground truth"), path)


def _results_coco(gt: Any, anns: list[dict], coco_cls: type) -> Any:
    """What ``gt.loadRes(anns)`` builds, without its per-box polygons and id assertion.

    Follows loadRes's rules so the numbers are identical: if the first entry has a
    non-empty ``bbox`` every ``area`` is ``w * h`` (also for segm, as in pycocotools);
    otherwise ``area`` (and a missing ``bbox``) come from the RLE.
    """
    res = coco_cls()
    res.dataset["images"] = list(gt.dataset["images"])
    res.dataset["categories"] = copy.deepcopy(gt.dataset["categories"])
    anns = [dict(ann) for ann in anns]
    if anns and anns[0].get("bbox"):
        for index, ann in enumerate(anns):
            box = ann["bbox"]
            ann["area"] = box[2] * box[3]
            ann["id"] = index + 1
            ann["iscrowd"] = 0
    elif anns:
        for index, ann in enumerate(anns):
            ann["area"] = float(mask_utils.area(ann["segmentation"]))
            if "bbox" not in ann:
                ann["bbox"] = mask_utils.toBbox(ann["segmentation"]).tolist()
            ann["id"] = index + 1
            ann["iscrowd"] = 0
    res.dataset["annotations"] = anns
    with contextlib.redirect_stdout(io.StringIO()):
        res.createIndex()
    return res


def _faster_gt(gt: COCO) -> Any:
    """A faster-coco-eval ``COCO`` over the same instances dict (cached on ``gt``)."""
    cached = getattr(gt, "_resdet_faster_gt", None)
    if cached is None:
        import faster_coco_eval

        cached = faster_coco_eval.COCO(gt.dataset)
        cached.print_function = lambda *args, **kwargs: None
        gt._resdet_faster_gt = cached
    return cached


_FORK_STATE: dict[str, Any] = {}


def _evaluate_category_chunk(cat_chunk: list) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Worker: COCOeval restricted to some categories (GT / results inherited through fork)."""
    gt, dt, iou_type, img_ids = _FORK_STATE["args"]
    evaluator = COCOeval(gt, dt, iou_type)
    evaluator.params.imgIds = img_ids
    evaluator.params.catIds = list(cat_chunk)
    with contextlib.redirect_stdout(io.StringIO()):
        evaluator.evaluate()
        evaluator.accumulate()
    return evaluator.eval["precision"], evaluator.eval["recall"], evaluator.eval["scores"]


def _pycocotools_in_processes(evaluator: COCOeval, workers: int) -> bool:
    """Run ``evaluate`` + ``accumulate`` split by category over ``workers`` forked processes
    and store the merged ``eval`` arrays in ``evaluator`` (categories are independent in
    COCOeval, so the arrays -- and ``summarize()`` -- are exactly the single-process ones).
    Returns False (nothing done) where fork is unavailable."""
    import multiprocessing

    if "fork" not in multiprocessing.get_all_start_methods():
        return False
    params = evaluator.params
    params.imgIds = list(np.unique(params.imgIds))
    params.catIds = list(np.unique(params.catIds))
    chunks = [params.catIds[i::workers] for i in range(workers) if params.catIds[i::workers]]
    _FORK_STATE["args"] = (evaluator.cocoGt, evaluator.cocoDt, params.iouType, params.imgIds)
    try:
        with multiprocessing.get_context("fork").Pool(len(chunks)) as pool:
            parts = pool.map(_evaluate_category_chunk, chunks)
    finally:
        _FORK_STATE.clear()
    num_t, num_r, num_k = len(params.iouThrs), len(params.recThrs), len(params.catIds)
    num_a, num_m = len(params.areaRng), len(params.maxDets)
    precision = -np.ones((num_t, num_r, num_k, num_a, num_m))
    recall = -np.ones((num_t, num_k, num_a, num_m))
    scores = -np.ones((num_t, num_r, num_k, num_a, num_m))
    position = {cat: k for k, cat in enumerate(params.catIds)}
    for chunk, (prec, rec, score) in zip(chunks, parts):
        index = [position[c] for c in sorted(chunk)]
        precision[:, :, index], recall[:, index], scores[:, :, index] = prec, rec, score
    evaluator.eval = {
        "params": params,
        "counts": [num_t, num_r, num_k, num_a, num_m],
        "precision": precision,
        "recall": recall,
        "scores": scores,
    }
    return True


def evaluate_coco(
    gt: COCO,
    anns: list[dict],
    iou_type: str = "bbox",
    backend: str = "auto",
    img_ids: Sequence | None = None,
    cat_ids: Sequence | None = None,
    workers: int = 1,
) -> dict[str, Any]:
    """Evaluate validated COCO-format results against ``gt``.

    Args:
        gt: pycocotools ``COCO`` of the ground truth.
        anns: results (see ``validate_detection_results``); may be empty.
        iou_type: ``'bbox'`` or ``'segm'``.
        backend: ``'auto' | 'pycocotools' | 'faster'``.
        img_ids: evaluate only these images (default: every image of ``gt``).
        cat_ids: evaluate only these categories (default: every category of ``gt``).
        workers: pycocotools backend only: split the categories over this many forked
            processes (same numbers; about ``workers`` times faster on large sets).

    Returns:
        ``{'stats': 12 floats (summarize order), 'per_class_ap': {cat_id: AP or nan},
        'backend': name}``.
    """
    if iou_type not in ("bbox", "segm"):
        raise ValueError(f"iou_type must be 'bbox' or 'segm', got {iou_type!r}")
    backend = resolve_backend(backend)
    if backend == "faster":
        import faster_coco_eval

        gt_api = _faster_gt(gt)
        dt_api = _results_coco(gt_api, anns, faster_coco_eval.COCO)
        evaluator = faster_coco_eval.COCOeval_faster(gt_api, dt_api, iou_type, print_function=lambda *a, **k: None)
    else:
        dt_api = _results_coco(gt, anns, COCO)
        evaluator = COCOeval(gt, dt_api, iou_type)
    if img_ids is not None:
        evaluator.params.imgIds = sorted(img_ids)
    if cat_ids is not None:
        evaluator.params.catIds = sorted(cat_ids)
    with contextlib.redirect_stdout(io.StringIO()):
        if not (
            backend == "pycocotools"
            and workers > 1
            and len(evaluator.params.catIds) > 1
            and _pycocotools_in_processes(evaluator, workers)
        ):
            evaluator.evaluate()
            evaluator.accumulate()
        evaluator.summarize()
    precision = np.asarray(evaluator.eval["precision"])  # T x R x K x A x M
    per_class = {}
    for k, cat_id in enumerate(evaluator.params.catIds):
        values = precision[:, :, k, 0, -1]
        values = values[values > -1]
        per_class[cat_id] = float(values.mean()) if values.size else float("nan")
    return {"stats": [float(s) for s in list(evaluator.stats)[:12]], "per_class_ap": per_class, "backend": backend}


def format_coco_summary(stats: Sequence[float], iou_type: str = "bbox") -> str:
    """The familiar 12-line ``COCOeval.summarize()`` block for ``stats``."""
    lines = [f"COCO {iou_type} evaluation"]
    for (kind, iou, area, max_dets), value in zip(_STAT_LINES, stats):
        title = "Average Precision" if kind == "AP" else "Average Recall"
        lines.append(
            f" {title:<18} ({kind}) @[ IoU={iou:<9} | area={area:>6s} | maxDets={max_dets:>3d} ] = {value:0.3f}"
        )
    return "\n".join(lines)


def masks_to_rles(masks: Any) -> list[dict]:
    """``N x H x W`` (or ``N x 1 x H x W``) masks -> N RLE dicts with str ``counts``.

    Float masks (probabilities) are thresholded at 0.5, integer/bool masks at > 0.
    """
    array = np.asarray(masks)
    if array.ndim == 4:
        array = array[:, 0]
    if array.ndim != 3:
        raise ValueError(f"masks must be N x H x W or N x 1 x H x W, got shape {array.shape}")
    if array.shape[0] == 0:
        return []
    binary = array >= 0.5 if np.issubdtype(array.dtype, np.floating) else array > 0
    rles = mask_utils.encode(np.asfortranarray(binary.transpose(1, 2, 0).astype(np.uint8)))
    for rle in rles:
        rle["counts"] = rle["counts"].decode("ascii")
    return rles
