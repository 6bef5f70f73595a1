"""Shape-driven construction: backbones, the neck, poolers and box heads publish their outputs'
shapes; each component handed its input's shapes derives its own input sizes, anchors per
location, anchor strides and pooler scales, checks the values a config states, and a detector
builds the same model as the old hand-written configs."""

import copy

import pytest
import torch

from resdet.models.backbones import VGG, CifarResNet, ResNet
from resdet.models.dense_heads import AnchorGenerator, RPNHead
from resdet.models.dense_heads.anchors import anchor_strides
from resdet.models.necks import FPN
from resdet.models.roi_heads import BoxPredictor, FCBoxHead, MaskHead, Res5BoxHead, RoIPooler
from resdet.models.utils.shape_spec import PER_BATCH, ShapeError, ShapeSpec, build_part, label
from resdet.registry import MODELS
from resdet.utils.config import ConfigError, load_config, shipped_config_names

BASE_MODELS = ["frcnn_r101_c4", "frcnn_vgg16", "frcnn_r50_fpn", "maskrcnn_r101_c4", "maskrcnn_r50_fpn"]

# the values the base model configs used to state by hand (before they were derived)
OLD_VALUES = {
    "frcnn_r101_c4": dict(rpn_in=1024, anchors=15, strides=[16], scale=1 / 16, box_in=1024),
    "frcnn_vgg16": dict(rpn_in=512, anchors=15, strides=[16], scale=1 / 16, box_in=512, pooled=7),
    "frcnn_r50_fpn": dict(
        rpn_in=256, anchors=3, strides=PER_BATCH, scale=PER_BATCH, box_in=256, pooled=7, neck_in=[256, 512, 1024, 2048]
    ),
    "maskrcnn_r101_c4": dict(rpn_in=1024, anchors=15, strides=[16], scale=1 / 16, box_in=1024, mask_in=2048),
    "maskrcnn_r50_fpn": dict(
        rpn_in=256,
        anchors=3,
        strides=PER_BATCH,
        scale=PER_BATCH,
        box_in=256,
        pooled=7,
        neck_in=[256, 512, 1024, 2048],
        mask_in=256,
    ),
}


def _assert_published(shapes: dict, features: dict, image_size: tuple[int, int]) -> None:
    """Every published shape is the real one: channels, and input size / feature size = stride."""
    assert list(shapes) == list(features)
    for name, feature in features.items():
        assert feature.shape[1] == shapes[name].channels, name
        assert (image_size[0] // feature.shape[2], image_size[1] // feature.shape[3]) == (
            shapes[name].stride,
            shapes[name].stride,
        ), name


def test_backbones_publish_their_output_shapes():
    resnet = ResNet(depth=50, out_indices=(0, 1, 2, 3)).eval()
    assert resnet.output_shape() == {
        "c2": ShapeSpec(256, 4),
        "c3": ShapeSpec(512, 8),
        "c4": ShapeSpec(1024, 16),
        "c5": ShapeSpec(2048, 32),
    }
    c4_trunk = ResNet(depth=18, num_stages=3, out_indices=(2,)).eval()
    assert c4_trunk.output_shape() == {"c4": ShapeSpec(256, 16)}
    vgg = VGG(depth=16).eval()
    assert vgg.output_shape() == {"conv5_3": ShapeSpec(512, 16)}
    assert VGG(depth=19).output_shape() == {"conv5_4": ShapeSpec(512, 16)}
    cifar = CifarResNet(depth=8, out_indices=(0, 1, 2)).eval()
    assert cifar.output_shape() == {"layer1": ShapeSpec(16, 1), "layer2": ShapeSpec(32, 2), "layer3": ShapeSpec(64, 4)}
    with torch.no_grad():
        for model, size in ((resnet, (64, 96)), (c4_trunk, (64, 96)), (vgg, (64, 96)), (cifar, (32, 32))):
            _assert_published(model.output_shape(), model(torch.zeros(1, 3, *size)), size)


