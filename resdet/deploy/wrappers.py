"""Thin modules around a built resdet model that put the whole test path into one graph.

``DetectorGraph``: one uint8 ``3 x H x W`` RGB image -> the config's test resize (bit-exact
with ``cv2.resize``, see ``resize.py``) -> a ``DetPreprocessor(min_size=...)``'s own resize
(``configs/*_tv.py``: normalise, then bilinear to ``floor(side * scale)``, the size computed on
float64 tensors as ``F.interpolate`` computes it in Python) -> the detector's own ``detect`` (its
preprocessor: normalise, pad; backbone, neck, RPN, RoI heads) -> the detector's own
``postprocess`` with the resize's ``ImageMeta``: boxes mapped back to the input pixels (scaled,
clipped), Mask R-CNN's masks pasted into the input image.
``ClassifierGraph``: ``N x 3 x H x W`` uint8 -> logits (the classifier's own normalisation).

The detector code itself is export-friendly (no Python numbers from tensor values on its
inference path; ``torch.compiler.is_exporting()`` switches the few data-dependent helpers to
their graph forms), so these wrappers only add the steps ``inference_detector`` does outside
the model. ``check_exportable`` names what cannot go into a graph.
"""

from __future__ import annotations

import copy
from dataclasses import replace
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..data.transforms.det_transforms import inference_pipeline_of
from ..models.classifiers import ImageClassifier
from ..models.detectors import FasterRCNN, Localizer
from ..structures.image_meta import ImageMeta, unscale_boxes
from .errors import ExportError
from .resize import preprocessor_resize_shape, resize_bilinear_uint8, resize_shape


def pipeline_resize_of(cfg: Any) -> tuple[int, int | None] | None:
    """``(short_edge, max_size)`` of the config's test pipeline (``None``: no resize); any
    other transform, several sizes or another interpolation than bilinear is an ``ExportError``."""
    resize = None
    for step in inference_pipeline_of(cfg):
        kind = step.get("type")
        if kind != "ResizeShortestEdge" or resize is not None:
            raise ExportError(
                f"test pipeline step {kind!r} cannot be exported: the graph reproduces one "
                "ResizeShortestEdge (one size, bilinear) and nothing else"
            )
        sizes = step.get("short_edge_length", 600)
        sizes = [sizes] if isinstance(sizes, (int, float)) else list(sizes)
        if len(sizes) != 1 or step.get("interpolation", "bilinear") != "bilinear":
            raise ExportError(
                f"test pipeline ResizeShortestEdge(short_edge_length={step.get('short_edge_length')!r}, "
                f"interpolation={step.get('interpolation', 'bilinear')!r}) cannot be exported: "
                "one size and bilinear interpolation only"
            )
        max_size = step.get("max_size", 1000)
        resize = (int(sizes[0]), None if max_size is None else int(max_size))
    return resize


def check_exportable(model: nn.Module, cfg: Any) -> str:
    """``'detector'`` or ``'classifier'``, or an ``ExportError`` naming the unsupported part."""
    kind = type(model).__name__
    if isinstance(model, ImageClassifier):
        tta = getattr(model, "test_cfg", None) or {}
        if tta:
            raise ExportError(f"ImageClassifier test_cfg {dict(tta)} (test-time augmentation) cannot be exported")
        return "classifier"
    if not isinstance(model, FasterRCNN):
        hint = (
            " (not yet: its ranked class guesses with a box each need their own output contract; see docs/export.md)"
            if isinstance(model, Localizer)
            else ""
        )
        raise ExportError(
            f"model type {kind!r} cannot be exported{hint}; supported: ImageClassifier, "
            "FasterRCNN and its subclasses (MaskRCNN)"
        )
    if model.uses_tta():
        raise ExportError(
            f"{kind} test_cfg {model.test_cfg} (test-time flip / scales / box refinement) "
            "cannot be exported; remove it with --cfg-options model.test_cfg=None"
        )
    pipeline_resize_of(cfg)
    return "detector"


def _scale_factor(resized: tuple, original: tuple) -> tuple[Tensor, Tensor]:
    """``(w_scale, h_scale)`` of a resize from ``original = (h, w)`` to ``resized = (h, w)``
    (sizes that may be symbolic), computed in double as the data pipeline records them."""
    one = torch.ones((), dtype=torch.float64)
    return (one * resized[1]) / (one * original[1]), (one * resized[0]) / (one * original[0])


class DetectorGraph(nn.Module):
    """``forward(image: uint8 3 x H x W) -> (boxes K x 4 float32 input pixels, scores K,
    labels K int64[, masks K x H x W uint8])``."""

    def __init__(self, detector: nn.Module, cfg: Any = None) -> None:
        super().__init__()
        check_exportable(detector, cfg)
        self.resize = pipeline_resize_of(cfg)
        preprocessor = detector.preprocessor
        self.model_resize = None
        if getattr(preprocessor, "min_size", None) is not None:
            # the preprocessor's own resize (configs/*_tv.py) is done here, its size computed on
            # tensors; the copy's preprocessor then only pads (a float image: already normalised)
            self.model_resize = (int(preprocessor.min_size), preprocessor.max_size)
            detector = copy.deepcopy(detector)
            detector.preprocessor.min_size = None
        self.detector = detector

    def forward(self, image: Tensor):
        height, width = image.shape[-2], image.shape[-1]
        resized, meta = image, ImageMeta.identity(height, width)
        if self.resize is not None:
            new_h, new_w = resize_shape(height, width, *self.resize)
            resized = resize_bilinear_uint8(image, new_h, new_w)
            meta = ImageMeta(
                orig_size=(height, width),
                img_shape=(new_h, new_w),
                scale_factor=_scale_factor((new_h, new_w), (height, width)),
            )
        if self.model_resize is None:
            det = self.detector.detect([resized])[0]
        else:  # DetPreprocessor: normalise, then bilinear (align_corners=False)
            in_h, in_w = resized.shape[-2], resized.shape[-1]
            net_h, net_w = preprocessor_resize_shape(in_h, in_w, *self.model_resize)
            resized = F.interpolate(
                self.detector.preprocessor.normalize(resized)[None],
                size=(net_h, net_w),
                mode="bilinear",
                align_corners=False,
            )[0]
            det = self.detector.detect([resized])[0]
            # back to the pipeline's image pixels, as detect() inverts the preprocessor's resize
            det = replace(det, boxes=unscale_boxes(det.boxes, _scale_factor((net_h, net_w), (in_h, in_w))))
        det = self.detector.postprocess([det], [meta])[0]
        outputs = (det.boxes, det.scores, det.labels)
        if self.detector.has_masks:
            outputs = outputs + (det.masks.to(torch.uint8),)
        return outputs


class ClassifierGraph(nn.Module):
    """``forward(images: uint8 N x 3 x H x W) -> logits N x C`` (the classifier normalises)."""

    def __init__(self, classifier: nn.Module) -> None:
        super().__init__()
        check_exportable(classifier, None)
        self.classifier = classifier

    def forward(self, images: Tensor) -> Tensor:
        return self.classifier(images)
