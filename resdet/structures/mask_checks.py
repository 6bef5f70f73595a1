"""Validation of instance-mask annotations before they reach pycocotools or a training target.

Two kinds of problems:
  * *repairable* ones drop the offending polygon part, or the instance when nothing valid
    is left, and are counted (the dataset warns once with every count): polygon parts with
    fewer than 3 points, parts with zero area, self-intersecting parts, parts entirely
    outside the image, empty RLEs, masks that became empty after resizing;
  * *inconsistent* data is an error naming the image and annotation: an RLE whose ``size``
    disagrees with the image, RLE counts that do not add up to ``height x width``,
    malformed polygons (non-numeric, non-finite, odd number of coordinates) and
    segmentations of an unknown type. Datasets raise it in strict mode and count it otherwise.

Nothing here calls into pycocotools with unchecked input, so a bad file never ends in a
crash deep inside its C code.
"""
from __future__ import annotations

import logging
import warnings
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

logger = logging.getLogger("resdet")

FEW_POINTS = "polygon parts with fewer than 3 points dropped"
ZERO_AREA = "polygon parts with zero area dropped"
SELF_INTERSECTING = "self-intersecting polygon parts dropped"
OUTSIDE = "polygon parts outside the image dropped"
EMPTY_RLE = "empty RLE masks dropped"
NO_VALID_MASK = "instances without a valid mask dropped"
EMPTY_AFTER_TRANSFORM = "instances whose mask is empty after resizing dropped"

# instances dropped in ``drop_empty_masks`` (per process: data-loader workers count their own)
TRANSFORM_DROPS: Counter = Counter()


@dataclass
class MaskCheck:
    """Result of ``check_segmentation``: the cleaned ``segmentation`` (``None``: drop the
    instance), counts of repaired problems and an ``error`` message (``None`` if consistent)."""

    segmentation: Any
    counts: Counter = field(default_factory=Counter)
    error: str | None = None


def polygon_self_intersects(points: np.ndarray) -> bool:
    """Whether two non-adjacent edges of the closed polygon ``K x 2`` cross properly
    (all edge pairs at once; touching or collinear edges do not count)."""
    n = len(points)
    if n < 4:
        return False
    a, b = points, np.roll(points, -1, axis=0)  # edge i: a[i] -> b[i]

    def orient(p, q, r):  # sign of the cross product (q - p) x (r - p), broadcast
        return np.sign((q[..., 0] - p[..., 0]) * (r[..., 1] - p[..., 1])
                       - (q[..., 1] - p[..., 1]) * (r[..., 0] - p[..., 0]))

    ai, bi, aj, bj = a[:, None], b[:, None], a[None], b[None]
    crosses = (orient(ai, bi, aj) * orient(ai, bi, bj) < 0) & (orient(aj, bj, ai) * orient(aj, bj, bi) < 0)
    i, j = np.triu_indices(n, k=2)
    pairs = ~((i == 0) & (j == n - 1))  # the first and last edges share a vertex
    return bool(crosses[i[pairs], j[pairs]].any())


def _check_polygons(polygons: list, height: int, width: int, where: str) -> MaskCheck:
    counts: Counter = Counter()
    kept = []
    for part_index, part in enumerate(polygons):
        try:
            coords = np.asarray(part, dtype=np.float64).reshape(-1)
        except (TypeError, ValueError):
            return MaskCheck(None, counts, f"{where}: polygon part {part_index} is not a list of numbers")
        if not np.isfinite(coords).all() or coords.size % 2:
            return MaskCheck(None, counts, f"{where}: polygon part {part_index} has "
                             f"{'non-finite coordinates' if coords.size % 2 == 0 else 'an odd number of coordinates'}")
        points = coords.reshape(-1, 2)
        if len(points) < 3:
            counts[FEW_POINTS] += 1
            continue
        x, y = points[:, 0], points[:, 1]
        if x.max() <= 0 or y.max() <= 0 or x.min() >= width or y.min() >= height:
            counts[OUTSIDE] += 1
            continue
        if polygon_self_intersects(points):  # first: a symmetric bow-tie has zero signed area
            counts[SELF_INTERSECTING] += 1
            continue
        area = 0.5 * abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))
        if area <= 0:
            counts[ZERO_AREA] += 1
            continue
        kept.append(coords.tolist())
    if not kept:
        counts[NO_VALID_MASK] += 1
        return MaskCheck(None, counts)
    return MaskCheck(kept, counts)