def test_fpn_publishes_p2_to_p6():
    backbone = ResNet(depth=18, out_indices=(0, 1, 2, 3)).eval()
    fpn = FPN(in_channels=(64, 128, 256, 512), out_channels=32, in_strides=(4, 8, 16, 32)).eval()
    assert fpn.output_shape() == {f"p{level}": ShapeSpec(32, 2**level) for level in range(2, 7)}
    with torch.no_grad():
        _assert_published(fpn.output_shape(), fpn(backbone(torch.zeros(1, 3, 128, 192))), (128, 192))
    # without in_strides the strides are unknown (the anchors then measure them per batch)
    assert FPN(in_channels=(64, 128, 256, 512)).output_shape()["p6"] == ShapeSpec(256, None)
    with pytest.raises(ValueError, match="in_strides"):
        FPN(in_channels=(64, 128, 256, 512), in_strides=(4, 8))


def test_box_heads_derive_their_input_and_publish_their_outputs():
    pooled = ShapeSpec(256, size=14, publisher="box pooler")
    res5 = Res5BoxHead(depth=18, norm="BN", input_shape=pooled).eval()
    assert res5.res5[0].conv1.in_channels == 256
    assert res5.output_shape() == {"res5": ShapeSpec(512), "box_features": ShapeSpec(512)}
    assert Res5BoxHead(depth=18, norm="BN").res5[0].conv1.in_channels == 256  # no shape: conv4's width
    with torch.no_grad():
        x = torch.zeros(2, 256, 14, 14)
        assert res5.res5(x).shape == (2, 512, 7, 7) and res5(x).shape == (2, 512)
    fc = FCBoxHead(fc_dim=24, input_shape=ShapeSpec(8, size=4, publisher="box pooler"))
    assert fc.fc6.in_features == 8 * 4 * 4
    assert fc.output_shape() == {"box_features": ShapeSpec(24)}
    assert fc(torch.zeros(3, 8, 4, 4)).shape == (3, 24)
    with pytest.raises(
        ShapeError,
        match="pooled_size = 7 but the box pooler's features have size 4; leave "
        "pooled_size out of the config to use the derived value 4",
    ):
        FCBoxHead(pooled_size=7, input_shape=ShapeSpec(8, size=4, publisher="box pooler"))
    features = label(fc.output_shape(), "box head")["box_features"]
    assert BoxPredictor(num_classes=3, input_shape=features).cls_score.in_features == 24
    with pytest.raises(ShapeError, match="in_channels = 32 but the box head's output 'box_features' has 24 channels"):
        BoxPredictor(in_channels=32, num_classes=3, input_shape=features)
    assert MaskHead(num_convs=1, conv_dim=8, input_shape=pooled).mask_fcn1.in_channels == 256


def test_poolers_derive_their_scale_and_publish_their_features():
    shapes = label({"c4": ShapeSpec(64, 16), "p2": ShapeSpec(32, 4), "p3": ShapeSpec(32, 8)}, "backbone")
    single = RoIPooler(featmap_names=("c4",), output_size=7, input_shape=shapes)
    assert single.spatial_scale == 1 / 16 and single.output_shape() == ShapeSpec(64, size=7)
    stated = RoIPooler(featmap_names=("c4",), spatial_scale=0.0625, input_shape=shapes)
    assert stated.spatial_scale == 0.0625
    measured = RoIPooler(featmap_names=("c4",), spatial_scale=PER_BATCH, input_shape=shapes)
    assert measured.spatial_scale == PER_BATCH
    assert RoIPooler(featmap_names=("c4",)).spatial_scale == PER_BATCH  # no shape: measured
    multi = RoIPooler(featmap_names=("p2", "p3"), output_size=5, input_shape=shapes)
    assert multi.spatial_scale == PER_BATCH and multi.output_shape() == ShapeSpec(32, size=5)
    with pytest.raises(
        ShapeError,
        match=r"featmap_names: the backbone's outputs \('c4', 'p2'\) have \[64, 32\] "
        "channels, but one component reads them all",
    ):
        RoIPooler(featmap_names=("c4", "p2"), input_shape=shapes)
    with pytest.raises(ShapeError, match="spatial_scale = 'measure' unknown"):
        RoIPooler(featmap_names=("c4",), spatial_scale="measure")


