"""Per-class RPN targets and losses, and the Localizer end to end (tiny models)."""

import math

import pytest
import torch

from resdet.engine.step import sum_losses
from resdet.models.dense_heads.per_class_rpn import PerClassRPN
from resdet.registry import MODELS
from resdet.utils.io import atomic_save

C = 3


def tiny_rpn(batch_size_per_image: int = 8) -> PerClassRPN:
    """One level, one 32 x 32 anchor per location, stride 16, on an 8-channel feature map."""
    return MODELS.build(
        dict(
            type="PerClassRPN",
            num_classes=C,
            batch_size_per_image=batch_size_per_image,
            anchor_generator=dict(type="AnchorGenerator", sizes=((32,),), aspect_ratios=(1.0,), strides=(16,)),
            head=dict(type="PerClassRPNHead", in_channels=8),
        )
    )


def target(boxes, labels):
    return {
        "boxes": torch.tensor(boxes, dtype=torch.float32).view(-1, 4),
        "labels": torch.tensor(labels, dtype=torch.int64),
        "image_labels": torch.tensor(labels[:1]),
    }


def test_only_the_ground_truth_class_slice_is_trained():
    torch.manual_seed(0)
    rpn = tiny_rpn().train()
    features = {"c4": torch.randn(2, 8, 4, 4)}
    # anchor at location (row 1, col 2) is [16, 0, 48, 32]: image 0's box of class 1 is exactly
    # that anchor (shifted 2 px so the regression target is not zero); image 1 has class 2
    targets = [target([[18, 0, 50, 32]], [1]), target([[0, 16, 32, 48]], [2])]
    logits, deltas, anchors, losses = rpn(features, [(64, 64), (64, 64)], (64, 64), targets)
    assert logits.shape == (2, 16, C) and deltas.shape == (2, 16, C, 4) and anchors.shape == (16, 4)
    (losses["loss_rpn_cls"] + losses["loss_rpn_bbox"]).backward()
    cls_grad = rpn.head.cls_logits.weight.grad.abs().sum(dim=(1, 2, 3))  # A*C = 3 rows
    reg_grad = rpn.head.bbox_pred.weight.grad.abs().sum(dim=(1, 2, 3)).view(C, 4)
    assert cls_grad[0] == 0 and cls_grad[1] > 0 and cls_grad[2] > 0  # class 0 untouched
    assert (reg_grad[0] == 0).all() and (reg_grad[1] > 0).all() and (reg_grad[2] > 0).all()


def test_regression_reaches_only_the_box_class_and_losses_match_by_hand():
    rpn = tiny_rpn(batch_size_per_image=16).train()
    for p in rpn.head.parameters():
        torch.nn.init.zeros_(p)  # logits 0 -> BCE log(2) on every sampled anchor
    features = {"c4": torch.randn(1, 8, 4, 4)}
    _, _, anchors, losses = rpn(features, [(64, 64)], (64, 64), [target([[18, 0, 50, 32]], [1])])
    assert losses["loss_rpn_cls"].item() == pytest.approx(math.log(2), abs=1e-6)
    # one positive (the best anchor; IoU 30/34 = 0.88), 12 negatives (IoU < 0.3), 3 ignored;
    # deltas 0, target dx = 2/32: smooth-L1 (beta 1/9) 0.5 * 0.0625^2 * 9 over 13 sampled
    assert losses["loss_rpn_bbox"].item() == pytest.approx(0.5 * 0.0625**2 * 9 / 13, rel=1e-5)
    losses["loss_rpn_bbox"].backward()
    grad = rpn.head.bbox_pred.bias.grad.view(C, 4)
    assert grad[1, 0] != 0 and (grad[0] == 0).all() and (grad[2] == 0).all()


def test_images_without_boxes_add_no_loss_but_keep_the_graph():
    rpn = tiny_rpn().train()
    empty = {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64)}
    _, _, _, losses = rpn({"c4": torch.randn(1, 8, 4, 4)}, [(64, 64)], (64, 64), [empty])
    assert losses["loss_rpn_cls"].item() == 0 and losses["loss_rpn_cls"].requires_grad


def test_class_proposals_pick_the_best_anchor_of_each_class():
    rpn = tiny_rpn().eval()
    anchors = torch.cat(rpn.anchor_generator((64, 64), [(4, 4)]))
    logits = torch.full((1, 16, C), -5.0)
    logits[0, 6, 0], logits[0, 9, 2], logits[0, 10, 2] = 3.0, 2.0, 1.0
    deltas = torch.zeros(1, 16, C, 4)
    boxes, scores = rpn.class_proposals(logits, deltas, anchors, torch.tensor([[2, 0]]), [(64, 64)], 1)
    assert torch.equal(boxes[0, :, 0], torch.stack([anchors[9], anchors[6]]).clamp(0, 64))
    assert scores[0, :, 0].tolist() == pytest.approx(
        [torch.sigmoid(torch.tensor(2.0)).item(), torch.sigmoid(torch.tensor(3.0)).item()]
    )
    # top 3 after NMS: class 2's anchors 9 and 10 overlap by IoU 1/3 < 0.7, both kept, ranked
    boxes, scores = rpn.class_proposals(logits, deltas, anchors, torch.tensor([[2]]), [(64, 64)], 3)
    assert torch.equal(boxes[0, 0, :2], torch.stack([anchors[9], anchors[10]]).clamp(0, 64))
    assert scores[0, 0, 0] > scores[0, 0, 1] > scores[0, 0, 2]


