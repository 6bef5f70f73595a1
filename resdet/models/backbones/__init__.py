"""Backbones: ImageNet ResNets (Table 1), CIFAR ResNets (Table 6), VGG-16/19."""

from .cifar_resnet import CifarResNet  # noqa: F401
from .norm import build_norm, convert_frozen_batchnorm, frozen_batchnorm_like  # noqa: F401
from .resnet import (
    BasicBlock,
    Bottleneck,
    ResNet,
    make_res_stage,  # noqa: F401
    set_stride_in_1x1,
    stage_out_channels,
)
from .vgg import VGG  # noqa: F401
