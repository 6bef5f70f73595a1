"""torchvision ``fasterrcnn_resnet50_fpn`` checkpoints -> resdet ``FasterRCNN`` (ResNet-50-FPN,
torchvision-compatible preprocessing, ``configs/frcnn_r50_fpn_tv.py``).

Renames: ``backbone.body.*`` -> ``backbone.*``, ``backbone.fpn.*`` -> ``neck.*``,
``rpn.head.conv.0.0.*`` -> ``rpn.head.conv.*``. torchvision's box predictor has the background
as class 0 and regresses it too; resdet puts the background last and has no background
regressor, so ``cls_score`` rows become ``[1..C, 0]`` and ``bbox_pred`` drops its first 4 rows
(resdet label = torchvision label - 1).
"""
from __future__ import annotations

import torch

from . import Converter, register_converter, register_identifier

StateDict = dict[str, torch.Tensor]
ARCH = "fasterrcnn_resnet50_fpn"
_RENAMES = (("backbone.body.", "backbone."), ("backbone.fpn.", "neck."), ("rpn.head.conv.0.0.", "rpn.head.conv."))
TV_MEAN = (0.485, 0.456, 0.406)  # torchvision's [0, 1] units: DetPreprocessor(value_scale=255)
TV_STD = (0.229, 0.224, 0.225)


def tv_fpn_model_cfg(num_classes: int = 90, min_size: int = 800, max_size: int = 1333) -> dict:
    """The resdet model config equivalent to torchvision's ``fasterrcnn_resnet50_fpn``
    (``num_classes`` without background: 90 for torchvision's COCO head)."""
    return dict(
        type="FasterRCNN",
        preprocessor=dict(type="DetPreprocessor", mean=TV_MEAN, std=TV_STD, size_divisor=32,
                          min_size=min_size, max_size=max_size, value_scale=255.0),
        backbone=dict(type="ResNet", depth=50, out_indices=(0, 1, 2, 3), norm="FrozenBN",
                      frozen_stages=1, stride_in_1x1=False),
        neck=dict(type="FPN", in_channels=(256, 512, 1024, 2048), out_channels=256,
                  in_features=("c2", "c3", "c4", "c5"), out_features=("p2", "p3", "p4", "p5", "p6")),
        rpn=dict(type="RPN", in_features=("p2", "p3", "p4", "p5", "p6"),
                 anchor_generator=dict(type="AnchorGenerator", sizes=((32,), (64,), (128,), (256,), (512,)),
                                       aspect_ratios=(0.5, 1.0, 2.0)),
                 head=dict(type="RPNHead", in_channels=256, num_anchors=3),
                 fg_iou_thresh=0.7, bg_iou_thresh=0.3, batch_size_per_image=256, positive_fraction=0.5,
                 pre_nms_top_n_train=2000, post_nms_top_n_train=2000,
                 pre_nms_top_n_test=1000, post_nms_top_n_test=1000, nms_thresh=0.7, min_size=1e-3),
        roi_heads=dict(type="StandardRoIHeads", num_classes=num_classes,
                       box_pooler=dict(type="RoIPooler", featmap_names=("p2", "p3", "p4", "p5"),
                                       output_size=7, sampling_ratio=2, aligned=False),
                       box_head=dict(type="FCBoxHead", in_channels=256, pooled_size=7, num_fcs=2, fc_dim=1024),
                       box_predictor=dict(type="BoxPredictor"),
                       fg_iou_thresh=0.5, bg_iou_thresh=0.5, batch_size_per_image=512, positive_fraction=0.25,
                       bbox_reg_weights=(10.0, 10.0, 5.0, 5.0), loss_bbox="smooth_l1", smooth_l1_beta=1.0 / 9,
                       score_thresh=0.05, nms_thresh=0.5, detections_per_img=100))


def convert_fasterrcnn(state_dict: StateDict) -> StateDict:
    """torchvision ``FasterRCNN`` (ResNet-FPN) names and class layout -> resdet's."""
    out = {}
    for key, value in state_dict.items():
        if key.endswith("num_batches_tracked"):
            continue
        for old, new in _RENAMES:
            if key.startswith(old):
                key = new + key[len(old):]
                break
        if key.startswith("roi_heads.box_predictor.cls_score."):
            value = torch.cat([value[1:], value[:1]])
        elif key.startswith("roi_heads.box_predictor.bbox_pred."):
            value = value[4:]
        out[key] = value
    return out


def _model_cfg(state_dict: StateDict) -> dict:
    return tv_fpn_model_cfg(num_classes=int(state_dict["roi_heads.box_predictor.cls_score.weight"].shape[0]) - 1)


def identify_torchvision_det(state_dict: StateDict) -> str | None:
    keys = state_dict.keys()
    if ("backbone.body.conv1.weight" in keys and "backbone.fpn.inner_blocks.0.0.weight" in keys
            and "rpn.head.cls_logits.weight" in keys and "roi_heads.box_head.fc6.weight" in keys
            and "roi_heads.mask_head.0.0.weight" not in keys
            and "backbone.body.layer1.0.conv3.weight" in keys
            and "backbone.body.layer3.6.conv1.weight" not in keys):
        return ARCH
    return None


register_converter("torchvision", ARCH, Converter(convert=convert_fasterrcnn, model_cfg=_model_cfg,
                                                  keep_from_model=("preprocessor.",), stride_on_3x3=True))
register_identifier("torchvision", identify_torchvision_det)
