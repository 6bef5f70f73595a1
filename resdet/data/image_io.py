"""Image decoding: every file becomes an H x W x 3 uint8 RGB array, the right way up.

1. The header is read first (``image_header.read_image_header``: size and EXIF orientation,
   no pixels decoded). An image claiming more than ``max_image_pixels()`` pixels
   (``MAX_IMAGE_PIXELS``, or ``$RESDET_MAX_IMAGE_PIXELS``, or the ``max_pixels`` argument) is
   refused before any memory is allocated: a 46 KB JPEG can claim 15000 x 15000 pixels.
2. OpenCV decodes the stored pixels (``IMREAD_COLOR | IMREAD_IGNORE_ORIENTATION``: alpha
   dropped; grayscale, CMYK and 16-bit images converted to 8-bit). Samples OpenCV cannot
   turn into 8-bit colour (32-bit float or integer TIFFs) are read unchanged and converted
   by ``to_uint8`` (the rule for float images is there). Pillow, which torchvision already
   requires, is the fallback for formats OpenCV lacks (GIF on some builds).
3. The EXIF orientation of JPEG, PNG and WebP files is applied here, by
   ``apply_orientation`` (so the orientation reported with the pixels is, by construction,
   the one that was applied; datasets use it to move annotations made on the stored
   pixels). TIFF decoders apply their orientation tag themselves.

Every failure -- missing, empty, truncated, not an image, too large, an OpenCV error
inside the decoder -- raises ``ImageReadError`` naming the file.
"""

from __future__ import annotations

import os
from typing import NamedTuple

import cv2
import numpy as np

from ..utils.errors import ResdetError
from .image_header import ImageHeader, read_image_header

cv2.setNumThreads(0)  # loader workers parallelise; OpenCV's own threads would oversubscribe

# Pillow's decompression-bomb error limit (2 x Image.MAX_IMAGE_PIXELS), ~13400 x 13400.
MAX_IMAGE_PIXELS = 178_956_970
MAX_IMAGE_PIXELS_ENV = "RESDET_MAX_IMAGE_PIXELS"
_ORIENTED_FORMATS = ("jpeg", "png", "webp")


class ImageReadError(ResdetError, OSError):
    """A file that is missing, empty, truncated, too large, or not an image."""


class MissingImageError(ImageReadError, FileNotFoundError):
    """An image file that does not exist (also a ``FileNotFoundError``)."""


class DecodedImage(NamedTuple):
    """``img`` (H x W x 3 uint8 RGB, orientation applied), ``orientation`` (the EXIF value
    1..8 that was applied; 1 = none) and ``stored_size`` ((height, width) before it)."""

    img: np.ndarray
    orientation: int
    stored_size: tuple[int, int]


def max_image_pixels() -> int:
    """The pixel limit: ``$RESDET_MAX_IMAGE_PIXELS`` when set (a positive integer), else
    ``MAX_IMAGE_PIXELS``."""
    value = os.environ.get(MAX_IMAGE_PIXELS_ENV)
    if not value:
        return MAX_IMAGE_PIXELS
    try:
        limit = int(float(value))
    except ValueError:
        limit = 0
    if limit <= 0:
        raise ImageReadError(f"${MAX_IMAGE_PIXELS_ENV}={value!r} is not a positive number of pixels")
    return limit


def apply_orientation(img: np.ndarray, orientation: int) -> np.ndarray:
    """Turn stored pixels (H x W x C) into displayed ones for EXIF ``orientation`` (1..8),
    as Pillow's ``ImageOps.exif_transpose``: 2 mirror, 3 rotate 180, 4 flip, 5 transpose,
    6 rotate 90 clockwise, 7 transverse, 8 rotate 90 counter-clockwise."""
    if orientation == 2:
        out = img[:, ::-1]
    elif orientation == 3:
        out = img[::-1, ::-1]
    elif orientation == 4:
        out = img[::-1]
    elif orientation == 5:
        out = img.swapaxes(0, 1)
    elif orientation == 6:
        out = np.rot90(img, k=-1)
    elif orientation == 7:
        out = img[::-1, ::-1].swapaxes(0, 1)
    elif orientation == 8:
        out = np.rot90(img, k=1)
    else:
        return img
    return np.ascontiguousarray(out)