def test_rpn_parts_derive_channels_anchors_and_strides():
    shapes = label({"p4": ShapeSpec(32, 16), "p5": ShapeSpec(32, 32)}, "neck")
    generator = AnchorGenerator(
        sizes=((32, 64), (128, 256)), aspect_ratios=(0.5, 1.0, 2.0), input_shape=shapes, size_divisor=32
    )
    assert generator.strides == [16, 32]
    assert AnchorGenerator(sizes=((32,), (64,)), input_shape=shapes, size_divisor=16).strides == PER_BATCH
    assert (
        AnchorGenerator(sizes=((32,), (64,)), strides=PER_BATCH, input_shape=shapes, size_divisor=32).strides
        == PER_BATCH
    )
    head = RPNHead(input_shape=shapes, anchor_generator=generator)
    assert (head.in_channels, head.num_anchors) == (32, 6)
    assert head.conv.in_channels == 32 and head.cls_logits.out_channels == 6 and head.bbox_pred.out_channels == 24
    unequal = AnchorGenerator(sizes=((32, 64), (128,)), input_shape=shapes)
    with pytest.raises(ShapeError, match=r"num_anchors: the anchor generator makes \[6, 3\] anchors per location"):
        RPNHead(input_shape=shapes, anchor_generator=unequal)
    with pytest.raises(
        ShapeError,
        match=r"strides = \(16, 16\) but the neck's outputs \('p4', 'p5'\) have "
        r"strides \(16, 32\)",
    ):
        AnchorGenerator(sizes=((32,), (64,)), strides=(16, 16), input_shape=shapes)


def test_build_part_names_the_key_of_the_child_that_disagrees():
    shapes = label({"c4": ShapeSpec(64, 16)}, "backbone")
    with pytest.raises(
        ShapeError,
        match=r"^model.rpn.head.in_channels = 8 but the backbone's output 'c4' has 64 "
        "channels; leave model.rpn.head.in_channels out of the config",
    ):
        build_part(
            dict(type="RPN", anchor_generator=dict(type="AnchorGenerator"), head=dict(type="RPNHead", in_channels=8)),
            "model.rpn",
            input_shape=shapes,
        )
    rpn = build_part(
        dict(type="RPN", anchor_generator=dict(type="AnchorGenerator"), head=dict(type="RPNHead")),
        "model.rpn",
        input_shape=shapes,
        size_divisor=32,
    )
    assert (rpn.head.in_channels, rpn.head.num_anchors, rpn.anchor_generator.strides) == (64, 15, [16])


@pytest.mark.parametrize("name", BASE_MODELS)
def test_derived_values_equal_the_old_hand_written_ones(name, repo_root):
    cfg = load_config(f"{repo_root}/configs/_base_/models/{name}.py").model.to_dict()
    for removed in ("in_channels", "num_anchors"):
        assert removed not in cfg["rpn"]["head"]
    assert "strides" not in cfg["rpn"]["anchor_generator"]
    assert "in_channels" not in cfg["roi_heads"]["box_head"]
    old = OLD_VALUES[name]
    with torch.device("meta"):  # shapes only: no memory, no initialisation cost
        model = MODELS.build(cfg)
    head = model.rpn.head
    assert (head.in_channels, head.num_anchors) == (old["rpn_in"], old["anchors"])
    assert head.conv.in_channels == old["rpn_in"] and head.cls_logits.out_channels == old["anchors"]
    assert head.bbox_pred.out_channels == 4 * old["anchors"]
    assert model.rpn.anchor_generator.strides == old["strides"]
    pooler = model.roi_heads.box_pooler
    assert pooler.spatial_scale == old["scale"] and pooler.output_size == old.get("pooled", 14)
    box_head = model.roi_heads.box_head
    if isinstance(box_head, Res5BoxHead):
        assert box_head.res5[0].conv1.in_channels == old["box_in"]
    else:
        assert box_head.fc6.in_features == old["box_in"] * old["pooled"] ** 2
    assert model.roi_heads.box_predictor.cls_score.in_features == box_head.out_channels
    if "neck_in" in old:
        assert [block[0].in_channels for block in model.neck.inner_blocks] == old["neck_in"]
    if "mask_in" in old:
        mask_head = model.roi_heads.mask_head
        first = mask_head.mask_fcn1 if mask_head.num_convs else mask_head.deconv
        assert first.in_channels == old["mask_in"]


