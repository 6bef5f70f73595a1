"""Mask R-CNN R50-FPN: resdet against torchvision's ``MaskRCNN`` R50-FPN (as
``maskrcnn_resnet50_fpn`` builds it for fine-tuning: frozen BN, stem and first stage frozen)
with the same weights and inputs, in one run.

    python tools/benchmark.py mask [--device cpu|cuda|all] [--iters 3] [--train-iters 2]
                                   [--height 800 --width 1333] [--threads N] [--json OUT]

Reports inference latency per image (batch 1, masks pasted into the image) and the training
step time at batch 2 (forward, backward, SGD step, with mask targets), as ratios resdet /
torchvision (<= 1.0: resdet is not slower). resdet's inference uses its fast path (frozen BN
folded, channels_last, ``torch.inference_mode``) and torchvision-compatible pasting. Weights
are random (seed 0, no downloads); before timing, the detections are compared.
"""

from __future__ import annotations

import torch

from ..models.converters.torchvision_mask import tv_mask_model_cfg
from ._pair import box_targets, pair_main


def mask_targets(images: list[torch.Tensor], device: torch.device) -> list[dict]:
    """The box targets of the detection benchmark plus an elliptic mask inside each box."""
    targets = box_targets(images, device)
    for target, image in zip(targets, images):
        h, w = image.shape[-2:]
        ys = torch.arange(h, device=device, dtype=torch.float32)[None, :, None]
        xs = torch.arange(w, device=device, dtype=torch.float32)[None, None, :]
        b = target["boxes"][:, :, None, None]
        cx, cy = (b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2
        rx, ry = (b[:, 2] - b[:, 0]) / 2, (b[:, 3] - b[:, 1]) / 2
        target["masks"] = (((xs - cx) / rx) ** 2 + ((ys - cy) / ry) ** 2 <= 1).to(torch.uint8)
    return targets


def mask_agreement(expected: dict, got: dict) -> dict:
    """Share of masks with IoU >= 0.99 against torchvision's (the fast path, with BN folded,
    may reorder near-tied detections, so this is a share, not an all-or-nothing check)."""
    if len(expected["boxes"]) != len(got["boxes"]) or not len(got["boxes"]):
        return {}
    ref = expected["masks"][:, 0] > 0.5
    inter = (ref & got["masks"]).flatten(1).sum(1).float()
    union = (ref | got["masks"]).flatten(1).sum(1).float().clamp(min=1)
    return {"check_masks_iou_ge_0.99": float(((inter / union) >= 0.99).float().mean())}


def main(argv=None) -> int:
    return pair_main(
        argv,
        "tools/benchmark.py mask",
        __doc__,
        "Mask R-CNN R50-FPN",
        "mask",
        tv_mask_model_cfg,
        bf16=False,
        make_targets=mask_targets,
        check=mask_agreement,
        describe_check=lambda res: (
            f"; share of masks with IoU >= 0.99 {res.get('check_masks_iou_ge_0.99', float('nan')):.2f}"
        ),
    )
