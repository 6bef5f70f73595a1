"""torchvision ``maskrcnn_resnet50_fpn`` checkpoints -> resdet ``MaskRCNN`` (ResNet-50-FPN,
torchvision-compatible preprocessing and mask pasting, ``configs/maskrcnn_r50_fpn_tv.py``).

Everything but the mask branch converts as for ``fasterrcnn_resnet50_fpn``
(``torchvision_det``). Mask branch renames:
``roi_heads.mask_head.<i>.0.*`` (or the older ``mask_head.mask_fcn<i+1>.*``) ->
``roi_heads.mask_head.mask_fcn<i+1>.*``; ``roi_heads.mask_predictor.conv5_mask.*`` ->
``roi_heads.mask_head.deconv.*``; ``roi_heads.mask_predictor.mask_fcn_logits.*`` ->
``roi_heads.mask_head.predictor.*``, keeping the class channels of the box predictor's rule
(``torchvision_det``): for torchvision's 91-slot COCO head, the channels of the 80 used COCO
category ids (``COCO_CATEGORY_IDS``; background and the ten 'N/A' slots dropped; resdet label =
index of torchvision's label among the used ids); for any other count, all but the background
channel 0 (resdet label = torchvision label - 1).
"""

from __future__ import annotations

import re

import torch

from .loading import Converter, register_converter, register_identifier
from .torchvision_det import convert_fasterrcnn, num_class_slots, select_class_rows, tv_class_rows, tv_fpn_model_cfg

StateDict = dict[str, torch.Tensor]
ARCH = "maskrcnn_resnet50_fpn"
_HEAD_CONV = re.compile(r"^roi_heads\.mask_head\.(\d+)\.0\.(weight|bias)$")


def tv_mask_model_cfg(num_classes: int = 80, min_size: int = 800, max_size: int = 1333) -> dict:
    """The resdet model config equivalent to torchvision's ``maskrcnn_resnet50_fpn``
    (``num_classes`` without background: 80 for torchvision's 91-slot COCO head)."""
    cfg = tv_fpn_model_cfg(num_classes=num_classes, min_size=min_size, max_size=max_size)
    cfg["type"] = "MaskRCNN"
    cfg["paste_mode"] = "torchvision"
    cfg["mask_thresh"] = 0.5
    cfg["roi_heads"].update(
        type="MaskRoIHeads",
        mask_pooler=dict(
            type="RoIPooler", featmap_names=("p2", "p3", "p4", "p5"), output_size=14, sampling_ratio=2, aligned=False
        ),
        mask_head=dict(type="MaskHead", in_channels=256, num_convs=4, conv_dim=256),
    )
    return cfg


def convert_maskrcnn(state_dict: StateDict) -> StateDict:
    """torchvision ``MaskRCNN`` (ResNet-FPN) names and class layout -> resdet's."""
    box_part = {
        k: v for k, v in state_dict.items() if not k.startswith(("roi_heads.mask_head.", "roi_heads.mask_predictor."))
    }
    out = convert_fasterrcnn(box_part)
    rows = tv_class_rows(num_class_slots(state_dict))
    for key, value in state_dict.items():
        match = _HEAD_CONV.match(key)
        if match:
            out[f"roi_heads.mask_head.mask_fcn{int(match.group(1)) + 1}.{match.group(2)}"] = value
        elif key.startswith("roi_heads.mask_head.mask_fcn"):
            out[key] = value
        elif key.startswith("roi_heads.mask_predictor.conv5_mask."):
            out["roi_heads.mask_head.deconv." + key.rsplit(".", 1)[1]] = value
        elif key.startswith("roi_heads.mask_predictor.mask_fcn_logits."):
            out["roi_heads.mask_head.predictor." + key.rsplit(".", 1)[1]] = select_class_rows(value, rows)
    return out


def _model_cfg(state_dict: StateDict) -> dict:
    return tv_mask_model_cfg(num_classes=len(tv_class_rows(num_class_slots(state_dict))))


def identify_torchvision_mask(state_dict: StateDict) -> str | None:
    keys = state_dict.keys()
    if (
        "backbone.body.conv1.weight" in keys
        and "backbone.fpn.inner_blocks.0.0.weight" in keys
        and "roi_heads.mask_predictor.mask_fcn_logits.weight" in keys
        and "backbone.body.layer3.6.conv1.weight" not in keys
    ):
        return ARCH
    return None


register_converter(
    "torchvision",
    ARCH,
    Converter(convert=convert_maskrcnn, model_cfg=_model_cfg, keep_from_model=("preprocessor.",), stride_on_3x3=True),
)
register_identifier("torchvision", identify_torchvision_mask)
