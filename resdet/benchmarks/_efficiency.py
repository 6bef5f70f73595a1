"""How close the backbone runs to this machine's convolution speed, measured in the same run.

The reference is one large ``channels_last`` 3x3 convolution (256 -> 256 channels on the
stride-4 feature map of the benchmark image, FPN's P2 size), the best of a few calls; the
backbone (and neck) figure is its multiply-adds, counted by ``FlopCounterMode`` on the real
forward, over its median time. FLOP/s count 2 per multiply-add.

The floor is the whole inference's multiply-adds (backbone, neck, RPN head, box and mask
heads: every convolution and matrix product on the real forward) at that conv speed: the time
the model would take with every layer at the conv peak and everything else (RoIAlign, NMS,
pre- and post-processing) free. Over torchvision's measured time it bounds the inference ratio
any implementation of the same computation reaches on this machine.
"""

from __future__ import annotations

import torch
from torch.utils.flop_counter import FlopCounterMode

from ._timing import time_calls


@torch.inference_mode()
def conv_peak_gflops(height: int, width: int, device: torch.device, channels: int = 256) -> float:
    conv = torch.nn.Conv2d(channels, channels, 3, padding=1).to(device).eval()
    conv = conv.to(memory_format=torch.channels_last)
    x = torch.randn(1, channels, max(height // 4, 8), max(width // 4, 8), device=device)
    x = x.contiguous(memory_format=torch.channels_last)
    macs = channels * channels * 9 * x.shape[-2] * x.shape[-1]
    return 2 * macs / time_calls(lambda: conv(x), repeats=3, warmup=1, device=device).best / 1e9


@torch.inference_mode()
def backbone_efficiency(model, image: torch.Tensor, device: torch.device, repeats: int) -> dict:
    """``model``: a detector on its fast path (``extract_features``, ``preprocessor``); its
    backbone and neck timed ``repeats`` times (median) on ``image`` (``3 x H x W`` uint8)."""
    batch, _, _ = model.preprocessor([image])
    counter = FlopCounterMode(display=False)
    with counter:
        model.extract_features(batch)
    macs = counter.get_total_flops() / 2
    seconds = time_calls(lambda: model.extract_features(batch), repeats, warmup=1, device=device).median
    achieved = 2 * macs / seconds / 1e9
    peak = conv_peak_gflops(batch.shape[-2], batch.shape[-1], device)
    counter = FlopCounterMode(display=False)
    with counter:
        model([image])
    model_macs = counter.get_total_flops() / 2
    return {
        "backbone_gmacs": macs / 1e9,
        "backbone_ms": seconds * 1000,
        "backbone_gflops": achieved,
        "conv_peak_gflops": peak,
        "backbone_efficiency": achieved / peak,
        "model_gmacs": model_macs / 1e9,
        "floor_ms": 2 * model_macs / peak / 1e6,
    }
