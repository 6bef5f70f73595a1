"""Normalisation layer factory shared by every backbone and head.

``norm`` is one of ``'BN'`` (``nn.BatchNorm2d``), ``'FrozenBN'``
(``torchvision.ops.FrozenBatchNorm2d``: fixed statistics and affine parameters, as in the
paper's detectors, whose BN statistics stay fixed after ImageNet pretraining) or
``'SyncBN'`` (``nn.SyncBatchNorm``: statistics reduced over all DDP ranks; on a single
process it behaves like ``'BN'``).
"""

from __future__ import annotations

import torch
from torch import nn
from torchvision.ops import FrozenBatchNorm2d

NORM_TYPES = ("BN", "FrozenBN", "SyncBN")


def check_norm(norm: str) -> str:
    """Return ``norm`` if it names a known normalisation layer, else raise ``ValueError``."""
    if norm not in NORM_TYPES:
        raise ValueError(f"unknown norm {norm!r}; allowed values: {', '.join(NORM_TYPES)}")
    return norm


def build_norm(norm: str, num_features: int, eps: float = 1e-5, momentum: float = 0.1) -> nn.Module:
    """Build a 2-d normalisation layer over ``num_features`` channels (input ``N x C x H x W``)."""
    check_norm(norm)
    if norm == "BN":
        return nn.BatchNorm2d(num_features, eps=eps, momentum=momentum)
    if norm == "SyncBN":
        return nn.SyncBatchNorm(num_features, eps=eps, momentum=momentum)
    return FrozenBatchNorm2d(num_features, eps=eps)


def is_norm(module: nn.Module) -> bool:
    """True for any normalisation layer ``build_norm`` can make."""
    return isinstance(module, (nn.modules.batchnorm._BatchNorm, FrozenBatchNorm2d))


@torch.no_grad()
def frozen_batchnorm_like(bn: nn.modules.batchnorm._BatchNorm) -> FrozenBatchNorm2d:
    """A ``FrozenBatchNorm2d`` with ``bn``'s statistics and affine parameters (identity ones
    where ``bn`` has none), on its device and dtype: it computes what ``bn`` computes in eval mode."""
    frozen = FrozenBatchNorm2d(bn.num_features, eps=bn.eps)
    like = bn.running_mean if bn.running_mean is not None else bn.weight
    if like is not None:
        frozen = frozen.to(device=like.device, dtype=like.dtype)
    if bn.affine:
        frozen.weight.copy_(bn.weight)
        frozen.bias.copy_(bn.bias)
    if bn.track_running_stats and bn.running_mean is not None:
        frozen.running_mean.copy_(bn.running_mean)
        frozen.running_var.copy_(bn.running_var)
    return frozen


def convert_frozen_batchnorm(module: nn.Module) -> nn.Module:
    """Replace every ``BatchNorm2d`` / ``SyncBatchNorm`` in ``module`` by a
    ``FrozenBatchNorm2d`` holding the same statistics and affine parameters.

    Returns the converted module (a new object when ``module`` itself is a BN layer,
    otherwise ``module`` changed in place). The output of the converted network in eval
    mode is identical to the original's.
    """
    if isinstance(module, (nn.BatchNorm2d, nn.SyncBatchNorm)):
        return frozen_batchnorm_like(module)
    for name, child in module.named_children():
        converted = convert_frozen_batchnorm(child)
        if converted is not child:
            setattr(module, name, converted)
    return module
