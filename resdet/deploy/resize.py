"""The test pipeline's ``ResizeShortestEdge`` as graph operations, bit-exact with OpenCV.

``inference_detector`` resizes uint8 images with ``cv2.resize(..., INTER_LINEAR)`` before the
model sees them; an exported graph has to produce the same pixels or its detections drift.
OpenCV's 8-bit bilinear resize is fixed-point arithmetic, reproduced here with tensor operations
on integers (held in float64, where they are exact), on sizes that may be symbolic:

* per output column ``fx = float32((dx + 0.5) * scale - 0.5)`` in double, ``scale = 1 /
  (dst / src)``; the source index is ``floor(fx)`` clamped to the image (the fraction is set
  to 0 where it is clamped); weights ``a0 = rint((1 - fx) * 2048)``, ``a1 = 2048 - a0``;
  the horizontal pass is exact integer arithmetic;
* per output row the same, except that the fraction is *not* zeroed at the borders (OpenCV
  clamps only the row indices there);
* the vertical pass follows OpenCV's SIMD kernel: ``((r0 >> 4) * b0 >> 16) + ((r1 >> 4) *
  b1 >> 16)``, then ``(v + 2) >> 2``.

Checked pixel for pixel against ``cv2.resize`` (tests/deploy/test_resize.py) for up- and
downscaling, odd sizes and the exact 2x cases.
"""

from __future__ import annotations

import torch
from torch import Tensor

COEF_SCALE = 2048  # OpenCV's INTER_RESIZE_COEF_SCALE (11 fractional bits)


def resize_shape(height, width, short_edge: int, max_size: int | None):
    """``(new_h, new_w)`` of ``resdet.data.transforms.det_transforms.get_resize_shape``, computed
    the same way (float64, ties to even) but on tensors, so ``height`` / ``width`` may be
    symbolic sizes. While exporting, the two values become data-dependent sizes of the graph
    (bounded by ``torch._check``); in eager mode they are plain ints."""
    one = torch.ones((), dtype=torch.float64)
    h, w = one * height, one * width
    # tensor / tensor: ``number / tensor`` would multiply by a rounded reciprocal
    scale = (one * int(short_edge)) / torch.minimum(h, w)
    if max_size is not None and max_size > 0:
        longer = torch.maximum(h, w)
        scale = torch.where(longer * scale > max_size, (one * int(max_size)) / longer, scale)
    return _bounded_size(torch.round(h * scale)), _bounded_size(torch.round(w * scale))


def _bounded_size(size: Tensor) -> int:
    """A float64 tensor holding a whole number -> a size of the graph (checked bounds while exporting)."""
    value = size.clamp(min=1).to(torch.int64).item()
    if torch.compiler.is_exporting():
        torch._check(value >= 2, lambda: "the resized image must be at least 2 pixels on each side")
        torch._check(value <= 65536, lambda: "the resized image must be at most 65536 pixels on a side")
    return value


def preprocessor_resize_shape(height, width, min_size: int, max_size: int | None):
    """``(new_h, new_w)`` of ``DetPreprocessor(min_size, max_size)``'s own resize (torchvision's
    ``GeneralizedRCNNTransform``): ``scale = min(min_size / shorter, max_size / longer)`` and
    ``floor(side * scale)`` in double precision, as ``F.interpolate(scale_factor=scale,
    recompute_scale_factor=True)`` computes them; on tensors, so the sizes may be symbolic."""
    one = torch.ones((), dtype=torch.float64)
    h, w = one * height, one * width
    scale = (one * int(min_size)) / torch.minimum(h, w)
    if max_size is not None:
        scale = torch.minimum(scale, (one * int(max_size)) / torch.maximum(h, w))
    return _bounded_size(torch.floor(h * scale)), _bounded_size(torch.floor(w * scale))


def _taps(src, dst, zero_border_fraction: bool, device) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Source indices ``i0, i1`` and int32 weights ``w0, w1`` (summing to 2048) of ``dst``
    output positions sampling ``src`` input positions."""
    ratio = torch.ones((), dtype=torch.float64, device=device) * dst / src  # OpenCV's inv_scale
    scale = 1.0 / ratio
    pos = ((torch.arange(dst, dtype=torch.float64, device=device) + 0.5) * scale - 0.5).float()
    start = pos.floor()
    frac = pos - start
    index = start.long()
    if zero_border_fraction:
        frac = torch.where((index < 0) | (index >= src - 1), torch.zeros_like(frac), frac)
    i0 = index.clamp(min=0, max=src - 1)
    i1 = (index + 1).clamp(min=0, max=src - 1)
    w0 = torch.round((1.0 - frac) * COEF_SCALE).to(torch.int32)
    return i0, i1, w0, COEF_SCALE - w0


def resize_bilinear_uint8(image: Tensor, new_h, new_w) -> Tensor:
    """``cv2.resize(img, (new_w, new_h), interpolation=cv2.INTER_LINEAR)`` of a uint8
    ``3 x H x W`` image, as uint8 ``3 x new_h x new_w``."""
    height, width = image.shape[-2], image.shape[-1]
    x0, x1, a0, a1 = _taps(width, new_w, True, image.device)
    y0, y1, b0, b1 = _taps(height, new_h, False, image.device)
    # integers below 2**27 throughout: exact in float64, where dividing by a power of two and
    # flooring is OpenCV's arithmetic shift (ONNX has no signed shift; its integer division
    # would be exported through float32)
    pixels = image.to(torch.float64)
    w0, w1 = a0.to(torch.float64), a1.to(torch.float64)
    rows = pixels.index_select(2, x0) * w0 + pixels.index_select(2, x1) * w1  # 3 x H x new_w
    top = torch.floor(rows.index_select(1, y0) / 16) * b0.to(torch.float64)[:, None]
    bottom = torch.floor(rows.index_select(1, y1) / 16) * b1.to(torch.float64)[:, None]
    value = torch.floor(top / 65536) + torch.floor(bottom / 65536)
    return torch.floor((value + 2) / 4).clamp(0, 255).to(torch.uint8)
