"""Inference fast path: fold frozen BN into the preceding convolutions, channels_last weights.

Folding relies on the torchvision-style layout of resdet's backbones and heads: a
``FrozenBatchNorm2d`` that directly follows a ``Conv2d`` among its parent's children (``conv1``
then ``bn1``, ``downsample.0`` then ``downsample.1``) normalises that convolution's output.
The folded model gives the same outputs up to float rounding and is for inference only.
"""
from __future__ import annotations

import torch
from torch import nn
from torchvision.ops import FrozenBatchNorm2d


@torch.no_grad()
def fold_conv_frozen_bn(conv: nn.Conv2d, bn: FrozenBatchNorm2d) -> nn.Conv2d:
    """A new ``Conv2d`` computing ``bn(conv(x))``."""
    scale = bn.weight * (bn.running_var + bn.eps).rsqrt()
    fused = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                      conv.dilation, conv.groups, bias=True, padding_mode=conv.padding_mode)
    fused = fused.to(device=conv.weight.device, dtype=conv.weight.dtype)
    fused.weight.copy_(conv.weight * scale.view(-1, 1, 1, 1))
    bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
    fused.bias.copy_((bias - bn.running_mean) * scale + bn.bias)
    fused.weight.requires_grad_(False)
    fused.bias.requires_grad_(False)
    return fused


def fuse_frozen_bn(module: nn.Module) -> int:
    """Fold every ``Conv2d`` -> ``FrozenBatchNorm2d`` sibling pair in ``module`` (in place; the
    BN becomes ``nn.Identity``). Returns the number of folded pairs."""
    count = 0
    for child in module.children():
        count += fuse_frozen_bn(child)
    names = [name for name, _ in module.named_children()]
    for first, second in zip(names, names[1:]):
        conv, bn = getattr(module, first), getattr(module, second)
        if isinstance(conv, nn.Conv2d) and isinstance(bn, FrozenBatchNorm2d) and conv.out_channels == bn.weight.numel():
            setattr(module, first, fold_conv_frozen_bn(conv, bn))
            setattr(module, second, nn.Identity())
            count += 1
    return count


def optimize_for_inference(model: nn.Module, fuse_bn: bool = True, channels_last: bool = True) -> nn.Module:
    """Eval mode, frozen BN folded, ``channels_last`` weights (and inputs, for a detector with
    a ``channels_last`` attribute). Returns ``model`` (changed in place)."""
    model.eval()
    if fuse_bn:
        fuse_frozen_bn(model)
    if channels_last:
        model.to(memory_format=torch.channels_last)
        if hasattr(model, "channels_last"):
            model.channels_last = True
    return model
