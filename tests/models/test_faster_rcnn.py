"""Faster R-CNN: the C4 / VGG / FPN layouts build, train and predict; outputs map back to
the original image; test-time flip / multi-scale / box refinement; init from classifiers."""

import copy

import pytest
import torch

from resdet.engine.step import sum_losses
from resdet.models.detectors import DetectorTTA, DetPreprocessor
from resdet.registry import MODELS
from resdet.structures import flip_boxes
from resdet.utils.config import load_config
from resdet.utils.io import atomic_save

NUM_CLASSES = 3


def tiny_cfg(name: str, repo_root: str) -> dict:
    """The shipped model config, shrunk for 2 CPU cores (depth 18, few RoIs); the heads' input
    channels follow the backbone (derived from its output_shape())."""
    cfg = load_config(f"{repo_root}/configs/_base_/models/{name}.py").model.to_dict()
    cfg["num_classes"] = NUM_CLASSES
    cfg["rpn"].update(
        pre_nms_top_n_train=400,
        post_nms_top_n_train=64,
        pre_nms_top_n_test=300,
        post_nms_top_n_test=32,
        batch_size_per_image=64,
    )
    cfg["roi_heads"].update(batch_size_per_image=32)
    if name == "frcnn_r101_c4":
        cfg["backbone"]["depth"] = 18
        cfg["roi_heads"]["box_head"]["depth"] = 18
    elif name == "frcnn_r50_fpn":
        cfg["backbone"]["depth"] = 18
    elif name == "frcnn_vgg16":
        cfg["roi_heads"]["box_head"]["fc_dim"] = 64
    return cfg


def images_and_targets():
    g = torch.Generator().manual_seed(0)
    images = [
        torch.randint(0, 256, (3, 128, 128), generator=g, dtype=torch.uint8),
        torch.randint(0, 256, (3, 96, 112), generator=g, dtype=torch.uint8),
    ]
    targets = [
        {
            "boxes": torch.tensor([[10.0, 12.0, 60.0, 70.0], [40.0, 30.0, 120.0, 110.0]]),
            "labels": torch.tensor([0, 2]),
            "ignore": torch.tensor([False, False]),
        },
        {
            "boxes": torch.tensor([[20.0, 20.0, 80.0, 90.0], [0.0, 0.0, 30.0, 30.0]]),
            "labels": torch.tensor([1, 0]),
            "ignore": torch.tensor([False, True]),
        },
    ]
    return images, targets


@pytest.mark.parametrize("name", ["frcnn_r101_c4", "frcnn_vgg16", "frcnn_r50_fpn"])
def test_layout_trains_and_predicts(name, repo_root):
    torch.manual_seed(0)
    model = MODELS.build(tiny_cfg(name, repo_root))
    assert model.num_classes == NUM_CLASSES
    images, targets = images_and_targets()
    model.train()
    losses = model(images, targets)
    assert set(losses) == {"loss_rpn_cls", "loss_rpn_bbox", "loss_cls", "loss_bbox", "roi_acc"}
    total = sum_losses(losses)
    assert torch.isfinite(total)
    total.backward()
    assert model.rpn.head.conv.weight.grad.abs().sum() > 0
    assert model.roi_heads.box_predictor.cls_score.weight.grad.abs().sum() > 0
    frozen = model.backbone.conv1.weight if hasattr(model.backbone, "conv1") else model.backbone.features[0].weight
    assert not frozen.requires_grad and frozen.grad is None
    model.eval()
    model.roi_heads.score_thresh = 0.0
    with torch.no_grad():
        outputs = model(images)
    assert len(outputs) == 2
    for out, image in zip(outputs, images):
        assert set(out) == {"boxes", "scores", "labels"}
        k = len(out["boxes"])
        assert 0 < k <= 100
        assert out["boxes"].shape == (k, 4) and out["scores"].shape == (k,) and out["labels"].shape == (k,)
        assert out["labels"].min() >= 0 and out["labels"].max() < NUM_CLASSES
        assert out["boxes"][:, 2].max() <= image.shape[2] and out["boxes"][:, 3].max() <= image.shape[1]
        assert (out["boxes"][:, 2:] >= out["boxes"][:, :2]).all()


def test_training_with_an_image_without_objects(repo_root):
    torch.manual_seed(0)
    model = MODELS.build(tiny_cfg("frcnn_r50_fpn", repo_root)).train()
    images, targets = images_and_targets()
    targets[1] = {
        "boxes": torch.zeros(0, 4),
        "labels": torch.zeros(0, dtype=torch.int64),
        "ignore": torch.zeros(0, dtype=torch.bool),
    }
    losses = model(images, targets)
    assert all(torch.isfinite(v) for v in losses.values())
    assert losses["loss_rpn_bbox"] > 0 and losses["loss_bbox"] > 0  # image 0 still has objects


