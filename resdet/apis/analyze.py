"""What ``resdet analyze`` does: find the ground truth (a COCO json, or a config's test set),
the detections (a COCO results file, or a checkpoint run on that test set first with
``evaluate_model``), analyse them (``resdet.evaluation.analysis``) and write the numbers and
pictures into one folder:

- ``analysis.json``: every number (AP50, dAP and count per error type, per-class PR curves and
  AP50, the confusion matrix, the images with the most errors);
- ``confusion_matrix.csv``; ``pr_curves.png``, ``confusion_matrix.png``, ``errors.png``
  (matplotlib, the ``plots`` extra: skipped with a note without it);
- ``gallery.png`` (a contact sheet) and ``gallery/<rank>_<image id>.png``: the images with the
  most errors, ground truth dashed, detections coloured by error type.
"""

from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from ..data.image_io import imread_rgb
from ..data.problems import is_skipped
from ..evaluation.analysis import analyze_detections, format_breakdown
from ..evaluation.coco import coco_from_dataset
from ..evaluation.coco_api import coco_from_dict, load_coco_gt
from ..evaluation.results import ResultsError, load_json_file, validate_detection_results
from ..registry import DATASETS
from ..utils.config import ConfigError, load_config
from ..utils.io import atomic_write_json, atomic_write_text
from ..visualization.analysis import (
    draw_error_image,
    matplotlib_available,
    plot_confusion_matrix,
    plot_error_breakdown,
    plot_pr_curves,
)
from ..visualization.save import save_image
from ..visualization.sheet import contact_sheet
from .evaluate import evaluate_model


@dataclass
class GroundTruth:
    """A pycocotools ``COCO`` of the ground truth; ``id_map`` maps a dataset's own image ids to
    its ids (``None``: the same); ``read_image(coco_image_id)`` returns the RGB picture."""

    coco: Any
    id_map: dict | None
    read_image: Callable[[Any], np.ndarray]


def ground_truth_from_json(ann: str, img_dir: str | None = None) -> GroundTruth:
    """A COCO instances json; pictures from ``img_dir`` (default: the json's folder) + file_name."""
    coco = load_coco_gt(ann)
    root = img_dir if img_dir is not None else os.path.dirname(os.path.abspath(ann))

    def read(image_id):
        return imread_rgb(os.path.join(root, coco.imgs[image_id].get("file_name", "")))

    return GroundTruth(coco, None, read)


def _dataset_cfg(cfg: Any, source: str) -> dict:
    for key in ("test_dataloader", "val_dataloader"):
        dataset = (cfg.get(key) or {}).get("dataset")
        if dataset:
            return dataset.to_dict() if hasattr(dataset, "to_dict") else dict(dataset)
    raise ConfigError(
        f"config {source} has neither test_dataloader.dataset nor val_dataloader.dataset "
        "to take the ground truth from; give --ann FILE.json"
    )


def ground_truth_from_config(config: str, cfg_options: dict | None = None) -> GroundTruth:
    """The test (else val) set of a config: its COCO annotation file as is when it has one
    (restricted to its ``classes``), else a COCO index built from the dataset (image ids
    ``1..N``, category ids ``label + 1``, as ``CocoMetric`` scores such sets)."""
    cfg = load_config(config, cfg_options)
    dataset_cfg = _dataset_cfg(cfg, config)
    ann_file = dataset_cfg.get("ann_file")
    if isinstance(ann_file, str) and ann_file.endswith(".json") and os.path.isfile(ann_file):
        gt = ground_truth_from_json(ann_file, dataset_cfg.get("img_dir"))
        classes = dataset_cfg.get("classes")
        if classes:
            data = dict(gt.coco.dataset)
            data["categories"] = [c for c in data["categories"] if c.get("name") in set(classes)]
            kept = {c["id"] for c in data["categories"]}
            data["annotations"] = [a for a in data["annotations"] if a["category_id"] in kept]
            gt.coco = coco_from_dict(data, ann_file)
        return gt
    dataset_cfg["pipeline"] = []
    dataset = DATASETS.build(dataset_cfg)
    coco, id_map = coco_from_dataset(dataset)

    def read(image_id):
        sample = dataset.load_sample(int(image_id) - 1)
        if is_skipped(sample):
            raise OSError(f"image {dataset.describe(int(image_id) - 1)} is unreadable")
        return sample["img"]

    return GroundTruth(coco, id_map, read)


def load_results(path: str, gt: GroundTruth) -> list[dict]:
    """A COCO results file checked against the ground truth (image ids mapped by ``id_map``)."""
    anns = load_json_file(path, "results file")
    if gt.id_map is not None and isinstance(anns, list):
        unknown = {a.get("image_id") for a in anns if isinstance(a, dict)} - set(gt.id_map)
        if unknown:
            raise ResultsError(
                f"results file {path}: image_id(s) {sorted(unknown, key=str)[:5]} are not images "
                "of the config's test set"
            )
        anns = [dict(a, image_id=gt.id_map[a["image_id"]]) for a in anns]
    return validate_detection_results(
        anns, path, iou_type="bbox", img_ids=set(gt.coco.getImgIds()), cat_ids=set(gt.coco.getCatIds())
    )


