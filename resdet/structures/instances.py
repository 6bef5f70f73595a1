"""Typed hand-offs between the stages of a two-stage detector, one object per image.

``Proposals``    RPN -> RoI heads (and test-time augmentation).
``SampledRoIs``  RoI-head sampling -> the box losses and the mask branch: positives first.
``Detections``   RoI heads -> detector, which maps them to the original image, pastes masks and
                 returns the public ``dict`` outputs (``to_dict``).

Boxes are float32 ``N x 4`` ``xyxy`` pixels of the batch the model ran on (after the
preprocessor's resize), unless a field says otherwise. The classes hold tensors only and check
sizes that need no device synchronisation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor


def _check_rows(owner: str, count, **tensors: Tensor | None) -> None:
    exporting = torch.compiler.is_exporting()
    for name, value in tensors.items():
        if value is None:
            continue
        if exporting:  # sizes are symbolic (NMS counts): a hint for the exporter, not a branch
            torch._check(value.shape[0] == count, lambda: f"{owner}: {name} rows differ from the boxes'")  # noqa: B023 (called at once)
        elif len(value) != count:
            raise ValueError(f"{owner}: {name} has {len(value)} rows for {count} boxes")


@dataclass(frozen=True, eq=False)
class Proposals:
    """Region proposals of one image.

    ``boxes``: ``R x 4`` float, clipped to the image; ``scores``: ``R`` objectness
    probabilities in ``[0, 1]`` (the RPN's are in descending order).
    """

    boxes: Tensor
    scores: Tensor

    def __post_init__(self) -> None:
        _check_rows("Proposals", self.boxes.shape[0], scores=self.scores)

    def __len__(self) -> int:
        return len(self.boxes)


@dataclass(frozen=True, eq=False)
class SampledRoIs:
    """The RoIs sampled for training from one image's proposals, **positives first**.

    Rows ``[0, num_pos)`` are foreground RoIs, rows ``[num_pos, S)`` background:

    * ``boxes``: ``S x 4`` float;
    * ``labels``: ``S`` int64, the matched object's class (``0..C-1``) for the positives and
      ``C`` (background) for the rest;
    * ``matched_idxs``: ``S`` int64, for the positives the index of the matched object among
      the image's target boxes (what the mask branch crops its targets from); 0 elsewhere;
    * ``reg_targets``: ``S x 4`` float box-regression targets of the positives (zeros elsewhere);
    * ``num_pos``: a Python ``int`` (read without a device synchronisation).

    Readers use the ``positive_*`` views rather than slicing by ``num_pos`` themselves.
    """

    boxes: Tensor
    labels: Tensor
    matched_idxs: Tensor
    reg_targets: Tensor
    num_pos: int

    def __post_init__(self) -> None:
        _check_rows(
            "SampledRoIs",
            len(self.boxes),
            labels=self.labels,
            matched_idxs=self.matched_idxs,
            reg_targets=self.reg_targets,
        )
        if not 0 <= self.num_pos <= len(self.boxes):
            raise ValueError(f"SampledRoIs: num_pos={self.num_pos} for {len(self.boxes)} RoIs")

    def __len__(self) -> int:
        return len(self.boxes)

    @property
    def positive_boxes(self) -> Tensor:
        """``num_pos x 4`` foreground RoIs."""
        return self.boxes[: self.num_pos]

    @property
    def positive_labels(self) -> Tensor:
        """``num_pos`` classes (``0..C-1``) of the foreground RoIs."""
        return self.labels[: self.num_pos]

    @property
    def positive_matched_idxs(self) -> Tensor:
        """``num_pos`` indices of the foreground RoIs' objects among the image's target boxes."""
        return self.matched_idxs[: self.num_pos]


def positive_rows(samples: Sequence[SampledRoIs], device: torch.device | str) -> Tensor:
    """Indices (int64) of the positive RoIs among the rows of all ``samples`` concatenated in
    order (``torch.cat([s.boxes for s in samples])``)."""
    starts = [0]
    for sample in samples[:-1]:
        starts.append(starts[-1] + len(sample))
    parts = [start + torch.arange(s.num_pos, device=device) for start, s in zip(starts, samples)]
    return torch.cat(parts) if parts else torch.zeros(0, dtype=torch.int64, device=device)


@dataclass(frozen=True, eq=False)
class Detections:
    """Final detections of one image, best first per class after NMS.

    * ``boxes``: ``K x 4`` float; ``scores``: ``K`` class probabilities; ``labels``: ``K`` int64
      in ``0..C-1``;
    * ``mask_probs``: ``K x M x M`` mask probabilities of each detection's class inside its box
      (Mask R-CNN, before pasting), else ``None``;
    * ``masks``: ``K x H x W`` bool masks pasted into the image, else ``None``.
    """

    boxes: Tensor
    scores: Tensor
    labels: Tensor
    mask_probs: Tensor | None = None
    masks: Tensor | None = None

    def __post_init__(self) -> None:
        _check_rows(
            "Detections",
            self.boxes.shape[0],
            scores=self.scores,
            labels=self.labels,
            mask_probs=self.mask_probs,
            masks=self.masks,
        )

    def __len__(self) -> int:
        return len(self.boxes)

    def to_dict(self) -> dict[str, Tensor]:
        """The detector's public output: ``boxes``, ``scores``, ``labels`` and, when pasted, ``masks``."""
        out = {"boxes": self.boxes, "scores": self.scores, "labels": self.labels}
        if self.masks is not None:
            out["masks"] = self.masks
        return out
