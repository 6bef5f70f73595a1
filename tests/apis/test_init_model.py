"""resdet.apis.init_model: short names, config files, checkpoints, errors."""
import pytest
import torch

from resdet.apis import init_model
from resdet.apis.model import SHORT_NAMES
from resdet.models.backbones import VGG, CifarResNet, ResNet
from resdet.utils.io import atomic_save


@pytest.mark.parametrize("name,backbone_type,num_classes", [
    ("resnet18", ResNet, 1000), ("plain34", ResNet, 1000), ("resnet110_cifar", CifarResNet, 10),
    ("plain56_cifar", CifarResNet, 10), ("vgg16_bn", VGG, 1000)])
def test_short_names(name, backbone_type, num_classes):
    model = init_model(name, device="meta" if name.startswith(("vgg", "plain34")) else "cpu")
    assert isinstance(model.backbone, backbone_type) and model.num_classes == num_classes
    assert not model.training
    assert model.cfg.model.type == "ImageClassifier"


def test_short_name_table():
    assert {f"resnet{d}" for d in (18, 34, 50, 101, 152)} <= set(SHORT_NAMES)
    assert {f"resnet{d}_cifar" for d in (20, 32, 44, 56, 110, 1202)} <= set(SHORT_NAMES)
    assert {f"plain{d}_cifar" for d in (20, 32, 44, 56, 110)} | {"plain18", "plain34"} <= set(SHORT_NAMES)
    assert {"vgg16", "vgg19", "vgg16_bn", "vgg19_bn"} <= set(SHORT_NAMES)
    assert SHORT_NAMES["resnet50"]["backbone"]["stride_in_1x1"] is True
    assert SHORT_NAMES["plain18"]["backbone"]["plain"] is True
    assert SHORT_NAMES["resnet20_cifar"]["backbone"]["shortcut"] == "A"


def test_config_file_and_cfg_options(tmp_path):
    cfg = tmp_path / "tiny.py"
    cfg.write_text("model = dict(type='ImageClassifier', num_classes=4,\n"
                   "             backbone=dict(type='CifarResNet', depth=20))\n")
    model = init_model(str(cfg), cfg_options={"model.backbone.depth": 32, "model.num_classes": 3})
    assert model.backbone.depth == 32 and model.head.fc.out_features == 3
    with torch.no_grad():
        assert model(torch.zeros(2, 3, 32, 32, dtype=torch.uint8)).shape == (2, 3)


def test_resdet_checkpoint_roundtrip(tmp_path):
    torch.manual_seed(1)
    trained = init_model("resnet20_cifar")
    path = str(tmp_path / "final.pth")
    atomic_save({"model": trained.state_dict(), "optimizer": {}, "iter": 5,
                 "meta": {"config": "", "resdet_version": "0.1.0"}}, path)
    torch.manual_seed(2)
    loaded = init_model("resnet20_cifar", checkpoint=path)
    assert loaded.checkpoint_report["source"] == "resdet"
    x = torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8)
    with torch.no_grad():
        assert torch.equal(loaded(x), trained(x))


def test_unknown_names_are_clear_errors():
    with pytest.raises(ValueError, match="allowed short names: resnet18, resnet34"):
        init_model("resnet42")
    with pytest.raises(ValueError, match="18, 34, 50, 101, 152"):
        init_model("resnet18", cfg_options={"model.backbone.depth": 42})
    with pytest.raises(ValueError, match="A, B, C"):
        init_model("resnet18", cfg_options={"model.backbone.shortcut": "E"})
    with pytest.raises(KeyError, match="not registered.*ResNet"):
        init_model({"type": "ImageClassifier", "backbone": {"type": "ResNetX"}})


def test_detectors_come_on_the_fast_path_unless_asked_not_to():
    """``init_model`` of a shipped detector config folds frozen BN and uses channels_last;
    ``fast=False`` keeps the checkpoint's own layout (what fine-tuning and re-saving need)."""
    from torchvision.ops import FrozenBatchNorm2d

    from resdet.registry import MODELS
    from resdet.utils.config import load_config
    torch.manual_seed(0)
    fast = init_model("shapes_frcnn")
    plain = init_model("shapes_frcnn", fast=False)
    assert not any(isinstance(m, FrozenBatchNorm2d) for m in fast.modules())
    assert fast.channels_last and fast.backbone.conv1.weight.is_contiguous(memory_format=torch.channels_last)
    assert any(isinstance(m, FrozenBatchNorm2d) for m in plain.modules()) and not plain.channels_last
    assert set(plain.state_dict()) == set(MODELS.build(load_config("shapes_frcnn").model.to_dict()).state_dict())
    assert set(fast.state_dict()) != set(plain.state_dict())
