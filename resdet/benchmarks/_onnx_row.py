"""The onnxruntime row of ``resdet benchmark det``: a built resdet detector exported to a
temporary ONNX file (``resdet.deploy``), timed with onnxruntime on the same images, with its
detections returned for a parity check against the PyTorch model."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from ..deploy import OnnxModel, temporary_onnx
from ._timing import time_calls


def _hwc(image: Any) -> np.ndarray:
    """An ``H x W x 3`` uint8 array from that or a ``3 x H x W`` uint8 tensor / array."""
    array = image.detach().cpu().numpy() if isinstance(image, torch.Tensor) else np.asarray(image)
    if array.ndim == 3 and array.shape[0] == 3 and array.shape[2] != 3:
        array = array.transpose(1, 2, 0)
    if array.ndim != 3 or array.shape[2] != 3 or array.dtype != np.uint8:
        raise ValueError(f"expected uint8 H x W x 3 (or 3 x H x W) images, got {array.shape} {array.dtype}")
    return np.ascontiguousarray(array)


def onnxruntime_row(
    model: nn.Module,
    cfg: Any,
    images: Sequence[np.ndarray],
    iters: int = 5,
    warmup: int = 1,
    threads: int | None = None,
) -> dict[str, Any]:
    """Export ``model`` (eval mode, as benchmarked: e.g. BN folded) with ``cfg``'s test
    pipeline to a temporary ``.onnx`` file and time onnxruntime (CPU) on ``images``
    (uint8 RGB, ``H x W x 3`` arrays or ``3 x H x W`` tensors; one call per image, as the
    file takes one image).

    Returns ``{'ms_per_image': median over ``iters`` passes (after ``warmup`` untimed passes)
    of the mean milliseconds per image, 'export_s': seconds the export took, 'detections': one
    dict of numpy ``boxes`` / ``scores`` / ``labels`` (/ ``masks``) per image, in its pixels,
    'onnx_bytes': file size}``. The temporary file is removed.
    """
    if not len(images):
        raise ValueError("onnxruntime_row needs at least one image")
    images = [_hwc(image) for image in images]
    start = time.perf_counter()
    path = temporary_onnx(model, cfg=cfg)
    export_s = time.perf_counter() - start
    try:
        runner = OnnxModel(path, threads=threads)
        size = os.path.getsize(path)
        detections = [runner.detect(image) for image in images]  # the first (untimed) pass
        passes = time_calls(lambda: [runner.detect(image) for image in images], iters, warmup=max(warmup - 1, 0))
    finally:
        os.remove(path)
    return {
        "ms_per_image": passes.median * 1000.0 / len(images),
        "export_s": export_s,
        "detections": detections,
        "onnx_bytes": size,
    }
