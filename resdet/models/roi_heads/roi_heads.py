"""Fast R-CNN RoI heads: sample RoIs, pool, classify and regress; post-process detections.

A mask branch (Mask R-CNN) plugs in by subclassing ``StandardRoIHeads``: ``sample_proposals``
returns one ``SampledRoIs`` per image (positives first, with their labels and matched
ground-truth indices: what a mask loss needs), and ``forward`` returns the ``Detections`` a mask
head predicts on. The types live in ``resdet.structures.instances``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.ops import box_iou, remove_small_boxes

from ...registry import MODELS
from ...structures.boxes import box_ioa, grouped_nms
from ...structures.instances import Detections, Proposals, SampledRoIs
from ..dense_heads.rpn import box_regression_loss
from ..utils.box_coder import BoxCoder
from ..utils.matcher import Matcher
from ..utils.sampler import BalancedSampler
from ..utils.shape_spec import ShapeSpec, build_part, published_shapes


def pooled_shape(pooler: nn.Module, publisher: str) -> ShapeSpec | None:
    """A pooler's ``output_shape()`` (per-RoI features) named ``publisher``'s for messages."""
    output_shape = getattr(pooler, "output_shape", None)
    spec = output_shape() if callable(output_shape) else None
    return None if spec is None else replace(spec, publisher=publisher)


@MODELS.register_module()
class StandardRoIHeads(nn.Module):
    """Box branch of Faster R-CNN.

    Args:
        box_pooler, box_head, box_predictor: configs (or modules) of ``RoIPooler``, a box head
            (``Res5BoxHead`` / ``FCBoxHead``) and ``BoxPredictor``. Each config part is handed the
            shape of its input (``input_shape``: the features, the pooler's ``output_shape()``,
            the box head's ``'box_features'``) and derives its sizes; ``num_classes`` is filled in.
        num_classes: object classes ``C`` (no background).
        fg_iou_thresh: RoIs with IoU >= 0.5 are foreground; ``bg_iou_thresh``/``bg_iou_low``:
            IoU in ``[bg_iou_low, bg_iou_thresh)`` is background.
        batch_size_per_image, positive_fraction: 512 RoIs per image, up to 25 % foreground.
        add_gt_as_proposals: ground-truth boxes join the proposals in training.
        bbox_reg_weights: box-coder weights (10, 10, 5, 5).
        loss_bbox, smooth_l1_beta: ``'smooth_l1'`` or ``'l1'``.
        score_thresh, nms_thresh, detections_per_img: test-time post-processing (0.05, per-class
            NMS 0.5, 100 detections).
        min_box_size: predicted boxes with a side shorter than this are dropped.
        ignore_ioa_thresh: background RoIs inside ignore regions by more than this fraction
            of their area are not sampled.
        input_shape: the published shapes of the features (handed down by the detector).

    ``forward(features, proposals: list of Proposals, image_sizes, targets=None)
    -> (detections: list of Detections (boxes K x 4, scores K, labels K) in eval, [] in
    training; losses: dict, {} in eval)``.
    """

    def __init__(
        self,
        box_pooler: dict | nn.Module,
        box_head: dict | nn.Module,
        box_predictor: dict | nn.Module,
        num_classes: int = 80,
        fg_iou_thresh: float = 0.5,
        bg_iou_thresh: float = 0.5,
        bg_iou_low: float = 0.0,
        batch_size_per_image: int = 512,
        positive_fraction: float = 0.25,
        add_gt_as_proposals: bool = True,
        bbox_reg_weights: Sequence[float] = (10.0, 10.0, 5.0, 5.0),
        loss_bbox: str = "smooth_l1",
        smooth_l1_beta: float = 1.0,
        score_thresh: float = 0.05,
        nms_thresh: float = 0.5,
        detections_per_img: int = 100,
        min_box_size: float = 1e-2,
        ignore_ioa_thresh: float = 0.5,
        input_shape: Mapping[str, ShapeSpec] | None = None,
    ) -> None:
        super().__init__()
        self.box_pooler = build_part(box_pooler, "box_pooler", input_shape=input_shape)
        self.box_head = build_part(box_head, "box_head", input_shape=pooled_shape(self.box_pooler, "box pooler"))
        self.box_outputs = published_shapes(self.box_head, "box head") or {}
        if isinstance(box_predictor, dict):
            box_predictor = dict(box_predictor)
            box_predictor.setdefault("num_classes", num_classes)
        self.box_predictor = build_part(
            box_predictor, "box_predictor", input_shape=self.box_outputs.get("box_features")
        )
        if self.box_predictor.num_classes != num_classes:
            raise ValueError(
                f"StandardRoIHeads num_classes={num_classes} but box_predictor has "
                f"num_classes={self.box_predictor.num_classes}"
            )
        self.num_classes = num_classes
        self.matcher = Matcher(
            (bg_iou_thresh, fg_iou_thresh), allow_low_quality_matches=False, negative_floor=bg_iou_low
        )
        self.sampler = BalancedSampler(batch_size_per_image, positive_fraction)
        self.add_gt_as_proposals = add_gt_as_proposals
        self.box_coder = BoxCoder(bbox_reg_weights)
        box_regression_loss(torch.zeros(1, 4), torch.zeros(1, 4), loss_bbox)
        self.loss_bbox, self.smooth_l1_beta = loss_bbox, smooth_l1_beta
        self.score_thresh, self.nms_thresh = score_thresh, nms_thresh
        self.detections_per_img, self.min_box_size = detections_per_img, min_box_size
        self.ignore_ioa_thresh = ignore_ioa_thresh

    # ---------------------------------------------------------------- training
    @torch.no_grad()
    def sample_proposals(self, proposals: list[Tensor], targets: list[dict]) -> list[SampledRoIs]:
        """The RoIs sampled from each image's proposal boxes (``R_i x 4``; the ground truth
        joins them with ``add_gt_as_proposals``), positives first."""
        per_image = []
        for boxes, target in zip(proposals, targets):
            gt_boxes = target["boxes"].to(boxes)
            ignore = target.get("ignore")
            ignore = (
                torch.zeros(len(gt_boxes), dtype=torch.bool, device=boxes.device)
                if ignore is None
                else ignore.to(device=boxes.device, dtype=torch.bool)
            )
            real = (~ignore).nonzero().squeeze(1)
            if self.add_gt_as_proposals:
                boxes = torch.cat([boxes, gt_boxes[real]])
            in_ignore = None
            if ignore.any():
                in_ignore = box_ioa(boxes, gt_boxes[ignore]).amax(dim=1) > self.ignore_ioa_thresh
            matched, labels = self.matcher(box_iou(gt_boxes[real], boxes), in_ignore)
            per_image.append((boxes, matched, labels, real))
        width = max(len(p[2]) for p in per_image)
        padded = torch.full((len(per_image), width), -1, dtype=torch.int8, device=proposals[0].device)
        for row, (_, _, labels, _) in enumerate(per_image):
            padded[row, : len(labels)] = labels
        positive, negative = self.sampler(padded)
        samples = []
        for row, ((boxes, matched, _, real), target) in enumerate(zip(per_image, targets)):
            pos = positive[row, : len(boxes)].nonzero().squeeze(1)
            neg = negative[row, : len(boxes)].nonzero().squeeze(1)
            keep = torch.cat([pos, neg])
            gt_index = real[matched[keep]] if len(real) else torch.zeros_like(keep)
            labels = torch.full_like(keep, self.num_classes)
            reg_targets = boxes.new_zeros(len(keep), 4)
            if len(real):
                labels[: len(pos)] = target["labels"].to(keep.device)[gt_index[: len(pos)]]
                reg_targets[: len(pos)] = self.box_coder.encode(
                    boxes[pos], target["boxes"].to(boxes)[gt_index[: len(pos)]]
                )
            samples.append(
                SampledRoIs(
                    boxes=boxes[keep], labels=labels, matched_idxs=gt_index, reg_targets=reg_targets, num_pos=len(pos)
                )
            )
        return samples

    def box_losses(self, class_logits: Tensor, deltas: Tensor, samples: list[SampledRoIs]) -> dict[str, Tensor]:
        """Cross-entropy over all sampled RoIs; box loss on foreground RoIs, normalised by the
        number of sampled RoIs."""
        labels = torch.cat([s.labels for s in samples])
        reg_targets = torch.cat([s.reg_targets for s in samples])
        loss_cls = F.cross_entropy(class_logits, labels)
        fg = (labels < self.num_classes).nonzero().squeeze(1)
        fg_deltas = deltas.view(len(labels), self.num_classes, 4)[fg, labels[fg]]
        loss_box = box_regression_loss(fg_deltas, reg_targets[fg], self.loss_bbox, self.smooth_l1_beta) / max(
            len(labels), 1
        )
        with torch.no_grad():
            accuracy = (class_logits.argmax(dim=1) == labels).float().mean()
        return {"loss_cls": loss_cls, "loss_bbox": loss_box, "roi_acc": accuracy}

    # ---------------------------------------------------------------- inference
    def predict(
        self, features: dict[str, Tensor], boxes: list[Tensor], image_sizes: Sequence[Sequence[int]]
    ) -> tuple[Tensor, Tensor]:
        """Class probabilities ``R x (C + 1)`` and per-class boxes ``R x C x 4`` (decoded,
        clipped to each image) for the RoIs ``boxes`` (rows in image order)."""
        class_logits, deltas = self.box_predictor(self.box_head(self.box_pooler(features, boxes, image_sizes)))
        class_logits, deltas = class_logits.float(), deltas.float()
        probs = F.softmax(class_logits, dim=-1)
        rois = torch.cat(boxes)
        pred = self.box_coder.decode(deltas, rois).view(-1, self.num_classes, 4)
        clipped = []  # per image, sizes read from shapes only (they stay symbolic when exported)
        for image_boxes, size in zip(pred.split([b.shape[0] for b in boxes]), image_sizes):
            x = image_boxes[..., 0::2].clamp(min=0).clamp(max=size[1])
            y = image_boxes[..., 1::2].clamp(min=0).clamp(max=size[0])
            clipped.append(torch.stack((x[..., 0], y[..., 0], x[..., 1], y[..., 1]), dim=-1))
        return probs, torch.cat(clipped)

    def postprocess(self, probs: Tensor, boxes: Tensor) -> Detections:
        """One image: ``R x (C + 1)`` probabilities and ``R x C x 4`` boxes -> detections
        (score > ``score_thresh``, small boxes dropped, per-class NMS, top ``detections_per_img``)."""
        scores = probs[:, : self.num_classes]
        labels = torch.arange(self.num_classes, device=probs.device).expand_as(scores)
        boxes, scores, labels = boxes.reshape(-1, 4), scores.reshape(-1), labels.reshape(-1)
        keep = (scores > self.score_thresh).nonzero().squeeze(1)
        boxes, scores, labels = boxes[keep], scores[keep], labels[keep]
        keep = remove_small_boxes(boxes, self.min_box_size)
        boxes, scores, labels = boxes[keep], scores[keep], labels[keep]
        keep = grouped_nms(boxes, scores, labels, self.nms_thresh, self.num_classes)[: self.detections_per_img]
        return Detections(boxes=boxes[keep], scores=scores[keep], labels=labels[keep])

    def forward(
        self,
        features: dict[str, Tensor],
        proposals: list[Proposals],
        image_sizes: Sequence[Sequence[int]],
        targets: list[dict] | None = None,
    ) -> tuple[list[Detections], dict[str, Tensor]]:
        boxes = [p.boxes for p in proposals]
        if self.training:
            if targets is None:
                raise ValueError("RoI heads in training mode need targets (boxes, labels)")
            samples = self.sample_proposals(boxes, targets)
            pooled = self.box_pooler(features, [s.boxes for s in samples], image_sizes)
            class_logits, deltas = self.box_predictor(self.box_head(pooled))
            return [], self.box_losses(class_logits.float(), deltas.float(), samples)
        return self.detect(features, boxes, image_sizes), {}

    def detect(
        self, features: dict[str, Tensor], boxes: list[Tensor], image_sizes: Sequence[Sequence[int]]
    ) -> list[Detections]:
        """Post-processed detections of the RoIs ``boxes`` (``R_i x 4`` per image)."""
        probs, pred_boxes = self.predict(features, boxes, image_sizes)
        counts = [b.shape[0] for b in boxes]
        return [self.postprocess(p, b) for p, b in zip(probs.split(counts), pred_boxes.split(counts))]
