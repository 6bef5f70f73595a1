"""Instance masks in their three forms: polygons, COCO RLE and bitmaps.

Polygons (the COCO ``segmentation`` list form) are kept through the geometric
transforms -- scaling and flipping a few vertices is far cheaper than resizing
``N x H x W`` bitmaps -- and rasterised once, at the end of the pipeline, with
pycocotools. Crowd regions and other RLE annotations are decoded to bitmaps at load.

A sample's ``masks`` is therefore either
  * ``PolygonMasks``: one list of flat ``float32`` vertex arrays ``[x0, y0, x1, y1, ...]``
    per instance, in absolute pixel coordinates, or
  * ``np.ndarray`` of shape ``N x H x W`` (uint8 0/1).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pycocotools.mask as mask_utils


class PolygonMasks:
    """Polygons of ``N`` instances: ``polygons[i]`` is a list of flat float32 arrays
    (each ``[x0, y0, x1, y1, ...]``, at least 3 vertices) in absolute pixel coordinates."""

    def __init__(self, polygons: Sequence[Sequence[Any]]) -> None:
        self.polygons = [[np.asarray(p, dtype=np.float32).reshape(-1) for p in inst] for inst in polygons]

    def __len__(self) -> int:
        return len(self.polygons)

    def __getitem__(self, index) -> PolygonMasks:
        """Select instances by a boolean mask, an index array or a slice."""
        if isinstance(index, slice):
            return PolygonMasks(self.polygons[index])
        index = np.asarray(index)
        if index.dtype == bool:
            index = np.nonzero(index)[0]
        return PolygonMasks([self.polygons[int(i)] for i in index.reshape(-1)])

    def scale(self, w_scale: float, h_scale: float) -> PolygonMasks:
        factors = np.array([w_scale, h_scale], dtype=np.float32)
        return PolygonMasks([[(p.reshape(-1, 2) * factors).reshape(-1) for p in inst] for inst in self.polygons])

    def flip_horizontal(self, width: float) -> PolygonMasks:
        out = []
        for inst in self.polygons:
            flipped = []
            for p in inst:
                q = p.copy()
                q[0::2] = width - q[0::2]
                flipped.append(q)
            out.append(flipped)
        return PolygonMasks(out)

    def to_bitmap(self, height: int, width: int) -> np.ndarray:
        """``N x height x width`` uint8 masks (0/1)."""
        return polygons_to_bitmaps(self.polygons, height, width)

    def __repr__(self) -> str:
        return f"PolygonMasks(num_instances={len(self)})"


def _valid_polygons(polygons: Sequence[np.ndarray]) -> list[list[float]]:
    return [np.asarray(p, dtype=np.float64).reshape(-1).tolist() for p in polygons if np.asarray(p).size >= 6]


def polygons_to_rle(polygons: Sequence[Sequence[float]], height: int, width: int) -> dict:
    """One instance's polygons -> one (merged) compressed RLE."""
    polys = _valid_polygons(polygons)
    if not polys:
        return mask_utils.encode(np.zeros((height, width, 1), dtype=np.uint8, order="F"))[0]
    rles = mask_utils.frPyObjects(polys, height, width)
    return mask_utils.merge(rles)


def polygons_to_bitmaps(instances: Sequence[Sequence[Sequence[float]]], height: int, width: int) -> np.ndarray:
    """Polygons of ``N`` instances -> ``N x height x width`` uint8 bitmaps."""
    if len(instances) == 0:
        return np.zeros((0, height, width), dtype=np.uint8)
    rles = [polygons_to_rle(inst, height, width) for inst in instances]
    return rles_to_bitmaps(rles, height, width)


