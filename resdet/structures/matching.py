"""Pairing two detectors' outputs for parity checks, tolerant to the order of near-equal scores.

Float rounding (folded BN, another memory layout, another runtime) can swap two detections
whose scores differ in the last bits; their order is not part of the result. Detections are
paired greedily in the expected order: each with the unpaired detection of the same label
whose box is closest (largest coordinate difference).
"""

from __future__ import annotations

import torch
from torch import Tensor


def pair_detections(expected: dict, got: dict, boundary_margin: float = 1e-3) -> dict:
    """Pairs ``got`` with ``expected`` (dicts of ``boxes``, ``scores``, ``labels``).

    Returns ``count`` (expected, got), ``unpaired`` (expected detections with no same-label
    partner), ``max_box_diff`` (pixels) and ``max_score_diff`` over the pairs, and
    ``order`` (index into ``got`` for each expected detection, -1 if unpaired).

    When both lists were cut at the same length (top-k), detections scoring within
    ``boundary_margin`` of the last kept score may differ between them (a near-tie at the cut
    decides which one stays): such a pair whose boxes differ by more than a pixel is counted in
    ``boundary_swaps`` and left out of the maxima."""
    boxes_e, boxes_g = expected["boxes"].float().cpu(), got["boxes"].float().cpu()
    labels_e, labels_g = expected["labels"].cpu(), got["labels"].cpu()
    scores_e, scores_g = expected["scores"].float().cpu(), got["scores"].float().cpu()
    free = torch.ones(len(boxes_g), dtype=torch.bool)
    order, box_diff, score_diff, swaps = [], 0.0, 0.0, 0
    cut = len(boxes_e) == len(boxes_g) and len(boxes_e) > 0
    floor_e = float(scores_e.min()) + boundary_margin if cut else float("-inf")
    floor_g = float(scores_g.min()) + boundary_margin if cut else float("-inf")
    for i in range(len(boxes_e)):
        candidates = torch.nonzero(free & (labels_g == labels_e[i])).flatten()
        if len(candidates) == 0:
            order.append(-1)
            continue
        dist: Tensor = (boxes_g[candidates] - boxes_e[i]).abs().amax(dim=1)
        j = int(candidates[int(dist.argmin())])
        free[j] = False
        order.append(j)
        if float(dist.min()) > 1.0 and float(scores_e[i]) <= floor_e and float(scores_g[j]) <= floor_g:
            swaps += 1
            continue
        box_diff = max(box_diff, float(dist.min()))
        score_diff = max(score_diff, float((scores_g[j] - scores_e[i]).abs()))
    return {
        "count": (len(boxes_e), len(boxes_g)),
        "unpaired": order.count(-1),
        "order": order,
        "max_box_diff": box_diff,
        "max_score_diff": score_diff,
        "boundary_swaps": swaps,
    }
