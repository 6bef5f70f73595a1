"""torchvision ``fasterrcnn_resnet50_fpn`` checkpoints -> resdet ``FasterRCNN`` (ResNet-50-FPN,
torchvision-compatible preprocessing, ``configs/frcnn_r50_fpn_tv.py``).

Renames: ``backbone.body.*`` -> ``backbone.*``, ``backbone.fpn.*`` -> ``neck.*``,
``rpn.head.conv.0.0.*`` -> ``rpn.head.conv.*``. torchvision's box predictor has the background
as class 0 and regresses it too; resdet puts the background last and has no background
regressor.

Class layout (one rule, decided by the checkpoint alone, whatever model it is loaded into):

* **91 slots = torchvision's COCO layout** (background + COCO category ids 1..90, of which
  the ten ids in ``COCO_UNUSED_IDS`` are 'N/A' slots no annotation uses). The head becomes
  resdet's **80** contiguous COCO classes: ``cls_score`` keeps the rows of the 80 used ids
  (``COCO_CATEGORY_IDS``, ascending) then the background row; ``bbox_pred`` keeps the 4 rows of
  each used id. resdet label ``k`` is COCO category id ``COCO_CATEGORY_IDS[k]`` = the index of
  torchvision's label among the used ids -- the contiguous labels ``CocoDataset`` gives
  ``instances_*2017.json`` (ids ascending), so evaluation writes COCO's ids back. The 'N/A'
  rows are dropped: a trained COCO head never fires them. A 91-slot checkpoint therefore loads
  into an 80-class model (``configs/*_tv.py``), never into a 90-class one.
* **any other count** ``N + 1`` (torchvision fine-tuned on ``N`` classes): all rows kept,
  ``cls_score`` rows ``[1..N, 0]``, ``bbox_pred`` without its first 4 rows; resdet label =
  torchvision label - 1, ``N`` classes.

``tv_class_rows(num_slots)`` gives the torchvision rows (labels) behind resdet's labels.
"""

from __future__ import annotations

import torch

from ...utils.errors import CheckpointError
from .loading import Converter, register_converter, register_identifier

StateDict = dict[str, torch.Tensor]
ARCH = "fasterrcnn_resnet50_fpn"
_RENAMES = (("backbone.body.", "backbone."), ("backbone.fpn.", "neck."), ("rpn.head.conv.0.0.", "rpn.head.conv."))
TV_MEAN = (0.485, 0.456, 0.406)  # torchvision's [0, 1] units: DetPreprocessor(value_scale=255)
TV_STD = (0.229, 0.224, 0.225)
TV_COCO_SLOTS = 91  # torchvision's COCO heads: background + category ids 1..90
COCO_UNUSED_IDS = (12, 26, 29, 30, 45, 66, 68, 69, 71, 83)  # 'N/A' slots of torchvision's COCO heads
COCO_CATEGORY_IDS = tuple(i for i in range(1, TV_COCO_SLOTS) if i not in COCO_UNUSED_IDS)  # the 80 used


def tv_class_rows(num_slots: int) -> list[int]:
    """The torchvision class rows (= torchvision labels) behind resdet labels ``0..C-1`` of a
    head with ``num_slots`` rows (background included): ``COCO_CATEGORY_IDS`` for the 91-slot
    COCO layout, else ``1..num_slots-1``. resdet label = ``rows.index(torchvision label)``."""
    if num_slots < 2:
        raise CheckpointError(f"a torchvision box predictor needs >= 2 class slots (background + 1), got {num_slots}")
    return list(COCO_CATEGORY_IDS) if num_slots == TV_COCO_SLOTS else list(range(1, num_slots))


def tv_labels_to_resdet(labels: torch.Tensor, num_slots: int = TV_COCO_SLOTS) -> torch.Tensor:
    """torchvision labels (``K``, int) of a ``num_slots`` head -> resdet labels; -1 for labels
    resdet has no class for (background, COCO's 'N/A' slots)."""
    rows = tv_class_rows(num_slots)
    lookup = torch.full((num_slots,), -1, dtype=torch.int64)
    lookup[rows] = torch.arange(len(rows))
    return lookup.to(labels.device)[labels]


def select_class_rows(value: torch.Tensor, rows: list[int], per_class: int = 1) -> torch.Tensor:
    """Rows ``rows`` of a per-class tensor with ``per_class`` consecutive rows per class (4 for
    ``bbox_pred``), in that order."""
    index = (torch.tensor(rows)[:, None] * per_class + torch.arange(per_class)).flatten()
    return value.index_select(0, index)


