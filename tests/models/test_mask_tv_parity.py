"""torchvision's ``maskrcnn_resnet50_fpn`` weights load into resdet's ``MaskRCNN`` and give the
same detections and masks (random weights under a fixed seed, small images)."""
import torch
import torchvision

from resdet.models.converters import identify_checkpoint, load_weights
from resdet.models.converters.torchvision_mask import tv_mask_model_cfg
from resdet.registry import MODELS
from resdet.structures.mask_ops import paste_masks


def test_torchvision_paste_reproduced_exactly():
    from torchvision.models.detection.roi_heads import paste_masks_in_image
    g = torch.Generator().manual_seed(0)
    num, height, width = 40, 90, 120
    probs = (torch.rand(num, 28, 28, generator=g) > 0.5).float()  # saturated: many exact 0.5 ties
    corner = torch.rand(num, 2, generator=g) * torch.tensor([width, height])
    boxes = torch.cat([corner, corner + torch.rand(num, 2, generator=g) * 50 + 1], 1)
    boxes[:, 0::2] = boxes[:, 0::2].clamp(0, width)
    boxes[:, 1::2] = boxes[:, 1::2].clamp(0, height)
    ref = paste_masks_in_image(probs[:, None], boxes, (height, width))[:, 0] > 0.5
    ours = paste_masks(probs, boxes, height, width, mode="torchvision")
    assert ref.sum() > 1000
    assert torch.equal(ref, ours)


def test_maskrcnn_resnet50_fpn_parity():
    torch.manual_seed(0)
    tv = torchvision.models.detection.maskrcnn_resnet50_fpn(
        weights=None, weights_backbone=None, num_classes=4, min_size=96, max_size=128,
        box_score_thresh=0.0, box_detections_per_img=12, rpn_pre_nms_top_n_test=200,
        rpn_post_nms_top_n_test=50).eval()
    state = tv.state_dict()
    assert identify_checkpoint(state) == ("torchvision", "maskrcnn_resnet50_fpn")
    cfg = tv_mask_model_cfg(num_classes=3, min_size=96, max_size=128)
    cfg["rpn"].update(pre_nms_top_n_test=200, post_nms_top_n_test=50)
    cfg["roi_heads"].update(score_thresh=0.0, detections_per_img=12)
    model = MODELS.build(cfg).eval()
    report = load_weights(model, state)
    assert report["arch"] == "maskrcnn_resnet50_fpn" and not report["missing"] and not report["unexpected"]
    g = torch.Generator().manual_seed(1)
    images = [torch.randint(0, 256, (3, 90, 120), generator=g, dtype=torch.uint8),
              torch.randint(0, 256, (3, 110, 80), generator=g, dtype=torch.uint8)]
    with torch.no_grad():
        expected = tv([image.float() / 255 for image in images])
        ours = model(images)
    for ref, out, image in zip(expected, ours, images):
        assert len(ref["boxes"]) > 0 and len(out["boxes"]) == len(ref["boxes"])
        assert torch.equal(out["labels"], ref["labels"] - 1)
        assert (out["boxes"] - ref["boxes"]).abs().max() <= 0.01
        assert (out["scores"] - ref["scores"]).abs().max() <= 1e-4
        assert out["masks"].dtype == torch.bool and out["masks"].shape == (len(ref["boxes"]), *image.shape[1:])
        ref_masks = ref["masks"][:, 0] > 0.5
        inter = (ref_masks & out["masks"]).flatten(1).sum(1).float()
        union = (ref_masks | out["masks"]).flatten(1).sum(1).float()
        nonempty = union > 0
        assert nonempty.sum() > len(union) // 2
        assert (inter[nonempty] / union[nonempty]).min() >= 0.99
