"""Detection transforms: resize by the shorter side (single- or multi-scale), horizontal
flip, photometric distortion, mask rasterisation.

Each takes and returns the sample dict of CONTRACTS.md. Boxes (``N x 4`` xyxy) and masks
(``PolygonMasks`` or ``N x H x W`` bitmaps) move with the image; geometric transforms
update ``scale_factor`` (w_scale, h_scale: current size / original size), ``flip`` and
``img_shape`` (h, w) so predictions can be mapped back to the original image.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np

from ...registry import TRANSFORMS
from ...structures.masks import PolygonMasks, masks_to_bitmaps


def _ensure_meta(sample: dict) -> dict:
    h, w = sample["img"].shape[:2]
    sample.setdefault("scale_factor", (1.0, 1.0))
    sample.setdefault("flip", False)
    sample.setdefault("img_shape", (h, w))
    return sample


def get_resize_shape(height: int, width: int, short_edge: int, max_size: int | None) -> tuple[int, int]:
    """``(new_h, new_w)`` with the shorter side ``short_edge`` and the longer side at most
    ``max_size`` (the aspect ratio is kept; the size is rounded to whole pixels)."""
    scale = short_edge / min(height, width)
    if max_size is not None and max_size > 0 and max(height, width) * scale > max_size:
        scale = max_size / max(height, width)
    return max(1, int(round(height * scale))), max(1, int(round(width * scale)))


@TRANSFORMS.register_module()
class ResizeShortestEdge:
    """Resize so the shorter side is ``short_edge_length`` (capped so the longer side is at
    most ``max_size``).

    Args:
        short_edge_length: one size, or several for multi-scale training.
        max_size: cap on the longer side (``None``: no cap).
        sample_mode: with several sizes, ``'choice'`` picks one of them at random,
            ``'range'`` draws an integer uniformly in ``[min, max]`` of them.
        interpolation: OpenCV interpolation for the image; masks always use nearest.
    """

    def __init__(
        self,
        short_edge_length: int | Sequence[int] = 600,
        max_size: int | None = 1000,
        sample_mode: str = "choice",
        interpolation: str = "bilinear",
    ) -> None:
        sizes = [short_edge_length] if isinstance(short_edge_length, (int, float)) else list(short_edge_length)
        if not sizes or any(int(s) <= 0 for s in sizes):
            raise ValueError(f"short_edge_length must be positive sizes, got {short_edge_length!r}")
        if sample_mode not in ("choice", "range"):
            raise ValueError(f"sample_mode must be 'choice' or 'range', got {sample_mode!r}")
        interps = {
            "nearest": cv2.INTER_NEAREST,
            "bilinear": cv2.INTER_LINEAR,
            "bicubic": cv2.INTER_CUBIC,
            "area": cv2.INTER_AREA,
        }
        if interpolation not in interps:
            raise ValueError(f"interpolation must be one of {', '.join(interps)}, got {interpolation!r}")
        self.sizes = [int(s) for s in sizes]
        self.max_size = max_size
        self.sample_mode = sample_mode
        self.interpolation = interps[interpolation]

    def _pick_size(self) -> int:
        if len(self.sizes) == 1:
            return self.sizes[0]
        if self.sample_mode == "range":
            return int(np.random.randint(min(self.sizes), max(self.sizes) + 1))
        return self.sizes[int(np.random.randint(len(self.sizes)))]

    def __call__(self, sample: dict) -> dict:
        _ensure_meta(sample)
        img = sample["img"]
        h, w = img.shape[:2]
        new_h, new_w = get_resize_shape(h, w, self._pick_size(), self.max_size)
        if (new_h, new_w) != (h, w):
            sample["img"] = cv2.resize(img, (new_w, new_h), interpolation=self.interpolation)
        sx, sy = new_w / w, new_h / h
        if "boxes" in sample and len(sample["boxes"]):
            boxes = sample["boxes"] * np.array([sx, sy, sx, sy], dtype=np.float32)
            boxes[:, 0::2] = boxes[:, 0::2].clip(0, new_w)
            boxes[:, 1::2] = boxes[:, 1::2].clip(0, new_h)
            sample["boxes"] = boxes.astype(np.float32)
        masks = sample.get("masks")
        if masks is not None:
            if isinstance(masks, PolygonMasks):
                sample["masks"] = masks.scale(sx, sy)
            elif len(masks) and (new_h, new_w) != (h, w):
                # cv2.resize treats the last axis as channels (limit 512), so chunk it
                stacked = np.ascontiguousarray(masks.transpose(1, 2, 0))
                chunks = [
                    cv2.resize(stacked[:, :, i : i + 512], (new_w, new_h), interpolation=cv2.INTER_NEAREST).reshape(
                        new_h, new_w, -1
                    )
                    for i in range(0, stacked.shape[2], 512)
                ]
                sample["masks"] = np.ascontiguousarray(np.concatenate(chunks, 2).transpose(2, 0, 1))
            elif not len(masks):
                sample["masks"] = np.zeros((0, new_h, new_w), dtype=np.uint8)
        old_sx, old_sy = sample["scale_factor"]
        sample["scale_factor"] = (float(old_sx * sx), float(old_sy * sy))
        sample["img_shape"] = (new_h, new_w)
        return sample

    def __repr__(self) -> str:
        return f"ResizeShortestEdge(sizes={self.sizes}, max_size={self.max_size}, mode={self.sample_mode})"


@TRANSFORMS.register_module()
class DetRandomFlip:
    """Horizontal flip with probability ``prob``; boxes and masks are mirrored and
    ``flip`` is toggled (flipping twice restores the sample and ``flip=False``)."""

    def __init__(self, prob: float = 0.5) -> None:
        if not 0.0 <= prob <= 1.0:
            raise ValueError(f"prob must be in [0, 1], got {prob!r}")
        self.prob = prob

    def __call__(self, sample: dict) -> dict:
        _ensure_meta(sample)
        if self.prob < 1.0 and np.random.rand() >= self.prob:
            return sample
        img = sample["img"]
        w = img.shape[1]
        sample["img"] = np.ascontiguousarray(img[:, ::-1])
        if "boxes" in sample and len(sample["boxes"]):
            boxes = sample["boxes"].copy()
            boxes[:, 0] = w - sample["boxes"][:, 2]
            boxes[:, 2] = w - sample["boxes"][:, 0]
            sample["boxes"] = boxes
        masks = sample.get("masks")
        if masks is not None:
            if isinstance(masks, PolygonMasks):
                sample["masks"] = masks.flip_horizontal(w)
            else:
                sample["masks"] = np.ascontiguousarray(masks[:, :, ::-1])
        sample["flip"] = not sample["flip"]
        return sample

    def __repr__(self) -> str:
        return f"DetRandomFlip(prob={self.prob})"


@TRANSFORMS.register_module()
class PhotometricDistortion:
    """Random brightness, contrast, saturation and hue changes, each applied with
    probability ``prob`` in a random order; geometry is untouched.

    Args:
        brightness_delta: added value drawn in ``[-delta, delta]`` (0..255 units).
        contrast_range / saturation_range: multiplicative factor drawn in the range.
        hue_delta: hue shift in degrees drawn in ``[-delta, delta]``.
    """

    def __init__(
        self,
        brightness_delta: float = 32.0,
        contrast_range: Sequence[float] = (0.5, 1.5),
        saturation_range: Sequence[float] = (0.5, 1.5),
        hue_delta: float = 18.0,
        prob: float = 0.5,
    ) -> None:
        self.brightness_delta = float(brightness_delta)
        self.contrast_range = tuple(float(c) for c in contrast_range)
        self.saturation_range = tuple(float(s) for s in saturation_range)
        self.hue_delta = float(hue_delta)
        self.prob = prob

    def __call__(self, sample: dict) -> dict:
        img = sample["img"].astype(np.float32)
        ops = [self._brightness, self._contrast, self._saturation_hue]
        for op_index in np.random.permutation(len(ops)):
            img = ops[op_index](img)
        sample["img"] = img.clip(0, 255).round().astype(np.uint8)
        return sample

    def _apply(self) -> bool:
        return np.random.rand() < self.prob

    def _brightness(self, img: np.ndarray) -> np.ndarray:
        if self._apply():
            img = img + np.random.uniform(-self.brightness_delta, self.brightness_delta)
        return img

    def _contrast(self, img: np.ndarray) -> np.ndarray:
        if self._apply():
            img = img * np.random.uniform(*self.contrast_range)
        return img

    def _saturation_hue(self, img: np.ndarray) -> np.ndarray:
        do_sat, do_hue = self._apply(), self._apply()
        if not (do_sat or do_hue):
            return img
        hsv = cv2.cvtColor(img.clip(0, 255) / 255.0, cv2.COLOR_RGB2HSV)  # H in degrees
        if do_sat:
            hsv[..., 1] = (hsv[..., 1] * np.random.uniform(*self.saturation_range)).clip(0, 1)
        if do_hue:
            hsv[..., 0] = (hsv[..., 0] + np.random.uniform(-self.hue_delta, self.hue_delta)) % 360.0
        return cv2.cvtColor(hsv.astype(np.float32), cv2.COLOR_HSV2RGB) * 255.0

    def __repr__(self) -> str:
        return (
            f"PhotometricDistortion(brightness={self.brightness_delta}, contrast={self.contrast_range}, "
            f"saturation={self.saturation_range}, hue={self.hue_delta}, prob={self.prob})"
        )


@TRANSFORMS.register_module()
class RasterizeMasks:
    """Turn ``PolygonMasks`` into ``N x H x W`` uint8 bitmaps of the current image size
    (put it last in a pipeline that loads masks; datasets also do it if it is missing)."""

    def __call__(self, sample: dict) -> dict:
        masks = sample.get("masks")
        if masks is not None:
            h, w = sample["img"].shape[:2]
            sample["masks"] = masks_to_bitmaps(masks, h, w)
        return sample

    def __repr__(self) -> str:
        return "RasterizeMasks()"


class Pipeline:
    """Transforms applied in order (``None`` from one ends the sample); a class rather than
    a closure so datasets pickle into ``spawn`` / ``forkserver`` DataLoader workers."""

    def __init__(self, transforms: list) -> None:
        self.transforms = transforms

    def __call__(self, sample: dict) -> dict | None:
        for t in self.transforms:
            sample = t(sample)
            if sample is None:
                return None
        return sample


def build_pipeline(pipeline: Sequence[dict] | None) -> Pipeline:
    """A list of transform configs (or callables) -> one callable applying them in order."""
    transforms = [TRANSFORMS.build(t) if isinstance(t, dict) else t for t in (pipeline or [])]
    for t in transforms:
        if not callable(t):
            raise TypeError(f"pipeline entry {t!r} is not callable")
    return Pipeline(transforms)


def inference_pipeline_of(cfg: Any) -> list:
    """The test transforms of a config: ``cfg.test_pipeline`` if present, else the
    pipeline of ``cfg.val_dataloader.dataset`` (or of a ``ConcatDataset``'s first part),
    without ``RasterizeMasks`` (ground truth only). ``inference_detector`` applies them; the
    exported graph reproduces them."""
    if cfg is None:
        return []
    if cfg.get("test_pipeline") is not None:
        return list(cfg.test_pipeline)
    dataset = (cfg.get("val_dataloader") or {}).get("dataset") or {}
    while "pipeline" not in dataset and dataset.get("datasets"):
        dataset = dataset["datasets"][0]
    return [t for t in dataset.get("pipeline", []) if t.get("type") != "RasterizeMasks"]
