"""The per-class RPN of the paper's localization method (Appendix C).

Unlike Faster R-CNN's class-agnostic RPN, the two sibling 1x1 layers are per class: the
cls layer has ``A x C`` outputs, each a binary logistic regression "is this anchor an
object of class c", and the reg layer ``A x C x 4`` box regressors (one per class). For an
image of class ``c`` only the class-``c`` slice is trained: anchors are labelled against
the image's boxes of class ``c`` (IoU >= 0.7 positive, < 0.3 negative, the best anchor of
each box positive), a few anchors per image are sampled (the paper: 8, half positive), and
the logistic loss and the box loss reach only channel ``c``. Anchors, matcher, sampler and
box coder are the detection RPN's (this class extends ``RPN``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor, nn
from torchvision.ops import batched_nms

from ...registry import MODELS
from ...structures.boxes import clip_boxes
from ..utils.shape_spec import ShapeSpec
from .anchors import AnchorGenerator
from .rpn import RPN
from .rpn_head import derive_head_inputs


@MODELS.register_module()
class PerClassRPNHead(nn.Module):
    """3x3 conv + ReLU, then 1x1 convs with ``A*C`` logits and ``A*C*4`` deltas.

    Args:
        in_channels: feature channels (1024 for ResNet-50/101 C4, 256 for ResNet-18/34 C4):
            derived from ``input_shape`` (default without it: 1024).
        num_anchors: anchors per location ``A``: derived from ``anchor_generator`` (default
            without it: 9).
        num_classes: classes ``C``.
        conv_channels: width of the 3x3 conv (default ``in_channels``).
        input_shape, anchor_generator: handed down by the RPN, as for ``RPNHead``.

    ``forward(features: list of N x in_channels x H_l x W_l) -> (logits: list of
    N x (A*C) x H_l x W_l, deltas: list of N x (A*C*4) x H_l x W_l)``; channels are
    anchor-major: logit ``a*C + c``, deltas ``(a*C + c)*4 + k``.
    """

    def __init__(
        self,
        in_channels: int | None = None,
        num_anchors: int | None = None,
        num_classes: int = 1000,
        conv_channels: int | None = None,
        input_shape: Mapping[str, ShapeSpec] | None = None,
        anchor_generator: AnchorGenerator | None = None,
    ) -> None:
        super().__init__()
        in_channels, num_anchors = derive_head_inputs(in_channels, num_anchors, input_shape, anchor_generator)
        in_channels, num_anchors = in_channels or 1024, num_anchors or 9
        conv_channels = conv_channels or in_channels
        self.in_channels, self.num_anchors, self.num_classes = in_channels, num_anchors, num_classes
        self.conv = nn.Conv2d(in_channels, conv_channels, 3, padding=1)
        self.cls_logits = nn.Conv2d(conv_channels, num_anchors * num_classes, 1)
        self.bbox_pred = nn.Conv2d(conv_channels, num_anchors * num_classes * 4, 1)
        for layer in (self.conv, self.cls_logits, self.bbox_pred):
            nn.init.normal_(layer.weight, std=0.01)
            nn.init.zeros_(layer.bias)

    def forward(self, features: list[Tensor]) -> tuple[list[Tensor], list[Tensor]]:
        logits, deltas = [], []
        for feature in features:
            hidden = torch.relu(self.conv(feature))
            logits.append(self.cls_logits(hidden))
            deltas.append(self.bbox_pred(hidden))
        return logits, deltas


def flatten_per_class(logits: list[Tensor], deltas: list[Tensor], num_classes: int) -> tuple[Tensor, Tensor]:
    """Per-level ``N x (A*C) x H x W`` / ``N x (A*C*4) x H x W`` -> ``N x T x C`` logits and
    ``N x T x C x 4`` deltas, anchors in the generator's order (level, row, column, anchor)."""
    flat_logits, flat_deltas = [], []
    for logit, delta in zip(logits, deltas):
        n, _, h, w = logit.shape
        flat_logits.append(logit.view(n, -1, num_classes, h, w).permute(0, 3, 4, 1, 2).reshape(n, -1, num_classes))
        flat_deltas.append(
            delta.view(n, -1, num_classes, 4, h, w).permute(0, 4, 5, 1, 2, 3).reshape(n, -1, num_classes, 4)
        )
    return torch.cat(flat_logits, dim=1), torch.cat(flat_deltas, dim=1)


