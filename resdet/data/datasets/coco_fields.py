"""Reading a COCO instances json: the file itself and one rule per field (docs/CONTRACTS.md,
"Annotation fields: one rule each").

The json is parsed with ``orjson`` (a core dependency: 1.9x less CPU than ``json`` on an
instances file; the same objects in the end, but a transient peak about 2x the file size
higher while parsing -- paid once per node, by the process that builds the record cache);
a file ``orjson`` refuses because it holds ``NaN``/``Infinity`` literals (which Python's
``json.dump`` writes) is read again with ``json``, which accepts them. The functions here
return the value or ``None`` for "breaks its rule"; the dataset turns ``None`` into a
``DataError`` (strict) or a counted skip.
"""

from __future__ import annotations

import json
import math
import os
from typing import Any

import orjson

from ..problems import DataError, DataFileNotFoundError

# OpenCV decodes at most 2**30 pixels (CV_IO_MAX_IMAGE_PIXELS): a recorded size above that
# can never match a decodable image, so it is a broken record, not a big image
MAX_IMAGE_PIXELS = 1 << 30


def read_instances(ann_file: str) -> dict:
    """The top-level dict of a COCO instances json, its ``images``/``annotations``/
    ``categories`` checked to be lists (absent ones read as empty).

    Raises ``DataFileNotFoundError`` / ``DataError`` naming the file (and the line and column
    of a JSON syntax error)."""
    if not os.path.isfile(ann_file):
        raise DataFileNotFoundError(f"COCO annotation file {ann_file} does not exist", ann_file)
    with open(ann_file, "rb") as fh:
        raw = fh.read()
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        try:  # NaN / Infinity literals, or a byte order mark: json reads those
            data = json.loads(raw)
        except json.JSONDecodeError as err:
            raise DataError(
                f"COCO annotation file {ann_file} is not valid JSON: line {err.lineno}, column {err.colno}: {err.msg}"
            ) from err
        except UnicodeDecodeError as err:
            raise DataError(f"COCO annotation file {ann_file} is not UTF-8 text: {err}") from err
    del raw
    bad = [
        k
        for k in ("images", "annotations", "categories")
        if isinstance(data, dict) and not isinstance(data.get(k, []), list)
    ]
    if not isinstance(data, dict) or bad:
        what = (
            f"a JSON {type(data).__name__}"
            if not isinstance(data, dict)
            else f"its {', '.join(repr(k) for k in bad)} not a list"
        )
        raise DataError(
            f"COCO annotation file {ann_file} is not an instances file (a JSON object with "
            f"'images', 'annotations' and 'categories' lists): {what}"
        )
    return data


def is_int(value: Any) -> bool:
    """A JSON integer (``true``/``false`` are not)."""
    return isinstance(value, int) and not isinstance(value, bool)


def image_size(value: Any) -> int | None:
    """``width`` / ``height``: a JSON number >= 1 without a fractional part."""
    if is_int(value) and value >= 1:
        return int(value)
    if isinstance(value, float) and math.isfinite(value) and value >= 1 and value == int(value):
        return int(value)
    return None


def flag(value: Any) -> bool | None:
    """``iscrowd`` / ``ignore``: 0 or 1 (``false``/``true`` too); absent means 0."""
    if value is None or value is False or value is True:
        return bool(value)
    if is_int(value) and value in (0, 1):
        return bool(value)
    if isinstance(value, float) and value in (0.0, 1.0):
        return bool(value)
    return None


def bbox_corners(bbox: Any) -> tuple[list[float], bool]:
    """``bbox``: ``[x, y, w, h]``, four JSON numbers -> (``[x1, y1, x2, y2]``, True).

    Anything else (missing, null, short, a string, a bool inside) gives NaN corners and
    False: the box is invalid, dropped and counted like a NaN or degenerate box (and left out
    of the evaluation ground truth, which could not read it)."""
    if (
        isinstance(bbox, list)
        and len(bbox) == 4
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in bbox)
    ):
        x, y, w, h = (float(v) for v in bbox)
        return [x, y, x + w, y + h], True
    return [math.nan] * 4, False


def categories_of(data: dict, ann_file: str) -> list[dict]:
    """``categories``: objects with an integer ``id`` (unique) and a string ``name``; sorted
    by id. Anything else is a ``DataError`` (no label could be trusted)."""
    cats, seen = [], set()
    for i, cat in enumerate(data.get("categories", [])):
        if not isinstance(cat, dict) or not is_int(cat.get("id")) or not isinstance(cat.get("name"), str):
            raise DataError(
                f"COCO annotation file {ann_file}: categories[{i}] must be an object with an "
                f"integer 'id' and a string 'name', got {str(cat)[:120]}"
            )
        if cat["id"] in seen:
            raise DataError(f"COCO annotation file {ann_file}: category id {cat['id']} appears twice in 'categories'")
        seen.add(cat["id"])
        cats.append(dict(id=cat["id"], name=cat["name"]))
    return sorted(cats, key=lambda c: c["id"])


def empty_hint(data: dict) -> str:
    """Why a file may give no image, from its top-level keys."""
    missing = [k for k in ("images", "annotations", "categories") if k not in data]
    if missing:
        return f"the file has no {', '.join(repr(k) for k in missing)} key{'s' if len(missing) > 1 else ''}"
    empty = [k for k in ("images", "annotations", "categories") if not data[k]]
    return f"its {', '.join(repr(k) for k in empty)} {'is' if len(empty) == 1 else 'are'} empty" if empty else ""
