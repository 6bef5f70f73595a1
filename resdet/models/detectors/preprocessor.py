"""Detector input preprocessing on the model's device: normalise, optionally resize, pad, batch."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ...registry import MODELS

IMAGENET_MEAN = (123.675, 116.28, 103.53)
IMAGENET_STD = (58.395, 57.12, 57.375)


def _largest(sizes: list):
    """``max`` of ints or symbolic sizes (``torch.sym_max`` does not branch on them)."""
    largest = sizes[0]
    for size in sizes[1:]:
        largest = torch.sym_max(largest, size)
    return largest


@MODELS.register_module()
class DetPreprocessor(nn.Module):
    """Turn a list of ``3 x H_i x W_i`` images into one padded ``N x 3 x H x W`` float batch.

    Args:
        mean, std: per-channel RGB statistics in the units of ``pixel / value_scale``
            (ImageNet's in 0..255 units by default).
        value_scale: uint8 pixels are divided by this before normalising; torchvision's
            convention is ``value_scale=255`` with mean/std in ``[0, 1]`` units, computed in the
            same order as torchvision so its weights give bit-identical inputs.
        size_divisor: pad height and width up to a multiple of this (32 covers FPN's P5).
        min_size, max_size: when set, resize every image (after normalising) so its shorter
            side is ``min_size`` unless the longer would exceed ``max_size`` — torchvision's
            ``GeneralizedRCNNTransform`` (bilinear, ``align_corners=False``); ``None`` leaves the
            sizes to the data pipeline.
        pad_value: value of the padding (0 = the mean after normalisation).

    uint8 images are normalised; float images are taken as already normalised.
    ``forward(images) -> (batch N x 3 x H x W, image_sizes: list of (h, w) after resizing,
    scale_factors: list of (w_scale, h_scale) from input to batch coordinates)`` -- the
    direction and name of ``ImageMeta.scale_factor`` (``resdet.structures.image_meta``).
    """

    def __init__(
        self,
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
        size_divisor: int = 32,
        min_size: int | None = None,
        max_size: int | None = None,
        pad_value: float = 0.0,
        value_scale: float = 1.0,
    ) -> None:
        super().__init__()
        if len(mean) != 3 or len(std) != 3:
            raise ValueError(f"DetPreprocessor mean and std need 3 values (RGB), got {mean!r}, {std!r}")
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(3, 1, 1), persistent=False)
        self.size_divisor, self.pad_value = int(size_divisor), float(pad_value)
        self.min_size, self.max_size = min_size, max_size
        self.value_scale = float(value_scale)

    def normalize(self, image: Tensor) -> Tensor:
        if image.dim() != 3 or image.shape[0] != 3:
            raise ValueError(f"DetPreprocessor expects 3 x H x W images, got shape {tuple(image.shape)}")
        image = image.to(self.mean.device, non_blocking=True)
        if image.is_floating_point():
            return image
        image = image.float()
        if self.value_scale != 1.0:
            image = image / self.value_scale
        return (image - self.mean) / self.std

    def resize(self, image: Tensor, min_size: int | None, max_size: int | None) -> Tensor:
        """Bilinear resize of a float ``3 x h x w`` image to shorter side ``min_size``
        (longer side at most ``max_size``); ``min_size=None`` returns it unchanged."""
        if min_size is None:
            return image
        h, w = image.shape[-2:]
        scale = min_size / min(h, w)
        if max_size is not None:
            scale = min(scale, max_size / max(h, w))
        return F.interpolate(
            image[None], scale_factor=scale, mode="bilinear", recompute_scale_factor=True, align_corners=False
        )[0]

    def batch(self, images: list[Tensor]) -> Tensor:
        """Pad to the largest size, rounded up to ``size_divisor``; images sit top-left.
        Sizes are read from shapes only, so they stay symbolic when the model is exported."""
        height, width = _largest([i.shape[-2] for i in images]), _largest([i.shape[-1] for i in images])
        div = max(self.size_divisor, 1)
        height, width = (height + div - 1) // div * div, (width + div - 1) // div * div
        if len(images) == 1:  # one image: a pad (no Python-side copy loop in an exported graph)
            image = images[0]
            return F.pad(image, (0, width - image.shape[-1], 0, height - image.shape[-2]), value=self.pad_value)[None]
        out = images[0].new_full((len(images), 3, height, width), self.pad_value)
        for index, image in enumerate(images):
            out[index, :, : image.shape[-2], : image.shape[-1]].copy_(image)
        return out

    def forward(
        self, images: Sequence[Tensor] | Tensor, min_size: int | None = None, flip: bool = False
    ) -> tuple[Tensor, list[tuple[int, int]], list[tuple[float, float]]]:
        """``min_size`` overrides the configured one (multi-scale testing); ``flip`` mirrors
        every image horizontally (flip testing)."""
        target_size = self.min_size if min_size is None else min_size
        processed, sizes, factors = [], [], []
        for image in images:
            h, w = image.shape[-2], image.shape[-1]
            out = self.resize(self.normalize(image), target_size, self.max_size)
            if flip:
                out = out.flip(-1)
            new_h, new_w = out.shape[-2], out.shape[-1]
            processed.append(out)
            sizes.append((new_h, new_w))
            # no resize: exactly 1.0 (also while exporting, where the sizes are symbolic)
            factors.append((1.0, 1.0) if target_size is None else (new_w / w, new_h / h))
        return self.batch(processed), sizes, factors
