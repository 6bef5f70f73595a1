"""An image's size and EXIF orientation read from its header, without decoding pixels.

JPEG and PNG (the formats of detection data sets, and the ones decompression bombs use)
are parsed here: a few hundred bytes are read, never the pixel data, and nothing is
allocated from the claimed size. Other formats go through Pillow's lazy ``Image.open``.
The format is recognised by its signature, not by the file name (a PNG named ``.jpg`` is
a PNG).

The orientation is the EXIF tag 0x0112 (1..8; 1 = stored as displayed) of a JPEG's APP1
segment, a PNG's ``eXIf`` chunk or a WebP's EXIF chunk; ``width``/``height`` are those of
the *stored* pixels (before the orientation is applied).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import BinaryIO

EXIF_ORIENTATION_TAG = 0x0112
_JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@dataclass(frozen=True)
class ImageHeader:
    """``width`` x ``height`` of the stored pixels (0 when the header does not say),
    ``orientation`` (EXIF 1..8), ``format`` (``'jpeg'``, ``'png'`` or Pillow's format name
    in lower case) and, for JPEG, ``scan_offset`` (byte offset of the first scan)."""

    width: int
    height: int
    orientation: int = 1
    format: str = ""
    scan_offset: int = 0

    @property
    def pixels(self) -> int:
        return int(self.width) * int(self.height)


def exif_orientation(tiff: bytes) -> int:
    """The orientation tag (1..8) of a TIFF-structured EXIF block (``II*\\0`` or ``MM\\0*``
    first); 1 when absent or malformed."""
    if len(tiff) < 8 or tiff[:2] not in (b"II", b"MM"):
        return 1
    endian = "<" if tiff[:2] == b"II" else ">"
    try:
        offset = struct.unpack(endian + "I", tiff[4:8])[0]
        (count,) = struct.unpack(endian + "H", tiff[offset : offset + 2])
        for i in range(min(count, 512)):
            entry = tiff[offset + 2 + 12 * i : offset + 14 + 12 * i]
            tag, kind = struct.unpack(endian + "HH", entry[:4])
            if tag == EXIF_ORIENTATION_TAG and kind == 3:  # SHORT
                value = struct.unpack(endian + "H", entry[8:10])[0]
                return value if 1 <= value <= 8 else 1
    except struct.error:
        return 1
    return 1


def _read_jpeg(fh: BinaryIO) -> ImageHeader | None:
    fh.seek(2)
    width = height = 0
    orientation = 1
    while True:
        byte = fh.read(1)
        while byte and byte != b"\xff":  # garbage between segments: tolerated as libjpeg does
            byte = fh.read(1)
        while byte == b"\xff":  # fill bytes
            byte = fh.read(1)
        if not byte:
            break
        marker = byte[0]
        if marker == 0x01 or 0xD0 <= marker <= 0xD8:  # no length field
            continue
        if marker == 0xD9:  # end of image before any scan
            break
        length_bytes = fh.read(2)
        if len(length_bytes) < 2:
            break
        length = struct.unpack(">H", length_bytes)[0]
        if length < 2:
            break
        if marker == 0xDA:  # start of scan: the header is over
            return ImageHeader(width, height, orientation, "jpeg", fh.tell() - 4)
        if marker in _JPEG_SOF:
            data = fh.read(length - 2)
            if len(data) >= 5:
                height, width = struct.unpack(">HH", data[1:5])
        elif marker == 0xE1 and orientation == 1:
            data = fh.read(length - 2)
            if data[:6] == b"Exif\x00\x00":
                orientation = exif_orientation(data[6:])
        else:
            fh.seek(length - 2, 1)
    return ImageHeader(width, height, orientation, "jpeg", 0) if width and height else None


def _read_png(fh: BinaryIO) -> ImageHeader | None:
    fh.seek(8)
    width = height = 0
    orientation = 1
    for _ in range(4096):  # eXIf must precede the image data; stop at IDAT
        head = fh.read(8)
        if len(head) < 8:
            break
        length, kind = struct.unpack(">I4s", head)
        if kind == b"IHDR":
            data = fh.read(length)
            if len(data) >= 8:
                width, height = struct.unpack(">II", data[:8])
            fh.seek(4, 1)
        elif kind == b"eXIf":
            orientation = exif_orientation(fh.read(length))
            fh.seek(4, 1)
        elif kind in (b"IDAT", b"IEND"):
            break
        else:
            fh.seek(length + 4, 1)
    return ImageHeader(width, height, orientation, "png") if width and height else None


def _read_with_pillow(path: str) -> ImageHeader | None:
    """Pillow's lazy open (header only). Pillow refuses sizes above its own limit itself
    (``DecompressionBombError``), which the caller reports."""
    from PIL import Image

    with Image.open(path) as im:
        width, height = im.size
        fmt = (im.format or "").lower()
        orientation = 1
        if fmt == "webp":  # TIFF decoders apply their orientation tag themselves
            orientation = int(im.getexif().get(EXIF_ORIENTATION_TAG, 1) or 1)
            orientation = orientation if 1 <= orientation <= 8 else 1
    return ImageHeader(int(width), int(height), orientation, fmt)


def read_image_header(path: str) -> ImageHeader | None:
    """The header of ``path``; ``None`` when it cannot be parsed (the decoder then decides).

    Pillow's ``DecompressionBombError`` (non-JPEG/PNG files above Pillow's own limit) and
    ``OSError`` propagate; a header that is merely unusual gives ``None``.
    """
    with open(path, "rb") as fh:
        start = fh.read(8)
        try:
            if start[:2] == b"\xff\xd8":
                return _read_jpeg(fh)
            if start == _PNG_SIGNATURE:
                return _read_png(fh)
        except struct.error:
            return None
    try:
        return _read_with_pillow(path)
    except (OSError, ValueError, SyntaxError):
        return None  # not an image Pillow knows: the decoder reports it
