"""CIFAR ResNets (Sec. 4.2, Table 6)."""

import pytest
import torch

from resdet.models.backbones import CifarResNet
from resdet.models.backbones.resnet import ZeroPadShortcut
from resdet.registry import MODELS

TABLE6_PARAMS = {20: 0.27e6, 32: 0.46e6, 44: 0.66e6, 56: 0.85e6, 110: 1.7e6, 1202: 19.4e6}


def classifier_params(depth: int, **backbone) -> int:
    with torch.device("meta"):  # ResNet-1202 without allocating or running it
        model = MODELS.build(
            dict(type="ImageClassifier", num_classes=10, backbone=dict(type="CifarResNet", depth=depth, **backbone))
        )
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("depth", sorted(TABLE6_PARAMS))
def test_table6_params(depth):
    params = classifier_params(depth)
    assert abs(params - TABLE6_PARAMS[depth]) / TABLE6_PARAMS[depth] < 0.03, params


def test_exact_resnet20_params_and_plain_counterparts():
    assert classifier_params(20) == 269_722
    for depth in (20, 56, 110):
        assert classifier_params(depth, plain=True) == classifier_params(depth)
    assert classifier_params(20, shortcut="B") > classifier_params(20)


def test_layer_count_is_6n_plus_2():
    model = CifarResNet(depth=56)
    assert model.num_blocks == 9
    convs = sum(1 for m in model.modules() if isinstance(m, torch.nn.Conv2d))
    assert convs + 1 == 56  # + fc; option A adds no convolution
    assert len(model.response_norms()) == 55
    assert sum(isinstance(m, ZeroPadShortcut) for m in model.modules()) == 2


def test_feature_maps_32_16_8():
    model = MODELS.build(dict(type="CifarResNet", depth=20, out_indices=(0, 1, 2))).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 3, 32, 32))
    assert {k: tuple(v.shape) for k, v in out.items()} == {
        "layer1": (2, 16, 32, 32),
        "layer2": (2, 32, 16, 16),
        "layer3": (2, 64, 8, 8),
    }
    assert model.out_channels == {"layer1": 16, "layer2": 32, "layer3": 64}


def test_plain_cifar_runs():
    model = CifarResNet(depth=20, plain=True).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 3, 32, 32))["layer3"].shape == (1, 64, 8, 8)


@pytest.mark.parametrize("depth", [21, 4, 0, "20"])
def test_depth_must_be_6n_plus_2(depth):
    with pytest.raises(ValueError, match="6n\\+2"):
        CifarResNet(depth=depth)


def test_bad_shortcut():
    with pytest.raises(ValueError, match="A, B, C"):
        CifarResNet(depth=20, shortcut="X")
