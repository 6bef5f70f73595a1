"""Mask R-CNN: Faster R-CNN whose RoI heads (``MaskRoIHeads``) also predict instance masks.

The detector adds two things to ``FasterRCNN``: ground-truth bitmaps are never resized --
when the preprocessor resizes the images, the RoI heads get each image's ``mask_scales``
(batch to bitmap coordinates, an explicit argument) and crop the mask targets from the bitmaps
at their own resolution; and at inference the ``M x M`` mask probabilities
(``Detections.mask_probs``) are pasted (``resdet.structures.mask_ops.paste_masks``) only
after the boxes reached their final coordinates, so every mask is resampled once, directly
into the original image.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from torch import Tensor

from ...registry import MODELS
from ...structures.boxes import scale_boxes
from ...structures.instances import Detections, Proposals
from ...structures.mask_ops import PASTE_MODES, paste_masks
from ..roi_heads.mask_roi_heads import MaskRoIHeads
from .two_stage import META_KEYS, FasterRCNN


def _as_pair(value) -> tuple[float, float]:
    if isinstance(value, Tensor):
        value = value.flatten().tolist()
    if isinstance(value, (int, float)):
        return float(value), float(value)
    return float(value[0]), float(value[-1])


@MODELS.register_module()
class MaskRCNN(FasterRCNN):
    """Faster R-CNN + mask branch (He et al. 2017), C4 or FPN layout.

    Args:
        mask_thresh: a pasted pixel belongs to the instance when its probability is above this.
        paste_mode: ``'continuous'`` (half-pixel exact) or ``'torchvision'`` (torchvision's
            integer-box pasting, for its converted weights); see ``mask_ops``.
        other arguments: see ``FasterRCNN``; ``roi_heads`` must be a ``MaskRoIHeads``.

    ``forward``: training losses add ``loss_mask``; eval detections add ``masks``
    (``K x H x W`` bool) in the original image size when ``targets`` carry meta
    (``orig_size``, ``scale_factor``, ``flip``, ``img_shape``), else in each input's size.
    """

    def __init__(self, *args, mask_thresh: float = 0.5, paste_mode: str = "continuous", **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if not isinstance(self.roi_heads, MaskRoIHeads):
            raise TypeError(f"MaskRCNN needs roi_heads of type MaskRoIHeads, got {type(self.roi_heads).__name__}")
        if paste_mode not in PASTE_MODES:
            raise ValueError(f"MaskRCNN paste_mode {paste_mode!r} unknown; allowed values: {', '.join(PASTE_MODES)}")
        self.mask_thresh, self.paste_mode = float(mask_thresh), paste_mode

    def roi_losses(self, features: dict[str, Tensor], proposals: list[Proposals], sizes: list[tuple[int, int]],
                   targets: list[dict], factors: list[tuple[float, float]]) -> dict[str, Tensor]:
        """Box and mask losses; the bitmaps stay at the inputs' resolution, so the mask branch
        maps batch coordinates back by the inverse of each image's resize."""
        mask_scales = [(1.0 / w_scale, 1.0 / h_scale) for w_scale, h_scale in factors]
        _, losses = self.roi_heads(features, proposals, sizes, targets, mask_scales=mask_scales)
        return losses

    def forward(self, inputs: Sequence[Tensor] | Tensor, targets: list[dict] | None = None):
        if self.training:
            return super().forward(inputs, targets)
        detections = self.to_original(self.detect_with_test_cfg(inputs), targets)
        return [det.to_dict() for det in self.paste(detections, inputs, targets)]

    def detect_with_test_cfg(self, inputs: Sequence[Tensor] | Tensor) -> list[Detections]:
        detections = super().detect_with_test_cfg(inputs)
        return self._masks_for_boxes(inputs, detections) if self.uses_tta() else detections

    def _masks_for_boxes(self, inputs: Sequence[Tensor], detections: list[Detections]) -> list[Detections]:
        """Mask probabilities for detections in input coordinates (test-time augmentation
        averages the boxes; the masks come from the plain, unflipped view)."""
        batch, sizes, factors = self.preprocessor(inputs)
        features = self.extract_features(batch)
        boxes = [scale_boxes(d.boxes, f[0], f[1]) for d, f in zip(detections, factors)]
        probs = self.roi_heads.predict_mask_probs(features, boxes, [d.labels for d in detections], sizes)
        return [replace(det, mask_probs=p) for det, p in zip(detections, probs)]

    def paste(self, detections: list[Detections], inputs: Sequence[Tensor], targets: list[dict] | None
              ) -> list[Detections]:
        """Each detection's ``mask_probs`` pasted at its boxes into ``masks`` (``K x H x W`` bool)."""
        pasted = []
        for index, det in enumerate(detections):
            probs = det.mask_probs
            if probs is None:
                raise ValueError("MaskRCNN.paste needs detections with mask_probs (from MaskRoIHeads)")
            meta = targets[index] if targets is not None else {}
            if any(k in meta for k in META_KEYS) and meta.get("orig_size") is not None:
                height, width = (int(round(v)) for v in _as_pair(meta["orig_size"]))
                flip = meta.get("flip", False)
                if bool(flip.item() if isinstance(flip, Tensor) else flip):
                    probs = probs.flip(-1)  # the boxes were mirrored back by to_original
            else:
                height, width = int(inputs[index].shape[-2]), int(inputs[index].shape[-1])
            masks = paste_masks(probs, det.boxes, height, width, threshold=self.mask_thresh, mode=self.paste_mode)
            pasted.append(replace(det, mask_probs=None, masks=masks))
        return pasted
