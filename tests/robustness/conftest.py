"""Generators of bad data files -- and of valid files in odd clothing -- written into
``tmp_path`` at test time (nothing is stored in the repository), plus ``time_limit``, which
turns a hang into a test failure.

``data`` (a ``DataFactory``) writes:
  * images by kind (``IMAGE_KINDS``): broken ones (0 bytes, truncated, text named .jpg, a
    header claiming a huge size) and valid ones dressed oddly (grayscale, RGBA, 16-bit,
    CMYK, EXIF-oriented, a PNG named .jpg, trailing bytes after the JPEG end marker);
  * a small COCO set (``coco``) with hooks to break its json;
  * a small VOC folder (``voc``) with hooks to break its XML and split file.
"""

import contextlib
import io
import json
import os
import signal
import struct
import zlib

import cv2
import numpy as np
import pytest
from PIL import Image

COCO_CATEGORIES = [dict(id=7, name="a"), dict(id=9, name="b")]
VOC_CLASSES = ("cat", "dog")


def pattern(height, width):
    """An RGB picture whose orientation can be read back: a red block at the top-left, a
    green one at the top-right, a blue one at the bottom-left, grey elsewhere."""
    img = np.full((height, width, 3), 128, np.uint8)
    bh, bw = max(2, height // 4), max(2, width // 4)
    img[:bh, :bw] = (255, 0, 0)
    img[:bh, -bw:] = (0, 255, 0)
    img[-bh:, :bw] = (0, 0, 255)
    return img


def jpeg_bytes(rgb, quality=95, exif=None, mode=None):
    im = Image.fromarray(rgb)
    if mode:
        im = im.convert(mode)
    buf = io.BytesIO()
    kwargs = dict(quality=quality)
    if exif is not None:
        kwargs["exif"] = exif
    im.save(buf, format="JPEG", **kwargs)
    return buf.getvalue()


def png_bytes(array, mode=None, exif=None):
    buf = io.BytesIO()
    im = Image.fromarray(array, mode) if mode else Image.fromarray(array)
    im.save(buf, format="PNG", **({"exif": exif} if exif is not None else {}))
    return buf.getvalue()


def exif_with_orientation(orientation):
    exif = Image.Image().getexif()
    exif[0x0112] = orientation
    return exif


def jpeg_claiming(height, width):
    """A small valid JPEG whose start-of-frame says ``height x width`` (a decompression bomb:
    a few KB on disk; a decoder trusting the header allocates height x width x 3 bytes)."""
    data = bytearray(jpeg_bytes(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)))
    pos = 2
    while True:
        marker, length = data[pos + 1], struct.unpack(">H", data[pos + 2 : pos + 4])[0]
        if marker in (0xC0, 0xC1, 0xC2):
            data[pos + 5 : pos + 9] = struct.pack(">HH", height, width)
            return bytes(data)
        pos += 2 + length


def png_claiming(height, width):
    """A PNG whose IHDR says ``height x width`` with a tiny (wrong) image data chunk."""

    def chunk(kind, payload):
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 49)) + chunk(b"IEND", b"")


def _image_bytes(kind):
    """``(bytes, file suffix)`` of one image kind."""
    rgb = pattern(40, 60)
    if kind == "rgb_jpeg":
        return jpeg_bytes(rgb), ".jpg"
    if kind == "zero_bytes":
        return b"", ".jpg"
    if kind == "truncated_jpeg":
        return jpeg_bytes(np.random.default_rng(1).integers(0, 255, (64, 64, 3), dtype=np.uint8))[:600], ".jpg"
    if kind == "truncated_png":
        return png_bytes(np.random.default_rng(1).integers(0, 255, (64, 64, 3), dtype=np.uint8))[:400], ".png"
    if kind == "text_as_jpg":
        return b"<html>404 Not Found</html>\n", ".jpg"
    if kind == "grayscale":
        return png_bytes(rgb[..., 0]), ".png"
    if kind == "rgba":
        return png_bytes(np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)])), ".png"
    if kind == "png16":
        deep = rgb.astype(np.uint16) * 257  # 8-bit value v -> 16-bit v * 257
        ok, buf = cv2.imencode(".png", cv2.cvtColor(deep, cv2.COLOR_RGB2BGR))
        assert ok
        return buf.tobytes(), ".png"
    if kind == "cmyk":
        return jpeg_bytes(rgb, mode="CMYK"), ".jpg"
    if kind == "png_as_jpg":
        return png_bytes(rgb), ".jpg"
    if kind == "jpeg_trailing":  # e.g. a phone's appended data: 4 KB after the end marker
        return jpeg_bytes(rgb) + bytes(range(256)) * 16, ".jpg"
    if kind.startswith("exif") and kind.endswith("_png"):
        return png_bytes(rgb, exif=exif_with_orientation(int(kind[4]))), ".png"
    if kind.startswith("exif"):
        return jpeg_bytes(rgb, exif=exif_with_orientation(int(kind[4:]))), ".jpg"
    if kind == "bomb_jpeg":
        return jpeg_claiming(15000, 15000), ".jpg"
    if kind == "bomb_png":
        return png_claiming(100000, 100000), ".png"
    raise KeyError(kind)