@pytest.mark.parametrize("norm", ["FrozenBN", "BN"])
def test_fused_fast_path_gives_the_same_detections(repo_root, norm):
    """Frozen BN (the pretrained recipe) and plain BN in eval mode (a model trained from
    scratch, e.g. frcnn_r50_c4_bccd.py) are both folded into the convolutions."""
    from resdet.models.detectors import optimize_for_inference

    torch.manual_seed(0)
    cfg = tiny_cfg("frcnn_r101_c4", repo_root)
    cfg["backbone"]["norm"] = cfg["roi_heads"]["box_head"]["norm"] = norm
    if norm == "BN":
        cfg["backbone"]["frozen_stages"] = -1
    model = MODELS.build(cfg).eval()
    assert any(type(m) is torch.nn.BatchNorm2d for m in model.modules()) == (norm == "BN")
    with torch.no_grad():
        for module in model.modules():  # non-trivial frozen statistics
            if hasattr(module, "running_var") and module.running_var is not None:
                module.running_var.uniform_(0.5, 2.0)
                module.running_mean.uniform_(-0.2, 0.2)
    images, _ = images_and_targets()
    with torch.inference_mode():
        expected = model(images)
        fast = optimize_for_inference(copy.deepcopy(model))
        got = fast(images)
    assert not any(type(m).__name__ in ("FrozenBatchNorm2d", "BatchNorm2d") for m in fast.modules())
    for a, b in zip(expected, got):
        assert len(a["boxes"]) == len(b["boxes"]) > 0
        assert torch.allclose(a["boxes"], b["boxes"], atol=1e-2)
        assert torch.allclose(a["scores"], b["scores"], atol=1e-4)


def test_c4_layout_matches_the_paper(repo_root):
    cfg = load_config(f"{repo_root}/configs/_base_/models/frcnn_r101_c4.py").model.to_dict()
    cfg["backbone"]["depth"] = 50
    cfg["roi_heads"]["box_head"]["depth"] = 50
    model = MODELS.build(cfg)
    assert model.rpn.anchor_generator.num_anchors_per_location == [15]
    feats = model.backbone(torch.zeros(1, 3, 64, 96))
    assert list(feats) == ["c4"] and feats["c4"].shape == (1, 1024, 4, 6)  # stride 16
    assert model.roi_heads.box_head(torch.zeros(2, 1024, 14, 14)).shape == (2, 2048)
    assert model.roi_heads.box_head.res5[0].conv1.stride == (2, 2)  # MSRA layout: stride in the 1x1
    assert (model.rpn.pre_nms_top_n, model.rpn.post_nms_top_n) == (
        {True: 12000, False: 6000},
        {True: 2000, False: 1000},
    )


def test_outputs_mapped_back_to_original(repo_root):
    torch.manual_seed(0)
    model = MODELS.build(tiny_cfg("frcnn_r50_fpn", repo_root)).eval()
    model.roi_heads.score_thresh = 0.0
    images, _ = images_and_targets()
    with torch.no_grad():
        plain = model(images)
        meta = [
            {"img_shape": (128, 128), "scale_factor": (2.0, 2.0), "flip": True, "orig_size": (64, 64)},
            {"img_shape": (96, 112), "scale_factor": (0.5, 0.5), "flip": False, "orig_size": (192, 224)},
        ]
        mapped = model(images, meta)
    expected0 = flip_boxes(plain[0]["boxes"], 128.0) / 2.0
    assert torch.allclose(mapped[0]["boxes"], expected0.clamp(min=0, max=64), atol=1e-4)
    assert torch.allclose(mapped[1]["boxes"], plain[1]["boxes"] * 2.0, atol=1e-4)


def test_preprocessor_pads_and_resizes_like_torchvision():
    from torchvision.models.detection.transform import GeneralizedRCNNTransform

    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    pre = DetPreprocessor(mean=mean, std=std, value_scale=255.0, min_size=100, max_size=160)
    tv = GeneralizedRCNNTransform(100, 160, list(mean), list(std)).eval()
    g = torch.Generator().manual_seed(0)
    images = [
        torch.randint(0, 256, (3, 50, 90), generator=g, dtype=torch.uint8),
        torch.randint(0, 256, (3, 70, 40), generator=g, dtype=torch.uint8),
    ]
    batch, sizes, factors = pre(images)
    expected, _ = tv([i.float() / 255 for i in images])
    assert sizes == [tuple(s) for s in expected.image_sizes] == [(88, 160), (175, 100)] or sizes == [
        tuple(s) for s in expected.image_sizes
    ]
    assert batch.shape == expected.tensors.shape and batch.shape[-1] % 32 == 0 and batch.shape[-2] % 32 == 0
    assert torch.equal(batch, expected.tensors)
    assert factors[0] == pytest.approx((sizes[0][1] / 90, sizes[0][0] / 50))
    # no resizing: only padding, images top-left, zeros elsewhere; float input is taken as normalised
    plain = DetPreprocessor(size_divisor=32)
    batch, sizes, factors = plain([torch.ones(3, 40, 50)])
    assert batch.shape == (1, 3, 64, 64) and sizes == [(40, 50)] and factors == [(1.0, 1.0)]
    assert batch[0, :, :40, :50].eq(1).all() and batch[0, :, 40:].eq(0).all()


