"""Two-stage detectors: backbone -> (neck) -> RPN -> RoI heads, with the preprocessor inside."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import torch
from torch import Tensor, nn
from torchvision.ops import nms

from ...registry import MODELS
from ...structures.boxes import scale_boxes
from ...structures.image_meta import ImageMeta, image_metas, unscale_boxes
from ...structures.instances import Detections, Proposals
from ..utils.shape_spec import ShapeSpec, build_part, published_shapes
from .init_weights import SOURCES, init_from_classifier
from .tta import DetectorTTA


@MODELS.register_module()
class FasterRCNN(nn.Module):
    """Faster R-CNN (Ren et al. 2015) in the three layouts of the paper and its successors:
    ResNet-C4 (conv1-4 shared, conv5 per RoI), VGG-16 (conv5_3, fc6/fc7) and ResNet-FPN.

    Args:
        backbone, rpn, roi_heads: configs (or modules) of a backbone returning a dict of
            feature maps, ``RPN`` and ``StandardRoIHeads``. The detector hands the neck, the RPN
            and the RoI heads the backbone's (or neck's) ``output_shape()`` (``input_shape``)
            and the preprocessor's padding; each derives its own input channels, anchors per
            location, anchor strides and pooler scales from them (a value a config states must
            agree: ``resdet.models.utils.shape_spec``).
        neck: optional ``FPN`` config.
        preprocessor: ``DetPreprocessor`` config (normalise, optional resize, pad, batch).
        num_classes: when set, overrides ``roi_heads.num_classes`` (dataset configs set it here).
        init_cfg: ``dict(checkpoint=PATH, src='resdet_cls' | 'torchvision')``: ``init_weights()``
            initialises the backbone (and the C4 head's conv5 / VGG's fc6-fc7) from a
            classification checkpoint. Building the model never reads it, so a trained detector
            loads (``init_model``) without the pretraining file.
        test_cfg: test-time options of the paper's Table 9: ``flip`` (bool), ``scales`` (shorter
            sides, e.g. ``(500, 600, 700)``), ``refine_boxes`` (second pass of the box head on
            its own outputs). Predictions of all views are averaged per RoI.
        channels_last: run the convolutions in ``channels_last`` memory format.

    ``forward(inputs: list of 3 x H_i x W_i uint8, targets=None)``: in training a dict of
    losses; in eval a list of ``{'boxes': K x 4, 'scores': K, 'labels': K}``, in the
    coordinates of the given images, or of the original images when ``targets`` carry meta
    (``ImageMeta``s, or dicts with ``img_shape``, ``scale_factor``, ``flip``, ``orig_size``:
    ``resdet.structures.image_meta``); ``postprocess`` maps them back. Inside, the stages hand
    over ``Proposals`` and ``Detections`` (``resdet.structures.instances``).
    """

    def __init__(
        self,
        backbone: dict | nn.Module,
        rpn: dict | nn.Module,
        roi_heads: dict | nn.Module,
        neck: dict | nn.Module | None = None,
        preprocessor: dict | nn.Module | None = None,
        num_classes: int | None = None,
        init_cfg: dict | None = None,
        test_cfg: dict | None = None,
        channels_last: bool = False,
    ) -> None:
        super().__init__()
        self.preprocessor = MODELS.build(preprocessor or dict(type="DetPreprocessor"))
        self.backbone = MODELS.build(backbone)
        self.neck, shapes = self._build_neck(neck)
        self.rpn = build_part(
            rpn, "model.rpn", input_shape=shapes, size_divisor=int(getattr(self.preprocessor, "size_divisor", 1))
        )
        if isinstance(roi_heads, dict) and num_classes is not None:
            roi_heads = dict(roi_heads, num_classes=num_classes)
        self.roi_heads = build_part(roi_heads, "model.roi_heads", input_shape=shapes)
        self.num_classes = self.roi_heads.num_classes
        test_cfg = dict(test_cfg or {})
        unknown = set(test_cfg) - {"flip", "scales", "refine_boxes"}
        if unknown:
            raise KeyError(f"FasterRCNN test_cfg keys {sorted(unknown)} unknown; allowed: flip, scales, refine_boxes")
        self.test_cfg = test_cfg
        self.channels_last = channels_last
        self.init_report = None
        self.init_cfg = dict(init_cfg) if init_cfg else None
        if self.init_cfg is not None:
            unknown = set(self.init_cfg) - {"checkpoint", "src"}
            if unknown or "checkpoint" not in self.init_cfg:
                raise KeyError(
                    f"FasterRCNN init_cfg needs 'checkpoint' (and optionally 'src'); got keys {sorted(self.init_cfg)}"
                )
            if self.init_cfg.get("src", "resdet_cls") not in SOURCES:
                raise ValueError(f"init_cfg src {self.init_cfg['src']!r} unknown; allowed values: {', '.join(SOURCES)}")

    def _build_neck(self, neck: dict | nn.Module | None) -> tuple[nn.Module | None, dict[str, ShapeSpec] | None]:
        """``(neck, published shapes of the features the heads read)``."""
        shapes = published_shapes(self.backbone, "backbone")
        if neck is None:
            return None, shapes
        neck = build_part(neck, "model.neck", input_shape=shapes)
        return neck, published_shapes(neck, "neck")

    def init_weights(self) -> dict | None:
        """Apply ``init_cfg`` (classification pretraining); a no-op without it. Called by the
        trainer when a run starts from scratch, never when a full checkpoint is loaded."""
        if self.init_cfg is not None:
            self.init_report = init_from_classifier(self, **self.init_cfg)
        return self.init_report

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def extract_features(self, batch: Tensor) -> dict[str, Tensor]:
        if self.channels_last:
            batch = batch.contiguous(memory_format=torch.channels_last)
        features = self.backbone(batch)
        return self.neck(features) if self.neck is not None else features

    def _resize_targets(self, targets: list[dict], factors: list[tuple[float, float]]) -> list[dict]:
        """Targets in batch coordinates when the preprocessor resized the images."""
        out = []
        for target, (w_scale, h_scale) in zip(targets, factors):
            if "boxes" not in target or "labels" not in target:
                raise KeyError(f"detection targets need 'boxes' and 'labels'; got keys {sorted(target)}")
            target = dict(target)
            if (w_scale, h_scale) != (1.0, 1.0):
                target["boxes"] = scale_boxes(target["boxes"].float(), w_scale, h_scale)
            out.append(target)
        return out

    has_masks = False  # MaskRCNN: detections carry masks (exported graphs add an output)

    def forward(self, inputs: Sequence[Tensor] | Tensor, targets: Sequence[dict | ImageMeta] | None = None):
        if self.training:
            if targets is None:
                raise ValueError("FasterRCNN in training mode needs targets (list of dicts with boxes, labels)")
            return self.losses(inputs, targets)
        metas = image_metas(inputs, targets)
        return [det.to_dict() for det in self.postprocess(self.detect_with_test_cfg(inputs), metas)]

    def losses(self, inputs: Sequence[Tensor] | Tensor, targets: list[dict]) -> dict[str, Tensor]:
        """The RPN and RoI-head losses of a batch (``targets`` in the inputs' coordinates)."""
        batch, sizes, factors = self.preprocessor(inputs)
        targets = self._resize_targets(targets, factors)
        features = self.extract_features(batch)
        proposals, rpn_losses = self.rpn(features, sizes, batch.shape[-2:], targets)
        return {**rpn_losses, **self.roi_losses(features, proposals, sizes, targets, factors)}

    def roi_losses(
        self,
        features: dict[str, Tensor],
        proposals: list[Proposals],
        sizes: list[tuple[int, int]],
        targets: list[dict],
        factors: list[tuple[float, float]],
    ) -> dict[str, Tensor]:
        """RoI-head losses; ``factors``: per image the preprocessor's ``scale_factor`` ``(w, h)``
        (input -> batch coordinates)."""
        _, losses = self.roi_heads(features, proposals, sizes, targets)
        return losses

    # ------------------------------------------------------------------ inference
    def uses_tta(self) -> bool:
        return bool(self.test_cfg.get("flip") or self.test_cfg.get("scales") or self.test_cfg.get("refine_boxes"))

    def detect_with_test_cfg(self, inputs: Sequence[Tensor] | Tensor) -> list[Detections]:
        """Detections in the coordinates of the given images: plain, or through ``DetectorTTA``
        with ``test_cfg``'s test-time augmentation."""
        if self.uses_tta():
            return DetectorTTA(self, **self.test_cfg).detect(inputs)
        return self.detect(inputs)

    def propose(
        self, inputs: Sequence[Tensor] | Tensor, min_size: int | None = None, flip: bool = False
    ) -> tuple[dict[str, Tensor], list[tuple[int, int]], list[tuple[float, float]], list[Proposals]]:
        """One view of the images (the preprocessor's resize, or shorter side ``min_size``;
        mirrored when ``flip``): ``(features, sizes (h, w) in the batch, scale_factors
        (w, h) input -> batch, proposals in batch coordinates)``."""
        batch, sizes, factors = self.preprocessor(inputs, min_size=min_size, flip=flip)
        features = self.extract_features(batch)
        proposals, _ = self.rpn(features, sizes, batch.shape[-2:])
        return features, sizes, factors, proposals

    def merge_proposals(self, boxes: Tensor, scores: Tensor) -> Tensor:
        """``R`` pooled proposals of one image (several views) -> the kept boxes: the RPN's
        test-time NMS and proposal count."""
        keep = nms(boxes, scores, self.rpn.nms_thresh)[: self.rpn.post_nms_top_n[False]]
        return boxes[keep]

    def score_boxes(
        self, features: dict[str, Tensor], boxes: list[Tensor], sizes: list[tuple[int, int]]
    ) -> tuple[Tensor, Tensor]:
        """The box head on given RoIs (batch coordinates): class probabilities ``R x (C + 1)``
        and per-class boxes ``R x C x 4`` of all images, concatenated."""
        return self.roi_heads.predict(features, boxes, sizes)

    def select_detections(self, probs: Tensor, boxes: Tensor) -> Detections:
        """One image's scored RoIs -> its detections (score threshold, per-class NMS, top-k)."""
        return self.roi_heads.postprocess(probs, boxes)

    def detect(self, inputs: Sequence[Tensor] | Tensor) -> list[Detections]:
        """Plain inference: detections in the coordinates of the given images."""
        features, sizes, factors, proposals = self.propose(inputs)
        detections, _ = self.roi_heads(features, proposals, sizes)
        return [
            det if tuple(factor) == (1.0, 1.0) else replace(det, boxes=unscale_boxes(det.boxes, factor))
            for det, factor in zip(detections, factors)
        ]

    def predict(self, inputs: Sequence[Tensor] | Tensor) -> list[dict]:
        """Plain inference as the public dicts (``boxes``, ``scores``, ``labels``), in the
        coordinates of the given images."""
        return [det.to_dict() for det in self.detect(inputs)]

    def postprocess(self, detections: list[Detections], metas: Sequence[ImageMeta]) -> list[Detections]:
        """Detections in the coordinates of the images given to the model -> in the original
        images described by ``metas`` (boxes un-flipped, un-scaled, clipped). The one path
        back for eager inference, ``DetectorTTA`` and the exported graph."""
        return [replace(det, boxes=meta.boxes_to_original(det.boxes)) for det, meta in zip(detections, metas)]
