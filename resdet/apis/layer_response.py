"""The paper's Fig. 7 measurement: the standard deviation of each 3x3 layer's response (the
output of the BN after a 3x3 convolution, before the nonlinearity / addition) over a dataset.
Used by ``resdet layer-response`` and ``resdet reproduce``."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn


def response_norms(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """``(name, bn)`` of the BN layer following every 3x3 convolution, in forward order.

    Uses the backbone's ``response_norms()`` when it has one; otherwise pairs ``conv<k>`` with
    ``bn<k>`` inside each module (torchvision-style blocks and stems) where the conv is 3x3.
    """
    backbone = getattr(model, "backbone", model)
    names = {id(m): n for n, m in model.named_modules()}
    if callable(getattr(backbone, "response_norms", None)):
        return [(names.get(id(bn), f"bn{i}"), bn) for i, bn in enumerate(backbone.response_norms())]
    pairs = []
    for prefix, module in model.named_modules():
        for k in range(1, 10):
            conv, bn = getattr(module, f"conv{k}", None), getattr(module, f"bn{k}", None)
            if isinstance(conv, nn.Conv2d) and conv.kernel_size == (3, 3) and isinstance(bn, nn.Module):
                pairs.append((f"{prefix}.bn{k}" if prefix else f"bn{k}", bn))
    return pairs


@torch.inference_mode()
def layer_response_std(model: nn.Module, batches: Iterable, max_images: int | None = None) -> list[float]:
    """Std of each response layer's output over ``batches`` (iterable of uint8 ``N x 3 x H x W``
    tensors or batch dicts with ``inputs``). Accumulates sums in float64 (no activations kept)."""
    layers = response_norms(model)
    if not layers:
        raise ValueError(f"{type(model).__name__} has no BN after a 3x3 convolution")
    stats = [[0.0, 0.0, 0] for _ in layers]  # sum, sum of squares, count

    def hook(index):
        def fn(_module, _inputs, output):
            out = output.detach().double()
            stats[index][0] += float(out.sum())
            stats[index][1] += float((out * out).sum())
            stats[index][2] += out.numel()

        return fn

    handles = [bn.register_forward_hook(hook(i)) for i, (_, bn) in enumerate(layers)]
    model.eval()
    seen = 0
    try:
        for batch in batches:
            inputs = batch["inputs"] if isinstance(batch, dict) else batch
            if max_images is not None:
                inputs = inputs[: max(max_images - seen, 0)]
            if len(inputs) == 0:
                break
            model(inputs)
            seen += len(inputs)
            if max_images is not None and seen >= max_images:
                break
    finally:
        for handle in handles:
            handle.remove()
    if seen == 0:
        raise ValueError("no images to measure the layer responses on")
    stds = []
    for total, squares, count in stats:
        mean = total / count
        stds.append(float(max(squares / count - mean * mean, 0.0) ** 0.5))
    return stds