def tiny_localizer(rcnn: bool = False, classifier_depth: int | None = None, **kwargs) -> torch.nn.Module:
    """ResNet-18 conv1-4 trunk; a CIFAR ResNet-8 classifier (or a ResNet of ``classifier_depth``)."""
    backbone = (
        dict(type="CifarResNet", depth=8) if classifier_depth is None else dict(type="ResNet", depth=classifier_depth)
    )
    cfg = dict(
        type="Localizer",
        num_classes=C,
        topk=2,
        cls_input_size=32,
        classifier=dict(type="ImageClassifier", backbone=backbone),
        preprocessor=dict(type="DetPreprocessor", size_divisor=16),
        backbone=dict(type="ResNet", depth=18, num_stages=3, out_indices=(2,), norm="FrozenBN"),
        rpn=dict(
            type="PerClassRPN",
            anchor_generator=dict(type="AnchorGenerator", sizes=((24, 48),), aspect_ratios=(1.0,), strides=(16,)),
            head=dict(type="PerClassRPNHead", in_channels=256, conv_channels=32),
        ),
        **kwargs,
    )
    if rcnn:
        cfg["roi_heads"] = dict(
            type="StandardRoIHeads",
            batch_size_per_image=16,
            box_pooler=dict(type="RoIPooler", output_size=4, spatial_scale=1 / 16),
            box_head=dict(type="FCBoxHead", in_channels=256, pooled_size=4, num_fcs=1, fc_dim=32),
            box_predictor=dict(type="BoxPredictor"),
        )
        cfg.update(rcnn_proposals_train=4, rcnn_proposals_test=3)
    torch.manual_seed(0)
    return MODELS.build(cfg)


def batch_of_two():
    images = [
        torch.randint(0, 255, (3, 64, 64), dtype=torch.uint8),
        torch.randint(0, 255, (3, 48, 80), dtype=torch.uint8),
    ]
    targets = [target([[8, 8, 40, 40]], [1]), target([[30, 10, 70, 44], [0, 0, 20, 20]], [2, 2])]
    return images, targets


@pytest.mark.parametrize("rcnn", [False, True])
def test_localizer_trains_and_predicts_in_the_contract_format(rcnn):
    model = tiny_localizer(rcnn=rcnn).train()
    images, targets = batch_of_two()
    losses = model(images, targets)
    expected = {"loss_rpn_cls", "loss_rpn_bbox"} | ({"loss_rcnn_cls", "loss_rcnn_bbox", "roi_acc"} if rcnn else set())
    assert set(losses) == expected and all(torch.isfinite(v) for v in losses.values())
    sum_losses(losses).backward()
    assert model.backbone.layer3[0].conv1.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in model.classifier.parameters())  # frozen classifier
    assert not model.classifier.training  # kept in eval mode
    model.eval()
    outputs = model(
        images,
        [
            dict(
                t,
                orig_size=(128, 128) if i == 0 else (96, 160),
                scale_factor=(0.5, 0.5),
                flip=False,
                img_shape=tuple(im.shape[-2:]),
            )
            for i, (t, im) in enumerate(zip(targets, images))
        ],
    )
    assert len(outputs) == 2
    for out in outputs:
        assert out["labels"].shape == (2,) and out["scores"].shape == (2,) and out["boxes"].shape == (2, 4)
        assert out["class_boxes"].shape == (C, 4)
        assert out["scores"][0] >= out["scores"][1]
        assert torch.equal(out["boxes"], out["class_boxes"][out["labels"]])
    raw = model(images)  # without meta: the given images' coordinates, half the size
    assert torch.allclose(outputs[0]["class_boxes"], raw[0]["class_boxes"] * 2, atol=1e-4)
    assert raw[1]["class_boxes"][:, 2].max() <= 80 and raw[1]["class_boxes"][:, 3].max() <= 48


def test_train_classifier_adds_its_loss_and_needs_image_labels():
    model = tiny_localizer(train_classifier=True).train()
    images, targets = batch_of_two()
    losses = model(images, targets)
    assert {"loss_cls", "train_err"} <= set(losses)
    losses["loss_cls"].backward()
    assert model.classifier.head.fc.weight.grad.abs().sum() > 0
    assert model.classifier.training
    with pytest.raises(KeyError, match="loc_collate"):
        model([images[0]], [{"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64)}])


def test_init_weights_loads_the_classification_checkpoint(tmp_path):
    classifier = MODELS.build(dict(type="ImageClassifier", num_classes=C, backbone=dict(type="ResNet", depth=18)))
    ckpt = str(tmp_path / "cls.pth")
    atomic_save({"model": classifier.state_dict()}, ckpt)
    model = tiny_localizer(classifier_depth=18, init_cfg=dict(classifier=ckpt))
    model.init_weights()
    assert torch.equal(model.classifier.head.fc.weight, classifier.head.fc.weight)
    assert torch.equal(model.backbone.layer3[1].conv2.weight, classifier.backbone.layer3[1].conv2.weight)
    assert torch.equal(model.backbone.bn1.running_var, classifier.backbone.bn1.running_var)
    missing = tiny_localizer(init_cfg=dict(classifier=str(tmp_path / "nope.pth")))  # checked before loading
    with pytest.raises(FileNotFoundError, match="nope.pth"):
        missing.init_weights()


def test_multi_scale_testing_keeps_one_scale_box_per_class():
    model = tiny_localizer().eval()
    image = [torch.randint(0, 255, (3, 64, 64), dtype=torch.uint8)]
    per_scale = {}
    for scale in (32, 96):
        model.test_scales = [scale]
        per_scale[scale] = model(image)[0]["class_boxes"]
    model.test_scales = [32, 96]
    both = model(image)[0]["class_boxes"]
    assert both.shape == (C, 4) and both.max() <= 64  # input-image pixels
    for c in range(C):
        assert any(torch.allclose(both[c], per_scale[s][c]) for s in (32, 96))
    assert not torch.allclose(per_scale[32], per_scale[96])
