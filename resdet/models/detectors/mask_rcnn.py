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

import torch
from torch import Tensor

from ...registry import MODELS
from ...structures.boxes import scale_boxes
from ...structures.image_meta import ImageMeta
from ...structures.instances import Detections, Proposals
from ...structures.mask_ops import PASTE_MODES, paste_masks, paste_masks_dense
from ..roi_heads.mask_roi_heads import MaskRoIHeads
from .two_stage import FasterRCNN


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
    (``ImageMeta``), else in each input's size.
    """

    has_masks = True

    def __init__(self, *args, mask_thresh: float = 0.5, paste_mode: str = "continuous", **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if not isinstance(self.roi_heads, MaskRoIHeads):
            raise TypeError(f"MaskRCNN needs roi_heads of type MaskRoIHeads, got {type(self.roi_heads).__name__}")
        if paste_mode not in PASTE_MODES:
            raise ValueError(f"MaskRCNN paste_mode {paste_mode!r} unknown; allowed values: {', '.join(PASTE_MODES)}")
        self.mask_thresh, self.paste_mode = float(mask_thresh), paste_mode

    def roi_losses(
        self,
        features: dict[str, Tensor],
        proposals: list[Proposals],
        sizes: list[tuple[int, int]],
        targets: list[dict],
        factors: list[tuple[float, float]],
    ) -> dict[str, Tensor]:
        """Box and mask losses; the bitmaps stay at the inputs' resolution, so the mask branch
        maps batch coordinates back by the inverse of each image's resize."""
        # MaskRoIHeads takes the inverse direction: batch -> bitmap coordinates
        mask_scales = [(1.0 / w_scale, 1.0 / h_scale) for w_scale, h_scale in factors]
        _, losses = self.roi_heads(features, proposals, sizes, targets, mask_scales=mask_scales)
        return losses

    def mask_probs_for(self, inputs: Sequence[Tensor] | Tensor, detections: list[Detections]) -> list[Detections]:
        """Mask probabilities for detections in input coordinates, from the plain view
        (``DetectorTTA`` averages the boxes over views, then asks for their masks)."""
        batch, sizes, factors = self.preprocessor(inputs)
        features = self.extract_features(batch)
        boxes = [scale_boxes(d.boxes, f[0], f[1]) for d, f in zip(detections, factors)]
        probs = self.roi_heads.predict_mask_probs(features, boxes, [d.labels for d in detections], sizes)
        return [replace(det, mask_probs=p) for det, p in zip(detections, probs)]

    def postprocess(self, detections: list[Detections], metas: Sequence[ImageMeta]) -> list[Detections]:
        """``FasterRCNN.postprocess``, then each detection's ``mask_probs`` pasted at its final
        box into ``masks`` (``K x H x W`` bool) of the original image size."""
        detections = super().postprocess(detections, metas)
        return [self.paste(det, meta) for det, meta in zip(detections, metas)]

    def paste(self, det: Detections, meta: ImageMeta) -> Detections:
        """``det.mask_probs`` (``K x M x M``, in the model input's orientation) -> ``masks``;
        ``det.boxes`` are already in the original image."""
        probs = det.mask_probs
        if probs is None:
            raise ValueError("MaskRCNN.paste needs detections with mask_probs (from MaskRoIHeads)")
        if meta.flip:
            probs = probs.flip(-1)  # the boxes were mirrored back by postprocess
        height, width = meta.orig_size
        # an exported graph cannot size each box's window from tensor values: whole-image windows
        paste = paste_masks_dense if torch.compiler.is_exporting() else paste_masks
        masks = paste(probs, det.boxes, height, width, threshold=self.mask_thresh, mode=self.paste_mode)
        return replace(det, mask_probs=None, masks=masks)
