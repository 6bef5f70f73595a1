"""Mask branch: target cropping, the loss on the ground-truth class only, pasting, and the
C4 / FPN Mask R-CNN layouts training and predicting masks in original image coordinates."""

import pytest
import torch

from resdet.engine.step import sum_losses
from resdet.models.roi_heads.mask_head import MaskHead, mask_loss
from resdet.registry import MODELS
from resdet.structures.mask_ops import crop_masks_to_boxes, paste_masks
from resdet.utils.config import load_config


def test_crop_targets_of_a_known_square():
    masks = torch.zeros(2, 100, 100, dtype=torch.uint8)
    masks[1, 30:60, 20:40] = 1  # x in [20, 40), y in [30, 60)
    boxes = torch.tensor(
        [
            [20.0, 30.0, 40.0, 60.0],  # the square itself
            [10.0, 30.0, 50.0, 60.0],  # twice as wide: the middle half
            [60.0, 60.0, 90.0, 90.0],
        ]
    )  # elsewhere: empty
    targets = crop_masks_to_boxes(masks, boxes, torch.tensor([1, 1, 1]), size=28)
    assert targets.shape == (3, 28, 28)
    assert targets[0].sum() == 28 * 28
    expected = torch.zeros(28, 28)
    expected[:, 7:21] = 1
    assert torch.equal(targets[1], expected)
    assert targets[2].sum() == 0
    # bitmaps at half the model's resolution: the same target through box_scale
    small = torch.zeros(1, 50, 50, dtype=torch.uint8)
    small[0, 15:30, 10:20] = 1
    scaled = crop_masks_to_boxes(small, boxes[:1], torch.tensor([0]), size=28, box_scale=(0.5, 0.5))
    assert scaled.sum() == 28 * 28


def test_mask_loss_uses_the_ground_truth_class_only():
    torch.manual_seed(0)
    head = MaskHead(in_channels=8, num_classes=3, num_convs=1, conv_dim=8)
    logits = torch.randn(4, 3, 28, 28)
    labels = torch.tensor([0, 2, 2, 1])
    targets = (torch.rand(4, 28, 28) > 0.5).float()
    loss = mask_loss(head.select(logits, labels), targets)
    chosen = logits[torch.arange(4), labels]
    manual = -(targets * torch.log(torch.sigmoid(chosen)) + (1 - targets) * torch.log(1 - torch.sigmoid(chosen)))
    assert loss.item() == pytest.approx(manual.mean().item(), rel=1e-5)
    changed = logits.clone()
    changed[torch.arange(4), (labels + 1) % 3] += 100.0  # other classes' channels: no effect
    assert mask_loss(head.select(changed, labels), targets).item() == pytest.approx(loss.item(), rel=1e-6)
    changed[0, 0] += 5.0  # the ground-truth channel: changes the loss
    assert mask_loss(head.select(changed, labels), targets).item() != pytest.approx(loss.item(), rel=1e-3)
    assert mask_loss(torch.zeros(0, 28, 28, requires_grad=True), torch.zeros(0, 28, 28)).item() == 0.0


def test_paste_box_filling_mask_fills_the_box():
    probs = torch.ones(2, 28, 28)
    boxes = torch.tensor([[10.0, 20.0, 50.0, 40.0], [0.0, 0.0, 80.0, 60.0]])
    masks = paste_masks(probs, boxes, 60, 80)
    assert masks.dtype == torch.bool and masks.shape == (2, 60, 80)
    box0 = torch.zeros(60, 80, dtype=torch.bool)
    box0[20:40, 10:50] = True
    assert torch.equal(masks[0], box0)
    assert masks[1].all()
    half = torch.zeros(1, 28, 28)
    half[:, :, :14] = 1  # left half of the mask -> left half of the box
    left = paste_masks(half, boxes[:1], 60, 80)[0]
    assert left[20:40, 10:30].all() and not left[:, 30:].any() and left.sum() == 20 * 20
    # chunking gives the same result as one batch
    many = torch.rand(7, 28, 28)
    corners = torch.rand(7, 2) * 50
    many_boxes = torch.cat([corners, corners + torch.rand(7, 2) * 30 + 1], 1)
    assert torch.equal(
        paste_masks(many, many_boxes, 60, 80), paste_masks(many, many_boxes, 60, 80, max_chunk_elements=1)
    )
    assert paste_masks(torch.zeros(0, 28, 28), torch.zeros(0, 4), 60, 80).shape == (0, 60, 80)
    with pytest.raises(ValueError, match="allowed values: continuous, torchvision"):
        paste_masks(probs, boxes, 60, 80, mode="nearest")


def tiny_mask_cfg(name, repo_root):
    cfg = load_config(f"{repo_root}/configs/_base_/models/{name}.py").model.to_dict()
    cfg["num_classes"] = 3
    cfg["rpn"].update(
        pre_nms_top_n_train=300,
        post_nms_top_n_train=48,
        pre_nms_top_n_test=200,
        post_nms_top_n_test=24,
        batch_size_per_image=64,
    )
    cfg["roi_heads"].update(batch_size_per_image=32, detections_per_img=10)
    cfg["backbone"]["depth"] = 18  # the heads' input channels follow (derived from output_shape())
    if name == "maskrcnn_r101_c4":
        cfg["roi_heads"]["box_head"]["depth"] = 18
        cfg["roi_heads"]["mask_head"]["conv_dim"] = 32
    else:
        cfg["neck"]["out_channels"] = 32
        cfg["roi_heads"]["box_head"]["fc_dim"] = 64
        cfg["roi_heads"]["mask_head"]["conv_dim"] = 16
    return cfg


