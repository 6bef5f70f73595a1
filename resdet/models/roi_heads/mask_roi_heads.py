"""Mask R-CNN RoI heads: the Fast R-CNN box branch of ``StandardRoIHeads`` plus a mask branch.

Training: the box branch samples RoIs as usual; the mask branch predicts masks on the
*positive* RoIs only, and its targets are the matched ground-truth bitmaps cropped to each
RoI with RoIAlign (``crop_masks_to_boxes``, all RoIs of an image in one call). The loss is
the per-pixel binary cross-entropy of the ground-truth class's mask only.

Inference: masks are predicted on the final detections (after NMS) and returned as
``mask_probs`` (``K x M x M`` sigmoid of the predicted class's logits); the detector pastes
them into the image once the boxes are in their final coordinates.

C4 layout (``mask_pooler=None``): the mask head reads the conv5 output of the box head's
``res5`` (RoIAlign 14x14 on C4 -> res5 -> 7x7), shared with the box branch in training,
recomputed on the detected boxes at inference. FPN layout: a separate ``mask_pooler``
(RoIAlign 14x14, level-assigned).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

import torch
from torch import Tensor, nn

from ...registry import MODELS
from ...structures.instances import Detections, Proposals, SampledRoIs, positive_rows
from ...structures.mask_ops import crop_masks_to_boxes
from ..utils.shape_spec import ShapeSpec, build_part
from .mask_head import mask_loss
from .roi_heads import StandardRoIHeads, pooled_shape


@MODELS.register_module()
class MaskRoIHeads(StandardRoIHeads):
    """Box branch (see ``StandardRoIHeads``, whose arguments all apply) plus mask branch.

    Args:
        mask_head: ``MaskHead`` config (its ``num_classes`` is filled in; it is handed the shape
            of its input, the mask pooler's ``output_shape()`` or the box head's ``'res5'``).
        mask_pooler: ``RoIPooler`` config for the mask features (FPN: 14x14 on P2-P5);
            ``None`` shares the C4 box head's conv5 features (the box head must publish a
            ``'res5'`` output, as ``Res5BoxHead`` does).
        input_shape: the published shapes of the features (handed down by the detector).
        **box_kwargs: the other ``StandardRoIHeads`` arguments.

    ``forward(features, proposals: list of Proposals, image_sizes, targets=None, mask_scales=None)``:
    in training the box losses plus ``loss_mask``; targets need ``masks`` (uint8 ``N x H x W``
    aligned with ``boxes``) and ``mask_scales`` is required: per image the ``(x, y)`` factors
    from batch coordinates to those bitmaps' pixels (``(1.0, 1.0)`` when the model did not
    resize). In eval ``Detections`` with ``mask_probs`` (``K x M x M``).
    """

    def __init__(
        self,
        mask_head: dict | nn.Module,
        mask_pooler: dict | nn.Module | None = None,
        input_shape: Mapping[str, ShapeSpec] | None = None,
        **box_kwargs,
    ) -> None:
        super().__init__(input_shape=input_shape, **box_kwargs)
        if mask_pooler is None and "res5" not in self.box_outputs:
            raise ValueError(
                f"MaskRoIHeads with mask_pooler=None shares the C4 box head's conv5 "
                f"features, but box_head {type(self.box_head).__name__} publishes no 'res5' "
                "output; give a mask_pooler (e.g. RoIPooler 14x14 for FPN)"
            )
        # the pooler (no parameters) is built first for its output shape, registered after the head
        pooler = build_part(mask_pooler, "mask_pooler", input_shape=input_shape) if mask_pooler is not None else None
        mask_input = pooled_shape(pooler, "mask pooler") if pooler is not None else self.box_outputs["res5"]
        if isinstance(mask_head, dict):
            mask_head = dict(mask_head)
            mask_head.setdefault("num_classes", self.num_classes)
        self.mask_head = build_part(mask_head, "mask_head", input_shape=mask_input)
        if not self.mask_head.class_agnostic and self.mask_head.num_classes != self.num_classes:
            raise ValueError(
                f"MaskRoIHeads num_classes={self.num_classes} but mask_head has "
                f"num_classes={self.mask_head.num_classes}"
            )
        self.mask_pooler = pooler

    def _mask_features(
        self, features: dict[str, Tensor], boxes: list[Tensor], image_sizes: Sequence[Sequence[int]]
    ) -> Tensor:
        """``(sum K_i) x C x S x S`` mask-head inputs for ``boxes`` (rows in image order)."""
        if self.mask_pooler is not None:
            return self.mask_pooler(features, boxes, image_sizes)
        return self.box_head.res5(self.box_pooler(features, boxes, image_sizes))

    def predict_mask_probs(
        self,
        features: dict[str, Tensor],
        boxes: list[Tensor],
        labels: list[Tensor],
        image_sizes: Sequence[Sequence[int]],
    ) -> list[Tensor]:
        """Per image ``K_i x M x M`` mask probabilities of the given boxes' classes."""
        counts = [b.shape[0] for b in boxes]
        if not torch.compiler.is_exporting() and sum(counts) == 0:  # (a branch on a count)
            size = self._mask_size()
            return [b.new_zeros((0, size, size)) for b in boxes]
        logits = self.mask_head(self._mask_features(features, boxes, image_sizes))
        probs = self.mask_head.select(logits, torch.cat(labels)).sigmoid()
        return list(probs.split(counts))

    def with_mask_probs(
        self, features: dict[str, Tensor], detections: list[Detections], image_sizes: Sequence[Sequence[int]]
    ) -> list[Detections]:
        """``detections`` with the ``mask_probs`` of their boxes and labels."""
        probs = self.predict_mask_probs(
            features, [d.boxes for d in detections], [d.labels for d in detections], image_sizes
        )
        return [replace(det, mask_probs=p) for det, p in zip(detections, probs)]

    def _mask_size(self) -> int:
        """Side ``M`` of the predicted masks: the deconv doubles the pooled size (C4: res5
        halves the box pooler's 14 first)."""
        if self.mask_pooler is not None:
            return 2 * self.mask_pooler.output_size
        return self.box_pooler.output_size

    def mask_losses(
        self,
        mask_features: Tensor,
        samples: list[SampledRoIs],
        targets: list[dict],
        mask_scales: Sequence[Sequence[float]],
    ) -> Tensor:
        """BCE of each positive RoI's ground-truth-class mask against its cropped target.

        ``mask_features``: the positive RoIs' mask-head inputs, in the order of ``samples``;
        ``mask_scales``: per image ``(x, y)`` from batch coordinates to its bitmaps' pixels."""
        labels = torch.cat([s.positive_labels for s in samples])
        logits = self.mask_head.select(self.mask_head(mask_features), labels)
        size = logits.shape[-1]
        crops = []
        for index, (sample, target, scale) in enumerate(zip(samples, targets, mask_scales)):
            masks = target.get("masks")
            if not isinstance(masks, Tensor) or masks.dim() != 3:
                raise KeyError(
                    f"Mask R-CNN training needs target 'masks' as an N x H x W tensor for "
                    f"every image; image {target.get('img_id', index)!r} has "
                    f"{type(masks).__name__} (load the dataset with with_masks=True)"
                )
            if len(masks) != len(target["boxes"]):
                raise ValueError(
                    f"image {target.get('img_id', index)!r}: {len(masks)} masks for {len(target['boxes'])} boxes"
                )
            crops.append(
                crop_masks_to_boxes(
                    masks,
                    sample.positive_boxes,
                    sample.positive_matched_idxs,
                    size=size,
                    box_scale=(float(scale[0]), float(scale[1])),
                )
            )
        return mask_loss(logits, torch.cat(crops).to(logits.device))

    def forward(
        self,
        features: dict[str, Tensor],
        proposals: list[Proposals],
        image_sizes: Sequence[Sequence[int]],
        targets: list[dict] | None = None,
        mask_scales: Sequence[Sequence[float]] | None = None,
    ) -> tuple[list[Detections], dict[str, Tensor]]:
        if not self.training:
            detections, _ = super().forward(features, proposals, image_sizes)
            return self.with_mask_probs(features, detections, image_sizes), {}
        if targets is None:
            raise ValueError("RoI heads in training mode need targets (boxes, labels, masks)")
        if mask_scales is None or len(mask_scales) != len(targets):
            raise ValueError(
                "MaskRoIHeads in training mode needs mask_scales: one (x, y) factor pair per "
                "image from batch coordinates to its target bitmaps ((1.0, 1.0) when the "
                f"images were not resized); got {mask_scales!r} for {len(targets)} images"
            )
        samples = self.sample_proposals([p.boxes for p in proposals], targets)
        pooled = self.box_pooler(features, [s.boxes for s in samples], image_sizes)
        if self.mask_pooler is None:  # C4: one conv5 pass for the box and the mask branch
            conv5 = self.box_head.res5(pooled)
            class_logits, deltas = self.box_predictor(conv5.mean(dim=(2, 3)))
            mask_features = conv5[positive_rows(samples, conv5.device)]
        else:
            class_logits, deltas = self.box_predictor(self.box_head(pooled))
            mask_features = self.mask_pooler(features, [s.positive_boxes for s in samples], image_sizes)
        losses = self.box_losses(class_logits, deltas, samples)
        losses["loss_mask"] = self.mask_losses(mask_features, samples, targets, mask_scales)
        return [], losses
