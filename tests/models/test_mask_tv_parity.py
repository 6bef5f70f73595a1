"""torchvision's ``maskrcnn_resnet50_fpn`` files load into the shipped
``configs/maskrcnn_r50_fpn_tv.py`` and give the same detections and masks: a COCO file (91
class slots -> the 80 COCO classes) unchanged, a model fine-tuned on 3 classes with the class
count set. Random weights under a fixed seed, small images (see ``test_tv_parity``)."""

import torch
import torchvision

# the 91-slot torchvision model, its class logits and the images are the Faster R-CNN test's
from test_tv_parity import IMAGE_SIZES, make_image, torchvision_coco_model_and_outputs
from torchvision.models.detection import maskrcnn_resnet50_fpn

from resdet.apis import inference_detector, init_model
from resdet.models.converters import identify_checkpoint
from resdet.models.converters.torchvision_det import COCO_CATEGORY_IDS, tv_labels_to_resdet
from resdet.structures.mask_ops import paste_masks

CONFIG = "configs/maskrcnn_r50_fpn_tv.py"


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


def mask_ious(ref: dict, out: dict) -> torch.Tensor:
    """IoU of each resdet mask with torchvision's (its soft masks thresholded at 0.5), over the
    detections where either is non-empty."""
    ref_masks = ref["masks"][:, 0] > 0.5
    inter = (ref_masks & out["masks"]).flatten(1).sum(1).float()
    union = (ref_masks | out["masks"]).flatten(1).sum(1).float()
    return inter[union > 0] / union[union > 0]


def assert_same_detections(ref: dict, out: dict, image_shape: tuple, labels: torch.Tensor) -> None:
    assert len(out["boxes"]) == len(ref["boxes"]) > 0
    assert torch.equal(out["labels"], labels)
    assert (out["boxes"] - ref["boxes"]).abs().max() <= 0.01
    assert (out["scores"] - ref["scores"]).abs().max() <= 1e-4
    assert out["masks"].dtype == torch.bool and out["masks"].shape == (len(ref["boxes"]), *image_shape)
    ious = mask_ious(ref, out)
    assert len(ious) > len(ref["boxes"]) // 2
    assert ious.min() >= 0.99


def test_zoo_file_in_shipped_config_gives_torchvision_masks(tmp_path):
    images = [make_image(*IMAGE_SIZES[0], seed=0)]  # one image: the mask head runs per detection
    tensors = [torch.from_numpy(image).permute(2, 0, 1).float() / 255 for image in images]
    tv, expected = torchvision_coco_model_and_outputs(maskrcnn_resnet50_fpn, tensors)
    path = str(tmp_path / "maskrcnn_resnet50_fpn_coco.pth")
    torch.save(tv.state_dict(), path)  # a bare state_dict, as torchvision's zoo file
    assert identify_checkpoint(tv.state_dict()) == ("torchvision", "maskrcnn_resnet50_fpn")
    model = init_model(CONFIG, path)  # the config and the file as shipped
    report = model.checkpoint_report
    assert report["missing"] == [] and report["unexpected"] == [] and report["mismatched"] == []
    # mask logits: resdet class k is torchvision's channel COCO_CATEGORY_IDS[k]
    assert torch.equal(
        model.roi_heads.mask_head.predictor.weight,
        tv.roi_heads.mask_predictor.mask_fcn_logits.weight[list(COCO_CATEGORY_IDS)],
    )
    got = inference_detector(model, images)  # the config's test pipeline: the model resizes
    for ref, out, image in zip(expected, got, images):
        assert len(ref["boxes"]) >= 10
        assert_same_detections(ref, out, image.shape[:2], tv_labels_to_resdet(ref["labels"]))
        assert torch.equal(torch.tensor(COCO_CATEGORY_IDS)[out["labels"]], ref["labels"])
    assert expected[0]["labels"].unique().numel() >= 4


def test_fine_tuned_model_parity(tmp_path):
    """torchvision fine-tuned on 3 classes (4 slots): resdet label = torchvision label - 1. The
    shipped config with the class count (and, for CPU time, the sizes) set."""
    torch.manual_seed(0)
    tv = torchvision.models.detection.maskrcnn_resnet50_fpn(
        weights=None,
        weights_backbone=None,
        num_classes=4,
        min_size=96,
        max_size=128,
        box_score_thresh=0.0,
        box_detections_per_img=12,
        rpn_pre_nms_top_n_test=200,
        rpn_post_nms_top_n_test=50,
    ).eval()
    path = str(tmp_path / "maskrcnn_fine_tuned.pth")
    torch.save(tv.state_dict(), path)
    model = init_model(
        CONFIG,
        path,
        cfg_options={
            "model.num_classes": 3,
            "model.preprocessor.min_size": 96,
            "model.preprocessor.max_size": 128,
            "model.rpn.pre_nms_top_n_test": 200,
            "model.rpn.post_nms_top_n_test": 50,
            "model.roi_heads.score_thresh": 0.0,
            "model.roi_heads.detections_per_img": 12,
        },
    )
    assert model.checkpoint_report["arch"] == "maskrcnn_resnet50_fpn"
    assert not model.checkpoint_report["missing"] and not model.checkpoint_report["unexpected"]
    g = torch.Generator().manual_seed(1)
    images = [
        torch.randint(0, 256, (3, 90, 120), generator=g, dtype=torch.uint8),
        torch.randint(0, 256, (3, 110, 80), generator=g, dtype=torch.uint8),
    ]
    with torch.no_grad():
        expected = tv([image.float() / 255 for image in images])
        ours = model(images)
    for ref, out, image in zip(expected, ours, images):
        assert_same_detections(ref, out, image.shape[1:], ref["labels"] - 1)