@pytest.mark.parametrize(
    "name",
    [n for n in shipped_config_names() if n.startswith(("frcnn", "maskrcnn", "loc", "shapes_frcnn", "shapes_mask"))],
)
def test_every_shipped_detector_config_builds(name):
    """Shipped configs that still state derived values state them right."""
    cfg = load_config(name).model.to_dict()
    with torch.device("meta"):
        model = MODELS.build(cfg)
    channels = model.backbone.output_shape()
    rpn_input = model.neck.output_shape() if getattr(model, "neck", None) is not None else channels
    assert model.rpn.head.conv.in_channels == rpn_input[model.rpn.in_features[0]].channels


def _tiny_c4(repo_root, mask: bool = False) -> dict:
    name = "maskrcnn_r101_c4" if mask else "frcnn_r101_c4"
    cfg = load_config(f"{repo_root}/configs/_base_/models/{name}.py").model.to_dict()
    cfg["num_classes"] = 3
    cfg["backbone"]["depth"] = 18
    cfg["roi_heads"]["box_head"]["depth"] = 18
    return cfg


@pytest.mark.parametrize(
    "path,value,message",
    [
        (
            ("rpn", "head", "in_channels"),
            512,
            "model.rpn.head.in_channels = 512 but the backbone's output 'c4' has 256 channels",
        ),
        (
            ("rpn", "head", "num_anchors"),
            9,
            "model.rpn.head.num_anchors = 9 but the anchor generator makes 15 anchors per location "
            r"\(5 sizes x 3 aspect ratios\)",
        ),
        (
            ("rpn", "anchor_generator", "strides"),
            (8,),
            r"model.rpn.anchor_generator.strides = \(8,\) but the backbone's outputs \('c4',\) have strides \(16,\)",
        ),
        (
            ("roi_heads", "box_pooler", "spatial_scale"),
            1 / 8,
            "model.roi_heads.box_pooler.spatial_scale = 0.125 but the backbone's output 'c4' has stride 16",
        ),
        (
            ("roi_heads", "box_head", "in_channels"),
            1024,
            "model.roi_heads.box_head.in_channels = 1024 but the box pooler's features have 256 channels",
        ),
        (
            ("roi_heads", "mask_head", "in_channels"),
            2048,
            "model.roi_heads.mask_head.in_channels = 2048 but the box head's output 'res5' has 512 channels",
        ),
        (
            ("rpn", "in_features"),
            ("c5",),
            r"model.rpn.in_features = \('c5',\) but the backbone has no output \['c5'\]; its outputs: c4",
        ),
    ],
)
def test_a_stated_value_that_disagrees_names_the_key_and_both_values(path, value, message, repo_root):
    cfg = _tiny_c4(repo_root, mask=True)
    node = cfg
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    with pytest.raises(ConfigError, match=message):
        MODELS.build(cfg)


