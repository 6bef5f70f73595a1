"""torchvision classifier weights -> resdet: identical logits, layouts, formats, refusals."""

import os
import pickle

import pytest
import torch
import torchvision
from torch import nn

from resdet.apis import init_model
from resdet.models.converters import checkpoint_layout, get_converter, identify_checkpoint, load_weights
from resdet.registry import MODELS
from resdet.utils.io import CheckpointError, atomic_save

TOOLS = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "tools")


def torchvision_model(arch: str) -> nn.Module:
    """A torchvision classifier with random weights and non-trivial BN statistics."""
    torch.manual_seed(0)
    model = getattr(torchvision.models, arch)(weights=None)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5), m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5), m.bias.uniform_(-0.2, 0.2)
    return model.eval()


@pytest.fixture(scope="module")
def tv_resnet18():
    return torchvision_model("resnet18")


def resdet_from(arch: str, **backbone) -> nn.Module:
    return MODELS.build(
        dict(type="ImageClassifier", num_classes=1000, backbone=dict(type="ResNet", depth=int(arch[6:]), **backbone))
    )


@pytest.mark.parametrize("arch,size", [("resnet18", 64), ("resnet50", 64), ("vgg16", 32)])
def test_same_logits_as_torchvision(arch, size):
    tv = torchvision_model(arch)
    sd = tv.state_dict()
    assert identify_checkpoint(sd) == ("torchvision", arch)
    cfg = dict(
        type="ImageClassifier",
        num_classes=1000,
        backbone=dict(type="VGG", depth=16, batch_norm=arch.endswith("_bn"))
        if arch.startswith("vgg")
        else dict(type="ResNet", depth=int(arch[6:]), stride_in_1x1=False),
    )
    model = MODELS.build(cfg)
    report = load_weights(model, sd)
    assert report["missing"] == report["unexpected"] == report["mismatched"] == []
    model.eval()
    x = torch.randn(2, 3, size, size)
    with torch.no_grad():
        assert (model(x) - tv(x)).abs().max().item() <= 1e-4
        uint8 = torch.randint(0, 256, (1, 3, size, size), dtype=torch.uint8)
        normalised = torchvision.transforms.functional.normalize(
            uint8.float() / 255, [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
        )
        assert (model(uint8) - tv(normalised)).abs().max().item() <= 1e-4


def test_v15_checkpoint_into_msra_model_switches_layout_with_warning(tmp_path):
    tv = torchvision_model("resnet50")
    path = str(tmp_path / "r50.pth")
    torch.save(tv.state_dict(), path)
    with pytest.warns(UserWarning, match="stride_in_1x1=False"):
        model = init_model("resnet50", checkpoint=path)  # short name defaults to stride_in_1x1=True
    assert model.backbone.layer2[0].conv2.stride == (2, 2) and model.cfg.model.backbone.stride_in_1x1 is False
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert (model(x) - tv(x)).abs().max().item() <= 1e-4


@pytest.mark.parametrize("wrap", ["bare", "model", "state_dict", "ddp"])
def test_checkpoint_wrappers(tmp_path, tv_resnet18, wrap):
    sd = tv_resnet18.state_dict()
    obj = {
        "bare": sd,
        "model": {"model": sd, "meta": {"note": "x"}},
        "state_dict": {"state_dict": sd},
        "ddp": {f"module.{k}": v for k, v in sd.items()},
    }[wrap]
    path = str(tmp_path / "ckpt.pth")
    torch.save(obj, path)
    model = init_model("resnet18", checkpoint=path)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert (model(x) - tv_resnet18(x)).abs().max().item() <= 1e-4


def test_missing_and_unexpected_keys_are_named(tv_resnet18):
    sd = dict(tv_resnet18.state_dict())
    del sd["fc.weight"]
    with pytest.raises(CheckpointError, match=r"missing keys: head\.fc\.weight"):
        load_weights(resdet_from("resnet18"), sd)
    resdet_sd = resdet_from("resnet18").state_dict()
    resdet_sd["backbone.extra.weight"] = torch.zeros(1)
    with pytest.raises(CheckpointError, match=r"unexpected keys: backbone\.extra\.weight"):
        load_weights(resdet_from("resnet18"), resdet_sd)
    with pytest.raises(CheckpointError, match=r"torchvision resnet18 .*missing keys: backbone\.layer1\.2\.conv1"):
        load_weights(resdet_from("resnet34"), tv_resnet18.state_dict(), src="torchvision", arch="resnet18")


def test_non_strict_skips_shape_mismatch_with_warning(tv_resnet18):
    model = MODELS.build(dict(type="ImageClassifier", num_classes=10, backbone=dict(type="ResNet", depth=18)))
    fc_before = model.head.fc.weight.clone()
    with pytest.warns(UserWarning, match=r"head\.fc\.weight: checkpoint \(1000, 512\) vs model \(10, 512\)"):
        report = load_weights(model, tv_resnet18.state_dict(), strict=False)
    assert len(report["mismatched"]) == 2
    assert torch.equal(model.head.fc.weight, fc_before)
    assert torch.equal(model.backbone.conv1.weight, tv_resnet18.conv1.weight)


class _RunsCode:
    def __reduce__(self):
        return (os.system, ("touch PWNED_BY_CHECKPOINT",))


def test_pickled_code_and_garbage_are_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    evil = tmp_path / "evil.pth"
    torch.save({"model": {"w": torch.zeros(1)}, "payload": _RunsCode()}, str(evil))
    with pytest.raises(CheckpointError, match="refused"):
        init_model("resnet20_cifar", checkpoint=str(evil))
    plain_pickle = tmp_path / "evil.pkl"
    plain_pickle.write_bytes(pickle.dumps(_RunsCode()))
    with pytest.raises(CheckpointError):
        init_model("resnet20_cifar", checkpoint=str(plain_pickle))
    assert not (tmp_path / "PWNED_BY_CHECKPOINT").exists()
    text = tmp_path / "notes.txt"
    text.write_text("not a checkpoint")
    with pytest.raises(CheckpointError, match="notes.txt"):
        init_model("resnet20_cifar", checkpoint=str(text))
    no_sd = tmp_path / "nosd.pth"
    atomic_save({"iter": 3}, str(no_sd))
    with pytest.raises(CheckpointError, match="holds no state_dict"):
        init_model("resnet20_cifar", checkpoint=str(no_sd))


def test_convert_weights_cli_output_loads(tmp_path, tv_resnet18, capsys):
    import importlib.util

    spec = importlib.util.spec_from_file_location("convert_weights", os.path.join(TOOLS, "convert_weights.py"))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    src, dst = str(tmp_path / "tv.pth"), str(tmp_path / "out.pth")
    torch.save(tv_resnet18.state_dict(), src)
    assert tool.main(["--src", "torchvision", "--arch", "resnet18", src, dst]) == 0
    ckpt = torch.load(dst, weights_only=True)
    assert set(ckpt) == {"model", "meta"} and "stride_in_1x1=False" in ckpt["meta"]["config"]
    assert "preprocessor.mean" in ckpt["model"]
    model = init_model("resnet18", checkpoint=dst)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert (model(x) - tv_resnet18(x)).abs().max().item() <= 1e-4
    assert tool.main(["--src", "torchvision", src, str(tmp_path / "auto.pth")]) == 0  # arch from keys
    assert tool.main(["--src", "torchvision", "--arch", "resnet99", src, dst]) == 1
    assert "resnet101, resnet152, resnet18" in capsys.readouterr().err


@pytest.mark.parametrize("arch", ["resnet34", "resnet101", "resnet152", "vgg16_bn", "vgg19", "vgg19_bn"])
def test_every_architecture_converts_key_for_key(arch):
    with torch.device("meta"):  # names and shapes only
        tv_sd = getattr(torchvision.models, arch)(weights=None).state_dict()
        assert identify_checkpoint(tv_sd) == ("torchvision", arch)
        converter = get_converter("torchvision", arch)
        model = MODELS.build(converter.model_cfg(tv_sd))
        report = load_weights(model, tv_sd)
    assert report["missing"] == report["unexpected"] == report["mismatched"] == []


def test_checkpoint_layout_from_meta():
    assert checkpoint_layout({"model": {}, "meta": {"stride_in_1x1": False}}) is False
    text = "model = dict(backbone=dict(type='ResNet', stride_in_1x1=True), box_head=dict(stride_in_1x1=True))"
    assert checkpoint_layout({"meta": {"config": text}}) is True
    assert checkpoint_layout({"meta": {"config": text.replace("True)", "False)", 1)}}) is None  # disagree
    assert checkpoint_layout({"meta": {"config": "model = dict(type='VGG')"}}) is None


def test_resdet_checkpoint_layout_is_honoured():
    meta = {"config": "model = dict(backbone=dict(type='ResNet', stride_in_1x1=False))"}
    torch.manual_seed(0)
    v15 = resdet_from("resnet50", stride_in_1x1=False).eval()
    msra = resdet_from("resnet50", stride_in_1x1=True)
    with pytest.warns(UserWarning, match="switched 3 strided bottleneck"):
        load_weights(msra, {"model": v15.state_dict(), "meta": meta})
    msra.eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(msra(x), v15(x), atol=1e-5)


def test_bn_checkpoint_into_frozen_bn_model_and_back(tv_resnet18):
    frozen = resdet_from("resnet18", norm="FrozenBN", stride_in_1x1=False)
    report = load_weights(frozen, tv_resnet18.state_dict())
    assert report["missing"] == report["unexpected"] == []
    frozen.eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert (frozen(x) - tv_resnet18(x)).abs().max().item() <= 1e-4
        bn = resdet_from("resnet18")
        load_weights(bn, frozen.state_dict())  # no num_batches_tracked in a FrozenBN checkpoint
        assert (bn.eval()(x) - tv_resnet18(x)).abs().max().item() <= 1e-4
