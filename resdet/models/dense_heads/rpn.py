"""Region Proposal Network (Ren et al. 2015): objectness and box deltas for every anchor,
turned into proposals (top-N, NMS) and, in training, into the RPN losses."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.ops import box_iou, nms, remove_small_boxes

from ...registry import MODELS
from ...structures.boxes import box_ioa, clip_boxes, grouped_nms
from ...structures.instances import Proposals
from ..utils.box_coder import BoxCoder
from ..utils.matcher import Matcher
from ..utils.sampler import BalancedSampler
from ..utils.shape_spec import ShapeSpec, build_part, select_inputs


def flatten_level_outputs(objectness: list[Tensor], deltas: list[Tensor]) -> tuple[Tensor, Tensor, list[int]]:
    """Per-level ``N x A x H x W`` logits and ``N x 4A x H x W`` deltas -> ``N x T`` and
    ``N x T x 4`` in anchor order (level, row, column, anchor), plus ``T_l`` per level."""
    flat_obj, flat_deltas, counts = [], [], []
    for obj, delta in zip(objectness, deltas):
        n, a, h, w = obj.shape
        flat_obj.append(obj.permute(0, 2, 3, 1).reshape(n, -1))
        flat_deltas.append(delta.view(n, a, 4, h, w).permute(0, 3, 4, 1, 2).reshape(n, -1, 4))
        counts.append(h * w * a)
    return torch.cat(flat_obj, dim=1), torch.cat(flat_deltas, dim=1), counts


def box_regression_loss(pred: Tensor, target: Tensor, kind: str = "smooth_l1", beta: float = 1.0 / 9) -> Tensor:
    """Summed regression loss (``smooth_l1`` with ``beta``, or ``l1``) of ``K x 4`` deltas."""
    if kind == "smooth_l1":
        return F.smooth_l1_loss(pred, target, beta=beta, reduction="sum")
    if kind == "l1":
        return F.l1_loss(pred, target, reduction="sum")
    raise ValueError(f"unknown box regression loss {kind!r}; allowed values: smooth_l1, l1")


@MODELS.register_module()
class RPN(nn.Module):
    """Anchors + shared head + proposal selection + losses.

    Args:
        anchor_generator, head: configs (or modules) of ``AnchorGenerator`` and ``RPNHead``.
        in_features: feature-map keys the RPN runs on (``('c4',)``; FPN ``('p2', ..., 'p6')``).
        fg_iou_thresh, bg_iou_thresh: anchors with IoU >= 0.7 positive, < 0.3 negative; the
            best anchor of every object is positive too.
        batch_size_per_image, positive_fraction: 256 anchors per image, up to half positive.
        pre_nms_top_n_train/test: top-scoring anchors kept per level before NMS.
        post_nms_top_n_train/test: proposals kept per image after NMS.
        nms_thresh: NMS IoU (0.7); with several levels NMS runs per level (torchvision's rule).
        min_size: proposals with a side shorter than this (input pixels) are removed.
        score_thresh: minimum objectness probability of a proposal.
        ignore_ioa_thresh: anchors covered by an ignore region (crowd / difficult) by more
            than this fraction of their area are neither positive (unless a real object
            matches) nor negative.
        allowed_border: anchors crossing the image border by more than this many pixels are
            ignored in training (the original Faster R-CNN used 0); negative disables.
        loss_bbox, smooth_l1_beta: ``'smooth_l1'`` (beta 1/9) or ``'l1'``.
        input_shape: the published shapes of the features (handed down by the detector);
            the RPN hands the generator and the head those of ``in_features``, and the head the
            generator: they derive their strides, ``in_channels`` and ``num_anchors``.
        size_divisor: the preprocessor pads every batch to a multiple of this (handed down by
            the detector; the generator's strides depend on it, see ``anchor_strides``).

    The head must predict as many anchors per location as the generator makes on every level.

    ``forward(features: dict[str, N x C x H x W], image_sizes: list[(h, w)], padded_size: (H, W),
    targets=None) -> (proposals: list of Proposals (one per image: R_i x 4 boxes, R_i scores),
    losses: dict)``.
    """

    def __init__(
        self,
        anchor_generator: dict | nn.Module,
        head: dict | nn.Module,
        in_features: Sequence[str] = ("c4",),
        fg_iou_thresh: float = 0.7,
        bg_iou_thresh: float = 0.3,
        batch_size_per_image: int = 256,
        positive_fraction: float = 0.5,
        pre_nms_top_n_train: int = 12000,
        post_nms_top_n_train: int = 2000,
        pre_nms_top_n_test: int = 6000,
        post_nms_top_n_test: int = 1000,
        nms_thresh: float = 0.7,
        min_size: float = 1e-3,
        score_thresh: float = 0.0,
        ignore_ioa_thresh: float = 0.5,
        allowed_border: float = -1.0,
        loss_bbox: str = "smooth_l1",
        smooth_l1_beta: float = 1.0 / 9,
        input_shape: Mapping[str, ShapeSpec] | None = None,
        size_divisor: int = 1,
    ) -> None:
        super().__init__()
        self.in_features = tuple(in_features)
        levels = None if input_shape is None else select_inputs(input_shape, self.in_features, "in_features")
        self.anchor_generator = build_part(
            anchor_generator, "anchor_generator", input_shape=levels, size_divisor=size_divisor
        )
        self.head = build_part(head, "head", input_shape=levels, anchor_generator=self.anchor_generator)
        if len(self.in_features) != len(self.anchor_generator.cell_anchors):
            raise ValueError(
                f"RPN: {len(self.in_features)} in_features {self.in_features} but the anchor "
                f"generator has {len(self.anchor_generator.cell_anchors)} levels of sizes"
            )
        per_level = self.anchor_generator.num_anchors_per_location
        head_anchors = getattr(self.head, "num_anchors", None)
        if head_anchors is not None and any(count != head_anchors for count in per_level):
            raise ValueError(
                f"{type(self).__name__}: the head predicts {head_anchors} anchors per location "
                f"but the anchor generator makes {per_level} (sizes x aspect ratios per level)"
            )
        self.box_coder = BoxCoder((1.0, 1.0, 1.0, 1.0))
        self.matcher = Matcher((bg_iou_thresh, fg_iou_thresh), allow_low_quality_matches=True)
        self.sampler = BalancedSampler(batch_size_per_image, positive_fraction)
        self.pre_nms_top_n = {True: pre_nms_top_n_train, False: pre_nms_top_n_test}
        self.post_nms_top_n = {True: post_nms_top_n_train, False: post_nms_top_n_test}
        self.nms_thresh, self.min_size, self.score_thresh = nms_thresh, min_size, score_thresh
        self.ignore_ioa_thresh, self.allowed_border = ignore_ioa_thresh, allowed_border
        box_regression_loss(torch.zeros(1, 4), torch.zeros(1, 4), loss_bbox)  # validate the name
        self.loss_bbox, self.smooth_l1_beta = loss_bbox, smooth_l1_beta

    def forward(
        self,
        features: dict[str, Tensor],
        image_sizes: list[tuple[int, int]],
        padded_size: Sequence[int],
        targets: list[dict] | None = None,
    ) -> tuple[list[Proposals], dict[str, Tensor]]:
        missing = [k for k in self.in_features if k not in features]
        if missing:
            raise KeyError(f"RPN in_features {missing} not among the features {list(features)}")
        maps = [features[k] for k in self.in_features]
        objectness, deltas = self.head(maps)
        anchors = self.anchor_generator(padded_size, [m.shape[-2:] for m in maps], maps[0].device)
        objectness, deltas, counts = flatten_level_outputs(objectness, deltas)
        # float32 for box decoding even under fp16 / bf16 autocast (pixel coordinates up to ~1000s)
        objectness, deltas = objectness.float(), deltas.float()
        proposals = self.select_proposals(objectness.detach(), deltas.detach(), anchors, counts, image_sizes)
        losses = {}
        if self.training:
            if targets is None:
                raise ValueError("RPN in training mode needs targets (list of dicts with 'boxes')")
            losses = self.losses(objectness, deltas, torch.cat(anchors), targets, image_sizes)
        return proposals, losses

    @torch.no_grad()
    def select_proposals(
        self,
        objectness: Tensor,
        deltas: Tensor,
        anchors: list[Tensor],
        counts: list[int],
        image_sizes: list[tuple[int, int]],
    ) -> list[Proposals]:
        """Top-N per level, decode, clip, drop small / low-scoring boxes, NMS, top-N per image."""
        num_images = objectness.shape[0]
        top_n = self.pre_nms_top_n[self.training]
        picked_scores, picked_boxes, picked_levels = [], [], []
        start = 0
        for level, (count, level_anchors) in enumerate(zip(counts, anchors)):
            level_obj = objectness[:, start : start + count]
            k = torch.sym_min(top_n, count) if isinstance(count, torch.SymInt) else min(top_n, count)
            level_scores, index = level_obj.topk(k, dim=1)
            level_deltas = deltas[:, start : start + count].gather(1, index[..., None].expand(-1, -1, 4))
            boxes = self.box_coder.decode(level_deltas.reshape(-1, 4), level_anchors[index.reshape(-1)])
            picked_boxes.append(boxes.view(num_images, k, 4))
            picked_scores.append(level_scores)
            picked_levels.append(torch.full((k,), level, device=objectness.device, dtype=torch.int64))
            start += count
        all_boxes = torch.cat(picked_boxes, dim=1)
        all_scores = torch.cat(picked_scores, dim=1).sigmoid()
        levels = torch.cat(picked_levels)
        proposals = []
        for boxes, probs, size in zip(all_boxes, all_scores, image_sizes):
            boxes = clip_boxes(boxes, size)
            keep = remove_small_boxes(boxes, self.min_size)
            if self.score_thresh > 0:
                keep = keep[probs[keep] >= self.score_thresh]
            boxes, probs, lvl = boxes[keep], probs[keep], levels[keep]
            keep = (
                grouped_nms(boxes, probs, lvl, self.nms_thresh, len(counts))
                if len(counts) > 1
                else nms(boxes, probs, self.nms_thresh)
            )
            keep = keep[: self.post_nms_top_n[self.training]]
            proposals.append(Proposals(boxes=boxes[keep], scores=probs[keep]))
        return proposals

    @torch.no_grad()
    def label_anchors(
        self, anchors: Tensor, targets: list[dict], image_sizes: list[tuple[int, int]]
    ) -> tuple[Tensor, Tensor]:
        """Per image: anchor labels (1 / 0 / -1) ``N x T`` and matched boxes ``N x T x 4``."""
        labels, matched_boxes = [], []
        for target, size in zip(targets, image_sizes):
            boxes = target["boxes"].to(anchors)
            ignore = target.get("ignore")
            ignore = (
                torch.zeros(len(boxes), dtype=torch.bool, device=anchors.device)
                if ignore is None
                else ignore.to(device=anchors.device, dtype=torch.bool)
            )
            gt = boxes[~ignore]
            ignored_anchor = None
            if ignore.any():
                ignored_anchor = box_ioa(anchors, boxes[ignore]).amax(dim=1) > self.ignore_ioa_thresh
            if self.allowed_border >= 0:
                border = self.allowed_border
                outside = (
                    (anchors[:, 0] < -border)
                    | (anchors[:, 1] < -border)
                    | (anchors[:, 2] > size[1] + border)
                    | (anchors[:, 3] > size[0] + border)
                )
                ignored_anchor = outside if ignored_anchor is None else ignored_anchor | outside
            matched, image_labels = self.matcher(box_iou(gt, anchors), ignored_anchor)
            if self.allowed_border >= 0:
                image_labels[outside] = -1
            labels.append(image_labels)
            matched_boxes.append(gt[matched] if len(gt) else torch.zeros_like(anchors))
        return torch.stack(labels), torch.stack(matched_boxes)

    def losses(
        self,
        objectness: Tensor,
        deltas: Tensor,
        anchors: Tensor,
        targets: list[dict],
        image_sizes: list[tuple[int, int]],
    ) -> dict[str, Tensor]:
        """Binary cross-entropy over the sampled anchors; box loss over the positives,
        normalised by the number sampled (as in Faster R-CNN)."""
        labels, matched_boxes = self.label_anchors(anchors, targets, image_sizes)
        return self.sampled_losses(objectness, deltas, anchors, labels, matched_boxes)

    def sampled_losses(
        self, objectness: Tensor, deltas: Tensor, anchors: Tensor, labels: Tensor, matched_boxes: Tensor
    ) -> dict[str, Tensor]:
        """Samples anchors from ``labels`` (``R x T``: 1 / 0 / -1) and returns the losses of the
        rows' ``objectness`` (``R x T``) and ``deltas`` (``R x T x 4``) against ``matched_boxes``."""
        positive, negative = self.sampler(labels)
        sampled = positive | negative
        num_sampled = max(int(sampled.sum()), 1)
        loss_obj = (
            F.binary_cross_entropy_with_logits(
                objectness[sampled], positive[sampled].to(objectness.dtype), reduction="sum"
            )
            / num_sampled
        )
        pos_row, pos_anchor = positive.nonzero(as_tuple=True)
        with torch.no_grad():
            reg_targets = self.box_coder.encode(anchors[pos_anchor], matched_boxes[pos_row, pos_anchor])
        loss_box = (
            box_regression_loss(deltas[pos_row, pos_anchor], reg_targets, self.loss_bbox, self.smooth_l1_beta)
            / num_sampled
        )
        return {"loss_rpn_cls": loss_obj, "loss_rpn_bbox": loss_box}
