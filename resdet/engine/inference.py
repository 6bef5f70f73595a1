"""``run_inference``: eval mode over a loader, feeding every batch to the metrics.

Used by the validation hook and by ``tools/eval.py``. All ranks run it over their shard
(``InferenceSampler``); each metric's ``compute`` gathers over ranks, so every rank returns
the same numbers.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from ..data.loader import batch_len
from ..utils import dist
from ..utils.containers import as_list
from ..utils.progress import Progress
from .step import forward_batch

logger = logging.getLogger("resdet")


def unwrap_model(model: nn.Module) -> nn.Module:
    """The module inside DDP / DataParallel wrappers."""
    return (
        model.module
        if hasattr(model, "module") and isinstance(model, (nn.parallel.DistributedDataParallel, nn.DataParallel))
        else model
    )


@torch.no_grad()
def run_inference(
    model: nn.Module,
    dataloader: Any,
    metrics: Any,
    device: torch.device | str | None = None,
    amp: str | None = None,
    channels_last: bool = False,
    log_interval: int = 0,
    show_progress: bool = True,
    description: str = "inference",
) -> dict[str, float]:
    """Evaluate ``model`` on ``dataloader`` with ``metrics``.

    Args:
        model: called as ``model(inputs, targets)`` in eval mode (a classifier returns
            ``N x C`` logits; a detector one dict per image, mapped to original coordinates
            by the meta in ``targets``, read as ``ImageMeta`` by the detector).
        dataloader: yields collate dicts ``{'inputs', 'targets', 'num_skipped'}``.
        metrics: one metric or a list (``bind`` already called); ``reset`` / ``process`` /
            ``compute`` are called here.
        device: where to run (default: the model's device).
        amp: ``None`` | ``'bf16'`` | ``'fp16'`` autocast for the forward pass.
        channels_last: feed 4-d image batches in channels-last memory format.
        log_interval: log progress every this many batches (0: never).
        show_progress: a bar on a terminal (rank 0), else a plain line every 30 s.
        description: the bar's label (``'validation'``, ``'eval'``, ...).
    Returns:
        the merged ``compute()`` results of all metrics, plus ``num_skipped`` (this rank's
        dropped samples) and ``num_images`` (this rank's evaluated images).
    """
    model = unwrap_model(model)
    if device is None:
        param = next(iter(model.parameters()), None)
        device = param.device if param is not None else torch.device("cpu")
    device = torch.device(device)
    metric_list = as_list(metrics)
    for metric in metric_list:
        metric.reset()
    was_training = model.training
    model.eval()
    num_skipped = num_images = 0
    start = time.perf_counter()
    total = len(dataloader) if hasattr(dataloader, "__len__") else None
    progress = Progress(
        total, description, enabled=show_progress and dist.is_main_process(), interval_s=30.0, stream=sys.stdout
    )
    try:
        for index, batch in enumerate(dataloader):
            num_skipped += int(batch.get("num_skipped", 0))
            count = batch_len(batch["inputs"])
            if count == 0:
                continue
            num_images += count
            outputs = forward_batch(model, batch, device, amp=amp, channels_last=channels_last)
            for metric in metric_list:
                metric.process(outputs, batch["targets"])
            progress.update(1, images=num_images)
            if log_interval and (index + 1) % log_interval == 0:
                logger.info(
                    "inference: %d batches, %d images, %.3f s/batch",
                    index + 1,
                    num_images,
                    (time.perf_counter() - start) / (index + 1),
                )
    finally:
        progress.close()
        model.train(was_training)
    if num_skipped:
        logger.warning("inference skipped %d unreadable samples on this rank", num_skipped)
    results: dict[str, float] = {}
    for metric in metric_list:
        computed = metric.compute()
        clash = set(computed) & set(results)
        if clash:
            raise KeyError(
                f"metrics {type(metric).__name__} reports keys {sorted(clash)} that an "
                "earlier metric already reported; give them distinct prefixes"
            )
        results.update(computed)
    results["num_skipped"] = num_skipped
    results["num_images"] = num_images
    return results


def primary_metric(metrics: Sequence[Any]) -> tuple[str | None, str]:
    """``(key, rule)`` of the first metric's headline number (``rule``: 'less' | 'greater')."""
    for metric in metrics:
        key = getattr(metric, "primary_key", "")
        if key:
            return key, "greater" if getattr(metric, "higher_is_better", True) else "less"
    return None, "less"
