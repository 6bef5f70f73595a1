"""torchvision's R50-FPN detectors as its own builders make them for fine-tuning from an
ImageNet backbone: ``FrozenBatchNorm2d`` everywhere and the stem plus the first stage frozen
(``trainable_backbone_layers=3``) -- the recipe resdet's equivalent configs follow.

``fasterrcnn_resnet50_fpn(weights=None, weights_backbone=None)`` alone would give a different
network to train: with no pretrained weights torchvision switches to ``nn.BatchNorm2d`` with
batch statistics and makes all five stages trainable, so a training step would time another
algorithm. Weights are random under the caller's seed (nothing is downloaded), but the frozen
statistics are calibrated like a pretrained backbone's: each BN layer's running mean and
variance are those of its input on one random batch, so activations stay normalised through
the 50 layers instead of growing layer after layer (which saturates the scores and makes
float rounding decide the ranking).
"""

from __future__ import annotations

import torch
from torch import nn

from ..models.backbones.norm import convert_frozen_batchnorm


@torch.no_grad()
def _calibrated_frozen_bn(backbone: nn.Module) -> nn.Module:
    """``backbone`` (with ``nn.BatchNorm2d``) with its BN statistics measured on a random
    batch, then every BN replaced by torchvision's ``FrozenBatchNorm2d`` holding them."""
    for module in backbone.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.reset_running_stats()
            module.momentum = None  # cumulative average: after one batch, that batch's statistics
    backbone.train()
    backbone(torch.randn(2, 3, 256, 256, generator=torch.Generator().manual_seed(1)))
    return convert_frozen_batchnorm(backbone.eval())


def tv_r50_fpn_detector(kind: str, num_classes: int, min_size: int, max_size: int) -> nn.Module:
    """``kind``: ``'det'`` (Faster R-CNN) or ``'mask'`` (Mask R-CNN)."""
    from torchvision.models import resnet50
    from torchvision.models.detection import FasterRCNN, MaskRCNN
    from torchvision.models.detection.backbone_utils import _resnet_fpn_extractor

    backbone = _resnet_fpn_extractor(_calibrated_frozen_bn(resnet50(weights=None)), 3)
    detector = {"det": FasterRCNN, "mask": MaskRCNN}[kind]
    return detector(backbone, num_classes=num_classes, min_size=min_size, max_size=max_size)
