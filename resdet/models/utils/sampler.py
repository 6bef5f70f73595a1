"""Balanced sampling of positives and negatives (the RPN's 256 anchors with up to 50%
positives; Fast R-CNN's 512 RoIs with up to 25%)."""

from __future__ import annotations

import torch
from torch import Tensor


class BalancedSampler:
    """Pick up to ``batch_size_per_image`` examples per image, at most
    ``positive_fraction`` of them positive, the rest negatives, uniformly at random.

    ``__call__(labels: B x N int, 1 pos / 0 neg / -1 ignored) -> (pos: B x N bool, neg: B x N bool)``.
    Vectorised over the batch: a random key per element, ranked within each image.
    """

    def __init__(self, batch_size_per_image: int = 256, positive_fraction: float = 0.5) -> None:
        if batch_size_per_image <= 0 or not 0.0 <= positive_fraction <= 1.0:
            raise ValueError(
                f"BalancedSampler needs batch_size_per_image > 0 and positive_fraction in "
                f"[0, 1], got {batch_size_per_image}, {positive_fraction}"
            )
        self.batch_size_per_image = int(batch_size_per_image)
        self.positive_fraction = float(positive_fraction)

    @staticmethod
    def _random_subset(mask: Tensor, counts: Tensor) -> Tensor:
        """``counts[b]`` elements chosen at random among the True of ``mask[b]``."""
        keys = torch.rand(mask.shape, device=mask.device).masked_fill_(~mask, -1.0)
        order = keys.argsort(dim=1, descending=True)
        ranks = torch.empty_like(order)
        ranks.scatter_(1, order, torch.arange(mask.shape[1], device=mask.device).expand_as(order))
        return mask & (ranks < counts[:, None])

    def __call__(self, labels: Tensor) -> tuple[Tensor, Tensor]:
        if labels.dim() == 1:
            pos, neg = self(labels[None])
            return pos[0], neg[0]
        positive, negative = labels == 1, labels == 0
        max_pos = int(self.batch_size_per_image * self.positive_fraction)
        num_pos = positive.sum(dim=1).clamp(max=max_pos)
        num_neg = (self.batch_size_per_image - num_pos).clamp(min=0).minimum(negative.sum(dim=1))
        return self._random_subset(positive, num_pos), self._random_subset(negative, num_neg)
