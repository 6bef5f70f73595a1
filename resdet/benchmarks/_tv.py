"""torchvision's R50-FPN detectors as its own builders make them for fine-tuning from an
ImageNet backbone: ``FrozenBatchNorm2d`` everywhere and the stem plus the first stage frozen
(``trainable_backbone_layers=3``) -- the recipe resdet's equivalent configs follow.

``fasterrcnn_resnet50_fpn(weights=None, weights_backbone=None)`` alone would give a different
network to train: with no pretrained weights torchvision switches to ``nn.BatchNorm2d`` with
batch statistics and makes all five stages trainable, so a training step would time another
algorithm. Inference (eval mode) is the same either way. Weights are random under the
caller's seed; nothing is downloaded.
"""
from __future__ import annotations

from torch import nn


def tv_r50_fpn_detector(kind: str, num_classes: int, min_size: int, max_size: int) -> nn.Module:
    """``kind``: ``'det'`` (Faster R-CNN) or ``'mask'`` (Mask R-CNN)."""
    from torchvision.models import resnet50
    from torchvision.models.detection import FasterRCNN, MaskRCNN
    from torchvision.models.detection.backbone_utils import _resnet_fpn_extractor
    from torchvision.ops import FrozenBatchNorm2d

    backbone = _resnet_fpn_extractor(resnet50(weights=None, norm_layer=FrozenBatchNorm2d), 3)
    detector = {"det": FasterRCNN, "mask": MaskRCNN}[kind]
    return detector(backbone, num_classes=num_classes, min_size=min_size, max_size=max_size)
