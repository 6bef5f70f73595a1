"""``TopKError``: top-k classification error (the paper's top-1 / top-5 error).

Predictions: ``N x C`` logits (or probabilities: only the ranking matters); targets:
``{'labels': N}`` as ``cls_collate`` makes them (optionally ``img_ids`` / ``indices`` so
samples a distributed sampler padded in are counted once). Result keys ``top1_err``,
``top5_err``, ... as fractions in [0, 1]; ``topk_num_samples``.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np
import torch

from resdet.evaluation.base import BaseMetric
from resdet.registry import METRICS


def label_ranks(logits: torch.Tensor | np.ndarray, labels: torch.Tensor | np.ndarray) -> np.ndarray:
    """0-based rank of the true label among ``N x C`` scores (0 = top-1 correct).

    Ties count against the prediction (a label tied with another scores the worse rank),
    so a constant output is never "correct".
    """
    logits = torch.as_tensor(logits).detach().float().cpu()
    labels = torch.as_tensor(labels).detach().long().cpu().reshape(-1)
    if logits.ndim != 2 or logits.shape[0] != labels.shape[0]:
        raise ValueError(
            f"TopKError: expected N x C scores and N labels, got {tuple(logits.shape)} and {tuple(labels.shape)}"
        )
    if labels.numel() and (labels.min() < 0 or labels.max() >= logits.shape[1]):
        raise ValueError(
            f"TopKError: labels must be in 0..{logits.shape[1] - 1}, got {labels.min().item()}..{labels.max().item()}"
        )
    true_scores = logits.gather(1, labels[:, None])
    others_at_least = (logits >= true_scores).sum(1) - 1  # scores >= the true one, itself excluded
    return others_at_least.numpy().astype(np.int64)


@METRICS.register_module()
class TopKError(BaseMetric):
    """Top-k error for each ``k`` in ``topk``."""

    higher_is_better = False

    def __init__(self, topk: Sequence[int] = (1, 5)) -> None:
        super().__init__()
        topk = tuple(int(k) for k in (topk if isinstance(topk, (list, tuple)) else (topk,)))
        if not topk or min(topk) < 1:
            raise ValueError(f"TopKError: topk must be positive integers, got {topk}")
        self.topk = topk
        self.primary_key = f"top{topk[0]}_err"

    def process(self, predictions: Any, targets: Any) -> None:
        labels = targets["labels"] if isinstance(targets, dict) else targets
        ranks = label_ranks(predictions, labels)
        keys = self._sample_keys(targets, len(ranks))
        self._records.extend(zip(keys, ranks.tolist()))

    def evaluate(self, records: list[tuple[Hashable, Any]]) -> dict[str, float]:
        ranks = np.asarray([r for _, r in records], dtype=np.int64)
        out = {}
        for k in self.topk:
            out[f"top{k}_err"] = float((ranks >= k).mean()) if ranks.size else 0.0
        out["topk_num_samples"] = int(ranks.size)
        return out

    def format_table(self, results: dict[str, float]) -> str:
        cells = ", ".join(f"top-{k} error {100 * results[f'top{k}_err']:.2f}%" for k in self.topk)
        return f"classification ({results['topk_num_samples']} images): {cells}"
