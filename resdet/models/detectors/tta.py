"""Test-time augmentation of the paper's Table 9 for two-stage detectors, as a model wrapper:
horizontal flip and multi-scale views, and box refinement (a second pass of the box head on
its own outputs).

Every view (scale x flip) proposes boxes; the union of all views' proposals (mapped back to
input coordinates, NMS) is scored by the box head in every view, and the class
probabilities and per-class boxes are averaged over views per RoI. With ``refine_boxes``
each RoI's best-class box becomes a new RoI, scored again the same way, and both sets of
predictions go through the usual per-class NMS together. Mask R-CNN's masks come from the
plain view, for the averaged boxes.

The wrapper only asks the detector (``propose``, ``merge_proposals``, ``score_boxes``,
``select_detections``, ``mask_probs_for``, ``postprocess``); a detector with ``test_cfg``
runs through it on its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ...registry import MODELS
from ...structures.boxes import flip_boxes, scale_boxes
from ...structures.image_meta import ImageMeta, image_metas, unscale_boxes
from ...structures.instances import Detections


@dataclass
class _View:
    """One preprocessed view: its features, batch sizes ``(h, w)``, ``scale_factors``
    ``(w, h)`` input -> view, and whether it is mirrored."""

    features: dict[str, Tensor]
    sizes: list[tuple[int, int]]
    factors: list[tuple[float, float]]
    flipped: bool

    def to_view(self, boxes: list[Tensor]) -> list[Tensor]:
        out = [scale_boxes(b, f[0], f[1]) for b, f in zip(boxes, self.factors)]
        return [flip_boxes(b, s[1]) for b, s in zip(out, self.sizes)] if self.flipped else out

    def from_view(self, boxes: Sequence[Tensor]) -> list[Tensor]:
        out = [flip_boxes(b, s[1]) for b, s in zip(boxes, self.sizes)] if self.flipped else list(boxes)
        return [unscale_boxes(b, f) for b, f in zip(out, self.factors)]


@MODELS.register_module()
class DetectorTTA(nn.Module):
    """Flip / multi-scale / box-refinement testing of a ``FasterRCNN`` (or ``MaskRCNN``).

    Args:
        detector: the detector (module or config).
        flip: add the mirrored view of every scale.
        scales: shorter sides of the views (``None``: the preprocessor's own sizing).
        refine_boxes: score each RoI's best-class box again and keep both predictions.

    ``forward(inputs, targets=None)``: in training the detector's losses; in eval one dict per
    image (``boxes``, ``scores``, ``labels``, ``masks`` where present), mapped to the original
    images by ``detector.postprocess`` when ``targets`` carry meta.
    """

    def __init__(
        self,
        detector: dict | nn.Module,
        flip: bool = False,
        scales: Sequence[int] | None = None,
        refine_boxes: bool = False,
    ) -> None:
        super().__init__()
        self.detector = MODELS.build(detector) if isinstance(detector, dict) else detector
        self.flip, self.refine_boxes = bool(flip), bool(refine_boxes)
        self.scales = [int(s) for s in scales] if scales else [None]
        self.train(self.detector.training)  # wrapping changes no mode

    def forward(self, inputs: Sequence[Tensor] | Tensor, targets: Sequence[dict | ImageMeta] | None = None):
        if self.training:
            return self.detector(inputs, targets)
        detections = self.detector.postprocess(self.detect(inputs), image_metas(inputs, targets))
        return [det.to_dict() for det in detections]

    def views(self, inputs: Sequence[Tensor]) -> tuple[list[_View], list[Tensor]]:
        """Every view of the batch, and per image the merged proposals of all views (input
        coordinates)."""
        views, boxes, scores = [], [], []
        for scale in self.scales:
            for flipped in (False, True) if self.flip else (False,):
                features, sizes, factors, proposals = self.detector.propose(inputs, min_size=scale, flip=flipped)
                view = _View(features, sizes, factors, flipped)
                views.append(view)
                boxes.append(view.from_view([p.boxes for p in proposals]))
                scores.append([p.scores for p in proposals])
        rois = []
        for index in range(len(inputs)):
            image_boxes = torch.cat([b[index] for b in boxes])
            if len(views) > 1:
                image_boxes = self.detector.merge_proposals(image_boxes, torch.cat([s[index] for s in scores]))
            rois.append(image_boxes)
        return views, rois

    def score(self, views: list[_View], rois: list[Tensor]) -> tuple[list[Tensor], list[Tensor]]:
        """Per image: probabilities ``R x (C + 1)`` and boxes ``R x C x 4`` (input coordinates),
        averaged over the views."""
        counts = [len(r) for r in rois]
        prob_sum: list[Tensor] | None = None
        box_sum: list[Tensor] | None = None
        for view in views:
            probs, boxes = self.detector.score_boxes(view.features, view.to_view(rois), view.sizes)
            probs, boxes = probs.split(counts), view.from_view(boxes.split(counts))
            prob_sum = list(probs) if prob_sum is None else [a + b for a, b in zip(prob_sum, probs)]
            box_sum = boxes if box_sum is None else [a + b for a, b in zip(box_sum, boxes)]
        return [p / len(views) for p in prob_sum], [b / len(views) for b in box_sum]

    def detect(self, inputs: Sequence[Tensor] | Tensor) -> list[Detections]:
        """Detections averaged over the views, in the coordinates of ``inputs``."""
        views, rois = self.views(inputs)
        probs, boxes = self.score(views, rois)
        if self.refine_boxes:
            refined = []
            for p, b in zip(probs, boxes):
                best = p[:, : self.detector.num_classes].argmax(dim=1)
                refined.append(b[torch.arange(len(b), device=b.device), best])
            probs2, boxes2 = self.score(views, refined)
            probs = [torch.cat(pair) for pair in zip(probs, probs2)]
            boxes = [torch.cat(pair) for pair in zip(boxes, boxes2)]
        detections = [self.detector.select_detections(p, b) for p, b in zip(probs, boxes)]
        return self.detector.mask_probs_for(inputs, detections) if self.detector.has_masks else detections
