"""Metric strings (``--metric``) -> metric objects.

=====================  =========================================================
``top1`` / ``top5``    ``TopKError`` (both strings -> one metric, ``topk=(1, 5)``)
``mAP@[.5:.95]``       ``CocoMetric(iou_type='bbox')``
``segm-mAP@[.5:.95]``  ``CocoMetric(iou_type='segm')``
``mAP@0.5``            COCO-style data (the dataset has ``coco``): ``CocoMetric`` AP50;
                       otherwise ``VOCMetric`` (VOC 11-point / area AP)
``loc-err``            ``LocalizationError``
=====================  =========================================================
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from resdet.evaluation.base import BaseMetric
from resdet.registry import METRICS
from resdet.utils.containers import as_list
from resdet.utils.errors import ConfigError
from resdet.utils.hints import close_names, format_hint

# metrics that read ground-truth boxes through the dataset's ``get_ann`` (detection data)
_BOX_METRICS = ("CocoMetric", "VOCMetric", "LocalizationError")

METRIC_STRINGS = ("top1", "top5", "mAP@[.5:.95]", "segm-mAP@[.5:.95]", "mAP@0.5", "loc-err")
_ALIASES = {
    "bbox": "mAP@[.5:.95]",
    "segm": "segm-mAP@[.5:.95]",
    "mAP": "mAP@[.5:.95]",
    "mAP@.5": "mAP@0.5",
    "mAP50": "mAP@0.5",
    "loc": "loc-err",
}


def canonical_metric(name: str) -> str:
    """Check a ``--metric`` string (a few aliases accepted); errors list the allowed ones."""
    name = _ALIASES.get(name, name)
    if name not in METRIC_STRINGS:
        folded = {m.lower(): m for m in (*METRIC_STRINGS, *_ALIASES)}  # 'TOP1' -> 'top1'
        close = list(
            dict.fromkeys(
                _ALIASES.get(folded[c], folded[c]) for c in close_names(name.lower(), folded, n=2, cutoff=0.4)
            )
        )
        hint = format_hint(close, paren=False)
        raise ConfigError(f"unknown metric {name!r}{hint} (allowed: {', '.join(METRIC_STRINGS)})")
    return name


def metric_configs(
    names: Sequence[str],
    coco_style: bool,
    backend: str = "auto",
    results_file: str | None = None,
    voc_ap_method: str = "auto",
    voc_plus_one: bool = True,
    workers: int = 1,
) -> list[dict]:
    """The METRICS config dicts for ``names`` (duplicates merged)."""
    wanted = [canonical_metric(n) for n in names]
    configs: list[dict] = []
    topk = tuple(k for k in (1, 5) if f"top{k}" in wanted)
    if topk:
        configs.append(dict(type="TopKError", topk=topk))
    if "mAP@[.5:.95]" in wanted or ("mAP@0.5" in wanted and coco_style):
        primary = "AP" if "mAP@[.5:.95]" in wanted else "AP50"
        configs.append(
            dict(
                type="CocoMetric",
                iou_type="bbox",
                backend=backend,
                results_file=results_file,
                primary=primary,
                workers=workers,
            )
        )
        results_file = None  # one metric writes the predictions
    if "segm-mAP@[.5:.95]" in wanted:
        configs.append(
            dict(type="CocoMetric", iou_type="segm", backend=backend, results_file=results_file, workers=workers)
        )
        results_file = None
    if "mAP@0.5" in wanted and not coco_style:
        configs.append(
            dict(type="VOCMetric", ap_method=voc_ap_method, plus_one=voc_plus_one, results_file=results_file)
        )
        results_file = None
    if "loc-err" in wanted:
        configs.append(dict(type="LocalizationError", results_file=results_file))
    return configs


def build_metrics(metrics: str | dict | Sequence[Any], dataset: Any = None, **options: Any) -> list[BaseMetric]:
    """Build metrics from strings (``'mAP@[.5:.95]'``), config dicts or metric objects,
    and ``bind`` them to ``dataset`` when given.

    ``options`` (for strings): ``backend``, ``results_file``, ``voc_ap_method``,
    ``voc_plus_one``, ``workers``. ``mAP@0.5`` picks COCO AP50 when ``dataset`` has a ``coco`` index.
    """
    metrics = as_list(metrics)  # one metric (string, dict or object) or several
    strings = [m for m in metrics if isinstance(m, str)]
    others = [m for m in metrics if not isinstance(m, str)]
    coco_style = getattr(dataset, "coco", None) is not None
    configs = metric_configs(strings, coco_style, **options) if strings else []
    built = [METRICS.build(dict(cfg)) if isinstance(cfg, dict) else cfg for cfg in configs + others]
    for metric in built:
        if not isinstance(metric, BaseMetric) and not all(hasattr(metric, a) for a in ("process", "compute")):
            raise TypeError(f"{type(metric).__name__} is not a metric (needs process/compute)")
    if dataset is not None:
        for metric in built:
            _check_fits(metric, dataset)
            metric.bind(dataset)
    return built


def _check_fits(metric: Any, dataset: Any) -> None:
    """A box metric on classification data (or top-k on detection data) is a config error."""
    kind = type(metric).__name__
    is_detection_data = callable(getattr(dataset, "get_ann", None))
    if kind in _BOX_METRICS and not is_detection_data:
        raise ConfigError(
            f"{kind} scores boxes, but {type(dataset).__name__} is a classification dataset "
            f"(no boxes); use --metric top1 / top5 for a classifier"
        )
    if kind == "TopKError" and is_detection_data and not hasattr(dataset, "labels"):
        raise ConfigError(
            f"TopKError scores image labels, but {type(dataset).__name__} is a detection "
            f"dataset; use --metric mAP@[.5:.95] or mAP@0.5 for a detector"
        )
