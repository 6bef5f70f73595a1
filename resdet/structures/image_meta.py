"""``ImageMeta``: where an image given to a detector came from, so that its predictions can be
mapped back to the original image.

The data pipeline records, per sample, four keys (``META_KEYS``): ``orig_size`` ``(h, w)`` of
the decoded image, ``img_shape`` ``(h, w)`` of the image the model is given, ``scale_factor``
``(w_scale, h_scale)`` -- pixels of the resized image per pixel of the original, along x and
y (one direction everywhere: original -> model input; the detectors' preprocessor reports its
own resize the same way) -- and ``flip`` (mirrored horizontally after the resize). Collated
targets carry them as plain keys; at the model's door ``image_metas`` turns them into one
typed ``ImageMeta`` per image, the only place where the dict form is read.

Crops (``DetRandomCrop``) are not undone: predictions stay in the window's pixels.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from .boxes import clip_boxes, flip_boxes, scale_boxes

META_KEYS = ("orig_size", "img_shape", "scale_factor", "flip")


def _pair(value: Any, name: str) -> tuple[float, float]:
    """A number, a 1- or 2-sequence or a tensor of them -> two floats."""
    if isinstance(value, Tensor):
        value = value.flatten().tolist()
    if isinstance(value, (int, float)):
        return float(value), float(value)
    if len(value) not in (1, 2):
        raise ValueError(f"image meta {name!r} must be a number or a pair, got {value!r}")
    return float(value[0]), float(value[-1])


def _size(value: Any, name: str) -> tuple[int, int]:
    height, width = _pair(value, name)
    return round(height), round(width)


def unscale_boxes(boxes: Tensor, scale_factor: Sequence) -> Tensor:
    """``... x 4`` boxes of an image resized by ``scale_factor = (w_scale, h_scale)`` -> boxes
    of the image before the resize. The factors are inverted in double precision and then
    rounded to float32 once; they may be Python numbers or float64 0-d tensors (built from
    symbolic sizes in an exported graph): both give the same bits."""
    w_scale, h_scale = scale_factor[0], scale_factor[-1]
    if isinstance(w_scale, Tensor) or isinstance(h_scale, Tensor):
        one = torch.ones((), dtype=torch.float64, device=boxes.device)
        ratio = torch.stack([one * w_scale, one * h_scale])
        # tensor / tensor: dividing by a number would multiply by its rounded reciprocal
        return boxes * (torch.ones_like(ratio) / ratio).float().repeat(2)
    inverse_w, inverse_h = 1.0 / w_scale, 1.0 / h_scale
    return boxes * boxes.new_tensor([inverse_w, inverse_h, inverse_w, inverse_h])


@dataclass(frozen=True)
class ImageMeta:
    """Per-image meta of a detector's input (see the module docstring for the conventions).

    Attributes:
        orig_size: ``(h, w)`` of the original image (where predictions are returned).
        img_shape: ``(h, w)`` of the image given to the model (after the data pipeline,
            before the model's own preprocessing; ``flip`` mirrors in this width).
        scale_factor: ``(w_scale, h_scale)``, original -> ``img_shape`` pixels.
        flip: the image was mirrored horizontally after the resize.

    Sizes may be symbolic and ``scale_factor`` float64 0-d tensors inside an exported graph.
    """

    orig_size: tuple
    img_shape: tuple
    scale_factor: tuple = (1.0, 1.0)
    flip: bool = False

    @classmethod
    def identity(cls, height, width) -> ImageMeta:
        """The meta of an image given as it is (predictions stay in its pixels)."""
        return cls(orig_size=(height, width), img_shape=(height, width))

    @classmethod
    def from_dict(cls, meta: Mapping, image_shape: Sequence[int] | None = None) -> ImageMeta:
        """From a sample's or target's keys (``META_KEYS``; others are ignored). A missing
        ``scale_factor`` is ``(1, 1)``, a missing ``flip`` False; a missing ``img_shape`` is
        ``image_shape`` (the image's ``(h, w)``), a missing size follows from the other and the
        scale."""
        flip = meta.get("flip", False)
        flip = bool(flip.item() if isinstance(flip, Tensor) else flip)
        scale = _pair(meta["scale_factor"], "scale_factor") if meta.get("scale_factor") is not None else (1.0, 1.0)
        img_shape = meta.get("img_shape")
        if img_shape is None and flip and image_shape is None:
            raise KeyError("image meta has 'flip' but no 'img_shape' to mirror in; add img_shape (h, w)")
        img_shape = (
            _size(img_shape, "img_shape")
            if img_shape is not None
            else (_size(image_shape, "image shape") if image_shape is not None else None)
        )
        orig_size = _size(meta["orig_size"], "orig_size") if meta.get("orig_size") is not None else None
        if orig_size is None and img_shape is None:
            raise KeyError(f"image meta needs 'orig_size' or 'img_shape' (h, w); got keys {sorted(meta)}")
        if orig_size is None:
            orig_size = (round(img_shape[0] / scale[1]), round(img_shape[1] / scale[0]))
        if img_shape is None:
            img_shape = (round(orig_size[0] * scale[1]), round(orig_size[1] * scale[0]))
        return cls(orig_size=orig_size, img_shape=img_shape, scale_factor=scale, flip=flip)

    def boxes_to_original(self, boxes: Tensor) -> Tensor:
        """``... x 4`` boxes in ``img_shape`` pixels -> original pixels (un-flipped, un-scaled,
        clipped to ``orig_size``)."""
        if self.flip:
            boxes = flip_boxes(boxes, float(self.img_shape[1]))
        return clip_boxes(unscale_boxes(boxes, self.scale_factor), self.orig_size)

    def boxes_to_image(self, boxes: Tensor) -> Tensor:
        """The other way (drawing predictions on the pipeline's image): ``... x 4`` boxes in
        original pixels -> ``img_shape`` pixels (scaled, then flipped; not clipped)."""
        boxes = scale_boxes(boxes, float(self.scale_factor[0]), float(self.scale_factor[-1]))
        return flip_boxes(boxes, float(self.img_shape[1])) if self.flip else boxes


def image_metas(images: Sequence[Tensor], metas: Sequence[Mapping | ImageMeta | None] | None = None) -> list[ImageMeta]:
    """One ``ImageMeta`` per ``3 x H x W`` image: given as such, read from a dict carrying any
    of ``META_KEYS`` (collated targets, ``inference_detector``'s meta), else the identity of
    the image (predictions stay in its pixels)."""
    if metas is not None and len(metas) != len(images):
        raise ValueError(f"got {len(metas)} meta entries (targets) for {len(images)} images")
    out = []
    for index, image in enumerate(images):
        meta = metas[index] if metas is not None else None
        shape = (image.shape[-2], image.shape[-1])
        if isinstance(meta, ImageMeta):
            out.append(meta)
        elif isinstance(meta, Mapping) and any(key in meta for key in META_KEYS):
            out.append(ImageMeta.from_dict(meta, shape))
        else:
            out.append(ImageMeta.identity(*shape))
    return out


def map_boxes_to_original(boxes: Tensor, meta: Mapping | ImageMeta) -> Tensor:
    """Undo the resize and flip recorded in a sample's meta (a dict of ``META_KEYS`` or an
    ``ImageMeta``): ``N x 4`` boxes in ``img_shape`` pixels -> original pixels, clipped."""
    meta = meta if isinstance(meta, ImageMeta) else ImageMeta.from_dict(meta)
    return meta.boxes_to_original(boxes)
