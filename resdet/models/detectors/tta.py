"""Test-time augmentation of the paper's Table 9 for two-stage detectors: horizontal flip and
multi-scale views, and box refinement (a second pass of the box head on its own outputs).

Every view (scale x flip) proposes boxes; the union of all views' proposals (mapped back to
input coordinates, NMS) is scored by the box head in every view, and the class
probabilities and per-class boxes are averaged over views per RoI. With ``refine_boxes``
each RoI's best-class box becomes a new RoI, scored again the same way, and both sets of
predictions go through the usual per-class NMS together.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor
from torchvision.ops import nms

from ...structures.boxes import flip_boxes, scale_boxes
from ...structures.instances import Detections


def _to_view(boxes: Tensor, factor: tuple[float, float], width: int, flipped: bool) -> Tensor:
    out = scale_boxes(boxes, factor[0], factor[1])
    return flip_boxes(out, width) if flipped else out


def _from_view(boxes: Tensor, factor: tuple[float, float], width: int, flipped: bool) -> Tensor:
    out = flip_boxes(boxes, width) if flipped else boxes
    return scale_boxes(out, 1.0 / factor[0], 1.0 / factor[1])


def _score_rois(model, views: list[dict], rois: list[Tensor]) -> tuple[list[Tensor], list[Tensor]]:
    """Per image: probabilities ``R x (C + 1)`` and boxes ``R x C x 4`` (input coordinates),
    averaged over the views."""
    counts = [len(r) for r in rois]
    prob_sum: list[Tensor] | None = None
    box_sum: list[Tensor] | None = None
    for view in views:
        view_rois = [_to_view(r, f, s[1], view["flip"]) for r, f, s in zip(rois, view["factors"], view["sizes"])]
        probs, boxes = model.roi_heads.predict(view["features"], view_rois, view["sizes"])
        probs, boxes = probs.split(counts), boxes.split(counts)
        boxes = [_from_view(b, f, s[1], view["flip"]) for b, f, s in zip(boxes, view["factors"], view["sizes"])]
        prob_sum = list(probs) if prob_sum is None else [a + b for a, b in zip(prob_sum, probs)]
        box_sum = boxes if box_sum is None else [a + b for a, b in zip(box_sum, boxes)]
    return [p / len(views) for p in prob_sum], [b / len(views) for b in box_sum]


def predict_with_tta(model, inputs: Sequence[Tensor], flip: bool = False,
                     scales: Sequence[int] | None = None, refine_boxes: bool = False) -> list[dict]:
    """``detect_with_tta`` as the detector's public dicts (``boxes``, ``scores``, ``labels``)."""
    return [det.to_dict() for det in detect_with_tta(model, inputs, flip, scales, refine_boxes)]


def detect_with_tta(model, inputs: Sequence[Tensor], flip: bool = False,
                    scales: Sequence[int] | None = None, refine_boxes: bool = False) -> list[Detections]:
    """Detections (in the coordinates of ``inputs``) of ``model`` (a ``FasterRCNN`` in eval
    mode) averaged over ``scales x {no flip, flip}`` views; ``scales=None`` uses the
    preprocessor's own sizing."""
    scale_list = list(scales) if scales else [None]
    views = []
    proposals_per_view, scores_per_view = [], []
    for scale in scale_list:
        for flipped in ((False, True) if flip else (False,)):
            batch, sizes, factors = model.preprocessor(inputs, min_size=scale, flip=flipped)
            features = model.extract_features(batch)
            proposals, _ = model.rpn(features, sizes, batch.shape[-2:])
            views.append({"features": features, "sizes": sizes, "factors": factors, "flip": flipped})
            proposals_per_view.append([_from_view(p.boxes, f, s[1], flipped)
                                       for p, f, s in zip(proposals, factors, sizes)])
            scores_per_view.append([p.scores for p in proposals])
    rois = []
    for index in range(len(inputs)):
        boxes = torch.cat([p[index] for p in proposals_per_view])
        scores = torch.cat([s[index] for s in scores_per_view])
        if len(views) > 1:
            keep = nms(boxes, scores, model.rpn.nms_thresh)[:model.rpn.post_nms_top_n[False]]
            boxes = boxes[keep]
        rois.append(boxes)
    probs, boxes = _score_rois(model, views, rois)
    if refine_boxes:
        num_classes = model.roi_heads.num_classes
        refined = []
        for p, b in zip(probs, boxes):
            best = p[:, :num_classes].argmax(dim=1)
            refined.append(b[torch.arange(len(b), device=b.device), best])
        probs2, boxes2 = _score_rois(model, views, refined)
        probs = [torch.cat(pair) for pair in zip(probs, probs2)]
        boxes = [torch.cat(pair) for pair in zip(boxes, boxes2)]
    return [model.roi_heads.postprocess(p, b) for p, b in zip(probs, boxes)]
