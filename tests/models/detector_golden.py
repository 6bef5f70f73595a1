"""Fingerprints of every shipped detector config (Faster / Mask R-CNN, the localizer): the
weights a fixed seed builds, the training losses of one fixed batch, and the detections in
eval mode (plain, with the pipeline's per-image meta, and on the inference fast path).

The architecture work must leave them unchanged: ``test_detector_golden.py`` compares a fresh
run with ``tests/fixtures/detector_golden.json``. Regenerate (only when a change of outputs is
intended, and say so in the commit) with ``python tests/models/detector_golden.py --write`` (all) or
``--redo NAME ...`` (the named configs).

Images are tiny (the configs' own sizes, except that a preprocessor resizing to 800 is told to
resize to 96..160), the RPN keeps few proposals, and the score threshold is 0 so that random
weights give detections."""

from __future__ import annotations

import glob
import hashlib
import json
import os
import sys

import torch

from resdet.registry import MODELS
from resdet.utils.config import CONFIG_DIR, load_config

GOLDEN = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "fixtures", "detector_golden.json")
DETECTOR_TYPES = ("FasterRCNN", "MaskRCNN", "Localizer")
TOP = 12  # detections kept per image (highest scores)
# fewer proposals than the configs' 1000-2000 (a C4 head runs conv5 on each): seconds, not minutes
SMALL_RPN = dict(pre_nms_top_n_train=300, post_nms_top_n_train=48, pre_nms_top_n_test=200, post_nms_top_n_test=24)


def detector_configs() -> list[str]:
    """Shipped config names whose model is a detector."""
    names = []
    for path in sorted(glob.glob(os.path.join(CONFIG_DIR, "*.py"))):
        cfg = load_config(path)
        if "model" in cfg and cfg.model.get("type") in DETECTOR_TYPES:
            names.append(os.path.splitext(os.path.basename(path))[0])
    return names


def _model_cfg(name: str) -> dict:
    cfg = load_config(name).model.to_dict()
    cfg.pop("init_cfg", None)  # pretraining files are not here; building never reads them anyway
    pre = cfg.get("preprocessor") or {}
    if pre.get("min_size"):
        pre.update(min_size=96, max_size=160)
    rpn, roi_heads = cfg.get("rpn") or {}, cfg.get("roi_heads") or {}
    for key, value in SMALL_RPN.items():
        if key in rpn:
            rpn[key] = value
    for key in ("rcnn_proposals_train", "rcnn_proposals_test"):  # the localizer's R-CNN stage
        if key in cfg:
            cfg[key] = 8
    if "batch_size_per_image" in roi_heads:
        roi_heads["batch_size_per_image"] = 32
    return cfg


def _batch(num_classes: int, masks: bool, localizer: bool):
    g = torch.Generator().manual_seed(0)
    images = [
        torch.randint(0, 256, (3, 96, 128), generator=g, dtype=torch.uint8),
        torch.randint(0, 256, (3, 112, 96), generator=g, dtype=torch.uint8),
    ]
    boxes = [
        torch.tensor([[10.0, 12.0, 60.0, 70.0], [40.0, 30.0, 120.0, 90.0]]),
        torch.tensor([[20.0, 20.0, 80.0, 90.0], [0.0, 0.0, 30.0, 30.0]]),
    ]
    targets = []
    for i, (image, box) in enumerate(zip(images, boxes)):
        target = {
            "boxes": box,
            "labels": torch.tensor([0, min(2, num_classes - 1)])
            if i == 0
            else torch.tensor([min(1, num_classes - 1), 0]),
            "ignore": torch.tensor([False, i == 1]),
        }
        if masks:
            m = torch.zeros(2, *image.shape[-2:], dtype=torch.uint8)
            for j, (x0, y0, x1, y1) in enumerate(box.int().tolist()):
                m[j, y0:y1, x0:x1] = 1
            target["masks"] = m
        if localizer:
            target["image_labels"] = target["labels"][:1].clone()
        targets.append(target)
    meta = [
        {"img_shape": (96, 128), "scale_factor": (2.0, 2.0), "flip": True, "orig_size": (48, 64)},
        {"img_shape": (112, 96), "scale_factor": (0.5, 0.5), "flip": False, "orig_size": (224, 192)},
    ]
    return images, targets, meta


