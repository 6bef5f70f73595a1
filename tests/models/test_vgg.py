"""VGG-16/19 backbones (conv5 features at stride 16) and their classifier heads."""

import pytest
import torch
from torch import nn

from resdet.models.backbones import VGG
from resdet.registry import MODELS


def test_vgg16_conv5_3_stride16():
    model = MODELS.build(dict(type="VGG", depth=16)).eval()
    with torch.no_grad():
        out = model(torch.randn(1, 3, 64, 80))
    assert list(out) == ["conv5_3"] and out["conv5_3"].shape == (1, 512, 4, 5)
    assert model.out_channels == {"conv5_3": 512} and model.strides == {"conv5_3": 16}
    assert sum(isinstance(m, nn.Conv2d) for m in model.modules()) == 13
    assert sum(isinstance(m, nn.MaxPool2d) for m in model.modules()) == 4  # no pool5


def test_vgg19_bn():
    model = VGG(depth=19, batch_norm=True).eval()
    assert sum(isinstance(m, nn.Conv2d) for m in model.modules()) == 16
    assert sum(isinstance(m, nn.BatchNorm2d) for m in model.modules()) == 16
    with torch.no_grad():
        assert model(torch.randn(1, 3, 32, 32))["conv5_4"].shape == (1, 512, 2, 2)


def test_vgg_params_match_torchvision_counts():
    conv16 = sum(p.numel() for p in VGG(depth=16).parameters())
    conv19 = sum(p.numel() for p in VGG(depth=19).parameters())
    fc = 25088 * 4096 + 4096 + 4096 * 4096 + 4096 + 4096 * 1000 + 1000
    assert conv16 + fc == 138_357_544 and conv19 + fc == 143_667_240


def test_frozen_stages():
    model = VGG(depth=16, frozen_stages=2).train()
    convs = [m for m in model.features if isinstance(m, nn.Conv2d)]
    assert [c.weight.requires_grad for c in convs[:5]] == [False, False, False, False, True]


def test_bad_depth():
    with pytest.raises(ValueError, match="16, 19"):
        VGG(depth=11)
    with pytest.raises(ValueError, match="frozen_stages"):
        VGG(depth=16, frozen_stages=6)
