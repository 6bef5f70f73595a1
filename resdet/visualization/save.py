"""Writing pictures: atomic saves, and where the annotated copy of an input image goes (a
folder or a single file; the input's format kept unless another is asked for)."""

from __future__ import annotations

import os
from collections.abc import Sequence

import cv2
import numpy as np

from ..utils.io import atomic_write_bytes

# formats an annotated copy keeps; anything else (GIF, PPM, ...) becomes PNG
KEPT_FORMATS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
OUTPUT_FORMATS = ("jpg", "png")


def save_image(image: np.ndarray, path: str) -> None:
    """Write an ``H x W x 3`` uint8 RGB image (format from the extension) atomically: a kill
    mid-write never leaves a truncated picture. Errors name the file."""
    ext = os.path.splitext(path)[1].lower()
    try:
        ok, encoded = cv2.imencode(ext, cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2BGR))
    except cv2.error:
        ok = False
    if not ok:
        raise OSError(f"could not write image {path}: unsupported extension {ext!r}")
    atomic_write_bytes(encoded.tobytes(), path)


def is_image_file_path(path: str) -> bool:
    """``path`` names a picture file rather than a folder: it has an image extension and is
    not an existing folder."""
    return not os.path.isdir(path) and os.path.splitext(path)[1].lower() in KEPT_FORMATS


def same_format(ext_a: str, ext_b: str) -> bool:
    """``'.JPG'``, ``'jpg'`` and ``'jpeg'`` are one format; so are ``'tif'`` and ``'tiff'``."""
    aliases = {"jpeg": "jpg", "tiff": "tif"}
    a, b = (e.lower().lstrip(".") for e in (ext_a, ext_b))
    return aliases.get(a, a) == aliases.get(b, b)


def output_extension(input_path: str, ext: str | None = None) -> str:
    """``.<ext>`` when given (``jpg`` / ``png``), else the input's own extension when it is a
    format worth keeping (``KEPT_FORMATS``), else ``.png``."""
    if ext:
        ext = ext.lower().lstrip(".")
        if ext not in OUTPUT_FORMATS + tuple(e[1:] for e in KEPT_FORMATS):
            raise ValueError(f"unsupported output format {ext!r}; allowed: {', '.join(OUTPUT_FORMATS)}")
        return "." + ext
    own = os.path.splitext(input_path)[1]
    return own if own.lower() in KEPT_FORMATS else ".png"


def output_paths(inputs: Sequence[str], out: str, ext: str | None = None) -> list[str]:
    """Where the annotated copies of ``inputs`` go.

    ``out`` is a folder (``out/<input name>.<ext>``; two inputs with the same name get
    ``_1``, ``_2`` ... suffixes rather than overwrite each other), or, for a single input, a
    file path with an image extension (``result.png``: its extension decides the format).
    """
    if is_image_file_path(out):
        if len(inputs) != 1:
            raise ValueError(
                f"--out {out} is a file name, but {len(inputs)} images were given; pass a folder for several images"
            )
        if ext and not same_format(os.path.splitext(out)[1], ext):
            raise ValueError(f"--out {out} and --ext {ext} disagree; give one of them")
        return [out]
    paths, seen = [], set()
    for path in inputs:
        stem = os.path.splitext(os.path.basename(path))[0] or "image"
        suffix = output_extension(path, ext)
        candidate, n = stem + suffix, 0
        while candidate.lower() in seen:
            n += 1
            candidate = f"{stem}_{n}{suffix}"
        seen.add(candidate.lower())
        paths.append(os.path.join(out, candidate))
    return paths
