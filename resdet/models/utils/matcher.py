"""Assign each anchor / proposal to its best ground-truth box by IoU."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

POSITIVE, NEGATIVE, IGNORED = 1, 0, -1


class Matcher:
    """Label predictions by their best IoU with the ground truth.

    Args:
        thresholds: ``(low, high)``: IoU ``>= high`` is positive, ``< low`` is negative,
            in between is ignored (label -1). RPN: ``(0.3, 0.7)``; Fast R-CNN: ``(0.5, 0.5)``.
        allow_low_quality_matches: also make positive, for every ground-truth box, the
            predictions that have its highest IoU (the Faster R-CNN rule that gives every
            object at least one anchor).
        negative_floor: IoU below this is not even negative (Fast R-CNN's ``bg_low``); 0 keeps all.

    ``__call__(iou: G x N, ignore: N bool | None) -> (matched_idxs: N int64, labels: N int8)``.
    ``matched_idxs`` is the index of the best ground truth (0 where there is none); ``labels``
    is 1 / 0 / -1. ``ignore`` marks predictions lying in ignore regions (crowd / difficult):
    they are never negatives, only positives through a real object's IoU.
    """

    def __init__(
        self,
        thresholds: Sequence[float] = (0.3, 0.7),
        allow_low_quality_matches: bool = False,
        negative_floor: float = 0.0,
    ) -> None:
        low, high = (float(t) for t in thresholds)
        if not 0.0 <= low <= high <= 1.0:
            raise ValueError(
                f"Matcher thresholds must be (low, high) with 0 <= low <= high <= 1, got {tuple(thresholds)}"
            )
        self.low, self.high = low, high
        self.allow_low_quality_matches = allow_low_quality_matches
        self.negative_floor = float(negative_floor)

    def __call__(self, iou: Tensor, ignore: Tensor | None = None) -> tuple[Tensor, Tensor]:
        num_preds = iou.shape[1]
        if iou.shape[0] == 0:  # no objects: everything negative (unless ignored)
            matched = iou.new_zeros(num_preds, dtype=torch.int64)
            labels = iou.new_full((num_preds,), NEGATIVE, dtype=torch.int8)
            if ignore is not None:
                labels[ignore] = IGNORED
            return matched, labels
        best_iou, matched = iou.max(dim=0)
        labels = torch.full_like(matched, IGNORED, dtype=torch.int8)
        labels[(best_iou < self.low) & (best_iou >= self.negative_floor)] = NEGATIVE
        if ignore is not None:
            labels[ignore & (labels == NEGATIVE)] = IGNORED
        labels[best_iou >= self.high] = POSITIVE
        if self.allow_low_quality_matches:
            # predictions tied with the best IoU of some object become positive for their best object
            best_per_gt = iou.max(dim=1, keepdim=True).values
            is_best = ((iou == best_per_gt) & (best_per_gt > 0)).any(dim=0)
            labels[is_best] = POSITIVE
        return matched, labels