def _data():
    g = torch.Generator().manual_seed(0)
    images = [
        torch.randint(0, 256, (3, 96, 128), generator=g, dtype=torch.uint8),
        torch.randint(0, 256, (3, 80, 96), generator=g, dtype=torch.uint8),
    ]
    masks0 = torch.zeros(2, 96, 128, dtype=torch.uint8)
    masks0[0, 12:70, 10:60] = 1
    masks0[1, 30:90, 40:120] = 1
    masks1 = torch.zeros(2, 80, 96, dtype=torch.uint8)
    masks1[0, 20:70, 20:80] = 1
    masks1[1, :30, :30] = 1
    targets = [
        {
            "boxes": torch.tensor([[10.0, 12.0, 60.0, 70.0], [40.0, 30.0, 120.0, 90.0]]),
            "labels": torch.tensor([0, 0]),
            "ignore": torch.tensor([False, False]),
            "masks": masks0,
        },
        {
            "boxes": torch.tensor([[20.0, 20.0, 80.0, 70.0], [0.0, 0.0, 30.0, 30.0]]),
            "labels": torch.tensor([0, 2]),
            "ignore": torch.tensor([False, True]),
            "masks": masks1,
        },
    ]
    return images, targets


@pytest.mark.parametrize("name,mask_size", [("maskrcnn_r101_c4", 14), ("maskrcnn_r50_fpn", 28)])
def test_mask_rcnn_layouts_train_and_predict(name, mask_size, repo_root):
    torch.manual_seed(0)
    model = MODELS.build(tiny_mask_cfg(name, repo_root))
    images, targets = _data()
    model.train()
    losses = model(images, targets)
    assert set(losses) >= {"loss_rpn_cls", "loss_rpn_bbox", "loss_cls", "loss_bbox", "loss_mask"}
    assert 0.3 < losses["loss_mask"].item() < 1.0  # BCE near log 2 at initialisation
    sum_losses(losses).backward()
    grad = model.roi_heads.mask_head.predictor.weight.grad.flatten(1).abs().sum(1)
    assert grad[0] > 0 and grad[1] == 0 and grad[2] == 0  # only class 0 has non-ignored instances
    with pytest.raises(KeyError, match="target 'masks'"):
        model(images, [{k: v for k, v in t.items() if k != "masks"} for t in targets])
    model.eval()
    model.roi_heads.score_thresh = 0.0
    with torch.no_grad():
        det = model.roi_heads  # the mask size of the layout
        assert det._mask_size() == mask_size
        meta = [
            dict(orig_size=(192, 256), img_shape=(96, 128), scale_factor=(0.5, 0.5), flip=True),
            dict(orig_size=(80, 96), img_shape=(80, 96), scale_factor=(1.0, 1.0), flip=False),
        ]
        outputs = model(images, meta)
        plain = model(images)
    for out, size in zip(outputs, [(192, 256), (80, 96)]):
        k = len(out["boxes"])
        assert k > 0 and out["masks"].shape == (k, *size) and out["masks"].dtype == torch.bool
        # every pixel of a pasted mask lies within a pixel of its box
        ys, xs = torch.arange(size[0]), torch.arange(size[1])
        inside_x = (xs[None] + 1 >= out["boxes"][:, :1].floor()) & (xs[None] <= out["boxes"][:, 2:3].ceil())
        inside_y = (ys[None] + 1 >= out["boxes"][:, 1:2].floor()) & (ys[None] <= out["boxes"][:, 3:4].ceil())
        assert not (out["masks"] & ~(inside_y[:, :, None] & inside_x[:, None, :])).any()
    # the unmapped prediction of image 1 equals the mapped one (identity meta)
    assert torch.equal(plain[1]["masks"], outputs[1]["masks"])
    assert plain[0]["masks"].shape[1:] == (96, 128)
    # test-time flip: boxes averaged over the views, masks from the plain view
    model.test_cfg = {"flip": True}
    with torch.no_grad():
        flipped = model(images[:1])
    assert flipped[0]["masks"].shape == (len(flipped[0]["boxes"]), 96, 128) and len(flipped[0]["boxes"]) > 0


def test_mask_branch_takes_explicit_mask_scales(repo_root):
    """The bitmap scale is a required argument of the mask branch in training (no silent
    (1, 1)): half-resolution bitmaps with mask_scales (0.5, 0.5) give the full-resolution loss."""
    torch.manual_seed(0)
    model = MODELS.build(tiny_mask_cfg("maskrcnn_r50_fpn", repo_root)).train()
    images, targets = _data()
    batch, sizes, _ = model.preprocessor(images)
    features = model.extract_features(batch)
    proposals, _ = model.rpn(features, sizes, batch.shape[-2:], targets)
    with pytest.raises(ValueError, match="mask_scales"):
        model.roi_heads(features, proposals, sizes, targets)
    half = [dict(t, masks=t["masks"][:, ::2, ::2]) for t in targets]  # the blocks sit on even pixels
    losses = []
    for masks_targets, scale in ((targets, (1.0, 1.0)), (half, (0.5, 0.5))):
        torch.manual_seed(1)
        _, out = model.roi_heads(features, proposals, sizes, masks_targets, mask_scales=[scale, scale])
        losses.append(out["loss_mask"])
    assert losses[0].item() == pytest.approx(losses[1].item(), rel=1e-6)