def test_fpn_neck_and_stated_values_that_agree(repo_root):
    cfg = load_config(f"{repo_root}/configs/_base_/models/maskrcnn_r50_fpn.py").model.to_dict()
    cfg["backbone"]["depth"] = 18
    wrong = copy.deepcopy(cfg)
    wrong["neck"]["in_channels"] = (256, 512, 1024, 2048)
    with pytest.raises(
        ConfigError,
        match=r"model.neck.in_channels = \(256, 512, 1024, 2048\) but the "
        r"backbone's outputs \('c2', 'c3', 'c4', 'c5'\) have \(64, 128, 256, 512\)",
    ):
        MODELS.build(wrong)
    wrong = copy.deepcopy(cfg)
    wrong["roi_heads"]["mask_head"]["in_channels"] = 64
    with pytest.raises(
        ConfigError, match="model.roi_heads.mask_head.in_channels = 64 but the mask pooler's features have 256 channels"
    ):
        MODELS.build(wrong)
    # values stated as the old configs did (lists or tuples, 1.0 / 16 or 0.0625) are accepted
    cfg["neck"]["in_channels"] = [64, 128, 256, 512]
    cfg["rpn"]["head"].update(in_channels=256, num_anchors=3)
    cfg["rpn"]["anchor_generator"]["strides"] = (4, 8, 16, 32, 64)  # nominal strides, stated
    cfg["roi_heads"]["box_head"].update(in_channels=256, pooled_size=7)
    with torch.device("meta"):
        model = MODELS.build(cfg)
    assert model.rpn.anchor_generator.strides == [4, 8, 16, 32, 64]
    assert model.neck.output_shape()["p6"] == ShapeSpec(256, 64)


def test_anchor_strides_keep_torchvision_rule_where_padding_is_not_exact():
    assert anchor_strides((16,), 32) == (16,)
    assert anchor_strides((4, 8, 16, 32, 64), 64) == (4, 8, 16, 32, 64)
    assert anchor_strides((4, 8, 16, 32, 64), 32) == PER_BATCH  # P6 of an odd P5: padded // size, as torchvision


def test_rpn_checks_anchors_per_location_of_its_head():
    with pytest.raises(
        ShapeError,
        match=r"head.num_anchors = 9 but the anchor generator makes 15 anchors per "
        r"location \(5 sizes x 3 aspect ratios\)",
    ):
        MODELS.build(
            dict(
                type="RPN",
                anchor_generator=dict(type="AnchorGenerator"),
                head=dict(type="RPNHead", in_channels=8, num_anchors=9),
            )
        )
    # a head built by the caller is checked by the RPN
    with pytest.raises(
        ValueError,
        match="head predicts 9 anchors per location but the anchor generator "
        r"makes \[15\]",
    ):
        MODELS.build(
            dict(type="RPN", anchor_generator=dict(type="AnchorGenerator"), head=RPNHead(in_channels=8, num_anchors=9))
        )


def _explicit(cfg: dict, layout: str) -> dict:
    """``cfg`` with every derived value written by hand, as the configs did before."""
    cfg = copy.deepcopy(cfg)
    rpn, roi = cfg["rpn"], cfg["roi_heads"]
    if layout == "c4":
        rpn["anchor_generator"]["strides"] = (16,)
        rpn["head"].update(in_channels=256, num_anchors=15)
        roi["box_pooler"]["spatial_scale"] = 1.0 / 16
        roi["box_head"]["in_channels"] = 256
        roi["mask_head"]["in_channels"] = 512
    else:
        cfg["neck"]["in_channels"] = (64, 128, 256, 512)
        rpn["head"].update(in_channels=32, num_anchors=3)
        roi["box_head"].update(in_channels=32, pooled_size=7)
        roi["mask_head"]["in_channels"] = 32
    return cfg