@MODELS.register_module()
class PerClassRPN(RPN):
    """Per-class RPN: anchors x classes logistic scores and box regressors.

    Args:
        num_classes: ``C``; must match the head's.
        batch_size_per_image, positive_fraction: anchors sampled per (image, class) pair
            (the paper: 8, 1:1).
        other arguments: see ``RPN`` (matching thresholds, ``allowed_border``, ``ignore``
            handling, box loss, the shapes handed down); the NMS settings apply to
            ``class_proposals``.

    ``forward(features, image_sizes, padded_size, targets=None) -> (logits N x T x C,
    deltas N x T x C x 4, anchors T x 4, losses)``. In training ``targets`` are detection
    targets (``boxes``, ``labels``, optional ``ignore``); images without boxes add no loss.
    """

    def __init__(
        self,
        anchor_generator: dict | nn.Module,
        head: dict | nn.Module,
        num_classes: int = 1000,
        in_features: Sequence[str] = ("c4",),
        fg_iou_thresh: float = 0.7,
        bg_iou_thresh: float = 0.3,
        batch_size_per_image: int = 8,
        positive_fraction: float = 0.5,
        nms_thresh: float = 0.7,
        min_size: float = 1e-3,
        ignore_ioa_thresh: float = 0.5,
        allowed_border: float = -1.0,
        loss_bbox: str = "smooth_l1",
        smooth_l1_beta: float = 1.0 / 9,
        pre_nms_top_n_test: int = 1000,
        input_shape: Mapping[str, ShapeSpec] | None = None,
        size_divisor: int = 1,
    ) -> None:
        if isinstance(head, dict):
            head = dict(head)
            head.setdefault("num_classes", num_classes)
        super().__init__(
            anchor_generator,
            head,
            in_features=in_features,
            fg_iou_thresh=fg_iou_thresh,
            bg_iou_thresh=bg_iou_thresh,
            batch_size_per_image=batch_size_per_image,
            positive_fraction=positive_fraction,
            nms_thresh=nms_thresh,
            min_size=min_size,
            ignore_ioa_thresh=ignore_ioa_thresh,
            allowed_border=allowed_border,
            loss_bbox=loss_bbox,
            smooth_l1_beta=smooth_l1_beta,
            pre_nms_top_n_test=pre_nms_top_n_test,
            input_shape=input_shape,
            size_divisor=size_divisor,
        )
        if getattr(self.head, "num_classes", num_classes) != num_classes:
            raise ValueError(f"PerClassRPN num_classes={num_classes} but its head has {self.head.num_classes}")
        self.num_classes = num_classes

    def forward(
        self,
        features: dict[str, Tensor],
        image_sizes: list[tuple[int, int]],
        padded_size: Sequence[int],
        targets: list[dict] | None = None,
    ) -> tuple[Tensor, Tensor, Tensor, dict[str, Tensor]]:
        missing = [k for k in self.in_features if k not in features]
        if missing:
            raise KeyError(f"PerClassRPN in_features {missing} not among the features {list(features)}")
        maps = [features[k] for k in self.in_features]
        logits, deltas = self.head(maps)
        logits, deltas = flatten_per_class(logits, deltas, self.num_classes)
        anchors = torch.cat(self.anchor_generator(padded_size, [m.shape[-2:] for m in maps], maps[0].device))
        losses = {}
        if self.training:
            if targets is None:
                raise ValueError("PerClassRPN in training mode needs targets (boxes, labels)")
            losses = self.per_class_losses(logits, deltas, anchors, targets, image_sizes)
        return logits, deltas, anchors, losses

    @staticmethod
    def class_rows(targets: list[dict], device: torch.device) -> tuple[list[int], list[int], list[dict]]:
        """One row per (image, class present among its non-ignored boxes): image index,
        class, and a target holding the class's boxes (plus every ignore region)."""
        images, classes, rows = [], [], []
        for index, target in enumerate(targets):
            labels = target["labels"].to(device)
            boxes = target["boxes"].to(device).float()
            ignore = target.get("ignore")
            ignore = torch.zeros_like(labels, dtype=torch.bool) if ignore is None else ignore.to(device).bool()
            for cls in labels[~ignore].unique().tolist():
                keep = ignore | (labels == cls)
                images.append(index)
                classes.append(int(cls))
                rows.append({"boxes": boxes[keep], "ignore": ignore[keep]})
        return images, classes, rows

    def per_class_losses(
        self, logits: Tensor, deltas: Tensor, anchors: Tensor, targets: list[dict], image_sizes: list[tuple[int, int]]
    ) -> dict[str, Tensor]:
        """Logistic loss on the sampled anchors of each (image, class) row, in channel
        ``class`` only; box loss on its positives, through the class's regressor only; both
        normalised by the number of sampled anchors."""
        images, classes, rows = self.class_rows(targets, logits.device)
        if not rows:  # no image of the batch has a box: zero losses that keep the graph
            zero = logits.sum() * 0.0 + deltas.sum() * 0.0
            return {"loss_rpn_cls": zero, "loss_rpn_bbox": zero.clone()}
        labels, matched = self.label_anchors(anchors, rows, [image_sizes[i] for i in images])
        image_index = torch.as_tensor(images, device=logits.device)
        class_index = torch.as_tensor(classes, device=logits.device)
        # R x T logits and R x T x 4 deltas of each row's own class channel
        return self.sampled_losses(
            logits[image_index, :, class_index], deltas[image_index, :, class_index], anchors, labels, matched
        )

    @torch.no_grad()
    def class_proposals(
        self,
        logits: Tensor,
        deltas: Tensor,
        anchors: Tensor,
        classes: Tensor,
        image_sizes: list[tuple[int, int]],
        top_n: int = 1,
    ) -> tuple[Tensor, Tensor]:
        """The best ``top_n`` boxes of each requested class.

        ``logits`` ``N x T x C``, ``deltas`` ``N x T x C x 4``, ``classes`` ``N x K`` (int64)
        -> ``(boxes N x K x top_n x 4, scores N x K x top_n)`` (sigmoid probabilities; with
        ``top_n > 1`` after per-class NMS, padded with the best box / score 0 if fewer survive).
        ``top_n == 1`` is the highest-scoring anchor's regressed box.
        """
        n, k = classes.shape
        batch = torch.arange(n, device=logits.device)[:, None].expand(n, k)
        scores = logits.permute(0, 2, 1)[batch, classes].float()  # N x K x T
        pre = min(self.pre_nms_top_n[False], scores.shape[-1]) if top_n > 1 else 1
        top_scores, top_index = scores.topk(pre, dim=-1)  # N x K x P
        picked = deltas[batch[..., None], top_index, classes[..., None]].float()  # N x K x P x 4
        boxes = self.box_coder.decode(picked.reshape(-1, 4), anchors[top_index.reshape(-1)]).view(n, k, pre, 4)
        probs = top_scores.sigmoid()
        out_boxes = boxes.new_zeros(n, k, top_n, 4)
        out_scores = probs.new_zeros(n, k, top_n)
        for i, size in enumerate(image_sizes):
            image_boxes = clip_boxes(boxes[i].reshape(-1, 4), size)
            if top_n == 1:
                out_boxes[i, :, 0], out_scores[i, :, 0] = image_boxes.view(k, 4), probs[i, :, 0]
                continue
            groups = torch.arange(k, device=boxes.device).repeat_interleave(pre)
            keep = batched_nms(image_boxes, probs[i].reshape(-1), groups, self.nms_thresh)
            keep = keep[torch.argsort(groups[keep], stable=True)]  # by class, score order kept
            kept_groups = groups[keep]
            first = torch.searchsorted(kept_groups, kept_groups, right=False)
            rank = torch.arange(len(keep), device=keep.device) - first
            take = rank < top_n
            out_boxes[i, :, :] = image_boxes.view(k, pre, 4)[:, :1]  # pad with the best box
            out_boxes[i, kept_groups[take], rank[take]] = image_boxes[keep[take]]
            out_scores[i, kept_groups[take], rank[take]] = probs[i].reshape(-1)[keep[take]]
        return out_boxes, out_scores