def to_uint8(pixels: np.ndarray, path: str) -> np.ndarray:
    """High-bit-depth or float samples (H x W, or H x W x C in OpenCV's BGR(A) order) ->
    H x W x 3 uint8 RGB. The rule, per image:

    - ``uint16``: divided by 257 and rounded (65535 -> 255, 32768 -> 128), as 16-bit PNGs;
    - ``uint8``: unchanged;
    - float (and other integer types), all values finite:
      values within [0, 1] are scaled by 255 (the float convention of scikit-image, OpenCV,
      Pillow's ``F`` images of normalised data); values within [0, 255] are taken as 8-bit
      values (a float export of an 8-bit image); anything else (negative values, HDR or
      scientific ranges) is stretched min -> 0, max -> 255 (a constant image becomes 0);
    - NaN or infinite samples: ``ImageReadError`` naming the file (no colour rule fits them).

    Alpha (a 4th channel, or the 2nd of grey + alpha) is dropped."""
    if pixels.ndim == 3 and pixels.shape[2] in (2, 4):
        pixels = pixels[..., :1] if pixels.shape[2] == 2 else pixels[..., :3]
    if pixels.ndim == 3 and pixels.shape[2] == 1:
        pixels = pixels[..., 0]
    if pixels.ndim not in (2, 3) or (pixels.ndim == 3 and pixels.shape[2] != 3):
        raise ImageReadError(
            f"image file {path} has samples of shape {pixels.shape}; expected grey, "
            "grey + alpha, colour or colour + alpha"
        )
    if pixels.dtype == np.uint16:
        out = np.rint(pixels / 257.0).astype(np.uint8)
    elif pixels.dtype == np.uint8:
        out = pixels
    else:
        values = pixels.astype(np.float64)
        if not np.isfinite(values).all():
            raise ImageReadError(
                f"image file {path} holds NaN or infinite {pixels.dtype} samples; "
                "only finite values can be turned into 8-bit colour"
            )
        low, high = (float(values.min()), float(values.max())) if values.size else (0.0, 0.0)
        if low >= 0.0 and high <= 1.0:
            values = values * 255.0
        elif low < 0.0 or high > 255.0:
            values = (values - low) * (255.0 / (high - low)) if high > low else np.zeros_like(values)
        out = np.rint(values).clip(0, 255).astype(np.uint8)
    if out.ndim == 2:
        return np.ascontiguousarray(np.stack([out] * 3, axis=-1))
    return cv2.cvtColor(np.ascontiguousarray(out), cv2.COLOR_BGR2RGB)


def _read_unchanged(data: np.ndarray, path: str) -> np.ndarray | None:
    """Samples OpenCV decodes but cannot give as 8-bit colour (float / 32-bit TIFFs), as
    RGB uint8 by ``to_uint8``; ``None`` when OpenCV cannot decode them at all."""
    try:
        pixels = cv2.imdecode(data, cv2.IMREAD_UNCHANGED | cv2.IMREAD_IGNORE_ORIENTATION)
    except cv2.error:
        return None
    if pixels is None or pixels.dtype == np.uint8:  # 8-bit OpenCV could not colour: Pillow's turn
        return None
    return to_uint8(pixels, path)


def _read_with_pillow(path: str) -> np.ndarray | None:
    """Stored pixels (no orientation applied) through Pillow; ``None`` if it fails too."""
    try:
        from PIL import Image

        with Image.open(path) as im:
            if im.mode in ("RGBA", "LA", "P", "PA"):
                im = im.convert("RGBA")
                background = Image.new("RGBA", im.size, (255, 255, 255, 255))
                im = Image.alpha_composite(background, im)
            if im.mode in ("I;16", "I;16B", "I;16L"):
                arr = np.asarray(im, dtype=np.float64)
                arr = (arr / max(arr.max(), 1.0) * 255.0).round().astype(np.uint8)
                return np.ascontiguousarray(np.stack([arr] * 3, axis=-1))
            if im.mode in ("I", "F"):  # 32-bit integer / float samples: the float rule
                return to_uint8(np.asarray(im), path)
            return np.ascontiguousarray(np.asarray(im.convert("RGB"), dtype=np.uint8))
    except ImageReadError:
        raise
    except Exception:  # noqa: BLE001 - any failure means "not readable by Pillow either"
        return None