def _weights_digest(model: torch.nn.Module) -> str:
    digest = hashlib.sha256()
    for key, value in sorted(model.state_dict().items()):
        digest.update(key.encode())
        digest.update(str((tuple(value.shape), str(value.dtype))).encode())
        digest.update(value.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def _summary(outputs: list[dict]) -> list[dict]:
    """Per image: count, score sum, the top detections; mask and class-box sums where present."""
    summary = []
    for out in outputs:
        scores = out["scores"].float()
        order = torch.argsort(scores, descending=True, stable=True)[:TOP]
        row = dict(
            count=int(scores.numel()),
            score_sum=float(scores.sum()),
            boxes=out["boxes"][order].float().tolist(),
            scores=scores[order].tolist(),
            labels=out["labels"][order].tolist(),
        )
        if "masks" in out:
            row["mask_pixels"] = int(out["masks"].sum())
        if "class_boxes" in out:
            row["class_box_sum"] = float(out["class_boxes"].float().sum())
        summary.append(row)
    return summary


def _tame(model: torch.nn.Module) -> None:
    """Halve every norm layer's scale: a random-init ResNet-101 with identity BN statistics
    grows its activations ~2x per block until the softmax saturates and nothing is detected."""
    with torch.no_grad():
        for module in model.modules():
            if "Norm" in type(module).__name__ and getattr(module, "weight", None) is not None:
                module.weight.mul_(0.5)


def fingerprint(name: str) -> dict:
    from resdet.models.detectors import optimize_for_inference

    torch.manual_seed(0)
    cfg = _model_cfg(name)
    model = MODELS.build(cfg)
    kind = type(model).__name__
    roi_heads = getattr(model, "roi_heads", None)
    num_classes = int(getattr(model, "num_classes", None) or cfg.get("num_classes") or 3)
    images, targets, meta = _batch(num_classes, masks=kind == "MaskRCNN", localizer=kind == "Localizer")
    result = dict(kind=kind, weights=_weights_digest(model))
    _tame(model)
    torch.manual_seed(1)
    model.train()
    losses = model(images, targets)
    result["losses"] = {k: float(v.detach()) for k, v in sorted(losses.items())}
    model.eval()
    if roi_heads is not None and hasattr(roi_heads, "score_thresh"):
        roi_heads.score_thresh = 0.0
    with torch.no_grad():
        result["detections"] = _summary(model(images))
        result["detections_meta"] = _summary(model(images, meta))
        if hasattr(model, "preprocessor") and hasattr(model, "channels_last"):
            model = optimize_for_inference(model)
            result["fast_detections"] = _summary(model(images, meta))
    return result


def main(argv: list[str]) -> int:
    """``--write``: record every shipped detector config; ``--add-missing``: record the configs
    the file does not have yet; ``--redo NAME [NAME ...]``: record the named configs again. The
    last two keep the other records as they are (a rerun of every config on another machine
    moves them by float noise: ~1e-6 in scores)."""
    names = detector_configs()
    if "--add-missing" in argv or "--redo" in argv:
        with open(GOLDEN, encoding="utf-8") as fh:
            results = json.load(fh)
        if "--redo" in argv:
            wanted = argv[argv.index("--redo") + 1 :]
            unknown = sorted(set(wanted) - set(names))
            if not wanted or unknown:
                raise SystemExit(f"--redo needs shipped detector config names; unknown: {unknown or 'none given'}")
            names = wanted
        else:
            names = [name for name in names if name not in results]
        results.update({name: fingerprint(name) for name in names})
        argv = ["--write"]
    else:
        results = {name: fingerprint(name) for name in names}
    if "--write" in argv:
        with open(GOLDEN, "w", encoding="utf-8") as fh:
            json.dump(results, fh, indent=1, sort_keys=True)
            fh.write("\n")
        print(f"wrote {GOLDEN}: {', '.join(names)}")
    else:
        print(json.dumps(results, indent=1, sort_keys=True)[:2000])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