def detect_and_save_results(
    config: str, checkpoint: str, results_file: str, cfg_options: dict | None = None, device: str | None = None
) -> dict:
    """Run ``checkpoint`` on the config's test set (``evaluate_model``), writing its detections to
    ``results_file``; returns the evaluation's numbers."""
    _, numbers = evaluate_model(
        config, checkpoint, metrics=["mAP@[.5:.95]"], cfg_options=cfg_options, device=device, results_file=results_file
    )
    return numbers


def _confusion_csv(confusion: dict) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["ground truth \\ predicted", *confusion["labels"]])
    for label, row in zip(confusion["labels"], confusion["matrix"]):
        writer.writerow([label, *row])
    return buffer.getvalue()


def _gallery(report: dict, dets: list[dict], gt: GroundTruth, out_dir: str, score_thr: float) -> list[str]:
    analysis = report["analysis"]
    names = {c["id"]: c["name"] for c in report["categories"]}
    written, tiles, problems = [], [], []
    for rank, entry in enumerate(report["worst_images"], 1):
        image_id = entry["image_id"]
        try:
            image = gt.read_image(image_id)
        except Exception as err:  # a missing picture costs its gallery entry, not the analysis
            problems.append(f"image {image_id}: {err}")
            continue
        gts = [j for j, a in enumerate(analysis.gt_anns) if a["image_id"] == image_id and not analysis.gt_crowd[j]]
        shown = [
            i
            for i, d in enumerate(dets)
            if d["image_id"] == image_id
            and d["score"] >= score_thr
            and analysis.det_type[i] not in ("ignored", "dropped")
        ]

        def xyxy(boxes):
            boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
            return np.concatenate([boxes[:, :2], boxes[:, :2] + boxes[:, 2:]], 1)

        drawn = draw_error_image(
            image,
            xyxy([analysis.gt_anns[j]["bbox"] for j in gts]),
            [names.get(analysis.gt_anns[j]["category_id"], "?") for j in gts],
            analysis.gt_missed[gts],
            xyxy([dets[i]["bbox"] for i in shown]),
            [names.get(dets[i]["category_id"], "?") for i in shown],
            [dets[i]["score"] for i in shown],
            [str(analysis.det_type[i]) for i in shown],
            title=f"#{rank} image {image_id}: {entry['errors']} errors",
        )
        path = os.path.join(out_dir, "gallery", f"{rank:02d}_{image_id}.png")
        save_image(drawn, path)
        written.append(path)
        tiles.append(drawn)
    if tiles:
        sheet = contact_sheet(
            tiles, f"images with the most errors (score >= {score_thr})", tile=320, columns=min(4, len(tiles))
        )
        save_image(sheet, os.path.join(out_dir, "gallery.png"))
        written.append(os.path.join(out_dir, "gallery.png"))
    if problems:
        report.setdefault("notes", []).append(
            f"gallery: {len(problems)} of {len(report['worst_images'])} picture(s) could not be read, first "
            f"{problems[0]} (with --ann, --img-dir names the pictures' folder)"
        )
    return written


def analyze_results(
    gt: GroundTruth,
    results_file: str,
    out_dir: str,
    *,
    score_thr: float = 0.5,
    iou_thr: float = 0.5,
    bg_iou: float = 0.1,
    top_images: int = 12,
    backend: str = "auto",
) -> dict:
    """Analyse ``results_file`` against ``gt`` and write everything into ``out_dir`` (see the
    module docstring); returns the json-ready report plus ``written`` (the files) and ``table``."""
    dets = load_results(results_file, gt)
    report = analyze_detections(
        gt.coco, dets, score_thr=score_thr, iou_thr=iou_thr, bg_iou=bg_iou, backend=backend, top_images=top_images
    )
    os.makedirs(out_dir, exist_ok=True)
    written = []
    confusion = report["confusion"]
    atomic_write_text(_confusion_csv(confusion), os.path.join(out_dir, "confusion_matrix.csv"))
    written.append(os.path.join(out_dir, "confusion_matrix.csv"))
    if matplotlib_available():
        plot_pr_curves(report["pr_curves"], os.path.join(out_dir, "pr_curves.png"))
        plot_confusion_matrix(
            confusion["matrix"],
            confusion["labels"],
            os.path.join(out_dir, "confusion_matrix.png"),
            title=f"IoU >= {iou_thr}, score >= {score_thr}",
        )
        plot_error_breakdown(report["errors"], os.path.join(out_dir, "errors.png"))
        written += [os.path.join(out_dir, n) for n in ("pr_curves.png", "confusion_matrix.png", "errors.png")]
    else:
        report["notes"] = [
            "matplotlib is not installed: pr_curves.png, confusion_matrix.png and errors.png "
            "were not drawn (pip install 'resdet[plots]')"
        ]
    written += _gallery(report, dets, gt, out_dir, score_thr)
    report.pop("analysis")
    report.update(results_file=results_file, written=written + [os.path.join(out_dir, "analysis.json")])
    atomic_write_json(report, os.path.join(out_dir, "analysis.json"))
    report["table"] = format_breakdown(report["errors"])
    return report