def _header(path: str, limit: int) -> ImageHeader | None:
    from PIL import Image

    try:
        header = read_image_header(path)
    except Image.DecompressionBombError as err:  # Pillow's own limit (formats other than JPEG/PNG)
        raise ImageReadError(f"image file {path} is refused as a possible decompression bomb: {err}") from err
    except OSError as err:
        raise ImageReadError(f"image file {path} cannot be read: {err}") from err
    if header is not None and header.pixels > limit:
        raise ImageReadError(
            f"image file {path} claims {header.width} x {header.height} pixels "
            f"({header.pixels / 1e6:.0f} Mpx), above the limit of {limit} pixels (a decompression bomb, "
            f"or set ${MAX_IMAGE_PIXELS_ENV} to allow larger images)"
        )
    return header


def decode_image(path: str, max_pixels: int | None = None) -> DecodedImage:
    """Read ``path`` as a ``DecodedImage`` (see the module docstring for the steps).

    Args:
        path: the image file.
        max_pixels: refuse images claiming more pixels (default ``max_image_pixels()``).
    Raises:
        ImageReadError (``MissingImageError`` for a missing file) naming the file.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise MissingImageError(f"image file {path} does not exist")
    if os.path.getsize(path) == 0:
        raise ImageReadError(f"image file {path} is empty (0 bytes)")
    limit = int(max_pixels) if max_pixels is not None else max_image_pixels()
    header = _header(path, limit)
    data = np.fromfile(path, dtype=np.uint8)
    try:
        bgr = cv2.imdecode(data, cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
    except cv2.error as err:  # e.g. OpenCV's own size limit, a codec assertion
        message = str(err).strip().splitlines()[-1] if str(err).strip() else type(err).__name__
        raise ImageReadError(f"image file {path} cannot be decoded: {message}") from err
    if bgr is not None and bgr.ndim == 3 and bgr.shape[2] == 3:
        if bgr.dtype != np.uint8:  # defensive: IMREAD_COLOR already gives 8-bit
            bgr = (bgr.astype(np.float64) / np.iinfo(bgr.dtype).max * 255).round().astype(np.uint8)
        if header is not None and header.format == "jpeg" and _jpeg_truncated(data, header):
            raise ImageReadError(f"image file {path} is truncated (no end-of-image marker after its data)")
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    else:
        rgb = _read_unchanged(data, path)
        if rgb is None:
            rgb = _read_with_pillow(path)
        if rgb is None:
            raise ImageReadError(f"image file {path} is not a readable image (or is truncated)")
    stored = rgb.shape[:2]
    orientation = header.orientation if header is not None and header.format in _ORIENTED_FORMATS else 1
    return DecodedImage(apply_orientation(rgb, orientation), orientation, (int(stored[0]), int(stored[1])))


def imread_rgb(path: str, max_pixels: int | None = None) -> np.ndarray:
    """Read ``path`` as an H x W x 3 uint8 RGB array (EXIF orientation applied); raises
    ``ImageReadError`` naming the file (see ``decode_image``)."""
    return decode_image(path, max_pixels).img


def _jpeg_truncated(data: np.ndarray, header: ImageHeader) -> bool:
    """JPEG decoders fill a truncated tail with grey instead of failing; catch that case by
    the missing end-of-image marker after the first scan (entropy-coded data never holds
    FF D9, and bytes after the marker -- trailers, appended data -- do not matter)."""
    if b"\xff\xd9" in data[-2048:].tobytes():  # the common case: the marker ends the file
        return False
    return data[header.scan_offset :].tobytes().find(b"\xff\xd9") < 0
