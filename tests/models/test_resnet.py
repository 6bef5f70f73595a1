"""ImageNet ResNets (Table 1): shapes, options A/B/C, plain nets, layouts, freezing, norms."""

import pytest
import torch
from torch import nn
from torchvision.ops import FrozenBatchNorm2d

from resdet.models.backbones import Bottleneck, ResNet, convert_frozen_batchnorm, make_res_stage, set_stride_in_1x1
from resdet.models.backbones.resnet import ZeroPadShortcut
from resdet.registry import MODELS


def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize(
    "depth,widths",
    [
        (18, (64, 128, 256, 512)),
        (34, (64, 128, 256, 512)),
        (50, (256, 512, 1024, 2048)),
        (101, (256, 512, 1024, 2048)),
        (152, (256, 512, 1024, 2048)),
    ],
)
def test_every_depth_gives_c2_to_c5(depth, widths):
    # real arithmetic for the small nets, shape-only (meta device) for the deep ones
    device = "cpu" if depth <= 50 else "meta"
    with torch.device(device):
        model = MODELS.build(dict(type="ResNet", depth=depth, out_indices=(0, 1, 2, 3))).eval()
        with torch.no_grad():
            out = model(torch.randn(1, 3, 64, 64))
    assert list(out) == ["c2", "c3", "c4", "c5"]
    for (key, feat), width, size in zip(out.items(), widths, (16, 8, 4, 2)):
        assert feat.shape == (1, width, size, size), key
    assert model.out_channels == dict(zip(("c2", "c3", "c4", "c5"), widths))
    assert model.strides == {"c2": 4, "c3": 8, "c4": 16, "c5": 32}


def test_block_counts_follow_table1():
    for depth, blocks in {
        18: (2, 2, 2, 2),
        34: (3, 4, 6, 3),
        50: (3, 4, 6, 3),
        101: (3, 4, 23, 3),
        152: (3, 8, 36, 3),
    }.items():
        with torch.device("meta"):
            model = ResNet(depth=depth)
        assert tuple(len(getattr(model, f"layer{i}")) for i in range(1, 5)) == blocks
        blocks_convs = sum(
            3 if isinstance(b, Bottleneck) else 2 for i in range(1, 5) for b in getattr(model, f"layer{i}")
        )
        weighted = 1 + blocks_convs  # conv1 + the convolutions on each block's main path
        assert weighted + 1 == depth  # + the fc layer of the classifier


@pytest.mark.parametrize("shortcut", ["A", "B", "C"])
@pytest.mark.parametrize("depth", [18, 50])
def test_shortcut_options_shapes(depth, shortcut):
    with torch.device("cpu" if depth == 18 else "meta"):
        model = ResNet(depth=depth, shortcut=shortcut, out_indices=(1, 3)).eval()
        with torch.no_grad():
            out = model(torch.randn(2, 3, 64, 48))
    expansion = 4 if depth == 50 else 1
    assert out["c3"].shape == (2, 128 * expansion, 8, 6)
    assert out["c5"].shape == (2, 512 * expansion, 2, 2)


@pytest.mark.parametrize("depth", [18, 34, 50])
def test_option_a_has_exactly_the_params_of_plain(depth):
    with torch.device("meta"):
        _option_a_vs_plain(depth)


def _option_a_vs_plain(depth):
    option_a, plain = ResNet(depth=depth, shortcut="A"), ResNet(depth=depth, plain=True)
    option_b, option_c = ResNet(depth=depth, shortcut="B"), ResNet(depth=depth, shortcut="C")
    assert n_params(option_a) == n_params(plain)
    assert n_params(option_a) < n_params(option_b) < n_params(option_c)
    assert not any(
        isinstance(m, ZeroPadShortcut) or getattr(m, "downsample", None) is not None for m in plain.modules()
    )


def test_resnet_params_match_torchvision_counts():
    # torchvision's resnet18/50 (with the 1000-way fc, 513,000 / 2,049,000 params) have option B
    with torch.device("meta"):
        assert n_params(ResNet(depth=18)) + 513_000 == 11_689_512
        assert n_params(ResNet(depth=50)) + 2_049_000 == 25_557_032


def test_option_a_zero_pads_and_subsamples():
    shortcut = ZeroPadShortcut(2, 5, stride=2)
    x = torch.arange(2 * 2 * 5 * 5, dtype=torch.float32).view(2, 2, 5, 5)
    y = shortcut(x)
    assert y.shape == (2, 5, 3, 3)
    assert torch.equal(y[:, :2], x[:, :, ::2, ::2])
    assert torch.count_nonzero(y[:, 2:]) == 0
    assert n_params(shortcut) == 0


def test_plain_net_runs_without_shortcuts():
    model = MODELS.build(dict(type="ResNet", depth=34, plain=True)).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 3, 64, 64))["c5"].shape == (1, 512, 2, 2)


