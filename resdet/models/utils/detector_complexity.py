"""Multiply-adds and parameters of a whole detector or localizer, part by part.

A detector's cost depends on how many RoIs reach its heads, which depends on the image and the
weights. This counts it at the configuration's own numbers, independent of both: the RoI heads
at exactly the RPN's post-NMS top-N of the test (``post_nms_top_n_test``; a localizer: ``topk x
rcnn_proposals_test``), the mask head at ``detections_per_img`` detections (the most a test
image gives). Each part runs once on the ``meta`` device (shapes only, no arithmetic) under
``torch.utils.flop_counter.FlopCounterMode``: the backbone and neck on a ``1 x 3 x H x W`` batch,
the RPN's head on their maps, the box head and predictor on ``R`` pooled RoIs of the pooler's
size, the mask head (C4: conv5 again, on the detections) on ``K``. RoI pooling, anchor
decoding, NMS, BN, ReLU and additions have no multiply-adds in the counter (nor in the paper).
Multiply-adds = the counter's FLOPs / 2 (the paper's "FLOPs", Table 1).
"""

from __future__ import annotations

import copy
from typing import Any, Callable

import torch
from torch import Tensor, nn
from torch.utils.flop_counter import FlopCounterMode

from .complexity import count_params

DETECTOR_TYPES = ("FasterRCNN", "MaskRCNN", "Localizer")


def _macs(run: Callable[[], Any]) -> tuple[int, Any]:
    """Multiply-adds of ``run()`` and its result."""
    counter = FlopCounterMode(display=False, depth=1)
    with torch.no_grad(), counter:
        out = run()
    return int(counter.get_total_flops()) // 2, out


def _params(*modules: nn.Module | None) -> int:
    return sum(count_params(m) for m in modules if m is not None)


def _pooled(features: dict[str, Tensor], pooler: nn.Module, rois: int) -> Tensor:
    """``rois x C x S x S`` zeros: what ``pooler`` hands the head for ``rois`` boxes."""
    channels = features[pooler.featmap_names[0]].shape[1]
    size = pooler.output_size
    size = tuple(size) if isinstance(size, (tuple, list)) else (int(size), int(size))
    return torch.zeros((rois, channels, *size), device="meta")


def _part(name: str, macs: int, params: int, note: str = "") -> dict:
    return {"part": name, "flops": macs, "params": params, "note": note}


def _box_parts(model: nn.Module, features: dict[str, Tensor], rois: int) -> list[dict]:
    heads = model.roi_heads
    pooled = _pooled(features, heads.box_pooler, rois)
    macs, _ = _macs(lambda: heads.box_predictor(heads.box_head(pooled)))
    params = _params(heads) - _params(getattr(heads, "mask_head", None))
    return [_part("roi_heads", macs, params, f"box head + predictor on {rois} RoIs")]


def _mask_part(model: nn.Module, features: dict[str, Tensor], detections: int) -> list[dict]:
    heads = model.roi_heads
    if getattr(heads, "mask_head", None) is None:
        return []
    if heads.mask_pooler is not None:
        pooled = _pooled(features, heads.mask_pooler, detections)
        macs, _ = _macs(lambda: heads.mask_head(pooled))
        note = f"on {detections} detections"
    else:  # C4: conv5 runs again on the detections' RoIs, then the mask head
        pooled = _pooled(features, heads.box_pooler, detections)
        macs, _ = _macs(lambda: heads.mask_head(heads.box_head.res5(pooled)))
        note = f"conv5 + mask head on {detections} detections"
    return [_part("mask_head", macs, _params(heads.mask_head), note)]


def _trunk_parts(model: nn.Module, batch: Tensor) -> tuple[list[dict], dict[str, Tensor]]:
    """Backbone (+ neck) and the RPN's head on ``batch``; returns the parts and the features."""
    parts = []
    macs, features = _macs(lambda: model.backbone(batch))
    parts.append(_part("backbone", macs, _params(model.backbone)))
    neck = getattr(model, "neck", None)
    if neck is not None:
        macs, features = _macs(lambda: neck(features))
        parts.append(_part("neck", macs, _params(neck)))
    maps = [features[k] for k in model.rpn.in_features]
    macs, _ = _macs(lambda: model.rpn.head(maps))
    parts.append(_part("rpn", macs, _params(model.rpn), "head on every position"))
    return parts, features


def get_detector_complexity(model: nn.Module, input_size: tuple[int, int]) -> dict:
    """Parts and total of a ``FasterRCNN`` / ``MaskRCNN`` / ``Localizer`` for one
    ``input_size = (H, W)`` network input (after the test resize; padded up to the
    preprocessor's ``size_divisor`` here). Returns ``{'parts': [{'part', 'flops', 'params',
    'note'}], 'flops', 'params', 'input_shape', 'rois'}`` with ``flops`` in multiply-adds;
    the parts' sums equal the totals (parameters of no part, if any, are listed as ``other``)."""
    kind = type(model).__name__
    if kind not in DETECTOR_TYPES:
        raise ValueError(f"{kind} is not a detector; allowed: {', '.join(DETECTOR_TYPES)}")
    if any(p.device.type != "meta" for p in model.parameters()):
        model = copy.deepcopy(model).to("meta")  # shapes only; the caller's weights stay
    model = model.eval()
    div = max(int(getattr(model.preprocessor, "size_divisor", 1) or 1), 1)
    height, width = (-(-int(s) // div) * div for s in input_size)
    batch = torch.zeros((1, 3, height, width), device="meta")
    parts, features = _trunk_parts(model, batch)
    if kind == "Localizer":
        size = int(model.cls_input_size or height)
        image = torch.zeros((1, 3, size, size), device="meta")
        macs, _ = _macs(lambda: model.classifier(image))
        parts.insert(0, _part("classifier", macs, _params(model.classifier), f"{size}x{size} input"))
        rois = model.topk * model.rcnn_proposals[False]
        if model.roi_heads is not None:
            parts += _box_parts(model, features, rois)
    else:
        rois = int(model.rpn.post_nms_top_n[False])
        parts += _box_parts(model, features, rois)
        parts += _mask_part(model, features, int(model.roi_heads.detections_per_img))
    total_params = count_params(model)
    rest = total_params - sum(p["params"] for p in parts)
    if rest:
        parts.append(_part("other", 0, rest, "parameters of no part above"))
    return {
        "parts": parts,
        "flops": sum(p["flops"] for p in parts),
        "params": total_params,
        "input_shape": [3, height, width],
        "input_size": [int(s) for s in input_size],
        "rois": rois,
    }


def format_detector_complexity(result: dict, name: str = "model") -> str:
    """A table of the parts (multiply-adds in 10^9, parameters in 10^6) and the total."""
    _, height, width = result["input_shape"]
    asked = result.get("input_size", [height, width])
    padded = f" ({asked[0]}x{asked[1]} padded)" if list(asked) != [height, width] else ""
    lines = [
        f"{name}: input 3x{height}x{width}{padded}; multiply-adds (the paper's FLOPs: one multiply-add "
        "counts 1) from torch.utils.flop_counter",
        f"  {'part':<12} {'mult-adds':>12} {'params':>10}  counted",
    ]
    for part in result["parts"]:
        lines.append(
            f"  {part['part']:<12} {part['flops'] / 1e9:>10.2f} G {part['params'] / 1e6:>8.2f} M  {part['note']}"
        )
    lines.append(f"  {'total':<12} {result['flops'] / 1e9:>10.2f} G {result['params'] / 1e6:>8.2f} M")
    return "\n".join(lines)