IMAGE_KINDS = (
    "rgb_jpeg",
    "zero_bytes",
    "truncated_jpeg",
    "truncated_png",
    "text_as_jpg",
    "grayscale",
    "rgba",
    "png16",
    "cmyk",
    "png_as_jpg",
    "jpeg_trailing",
    "exif3",
    "exif6",
    "exif8",
    "bomb_jpeg",
    "bomb_png",
)


class DataFactory:
    """Writes the files of one test under ``root`` (its ``tmp_path``)."""

    def __init__(self, root):
        self.root = str(root)

    def path(self, *parts):
        path = os.path.join(self.root, *parts)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        return path

    def write(self, relpath, data):
        path = self.path(relpath)
        with open(path, "wb" if isinstance(data, bytes) else "w") as fh:
            fh.write(data)
        return path

    def image(self, kind, name=None, folder="images"):
        """Write an image of ``kind`` (``IMAGE_KINDS`` or ``exifN_png``); returns its path."""
        data, suffix = _image_bytes(kind)
        return self.write(os.path.join(folder, (name or kind) + ("" if name and "." in name else suffix)), data)

    def picture(self, rgb, name, folder="images", exif_orientation=None):
        """Write ``rgb`` losslessly (PNG, or a JPEG at quality 100 when ``name`` ends in .jpg)."""
        if name.endswith(".jpg"):
            exif = exif_with_orientation(exif_orientation) if exif_orientation else None
            return self.write(os.path.join(folder, name), jpeg_bytes(rgb, quality=100, exif=exif))
        exif = exif_with_orientation(exif_orientation) if exif_orientation else None
        return self.write(os.path.join(folder, name), png_bytes(rgb, exif=exif))

    # ------------------------------------------------------------------ COCO
    def coco_data(self, num_images=3, height=40, width=50):
        """A valid instances dict: images 10, 11, ... (``<i>.png``, written), one box each."""
        images, annotations = [], []
        for i in range(num_images):
            self.picture(pattern(height, width), f"{i}.png")
            images.append(dict(id=10 + i, file_name=f"{i}.png", height=height, width=width))
            annotations.append(
                dict(
                    id=100 + i,
                    image_id=10 + i,
                    category_id=7,
                    bbox=[5, 5, 20, 15],
                    iscrowd=0,
                    area=300.0,
                    segmentation=[[5, 5, 25, 5, 25, 20, 5, 20]],
                )
            )
        return dict(images=images, annotations=annotations, categories=[dict(c) for c in COCO_CATEGORIES])

    def coco(self, data=None, text=None, name="ann.json"):
        """Write ``data`` (default ``coco_data()``) or raw ``text`` as the json; returns
        ``(ann_file, img_dir)``."""
        if text is None:
            text = json.dumps(self.coco_data() if data is None else data, indent=1)
        return self.write(name, text), os.path.join(self.root, "images")

    # ------------------------------------------------------------------ VOC
    def voc(self, objects=None, ids=("img_0", "img_1"), split_text=None, xml_text=None, size=(60, 80)):
        """A VOC folder (``Annotations``, ``JPEGImages``, ``ImageSets/Main/train.txt``) whose
        images ``ids`` each hold ``objects`` (``(name, (xmin, ymin, xmax, ymax))``; default one
        cat); ``xml_text`` maps an id to a replacement XML text. Returns the root."""
        objects = objects if objects is not None else [("cat", (5, 6, 30, 40))]
        height, width = size
        for img_id in ids:
            ok, buf = cv2.imencode(".jpg", cv2.cvtColor(pattern(height, width), cv2.COLOR_RGB2BGR))
            self.write(os.path.join("voc", "JPEGImages", f"{img_id}.jpg"), buf.tobytes())
            body = "".join(
                f"<object><name>{n}</name><difficult>0</difficult><bndbox><xmin>{b[0]}</xmin>"
                f"<ymin>{b[1]}</ymin><xmax>{b[2]}</xmax><ymax>{b[3]}</ymax></bndbox></object>"
                for n, b in objects
            )
            text = (
                f"<annotation><filename>{img_id}.jpg</filename><size><width>{width}</width>"
                f"<height>{height}</height><depth>3</depth></size>{body}</annotation>"
            )
            self.write(os.path.join("voc", "Annotations", f"{img_id}.xml"), (xml_text or {}).get(img_id, text))
        self.write(
            os.path.join("voc", "ImageSets", "Main", "train.txt"),
            "\n".join(ids) + "\n" if split_text is None else split_text,
        )
        return os.path.join(self.root, "voc")


@pytest.fixture
def data(tmp_path):
    return DataFactory(tmp_path)


@contextlib.contextmanager
def _time_limit(seconds):
    def on_alarm(signum, frame):
        raise TimeoutError(f"no result within {seconds} s: the code under test hangs")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(int(seconds))
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture
def time_limit():
    """``with time_limit(20): ...`` fails with ``TimeoutError`` instead of hanging (SIGALRM:
    the main thread, Python-level loops -- the way the samplers and loaders used to hang)."""
    return _time_limit
