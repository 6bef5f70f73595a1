"""Helpers of the export tests: tiny detectors built from the shipped configs (ResNet-18, few
proposals, small test resize), random weights under a fixed seed with the class scores scaled
so they detect, on the fast path ``resdet export`` uses (frozen BN folded); and the comparison
of two detection sets."""

import os

import numpy as np
import torch

from resdet.apis import init_model
from resdet.models.detectors import optimize_for_inference

TEST_RESIZE = [dict(type="ResizeShortestEdge", short_edge_length=160, max_size=224)]
SMALL = {
    "model.num_classes": 3,
    "model.rpn.pre_nms_top_n_test": 300,
    "model.rpn.post_nms_top_n_test": 40,
    "test_pipeline": TEST_RESIZE,
}
RESNET18 = {"model.backbone.depth": 18, "model.backbone.norm": "FrozenBN"}
CONFIGS = {
    "c4": (
        "frcnn_r50_c4_bccd.py",
        {**RESNET18, "model.roi_heads.box_head.depth": 18, "model.roi_heads.box_head.norm": "FrozenBN"},
    ),
    "vgg": ("frcnn_vgg16_voc0712.py", {"model.roi_heads.box_head.fc_dim": 64}),
    "fpn": ("frcnn_r50_fpn_coco.py", RESNET18),
    "mask_c4": ("maskrcnn_r101_c4_coco.py", {**RESNET18, "model.roi_heads.box_head.depth": 18}),
    "mask_fpn": ("maskrcnn_r50_fpn_fruits.py", RESNET18),
    # torchvision-compatible: the model resizes (DetPreprocessor min_size / max_size), no pipeline resize
    "mask_tv": (
        "maskrcnn_r50_fpn_tv.py",
        {**RESNET18, "test_pipeline": [], "model.preprocessor.min_size": 150, "model.preprocessor.max_size": 210},
    ),
}


def build_tiny(repo_root: str, kind: str, seed: int = 0):
    name, options = CONFIGS[kind]
    torch.manual_seed(seed)
    model = init_model(os.path.join(repo_root, "configs", name), cfg_options={**SMALL, **options})
    with torch.no_grad():
        for module in model.modules():  # non-trivial frozen statistics, then folded
            if hasattr(module, "running_var") and module.running_var is not None:
                module.running_var.uniform_(0.5, 2.0)
                module.running_mean.uniform_(-0.2, 0.2)
        model.roi_heads.box_predictor.cls_score.weight.mul_(40.0)  # spread the class scores
    return optimize_for_inference(model)


def _as_numpy(result: dict) -> dict:
    return {
        k: (v.detach().cpu().numpy() if isinstance(v, torch.Tensor) else np.asarray(v))
        for k, v in result.items()
        if k in ("boxes", "scores", "labels", "masks")
    }


def assert_same_detections(ref: dict, got: dict, limit: int = 100) -> None:
    """Same count and labels, boxes within 0.05 px, scores within 1e-3, masks IoU >= 0.98;
    equal scores may come in another order, and at a full top-``limit`` cut detections tied
    (within 1e-3) with the last kept score may differ."""
    ref, got = _as_numpy(ref), _as_numpy(got)
    count = len(ref["scores"])
    assert count > 0, "the test model should detect something"
    assert len(got["scores"]) == count
    assert set(got) == set(ref)
    floor = ref["scores"].min() + 1e-3 if count == limit else -1.0
    used = np.zeros(count, dtype=bool)
    for i in np.argsort(-ref["scores"]):
        close = (
            (got["labels"] == ref["labels"][i])
            & ~used
            & (np.abs(got["scores"] - ref["scores"][i]) <= 1e-3)
            & (np.abs(got["boxes"] - ref["boxes"][i]).max(axis=1) <= 0.05)
        )
        if not close.any():
            assert ref["scores"][i] <= floor, (
                f"detection {i} (label {ref['labels'][i]}, score "
                f"{ref['scores'][i]:.4f}, box {ref['boxes'][i]}) not reproduced"
            )
            continue
        j = int(np.flatnonzero(close)[np.argmin(np.abs(got["boxes"][close] - ref["boxes"][i]).max(axis=1))])
        used[j] = True
        if "masks" in ref:
            a, b = ref["masks"][i].astype(bool), got["masks"][j].astype(bool)
            assert a.shape == b.shape
            union = (a | b).sum()
            if union:
                assert (a & b).sum() / union >= 0.98