@pytest.mark.parametrize("layout", ["c4", "fpn"])
def test_explicit_and_derived_configs_build_the_same_model(layout, repo_root):
    if layout == "c4":
        derived = _tiny_c4(repo_root, mask=True)
    else:
        derived = load_config(f"{repo_root}/configs/_base_/models/maskrcnn_r50_fpn.py").model.to_dict()
        derived["num_classes"] = 3
        derived["backbone"]["depth"] = 18
        derived["neck"]["out_channels"] = 32
    for cfg in (derived,):
        cfg["rpn"].update(
            pre_nms_top_n_test=200, post_nms_top_n_test=20, pre_nms_top_n_train=200, post_nms_top_n_train=40
        )
        cfg["roi_heads"].update(batch_size_per_image=16, score_thresh=0.0)
    explicit = _explicit(derived, layout)
    models = []
    for cfg in (explicit, derived):
        torch.manual_seed(0)
        models.append(MODELS.build(cfg))
    old, new = models
    old_state, new_state = old.state_dict(), new.state_dict()
    assert list(old_state) == list(new_state)
    assert all(old_state[k].shape == new_state[k].shape and torch.equal(old_state[k], new_state[k]) for k in old_state)
    g = torch.Generator().manual_seed(0)
    images = [torch.randint(0, 256, (3, 64, 96), generator=g, dtype=torch.uint8)]
    masks = torch.zeros(1, 64, 96, dtype=torch.uint8)
    masks[0, 10:40, 20:60] = 1
    targets = [{"boxes": torch.tensor([[20.0, 10.0, 60.0, 40.0]]), "labels": torch.tensor([1]), "masks": masks}]
    losses = []
    for model in (old, new):
        torch.manual_seed(1)
        losses.append(model.train()(images, targets))
    assert losses[0].keys() == losses[1].keys() and all(torch.equal(losses[0][k], losses[1][k]) for k in losses[0])
    with torch.no_grad():
        outputs = [model.eval()(images) for model in (old, new)]
    assert len(outputs[0][0]["boxes"]) > 0
    for key in ("boxes", "scores", "labels", "masks"):
        assert torch.equal(outputs[0][0][key], outputs[1][0][key]), key


def test_a_new_box_head_derives_its_input_in_its_own_file(repo_root):
    """docs/ARCHITECTURE.md's worked example: a head registered in one place, nothing else edited."""
    from torch import nn

    from resdet.models.utils.shape_spec import derive_channels

    class ConvFCBoxHead(nn.Module):
        def __init__(
            self,
            in_channels: int | None = None,
            conv_dim: int = 256,
            fc_dim: int = 1024,
            input_shape: ShapeSpec | None = None,
        ) -> None:
            super().__init__()
            in_channels = derive_channels(in_channels, input_shape, default=256)
            size = 7 if input_shape is None or input_shape.size is None else input_shape.size
            self.conv = nn.Conv2d(in_channels, conv_dim, 3, padding=1)
            self.fc = nn.Linear(conv_dim * size * size, fc_dim)
            self.out_channels = fc_dim

        def output_shape(self) -> dict:
            return {"box_features": ShapeSpec(self.out_channels)}

        def forward(self, x):
            return torch.relu(self.fc(torch.relu(self.conv(x)).flatten(1)))

    cfg = load_config(f"{repo_root}/configs/_base_/models/frcnn_vgg16.py").model.to_dict()
    cfg["roi_heads"]["box_head"] = dict(type=ConvFCBoxHead, conv_dim=16, fc_dim=24)
    with torch.device("meta"):
        model = MODELS.build(cfg)
    head = model.roi_heads.box_head
    assert head.conv.in_channels == 512 and head.fc.in_features == 16 * 7 * 7  # VGG conv5_3, RoI pool 7x7
    assert model.roi_heads.box_predictor.cls_score.in_features == 24
    cfg["roi_heads"]["box_head"]["in_channels"] = 256
    with (
        pytest.raises(
            ShapeError,
            match="model.roi_heads.box_head.in_channels = 256 but the box pooler's features have 512 channels",
        ),
        torch.device("meta"),
    ):
        MODELS.build(cfg)
