"""Evaluation: COCO box/mask AP (pycocotools or faster-coco-eval), VOC mAP, top-k error,
ImageNet localization error; metric strings for ``--metric``; results-file IO."""

from .base import BaseMetric, gather_unique
from .builder import METRIC_STRINGS, build_metrics, canonical_metric
from .classification import TopKError
from .coco import CocoMetric, coco_from_dataset
from .coco_api import evaluate_coco, load_coco_gt, resolve_backend
from .localization import LocalizationError
from .results import ResultsError, detections_to_coco_results, validate_detection_results
from .voc import VOCMetric, evaluate_voc, load_voc_gt

__all__ = [
    "BaseMetric",
    "gather_unique",
    "METRIC_STRINGS",
    "build_metrics",
    "canonical_metric",
    "TopKError",
    "CocoMetric",
    "coco_from_dataset",
    "evaluate_coco",
    "load_coco_gt",
    "resolve_backend",
    "LocalizationError",
    "ResultsError",
    "detections_to_coco_results",
    "validate_detection_results",
    "VOCMetric",
    "evaluate_voc",
    "load_voc_gt",
]