def tv_fpn_model_cfg(num_classes: int = 80, min_size: int = 800, max_size: int = 1333) -> dict:
    """The resdet model config equivalent to torchvision's ``fasterrcnn_resnet50_fpn``
    (``num_classes`` without background: 80 for torchvision's 91-slot COCO head)."""
    return dict(
        type="FasterRCNN",
        preprocessor=dict(
            type="DetPreprocessor",
            mean=TV_MEAN,
            std=TV_STD,
            size_divisor=32,
            min_size=min_size,
            max_size=max_size,
            value_scale=255.0,
        ),
        backbone=dict(
            type="ResNet", depth=50, out_indices=(0, 1, 2, 3), norm="FrozenBN", frozen_stages=1, stride_in_1x1=False
        ),
        neck=dict(
            type="FPN",
            in_channels=(256, 512, 1024, 2048),
            out_channels=256,
            in_features=("c2", "c3", "c4", "c5"),
            out_features=("p2", "p3", "p4", "p5", "p6"),
        ),
        rpn=dict(
            type="RPN",
            in_features=("p2", "p3", "p4", "p5", "p6"),
            anchor_generator=dict(
                type="AnchorGenerator", sizes=((32,), (64,), (128,), (256,), (512,)), aspect_ratios=(0.5, 1.0, 2.0)
            ),
            head=dict(type="RPNHead", in_channels=256, num_anchors=3),
            fg_iou_thresh=0.7,
            bg_iou_thresh=0.3,
            batch_size_per_image=256,
            positive_fraction=0.5,
            pre_nms_top_n_train=2000,
            post_nms_top_n_train=2000,
            pre_nms_top_n_test=1000,
            post_nms_top_n_test=1000,
            nms_thresh=0.7,
            min_size=1e-3,
        ),
        roi_heads=dict(
            type="StandardRoIHeads",
            num_classes=num_classes,
            box_pooler=dict(
                type="RoIPooler", featmap_names=("p2", "p3", "p4", "p5"), output_size=7, sampling_ratio=2, aligned=False
            ),
            box_head=dict(type="FCBoxHead", in_channels=256, pooled_size=7, num_fcs=2, fc_dim=1024),
            box_predictor=dict(type="BoxPredictor"),
            fg_iou_thresh=0.5,
            bg_iou_thresh=0.5,
            batch_size_per_image=512,
            positive_fraction=0.25,
            bbox_reg_weights=(10.0, 10.0, 5.0, 5.0),
            loss_bbox="smooth_l1",
            smooth_l1_beta=1.0 / 9,
            score_thresh=0.05,
            nms_thresh=0.5,
            detections_per_img=100,
        ),
    )


def convert_fasterrcnn(state_dict: StateDict) -> StateDict:
    """torchvision ``FasterRCNN`` (ResNet-FPN) names and class layout -> resdet's (91 slots:
    the 80 COCO classes, see the module docstring)."""
    rows = tv_class_rows(num_class_slots(state_dict))
    out = {}
    for key, value in state_dict.items():
        if key.endswith("num_batches_tracked"):
            continue
        for old, new in _RENAMES:
            if key.startswith(old):
                key = new + key[len(old) :]
                break
        if key.startswith("roi_heads.box_predictor.cls_score."):
            value = select_class_rows(value, rows + [0])  # background last
        elif key.startswith("roi_heads.box_predictor.bbox_pred."):
            value = select_class_rows(value, rows, per_class=4)
        out[key] = value
    return out


def num_class_slots(state_dict: StateDict) -> int:
    """Rows of torchvision's ``cls_score`` (classes + background)."""
    key = "roi_heads.box_predictor.cls_score.weight"
    if key not in state_dict:
        raise CheckpointError(f"torchvision detector checkpoint without {key} (its box predictor)")
    return int(state_dict[key].shape[0])


def _model_cfg(state_dict: StateDict) -> dict:
    return tv_fpn_model_cfg(num_classes=len(tv_class_rows(num_class_slots(state_dict))))


def identify_torchvision_det(state_dict: StateDict) -> str | None:
    keys = state_dict.keys()
    if (
        "backbone.body.conv1.weight" in keys
        and "backbone.fpn.inner_blocks.0.0.weight" in keys
        and "rpn.head.cls_logits.weight" in keys
        and "roi_heads.box_head.fc6.weight" in keys
        and "roi_heads.mask_head.0.0.weight" not in keys
        and "backbone.body.layer1.0.conv3.weight" in keys
        and "backbone.body.layer3.6.conv1.weight" not in keys
    ):
        return ARCH
    return None


register_converter(
    "torchvision",
    ARCH,
    Converter(convert=convert_fasterrcnn, model_cfg=_model_cfg, keep_from_model=("preprocessor.",), stride_on_3x3=True),
)
register_identifier("torchvision", identify_torchvision_det)
