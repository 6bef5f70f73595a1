"""Image decoding: every file becomes an H x W x 3 uint8 RGB array.

OpenCV decodes (it applies EXIF orientation, drops alpha, and converts grayscale,
CMYK and 16-bit images to 8-bit BGR with ``IMREAD_COLOR``); Pillow, which
torchvision already requires, is the fallback for formats OpenCV lacks (GIF on
some builds). Unreadable files raise ``ImageReadError`` naming the file.
"""
from __future__ import annotations

import os

import cv2
import numpy as np

from ..utils.errors import ResdetError

cv2.setNumThreads(0)  # loader workers parallelise; OpenCV's own threads would oversubscribe


class ImageReadError(ResdetError, OSError):
    """A file that is missing, empty, truncated, or not an image."""


def _read_with_pillow(path: str) -> np.ndarray | None:
    try:
        from PIL import Image, ImageOps
        with Image.open(path) as im:
            im = ImageOps.exif_transpose(im)
            if im.mode in ("RGBA", "LA", "P"):
                im = im.convert("RGBA")
                background = Image.new("RGBA", im.size, (255, 255, 255, 255))
                im = Image.alpha_composite(background, im)
            if im.mode in ("I;16", "I;16B", "I;16L", "I"):
                arr = np.asarray(im, dtype=np.float64)
                arr = (arr / max(arr.max(), 1.0) * 255.0).round().astype(np.uint8)
                return np.ascontiguousarray(np.stack([arr] * 3, axis=-1))
            return np.ascontiguousarray(np.asarray(im.convert("RGB"), dtype=np.uint8))
    except Exception:  # noqa: BLE001 - any failure means "not readable by Pillow either"
        return None


def imread_rgb(path: str) -> np.ndarray:
    """Read ``path`` as an H x W x 3 uint8 RGB array (EXIF orientation applied)."""
    if not os.path.isfile(path):
        raise ImageReadError(f"image file {path} does not exist")
    if os.path.getsize(path) == 0:
        raise ImageReadError(f"image file {path} is empty (0 bytes)")
    data = np.fromfile(path, dtype=np.uint8)
    bgr = cv2.imdecode(data, cv2.IMREAD_COLOR)
    if bgr is not None and bgr.ndim == 3 and bgr.shape[2] == 3:
        if bgr.dtype != np.uint8:  # defensive: IMREAD_COLOR already gives 8-bit
            bgr = (bgr.astype(np.float64) / np.iinfo(bgr.dtype).max * 255).round().astype(np.uint8)
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        if _looks_truncated(path, data):
            raise ImageReadError(f"image file {path} is truncated")
        return rgb
    rgb = _read_with_pillow(path)
    if rgb is None:
        raise ImageReadError(f"image file {path} is not a readable image (or is truncated)")
    return rgb


def _looks_truncated(path: str, data: np.ndarray) -> bool:
    """JPEG decoders fill a truncated tail with grey instead of failing; catch that case
    by the missing end-of-image marker."""
    ext = os.path.splitext(path)[1].lower()
    is_jpeg = data.size >= 2 and data[0] == 0xFF and data[1] == 0xD8
    if is_jpeg or ext in (".jpg", ".jpeg"):
        tail = data[-2048:].tobytes()
        return b"\xff\xd9" not in tail
    return False