def rle_string_counts(counts: str | bytes) -> list[int]:
    """Run lengths of a COCO compressed RLE string (6-bit characters from offset 48, 5 data
    bits each, bit 0x20 = continuation, runs after the second coded as deltas), decoded in
    Python so malformed strings raise ``ValueError`` instead of reaching C code."""
    data = counts.encode("ascii") if isinstance(counts, str) else bytes(counts)
    runs: list[int] = []
    pos = 0
    while pos < len(data):
        value, shift, more = 0, 0, True
        while more:
            if pos >= len(data):
                raise ValueError("RLE string ends inside a number")
            char = data[pos] - 48
            if char < 0 or char > 63:
                raise ValueError(f"RLE string has an invalid character {chr(data[pos])!r}")
            value |= (char & 0x1F) << (5 * shift)
            more = bool(char & 0x20)
            pos, shift = pos + 1, shift + 1
            if not more and char & 0x10:
                value |= -1 << (5 * shift)
        if len(runs) > 2:
            value += runs[-2]
        runs.append(value)
    return runs


def _check_rle(rle: dict, height: int, width: int, where: str) -> MaskCheck:
    size = rle.get("size")
    if not isinstance(size, (list, tuple)) or len(size) != 2:
        return MaskCheck(None, error=f"{where}: RLE has no valid 'size' [height, width] (got {size!r})")
    if [int(size[0]), int(size[1])] != [height, width]:
        return MaskCheck(None, error=f"{where}: RLE size {list(size)} disagrees with the image size "
                                     f"[{height}, {width}]")
    counts = rle.get("counts")
    try:
        runs = [int(c) for c in counts] if isinstance(counts, list) else rle_string_counts(counts)
    except (TypeError, ValueError) as err:
        return MaskCheck(None, error=f"{where}: RLE counts are malformed ({err})")
    if any(r < 0 for r in runs) or sum(runs) != height * width:
        return MaskCheck(None, error=f"{where}: RLE counts add up to {sum(runs)} pixels (with "
                                     f"{sum(r < 0 for r in runs)} negative runs), not {height} x {width}")
    if sum(runs[1::2]) == 0:
        return MaskCheck(None, Counter({EMPTY_RLE: 1}))
    return MaskCheck(rle)


def check_segmentation(segmentation: Any, height: int, width: int, where: str) -> MaskCheck:
    """Validate one COCO ``segmentation`` (polygon list or RLE dict) of an ``height x width``
    image; ``where`` names the image and annotation in messages. A missing or empty
    segmentation passes through unchanged (datasets fall back to the box)."""
    if segmentation is None or (isinstance(segmentation, list) and not segmentation):
        return MaskCheck(segmentation)
    if isinstance(segmentation, list):
        return _check_polygons(segmentation, int(height), int(width), where)
    if isinstance(segmentation, dict) and "counts" in segmentation:
        return _check_rle(segmentation, int(height), int(width), where)
    return MaskCheck(None, error=f"{where}: unsupported segmentation of type {type(segmentation).__name__} "
                                 "(expected a list of polygons or an RLE dict with 'counts' and 'size')")


def drop_empty_masks(sample: dict) -> dict:
    """Drop the non-ignored instances of a transformed sample whose ``N x H x W`` mask has no
    pixel left (e.g. a thin object after downscaling), with a counted warning naming the image."""
    masks = sample.get("masks")
    if not isinstance(masks, np.ndarray) or masks.ndim != 3 or not len(masks):
        return sample
    ignore = np.asarray(sample.get("ignore", np.zeros(len(masks), dtype=bool)), dtype=bool)
    empty = ~masks.reshape(len(masks), -1).any(1) & ~ignore
    if not empty.any():
        return sample
    keep = ~empty
    for key in ("boxes", "labels", "ignore", "masks"):
        if key in sample and sample[key] is not None and len(sample[key]) == len(keep):
            sample[key] = sample[key][keep]
    TRANSFORM_DROPS[EMPTY_AFTER_TRANSFORM] += int(empty.sum())
    message = (f"image {sample.get('img_id')!r}: {int(empty.sum())} instance(s) dropped because their mask is "
               f"empty after the transforms ({TRANSFORM_DROPS[EMPTY_AFTER_TRANSFORM]} so far in this process)")
    warnings.warn(message, UserWarning, stacklevel=2)
    logger.warning(message)
    return sample


def checked_annotation(dataset, ann: dict, img_id: Any, height: int, width: int) -> dict | None:
    """A COCO annotation with its segmentation validated for ``dataset`` (a
    ``DetectionDataset``): repaired problems go to ``dataset.stats`` (warned once after
    loading), errors to ``dataset._problem`` (raised in strict mode, counted otherwise).
    Returns the annotation with the cleaned segmentation, or ``None`` to drop the instance."""
    where = (f"annotation id {ann.get('id')!r} of image id {img_id!r} in "
             f"{getattr(dataset, 'ann_file', type(dataset).__name__)}")
    check = check_segmentation(ann.get("segmentation"), height, width, where)
    dataset.stats.update(check.counts)
    if check.error is not None:
        dataset._problem("annotations with inconsistent masks skipped", check.error)
        return None
    if check.segmentation is None:
        return None
    return dict(ann, segmentation=check.segmentation)
