"""What ``resdet eval`` (``tools/eval.py``) does in model mode: score a model on its config's
test set, or a results file.

``evaluate_model`` builds the model (``resdet.apis.init_model``, then its inference fast
path, ``resdet.apis.fast_path``), the loader of
``cfg.test_dataloader`` (falling back to ``cfg.val_dataloader``) and the metrics, then
runs ``resdet.engine.inference.run_inference`` -- on every rank under torchrun, the
metrics gathering predictions over ranks. ``report`` prints the tables (rank 0) and writes
``--json`` atomically.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from ..data.loader import build_dataloader
from ..engine.config_check import check_amp_device, check_loader_config
from ..engine.inference import run_inference
from ..evaluation.builder import build_metrics, canonical_metric
from ..models.classifiers.tta import build_tta
from ..utils import dist
from ..utils.config import ConfigError, load_config
from ..utils.device import resolve_device
from ..utils.io import atomic_write_json
from .model import fast_path, init_model

DETECTION_METRICS = ("CocoMetric", "VOCMetric", "LocalizationError")  # metrics that can write --out


def evaluate_model(
    config: str,
    checkpoint: str | None,
    metrics: Sequence[str] | None = None,
    cfg_options: dict | None = None,
    device: str | None = None,
    results_file: str | None = None,
    backend: str = "auto",
    voc_ap_method: str = "auto",
    voc_plus_one: bool = True,
    amp: str | None = None,
    workers: int = 1,
    test_mode: str | None = None,
    compile: bool | None = None,
) -> tuple[list[Any], dict[str, float]]:
    """Run ``checkpoint`` on the config's test set; returns ``(metrics, results)``.

    ``metrics``: ``--metric`` strings; default: the config's ``test_evaluator`` /
    ``val_evaluator``. ``results_file``: the predictions in COCO results format (written by
    the first detection metric, on rank 0). ``test_mode``: a classifier's test-time mode
    (``center``, ``ten_crop``, ``multi_scale``); default: the config's ``test_mode``.
    A Faster / Mask R-CNN runs on its fast path (``optimize_for_inference``, applied to the
    model built here); ``compile``: also compile its convolution stacks (default: the
    ``RESDET_COMPILE`` environment variable), worth its one-time cost on large test sets.
    """
    dist.init_distributed()
    cfg = load_config(config, cfg_options)
    for name in metrics or []:
        canonical_metric(name)  # a typo is named before the model is built and the test set read
    if "model" not in cfg:
        raise ConfigError(f"config {config} has no 'model' key")
    loader_cfg = cfg.get("test_dataloader") or cfg.get("val_dataloader")
    if not loader_cfg:
        raise ConfigError(f"config {config} has neither 'test_dataloader' nor 'val_dataloader'")
    device = resolve_device(device)  # None: cuda:LOCAL_RANK if available, else cpu
    check_amp_device(amp, device, "--amp")
    check_loader_config("test_dataloader" if cfg.get("test_dataloader") else "val_dataloader", loader_cfg)
    model = fast_path(init_model(cfg, checkpoint, device=device), inplace=True, compile=compile)
    if cfg.get("test_mode") is not None or test_mode is not None:
        model, mode_loader_cfg = build_tta(model, cfg, test_mode)
        model.to(device).eval()
        if mode_loader_cfg:
            loader_cfg = mode_loader_cfg
    seed = int((cfg.get("train_cfg") or {}).get("seed", 0) or 0)
    loader_cfg = loader_cfg.to_dict() if hasattr(loader_cfg, "to_dict") else dict(loader_cfg)
    loader = build_dataloader(loader_cfg, training=False, seed=seed)
    dataset = loader.raw_dataset
    if metrics:
        built = build_metrics(
            list(metrics),
            dataset,
            backend=backend,
            results_file=results_file,
            voc_ap_method=voc_ap_method,
            voc_plus_one=voc_plus_one,
            workers=workers,
        )
    else:
        evaluator = cfg.get("test_evaluator") or cfg.get("val_evaluator")
        if not evaluator:
            raise ConfigError(f"config {config} has no 'test_evaluator' / 'val_evaluator'; pass --metric")
        items = evaluator if isinstance(evaluator, (list, tuple)) else [evaluator]
        items = [i.to_dict() if hasattr(i, "to_dict") else dict(i) for i in items]
        if results_file:
            for item in items:
                if item.get("type") in DETECTION_METRICS:
                    item["results_file"] = results_file
                    break
        built = build_metrics(items, dataset)
    if results_file and not any(getattr(m, "results_file", None) for m in built):
        raise ValueError(
            "--out writes detections; it needs a detection or localization metric "
            "(mAP@[.5:.95], segm-mAP@[.5:.95], mAP@0.5, loc-err)"
        )
    results = run_inference(model, loader, built, device=device, amp=amp)
    # run_inference counts images per rank; report the totals over ranks
    counts = dist.all_gather_object((results.get("num_images", 0), results.get("num_skipped", 0)))
    results["num_images"] = sum(c[0] for c in counts)
    results["num_skipped"] = sum(c[1] for c in counts)
    return built, results


def json_safe(results: dict[str, Any]) -> dict[str, Any]:
    """Floats as json numbers (nan/inf -> null), everything else as is."""
    out = {}
    for key, value in results.items():
        if isinstance(value, float) and not math.isfinite(value):
            value = None
        out[key] = value
    return out


def report(tables: Sequence[str], results: dict[str, Any], json_path: str | None = None) -> None:
    """Print the tables and write every number to ``json_path`` (rank 0 only)."""
    if not dist.is_main_process():
        return
    for table in tables:
        print(table)
        print()
    if json_path:
        atomic_write_json(json_safe(results), json_path)
        print(f"metrics written to {json_path}")
