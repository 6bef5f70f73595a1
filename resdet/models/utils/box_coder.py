"""Box regression coding of R-CNN: deltas ``(dx, dy, dw, dh)`` of a target box relative to a
reference box (anchor or proposal), each scaled by a weight."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

DEFAULT_SCALE_CLAMP = math.log(1000.0 / 16)


class BoxCoder:
    """Encode / decode boxes as weighted ``(dx, dy, dw, dh)`` deltas.

    Args:
        weights: ``(wx, wy, ww, wh)`` multiplying the deltas; ``(1, 1, 1, 1)`` for the RPN,
            ``(10, 10, 5, 5)`` for the Fast R-CNN head.
        scale_clamp: upper bound on ``dw`` and ``dh`` before ``exp`` when decoding.

    Widths are ``x2 - x1`` (continuous coordinates, no +1).
    """

    def __init__(
        self, weights: Sequence[float] = (1.0, 1.0, 1.0, 1.0), scale_clamp: float = DEFAULT_SCALE_CLAMP
    ) -> None:
        if len(weights) != 4:
            raise ValueError(f"BoxCoder weights must have 4 values (wx, wy, ww, wh), got {weights!r}")
        self.weights = tuple(float(w) for w in weights)
        self.scale_clamp = float(scale_clamp)

    def encode(self, reference: Tensor, target: Tensor) -> Tensor:
        """``reference``, ``target``: ``N x 4`` xyxy -> deltas ``N x 4``."""
        reference = reference.to(target.dtype)
        wx, wy, ww, wh = self.weights
        ref_w = reference[:, 2] - reference[:, 0]
        ref_h = reference[:, 3] - reference[:, 1]
        ref_x = reference[:, 0] + 0.5 * ref_w
        ref_y = reference[:, 1] + 0.5 * ref_h
        gt_w = target[:, 2] - target[:, 0]
        gt_h = target[:, 3] - target[:, 1]
        gt_x = target[:, 0] + 0.5 * gt_w
        gt_y = target[:, 1] + 0.5 * gt_h
        return torch.stack(
            (
                wx * (gt_x - ref_x) / ref_w,
                wy * (gt_y - ref_y) / ref_h,
                ww * torch.log(gt_w / ref_w),
                wh * torch.log(gt_h / ref_h),
            ),
            dim=1,
        )

    def decode(self, deltas: Tensor, reference: Tensor) -> Tensor:
        """Apply deltas to reference boxes.

        ``deltas``: ``N x (4k)`` (k boxes per reference, e.g. one per class);
        ``reference``: ``N x 4`` -> ``N x (4k)`` xyxy boxes.
        """
        reference = reference.to(deltas.dtype)
        wx, wy, ww, wh = self.weights
        widths = (reference[:, 2] - reference[:, 0])[:, None]
        heights = (reference[:, 3] - reference[:, 1])[:, None]
        ctr_x = reference[:, 0, None] + 0.5 * widths
        ctr_y = reference[:, 1, None] + 0.5 * heights
        dx = deltas[:, 0::4] / wx
        dy = deltas[:, 1::4] / wy
        dw = (deltas[:, 2::4] / ww).clamp(max=self.scale_clamp)
        dh = (deltas[:, 3::4] / wh).clamp(max=self.scale_clamp)
        pred_x = dx * widths + ctr_x
        pred_y = dy * heights + ctr_y
        half_w = 0.5 * (torch.exp(dw) * widths)
        half_h = 0.5 * (torch.exp(dh) * heights)
        boxes = torch.stack((pred_x - half_w, pred_y - half_h, pred_x + half_w, pred_y + half_h), dim=2)
        return boxes.flatten(1)
