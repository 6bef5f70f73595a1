"""resdet.apis.init_model: short names, config files, checkpoints, errors."""

import pytest
import torch

from resdet.apis import init_model
from resdet.apis.model import SHORT_NAMES
from resdet.models.backbones import VGG, CifarResNet, ResNet
from resdet.utils.io import atomic_save


@pytest.mark.parametrize(
    "name,backbone_type,num_classes",
    [
        ("resnet18", ResNet, 1000),
        ("plain34", ResNet, 1000),
        ("resnet110_cifar", CifarResNet, 10),
        ("plain56_cifar", CifarResNet, 10),
        ("vgg16_bn", VGG, 1000),
    ],
)
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
    cfg.write_text(
        "model = dict(type='ImageClassifier', num_classes=4,\n"
        "             backbone=dict(type='CifarResNet', depth=20))\n"
    )
    model = init_model(str(cfg), cfg_options={"model.backbone.depth": 32, "model.num_classes": 3})
    assert model.backbone.depth == 32 and model.head.fc.out_features == 3
    with torch.no_grad():
        assert model(torch.zeros(2, 3, 32, 32, dtype=torch.uint8)).shape == (2, 3)


def test_resdet_checkpoint_roundtrip(tmp_path):
    torch.manual_seed(1)
    trained = init_model("resnet20_cifar")
    path = str(tmp_path / "final.pth")
    atomic_save(
        {"model": trained.state_dict(), "optimizer": {}, "iter": 5, "meta": {"config": "", "resdet_version": "0.1.0"}},
        path,
    )
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


def _spread_bn_statistics(model: torch.nn.Module) -> None:
    """Non-trivial frozen BN statistics, so that folding them changes the weights."""
    with torch.no_grad():
        for module in model.modules():
            if getattr(module, "running_var", None) is not None:
                module.running_var.uniform_(0.5, 2.0)
                module.running_mean.uniform_(-0.2, 0.2)
        model.roi_heads.score_thresh = 0.0  # an untrained model: keep every detection


def _detect(model: torch.nn.Module) -> list[dict]:
    g = torch.Generator().manual_seed(0)
    images = [
        torch.randint(0, 256, (3, 80, 112), generator=g, dtype=torch.uint8),
        torch.randint(0, 256, (3, 96, 64), generator=g, dtype=torch.uint8),
    ]
    with torch.no_grad():
        return model(images)


def test_a_model_is_what_its_checkpoint_says(tmp_path):
    """``init_model`` of a detector keeps the checkpoint's layout (frozen BN, NCHW): its
    state_dict saved and given back to ``init_model`` is the same model, detection for detection."""
    from torchvision.ops import FrozenBatchNorm2d

    from resdet.registry import MODELS
    from resdet.utils.config import load_config

    torch.manual_seed(0)
    model = init_model("shapes_frcnn")
    _spread_bn_statistics(model)
    assert any(isinstance(m, FrozenBatchNorm2d) for m in model.modules()) and not model.channels_last
    assert set(model.state_dict()) == set(MODELS.build(load_config("shapes_frcnn").model.to_dict()).state_dict())
    path = str(tmp_path / "saved.pth")
    torch.save(model.state_dict(), path)  # a bare state_dict, straight from the model
    again = init_model("shapes_frcnn", path, cfg_options={"model.roi_heads.score_thresh": 0.0})
    assert again.checkpoint_report["missing"] == again.checkpoint_report["unexpected"] == []
    expected, got = _detect(model), _detect(again)
    assert sum(len(e["boxes"]) for e in expected) > 0
    for e, g in zip(expected, got):
        assert all(torch.equal(e[k], g[k]) for k in ("boxes", "scores", "labels"))


def test_init_model_with_a_checkpoint_trains(tmp_path):
    torch.manual_seed(0)
    path = str(tmp_path / "start.pth")
    atomic_save({"model": init_model("shapes_frcnn").state_dict()}, path)
    model = init_model("shapes_frcnn", path).train()
    images = [torch.randint(0, 256, (3, 64, 64), dtype=torch.uint8)]
    targets = [{"boxes": torch.tensor([[8.0, 8.0, 40.0, 48.0]]), "labels": torch.tensor([1])}]
    losses = model(images, targets)
    total = sum(v for k, v in losses.items() if "loss" in k)
    total.backward()
    assert torch.isfinite(total) and model.roi_heads.box_predictor.cls_score.weight.grad.abs().sum() > 0


def test_optimize_for_inference_returns_a_folded_copy():
    """The fast path is a new, inference-only model: BN folded, channels_last, the same
    detections up to float rounding; the model it came from is left exactly as it was."""
    from torchvision.ops import FrozenBatchNorm2d

    from resdet.apis import optimize_for_inference
    from resdet.utils.errors import CheckpointError, TrainingError

    torch.manual_seed(0)
    model = init_model("shapes_frcnn")
    _spread_bn_statistics(model)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    fast = optimize_for_inference(model)
    assert fast is not model and optimize_for_inference(fast) is fast
    assert not any(isinstance(m, FrozenBatchNorm2d) for m in fast.modules())
    assert fast.channels_last and fast.backbone.conv1.weight.is_contiguous(memory_format=torch.channels_last)
    after = model.state_dict()
    assert after.keys() == before.keys() and all(torch.equal(after[k], before[k]) for k in before)
    assert not model.channels_last and isinstance(model.backbone.bn1, FrozenBatchNorm2d)
    for e, g in zip(_detect(model), _detect(fast)):
        assert len(e["boxes"]) == len(g["boxes"]) > 0
        assert (e["boxes"] - g["boxes"]).abs().max() < 1e-2 and (e["scores"] - g["scores"]).abs().max() < 1e-4
    with pytest.raises(CheckpointError, match="optimised for inference.*save the state_dict of the model you passed"):
        fast.state_dict()
    fast.train()
    with pytest.raises(TrainingError, match="optimised for inference.*train the model you passed"):
        fast(
            [torch.zeros(3, 64, 64, dtype=torch.uint8)],
            [{"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.long)}],
        )
    same = optimize_for_inference(model, inplace=True)
    assert same is model and model.channels_last and not isinstance(model.backbone.bn1, FrozenBatchNorm2d)


def test_fast_argument_is_deprecated():
    from resdet.models.detectors import is_inference_optimized

    with pytest.warns(FutureWarning, match="optimize_for_inference"):
        fast = init_model("shapes_frcnn", fast=True)
    assert is_inference_optimized(fast) and fast.channels_last
    with pytest.warns(FutureWarning, match="deprecated"):
        plain = init_model("shapes_frcnn", fast=False)
    assert not is_inference_optimized(plain) and not plain.channels_last
