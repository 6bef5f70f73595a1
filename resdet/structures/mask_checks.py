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
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from .polygon_checks import (
    PART_FEW,
    PART_NONFINITE,
    PART_ODD,
    PART_OK,
    PART_OUTSIDE,
    PART_SELF,
    PART_ZERO,
    classify_parts,
    flatten_parts,
    ring_self_intersects,
)

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
    (touching or collinear edges do not count)."""
    return ring_self_intersects(np.asarray(points, dtype=np.float64).reshape(-1, 2))


def _check_polygons(polygons: list, height: int, width: int, where: str) -> MaskCheck:
    """One segmentation's parts one at a time: the path for parts that are not flat lists of
    numbers (it names the bad part); ``check_segmentations`` does the same for many at once."""
    counts: Counter = Counter()
    kept = []
    for part_index, part in enumerate(polygons):
        try:
            coords = np.asarray(part, dtype=np.float64).reshape(-1)
        except (TypeError, ValueError):
            return MaskCheck(None, counts, f"{where}: polygon part {part_index} is not a list of numbers")
        if not np.isfinite(coords).all() or coords.size % 2:
            return MaskCheck(
                None,
                counts,
                f"{where}: polygon part {part_index} has "
                f"{'non-finite coordinates' if coords.size % 2 == 0 else 'an odd number of coordinates'}",
            )
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
        return MaskCheck(
            None, error=f"{where}: RLE size {list(size)} disagrees with the image size [{height}, {width}]"
        )
    counts = rle.get("counts")
    try:
        runs = [int(c) for c in counts] if isinstance(counts, list) else rle_string_counts(counts)
    except (TypeError, ValueError) as err:
        return MaskCheck(None, error=f"{where}: RLE counts are malformed ({err})")
    if (runs and min(runs) < 0) or sum(runs) != height * width:
        return MaskCheck(
            None,
            error=f"{where}: RLE counts add up to {sum(runs)} pixels (with "
            f"{sum(r < 0 for r in runs)} negative runs), not {height} x {width}",
        )
    if sum(runs[1::2]) == 0:
        return MaskCheck(None, Counter({EMPTY_RLE: 1}))
    return MaskCheck(rle)


def _check_one(segmentation: Any, height: int, width: int, where: str) -> MaskCheck:
    """One segmentation, part by part (the path of RLEs and of inputs the batch cannot read)."""
    if segmentation is None or (isinstance(segmentation, list) and not segmentation):
        return MaskCheck(segmentation)
    if isinstance(segmentation, list):
        return _check_polygons(segmentation, int(height), int(width), where)
    if isinstance(segmentation, dict) and "counts" in segmentation:
        return _check_rle(segmentation, int(height), int(width), where)
    return MaskCheck(
        None,
        error=f"{where}: unsupported segmentation of type {type(segmentation).__name__} "
        "(expected a list of polygons or an RLE dict with 'counts' and 'size')",
    )


def check_segmentation(segmentation: Any, height: int, width: int, where: str) -> MaskCheck:
    """Validate one COCO ``segmentation`` (polygon list or RLE dict) of an ``height x width``
    image; ``where`` names the image and annotation in messages. A missing or empty
    segmentation passes through unchanged (datasets fall back to the box)."""
    batch = check_segmentations([segmentation], [height], [width], lambda _: where)
    return MaskCheck(batch.segmentations[0], batch.counts, batch.errors[0][1] if batch.errors else None)


@dataclass
class MaskChecks:
    """Result of ``check_segmentations`` for ``N`` inputs: ``segmentations`` (per input the
    cleaned one -- the input object itself when nothing was dropped, ``None``: drop the
    instance), the total ``counts`` of repaired problems, and ``errors`` as ``(index,
    message)`` in input order (those inputs' segmentations are ``None``)."""

    segmentations: list
    counts: Counter = field(default_factory=Counter)
    errors: list = field(default_factory=list)


_CHUNK = 8192  # segmentations per batch: bounds the temporaries; a chunk with a bad part goes one by one
_PART_PROBLEMS = {PART_FEW: FEW_POINTS, PART_OUTSIDE: OUTSIDE, PART_SELF: SELF_INTERSECTING, PART_ZERO: ZERO_AREA}


def _flat_polygons(segm: Any) -> bool:
    if type(segm) is list and len(segm) == 1 and type(segm[0]) is list:  # the common case, fast
        return True
    return isinstance(segm, list) and bool(segm) and all(isinstance(p, (list, tuple)) for p in segm)


def check_segmentations(
    segmentations: Sequence, heights: Sequence[int], widths: Sequence[int], where: Callable[[int], str]
) -> MaskChecks:
    """``check_segmentation`` for ``N`` segmentations at once (same results, same counts):
    polygon parts are checked as arrays, a fixed number of numpy calls per chunk of 8192.
    ``heights`` / ``widths`` (``N``) are the images' sizes; ``where(i)`` names input ``i`` in
    messages (called only for inputs with an error)."""
    result = MaskChecks(list(segmentations))
    heights, widths = np.asarray(heights, dtype=np.int64), np.asarray(widths, dtype=np.int64)
    polygon_items = []
    for index, segm in enumerate(result.segmentations):
        if _flat_polygons(segm):
            polygon_items.append(index)
        elif segm is not None and not (isinstance(segm, list) and not segm):
            _record(result, index, _check_one(segm, heights[index], widths[index], where(index)))
    for start in range(0, len(polygon_items), _CHUNK):
        _check_polygon_chunk(
            result, np.asarray(polygon_items[start : start + _CHUNK], dtype=np.int64), heights, widths, where
        )
    result.errors.sort(key=lambda e: e[0])
    return result


def _record(result: MaskChecks, index: int, check: MaskCheck) -> None:
    result.counts.update(check.counts)
    result.segmentations[index] = check.segmentation
    if check.error is not None:
        result.errors.append((index, check.error))


def _check_polygon_chunk(
    result: MaskChecks, items: np.ndarray, heights: np.ndarray, widths: np.ndarray, where: Callable[[int], str]
) -> None:
    segms = [result.segmentations[i] for i in items.tolist()]
    parts = [p for s in segms for p in s]
    try:
        coords, offsets = flatten_parts(parts)
    except (TypeError, ValueError):  # a part that is not a flat list of numbers: find and name it
        for index, segm in zip(items.tolist(), segms):
            _record(result, index, _check_one(segm, heights[index], widths[index], where(index)))
        return
    per_item = np.fromiter(map(len, segms), dtype=np.int64, count=len(segms))
    part_item = np.repeat(np.arange(len(segms)), per_item)
    codes = classify_parts(coords, offsets, heights[items][part_item], widths[items][part_item])
    # a part that makes its segmentation inconsistent ends the check of that segmentation there
    is_error = (codes == PART_ODD) | (codes == PART_NONFINITE)
    cutoff = np.full(len(segms), len(parts), dtype=np.int64)
    np.minimum.at(cutoff, part_item[is_error], np.flatnonzero(is_error))
    counted = codes[(np.arange(len(parts)) < cutoff[part_item]) & ~is_error]
    for code, name in _PART_PROBLEMS.items():
        if number := int((counted == code).sum()):
            result.counts[name] += number
    kept = codes == PART_OK
    kept_per_item = np.bincount(part_item[kept], minlength=len(segms))
    first_part = np.concatenate([[0], np.cumsum(per_item)[:-1]])
    for k in np.flatnonzero(cutoff < len(parts)).tolist():
        part = int(cutoff[k])
        problem = "an odd number of coordinates" if codes[part] == PART_ODD else "non-finite coordinates"
        result.errors.append(
            (int(items[k]), f"{where(int(items[k]))}: polygon part {part - first_part[k]} has {problem}")
        )
        result.segmentations[items[k]] = None
    empty = (kept_per_item == 0) & (cutoff == len(parts))
    if empty.any():
        result.counts[NO_VALID_MASK] += int(empty.sum())
    for k in np.flatnonzero(empty).tolist():
        result.segmentations[items[k]] = None
    for k in np.flatnonzero((kept_per_item > 0) & (kept_per_item < per_item) & (cutoff == len(parts))).tolist():
        first = int(first_part[k])
        result.segmentations[items[k]] = [parts[first + j] for j in range(int(per_item[k])) if kept[first + j]]


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
    message = (
        f"image {sample.get('img_id')!r}: {int(empty.sum())} instance(s) dropped because their mask is "
        f"empty after the transforms ({TRANSFORM_DROPS[EMPTY_AFTER_TRANSFORM]} so far in this process)"
    )
    warnings.warn(message, UserWarning, stacklevel=2)
    logger.warning(message)
    return sample


def _where(dataset, ann: dict, img_id: Any) -> str:
    return (
        f"annotation id {ann.get('id')!r} of image id {img_id!r} in "
        f"{getattr(dataset, 'ann_file', type(dataset).__name__)}"
    )


def checked_annotation(dataset, ann: dict, img_id: Any, height: int, width: int) -> dict | None:
    """A COCO annotation with its segmentation validated for ``dataset`` (a
    ``DetectionDataset``): repaired problems go to ``dataset.stats`` (warned once after
    loading), errors to ``dataset._problem`` (raised in strict mode, counted otherwise).
    Returns the annotation with the cleaned segmentation, or ``None`` to drop the instance.
    For a whole file, ``checked_annotations`` does the same many times faster."""
    where = _where(dataset, ann, img_id)
    check = _check_one(ann.get("segmentation"), height, width, where)
    dataset.stats.update(check.counts)
    if check.error is not None:
        dataset._problem("annotations with inconsistent masks skipped", check.error)
        return None
    if check.segmentation is None:
        return None
    return dict(ann, segmentation=check.segmentation)


def checked_annotations(
    dataset, anns: Sequence[dict], img_ids: Sequence, heights: Sequence[int], widths: Sequence[int]
) -> list[dict | None]:
    """``checked_annotation`` for ``N`` annotations at once (``img_ids``, ``heights``,
    ``widths``: of each annotation's image), with the same results, counts and errors (in
    input order; strict mode raises at the first). Returns per annotation the annotation
    itself when its segmentation is unchanged, a copy with the repaired segmentation, or
    ``None`` to drop the instance. Call it once per file (or per large block of annotations):
    the polygon checks cost a fixed number of numpy calls per 8192 annotations."""
    batch = check_segmentations(
        [ann.get("segmentation") for ann in anns], heights, widths, lambda i: _where(dataset, anns[i], img_ids[i])
    )
    dataset.stats.update(batch.counts)
    for _, message in batch.errors:
        dataset._problem("annotations with inconsistent masks skipped", message)
    checked: list[dict | None] = []
    for ann, segm in zip(anns, batch.segmentations):
        if segm is None:
            checked.append(None)
        else:
            checked.append(ann if segm is ann.get("segmentation") else dict(ann, segmentation=segm))
    return checked