def segmentation_to_rle(segmentation: Any, height: int, width: int) -> dict:
    """A COCO ``segmentation`` (polygon list, uncompressed RLE with a ``counts`` list,
    or compressed RLE) -> a compressed RLE of an ``height x width`` image."""
    if isinstance(segmentation, list):
        return polygons_to_rle(segmentation, height, width)
    if isinstance(segmentation, dict) and "counts" in segmentation:
        if isinstance(segmentation["counts"], list):  # uncompressed RLE (crowd regions)
            return mask_utils.frPyObjects(segmentation, height, width)
        rle = dict(segmentation)
        if isinstance(rle["counts"], str):
            rle["counts"] = rle["counts"].encode("ascii")
        return rle
    raise ValueError(
        f"unsupported segmentation of type {type(segmentation).__name__}; expected a "
        "list of polygons or an RLE dict with 'counts' and 'size'"
    )


def rle_runs(counts: str | bytes | Sequence[int]) -> np.ndarray:
    """Run lengths (int64) of an RLE's ``counts``: a list (uncompressed RLE) or COCO's
    compressed string (6-bit characters from offset 48, 5 data bits each, bit 0x20 = the
    number continues, bit 0x10 of a number's last character = negative, runs after the
    second stored as the difference to the run two before), decoded with numpy."""
    if not isinstance(counts, (str, bytes, bytearray)):
        return np.asarray(counts, dtype=np.int64).reshape(-1)
    data = counts.encode("ascii") if isinstance(counts, str) else bytes(counts)
    chars = np.frombuffer(data, dtype=np.uint8).astype(np.int64) - 48
    if chars.size == 0:
        return np.zeros(0, dtype=np.int64)
    if chars.min() < 0 or chars.max() > 63:
        raise ValueError("RLE string has characters outside '0'..'o'")
    last = (chars & 0x20) == 0  # a number's final character
    if not last[-1]:
        raise ValueError("RLE string ends inside a number")
    ends = np.nonzero(last)[0]
    starts = np.concatenate([[0], ends[:-1] + 1])
    position = np.arange(chars.size) - np.repeat(starts, ends - starts + 1)  # digit index within its number
    values = np.add.reduceat((chars & 0x1F) << (5 * position), starts)
    negative = (chars[ends] & 0x10) != 0
    values = values - (negative.astype(np.int64) << (5 * (ends - starts + 1)))
    values[3::2] = np.cumsum(values[1::2])[1:]
    values[4::2] = np.cumsum(values[2::2])[1:]
    return values


def rle_to_bitmap(rle: dict, height: int, width: int) -> np.ndarray:
    """One RLE (compressed or not) -> ``height x width`` uint8, decoded with numpy (pycocotools'
    ``decode`` triggers NumPy 2's ``__array__(copy=...)`` DeprecationWarning once per call)."""
    runs = rle_runs(rle["counts"])
    if runs.sum() != height * width or (runs < 0).any():
        raise ValueError(f"RLE counts add up to {int(runs.sum())} pixels, not {height} x {width}")
    values = np.arange(runs.size, dtype=np.int64) % 2  # runs alternate 0, 1, 0, ...
    flat = np.repeat(values.astype(np.uint8), runs)
    return flat.reshape(width, height).T  # column-major, as COCO


def rles_to_bitmaps(rles: Sequence[dict], height: int, width: int) -> np.ndarray:
    """RLEs (compressed or uncompressed) -> ``N x height x width`` uint8."""
    if len(rles) == 0:
        return np.zeros((0, height, width), dtype=np.uint8)
    out = np.empty((len(rles), height, width), dtype=np.uint8)
    for i, rle in enumerate(rles):
        out[i] = rle_to_bitmap(rle, height, width)
    return out


def masks_to_bitmaps(masks: Any, height: int, width: int) -> np.ndarray:
    """Either form of a sample's ``masks`` -> ``N x height x width`` uint8."""
    if isinstance(masks, PolygonMasks):
        return masks.to_bitmap(height, width)
    arr = np.asarray(masks)
    if arr.ndim != 3:
        raise ValueError(f"expected PolygonMasks or N x H x W masks, got shape {arr.shape}")
    return arr.astype(np.uint8, copy=False)