def test_stride_in_1x1_layouts_and_switch():
    msra, tv = ResNet(depth=50, stride_in_1x1=True), ResNet(depth=50, stride_in_1x1=False)
    assert msra.layer2[0].conv1.stride == (2, 2) and msra.layer2[0].conv2.stride == (1, 1)
    assert tv.layer2[0].conv1.stride == (1, 1) and tv.layer2[0].conv2.stride == (2, 2)
    tv.load_state_dict(msra.state_dict())
    msra.eval(), tv.eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert not torch.allclose(msra(x)["c5"], tv(x)["c5"], atol=1e-3)
        assert set_stride_in_1x1(msra, False) == 3  # first blocks of layer2..layer4
        assert torch.allclose(msra(x)["c5"], tv(x)["c5"], atol=1e-5)
    assert msra.stride_in_1x1 is False


def test_num_stages_3_is_the_c4_trunk():
    model = ResNet(depth=18, num_stages=3, out_indices=(1, 2)).eval()
    assert not hasattr(model, "layer4") and model.out_channels == {"c3": 128, "c4": 256}
    with torch.no_grad():
        assert model(torch.randn(1, 3, 64, 64))["c4"].shape == (1, 256, 4, 4)
    with torch.device("meta"):
        deep = ResNet(depth=101, num_stages=3, out_indices=(2,))
        assert deep(torch.randn(1, 3, 64, 64))["c4"].shape == (1, 1024, 4, 4)


def test_make_res_stage_builds_conv5():
    stage = make_res_stage(depth=101, stage=3, in_channels=1024, stride=2, norm="FrozenBN").eval()
    assert isinstance(stage, nn.Sequential) and len(stage) == 3
    assert stage[0].conv1.stride == (2, 2) and isinstance(stage[0].bn1, FrozenBatchNorm2d)
    with torch.no_grad():
        assert stage(torch.randn(2, 1024, 14, 14)).shape == (2, 2048, 7, 7)
    basic = make_res_stage(depth=18, stage=1, in_channels=64, stride=2, shortcut="A", stride_in_1x1=False)
    assert len(basic) == 2 and isinstance(basic[0].downsample, ZeroPadShortcut)
    with pytest.raises(ValueError, match="0, 1, 2 or 3"):
        make_res_stage(depth=50, stage=4, in_channels=1024, stride=2)


def test_frozen_stages_freeze_params_and_bn_stats():
    model = ResNet(depth=18, frozen_stages=1, out_indices=(3,))
    model.train()
    frozen = [model.conv1, model.bn1, model.layer1]
    assert all(not p.requires_grad for m in frozen for p in m.parameters())
    assert all(p.requires_grad for p in model.layer2.parameters())
    assert not model.bn1.training and not model.layer1[0].bn1.training
    assert model.layer2[0].bn1.training
    before = model.layer1[0].bn1.running_mean.clone()
    model(torch.randn(2, 3, 64, 64))["c5"].sum().backward()
    assert torch.equal(model.layer1[0].bn1.running_mean, before)
    assert model.layer1[0].conv1.weight.grad is None and model.layer2[0].conv1.weight.grad is not None


def test_norm_eval_keeps_all_bn_in_eval():
    model = ResNet(depth=18, norm_eval=True).train()
    assert not any(m.training for m in model.modules() if isinstance(m, nn.BatchNorm2d))
    assert model.training


def test_frozen_bn_conversion_keeps_outputs():
    torch.manual_seed(0)
    model = ResNet(depth=18).eval()
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-1, 1), m.running_var.uniform_(0.5, 2)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        ref = model(x)["c5"]
        converted = convert_frozen_batchnorm(model)
        assert not any(isinstance(m, nn.BatchNorm2d) for m in converted.modules())
        assert sum(isinstance(m, FrozenBatchNorm2d) for m in converted.modules()) == 20
        assert torch.allclose(converted(x)["c5"], ref, atol=1e-5)
    built = ResNet(depth=18, norm="FrozenBN")
    assert n_params(built) == n_params(ResNet(depth=18)) - 2 * 4800  # BN affine params become buffers


def test_syncbn_builds_and_runs_on_one_process():
    model = ResNet(depth=18, norm="SyncBN").train()
    assert any(isinstance(m, nn.SyncBatchNorm) for m in model.modules())
    assert model(torch.randn(2, 3, 64, 64))["c5"].shape == (2, 512, 2, 2)


def test_zero_init_residual_makes_blocks_identity():
    model = ResNet(depth=50, zero_init_residual=True)
    assert all(torch.count_nonzero(m.bn3.weight) == 0 for m in model.modules() if isinstance(m, Bottleneck))
    block = model.layer1[1].eval()  # no downsample: output = relu(x) at init
    x = torch.randn(1, 256, 8, 8)
    with torch.no_grad():
        assert torch.allclose(block(x), torch.relu(x))


def test_bad_arguments_name_allowed_values():
    with pytest.raises(ValueError, match="18, 34, 50, 101, 152"):
        ResNet(depth=42)
    with pytest.raises(ValueError, match="A, B, C"):
        MODELS.build(dict(type="ResNet", depth=18, shortcut="D"))
    with pytest.raises(ValueError, match="BN, FrozenBN, SyncBN"):
        ResNet(depth=18, norm="GN")
    with pytest.raises(ValueError, match="out_indices"):
        ResNet(depth=18, num_stages=3, out_indices=(3,))
    with pytest.raises(ValueError, match="plain"):
        ResNet(depth=18, plain=True, zero_init_residual=True)
    with pytest.raises(KeyError, match="ResNet"):
        MODELS.build(dict(type="ResNett", depth=18))
