"""COCO evaluation speed: pycocotools through a json file (the usual path) vs resdet's
in-memory pycocotools path vs faster-coco-eval, on a large synthetic result set.

    python tools/benchmark.py eval [--images 5000 --dets 100 --iou-type bbox]

Prints the time of each path, its ratio to the reference, and checks that the 12 stats agree.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import tempfile
import time

import numpy as np

from resdet.evaluation.coco_api import coco_from_dict, evaluate_coco, faster_available


def synthetic_coco(
    num_images: int, dets_per_image: int, num_classes: int = 80, gt_per_image: int = 7, seed: int = 0
) -> tuple[dict, list[dict]]:
    """A COCO ground truth and a results list: jittered copies of the GT boxes (some with a
    wrong class) plus random boxes, ``dets_per_image`` per image, random scores."""
    rng = np.random.default_rng(seed)
    width, height = 640, 480
    images = [{"id": i + 1, "width": width, "height": height, "file_name": f"{i:06d}.jpg"} for i in range(num_images)]
    categories = [{"id": c + 1, "name": f"class{c}"} for c in range(num_classes)]
    n_gt = rng.integers(1, 2 * gt_per_image, num_images)
    gt_img = np.repeat(np.arange(1, num_images + 1), n_gt)
    sizes = np.exp(rng.uniform(np.log(8), np.log(300), (len(gt_img), 2)))  # small..large
    xy = rng.uniform(0, 1, (len(gt_img), 2)) * (np.array([width, height]) - sizes)
    gt_boxes = np.concatenate([xy, sizes], 1).round(2)
    gt_cats = rng.integers(1, num_classes + 1, len(gt_img))
    crowd = rng.random(len(gt_img)) < 0.01
    annotations = [
        {
            "id": i + 1,
            "image_id": int(img),
            "category_id": int(cat),
            "bbox": box,
            "area": box[2] * box[3],
            "iscrowd": int(c),
        }
        for i, (img, cat, box, c) in enumerate(zip(gt_img, gt_cats, gt_boxes.tolist(), crowd))
    ]
    # detections: up to 3 jittered copies of each GT box, the rest of the budget random
    per_image_gt = np.split(np.arange(len(gt_img)), np.cumsum(n_gt)[:-1])
    det_img, det_box, det_cat = [], [], []
    for img, gt_idx in enumerate(per_image_gt, start=1):
        copies = np.repeat(gt_idx, 3)[:dets_per_image]
        jitter = rng.normal(0, 0.08, (len(copies), 4)) * np.tile(gt_boxes[copies, 2:], 2)
        boxes = gt_boxes[copies] + jitter
        cats = np.where(rng.random(len(copies)) < 0.9, gt_cats[copies], rng.integers(1, num_classes + 1, len(copies)))
        n_rand = dets_per_image - len(copies)
        rsize = np.exp(rng.uniform(np.log(8), np.log(300), (n_rand, 2)))
        rxy = rng.uniform(0, 1, (n_rand, 2)) * (np.array([width, height]) - rsize)
        det_img.append(np.full(dets_per_image, img))
        det_box.append(np.concatenate([boxes, np.concatenate([rxy, rsize], 1)]))
        det_cat.append(np.concatenate([cats, rng.integers(1, num_classes + 1, n_rand)]))
    det_box = np.concatenate(det_box)
    det_box[:, 2:] = np.clip(det_box[:, 2:], 1, None)
    scores = rng.random(len(det_box))
    results = [
        {"image_id": int(i), "category_id": int(c), "bbox": [round(v, 2) for v in b], "score": round(s, 4)}
        for i, c, b, s in zip(np.concatenate(det_img), np.concatenate(det_cat), det_box.tolist(), scores.tolist())
    ]
    return {"images": images, "annotations": annotations, "categories": categories}, results


def _reference_json_path(gt_dict: dict, results: list[dict], iou_type: str) -> list[float]:
    """What most training code does: dump the results to json, ``loadRes`` the file, COCOeval."""
    from pycocotools.cocoeval import COCOeval

    gt = coco_from_dict(gt_dict)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "results.json")
        with open(path, "w") as fh:
            json.dump(results, fh)
        with contextlib.redirect_stdout(io.StringIO()):
            dt = gt.loadRes(path)
            ev = COCOeval(gt, dt, iou_type)
            ev.evaluate()
            ev.accumulate()
            ev.summarize()
    return list(ev.stats)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=5000)
    parser.add_argument("--dets", type=int, default=100, help="detections per image")
    parser.add_argument("--classes", type=int, default=80)
    parser.add_argument("--iou-type", default="bbox", choices=("bbox",))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--workers", type=int, default=2, help="processes for the split-by-category pycocotools path (1: skip it)"
    )
    args = parser.parse_args(argv)

    t0 = time.perf_counter()
    gt_dict, results = synthetic_coco(args.images, args.dets, args.classes, seed=args.seed)
    print(
        f"synthetic set: {args.images} images, {len(gt_dict['annotations'])} GT boxes, "
        f"{len(results)} detections, {args.classes} classes (built in {time.perf_counter() - t0:.1f} s)"
    )
    timings: dict[str, float] = {}
    stats: dict[str, list[float]] = {}

    t0 = time.perf_counter()
    stats["pycocotools via json file (reference)"] = _reference_json_path(gt_dict, results, args.iou_type)
    timings["pycocotools via json file (reference)"] = time.perf_counter() - t0

    paths = [("resdet, pycocotools backend (in memory)", "pycocotools", 1)]
    if args.workers > 1:
        paths.append((f"resdet, pycocotools, {args.workers} processes", "pycocotools", args.workers))
    if faster_available():
        paths.append(("resdet, faster-coco-eval backend", "faster", 1))
    else:
        print("faster-coco-eval is not installed (pip install faster-coco-eval): skipping that backend")
    for name, backend, workers in paths:
        gt = coco_from_dict(json.loads(json.dumps(gt_dict)))  # fresh index for each path
        t0 = time.perf_counter()
        stats[name] = evaluate_coco(gt, results, iou_type=args.iou_type, backend=backend, workers=workers)["stats"]
        timings[name] = time.perf_counter() - t0

    # the loading step alone: json dump + loadRes(file) vs resdet's in-memory results index
    from pycocotools.coco import COCO

    from resdet.evaluation.coco_api import _results_coco

    gt = coco_from_dict(json.loads(json.dumps(gt_dict)))
    with tempfile.TemporaryDirectory() as tmp, contextlib.redirect_stdout(io.StringIO()):
        t0 = time.perf_counter()
        path = os.path.join(tmp, "results.json")
        with open(path, "w") as fh:
            json.dump(results, fh)
        gt.loadRes(path)
        load_ref = time.perf_counter() - t0
        t0 = time.perf_counter()
        _results_coco(gt, results, COCO)
        load_ours = time.perf_counter() - t0

    reference = next(iter(timings))
    print(f"\n{'path':<42} {'time (s)':>9} {'speed-up':>9}   max |stat - reference|")
    for name, seconds in timings.items():
        diff = float(np.max(np.abs(np.asarray(stats[name]) - np.asarray(stats[reference]))))
        print(f"{name:<42} {seconds:9.2f} {timings[reference] / seconds:8.2f}x   {diff:.1e}")
    print(
        f"loading the results alone: json file + loadRes {load_ref:.2f} s, resdet in memory "
        f"{load_ours:.2f} s ({load_ref / max(load_ours, 1e-9):.1f}x)"
    )
    print(f"\nAP = {stats[reference][0]:.4f}, AP50 = {stats[reference][1]:.4f}")
    return 0