def test_test_time_flip_multiscale_and_refinement(repo_root):
    torch.manual_seed(0)
    model = MODELS.build(tiny_cfg("frcnn_r50_fpn", repo_root)).eval()
    model.roi_heads.score_thresh = 0.0
    images, _ = images_and_targets()
    with torch.no_grad():
        # one view, no refinement: identical to plain inference
        single = DetectorTTA(model)(images)
        plain = model.predict(images)
        for a, b in zip(single, plain):
            assert torch.allclose(a["boxes"], b["boxes"]) and torch.equal(a["labels"], b["labels"])
        # flip averaging is mirror-consistent: TTA(flip(I)) == mirror(TTA(I))
        model.test_cfg = dict(flip=True)
        direct = model(images[:1])[0]
        mirrored = model([images[0].flip(-1)])[0]
        order_d, order_m = direct["scores"].argsort(), mirrored["scores"].argsort()
        assert len(direct["boxes"]) == len(mirrored["boxes"]) > 0
        assert torch.allclose(direct["scores"][order_d], mirrored["scores"][order_m], atol=1e-5)
        assert torch.allclose(flip_boxes(mirrored["boxes"][order_m], 128.0), direct["boxes"][order_d], atol=1e-3)
        # multi-scale + flip + refinement: sane boxes in input coordinates
        model.test_cfg = dict(flip=True, scales=(64, 96), refine_boxes=True)
        outputs = model(images[1:])
    for out, image in zip(outputs, images[1:]):
        assert 0 < len(out["boxes"]) <= 100
        assert out["boxes"].min() >= 0
        assert out["boxes"][:, 2].max() <= image.shape[2] + 1e-3 and out["boxes"][:, 3].max() <= image.shape[1] + 1e-3
        assert (out["scores"] > 0).all() and (out["scores"] <= 1).all()
    with pytest.raises(KeyError, match="test_cfg"):
        MODELS.build(dict(tiny_cfg("frcnn_r50_fpn", repo_root), test_cfg=dict(flips=True)))


def test_init_from_classification_checkpoints(tmp_path, repo_root):
    torch.manual_seed(0)
    # resdet classifier (tools/train_cls.py output) -> C4 detector: layer4 goes to the RoI head's res5
    classifier = MODELS.build(
        dict(type="ImageClassifier", num_classes=5, backbone=dict(type="ResNet", depth=18, norm="BN"))
    )
    with torch.no_grad():
        for p in classifier.parameters():
            p.normal_()
    path = str(tmp_path / "cls.pth")
    atomic_save({"model": classifier.state_dict(), "meta": {}}, path)
    cfg = tiny_cfg("frcnn_r101_c4", repo_root)
    cfg["init_cfg"] = dict(checkpoint=str(tmp_path / "absent.pth"), src="resdet_cls")
    MODELS.build(cfg)  # building never reads the pretraining checkpoint
    cfg["init_cfg"] = dict(checkpoint=path, src="resdet_cls")
    det = MODELS.build(cfg)
    assert det.init_report is None and not torch.equal(det.backbone.conv1.weight, classifier.backbone.conv1.weight)
    det.init_weights()
    assert torch.equal(det.roi_heads.box_head.res5[1].conv2.weight, classifier.backbone.layer4[1].conv2.weight)
    assert torch.equal(det.backbone.layer3[0].bn1.running_var, classifier.backbone.layer3[0].bn1.running_var)
    assert torch.equal(det.backbone.conv1.weight, classifier.backbone.conv1.weight)
    # the classifier's own preprocessor and fc have no place in the detector; they are reported
    assert sorted(det.init_report["unused"]) == [
        "head.fc.bias",
        "head.fc.weight",
        "preprocessor.mean",
        "preprocessor.std",
    ]
    assert det.init_report["missing"] == [] and det.init_report["mismatched"] == []
    # torchvision VGG-16 classifier -> VGG detector: features to the backbone, fc6/fc7 to the box head
    import torchvision

    tv_vgg = torchvision.models.vgg16(weights=None)
    tv_vgg.classifier[0] = torch.nn.Linear(512 * 7 * 7, 64)
    tv_vgg.classifier[3] = torch.nn.Linear(64, 64)
    tv_vgg.classifier[6] = torch.nn.Linear(64, 10)
    path = str(tmp_path / "vgg16.pth")
    atomic_save(tv_vgg.state_dict(), path)
    cfg = tiny_cfg("frcnn_vgg16", repo_root)
    cfg["init_cfg"] = dict(checkpoint=path, src="torchvision")
    det = MODELS.build(cfg)
    det.init_weights()
    assert torch.equal(det.backbone.features[28].weight, tv_vgg.features[28].weight)
    assert torch.equal(det.roi_heads.box_head.fc6.weight, tv_vgg.classifier[0].weight)
    assert torch.equal(det.roi_heads.box_head.fc7.bias, tv_vgg.classifier[3].bias)
    # torchvision: no preprocessor keys
    assert sorted(det.init_report["unused"]) == ["head.fc8.bias", "head.fc8.weight"]
    assert det.init_report["missing"] == []
    with pytest.raises(ValueError, match="src"):
        MODELS.build(dict(copy.deepcopy(cfg), init_cfg=dict(checkpoint=path, src="caffe")))
