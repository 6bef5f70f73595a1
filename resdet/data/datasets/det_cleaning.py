"""Annotation cleaning of the detection datasets and the counts it reports: the kinds of
counted problem, box clipping / dropping, and the messages of a load (the one-line summary,
the error of a dataset left with no image)."""

from __future__ import annotations

import numpy as np

# counted problems (keys of ``DetectionDataset.stats``)
DROPPED_BOXES = "invalid boxes dropped (zero-area, inverted, NaN or outside)"
MISSING_FILES = "missing image files skipped"
FILTERED_EMPTY = "images without objects filtered"
UNREADABLE = "unreadable images skipped"
SIZE_MISMATCH = "size_mismatch"
EXIF_MOVED = "annotations moved with the EXIF orientation"
CLIPPED = "boxes clipped to the image"


def clean_boxes(
    boxes: np.ndarray, height: float | np.ndarray, width: float | np.ndarray, min_size: float = 1e-3
) -> tuple[np.ndarray, np.ndarray, int]:
    """Clip ``N x 4`` xyxy boxes to the image (``height``/``width``: scalars, or ``N`` sizes
    of each box's image) and find the unusable ones.

    Returns ``(clipped_boxes, keep, num_clipped)``: ``keep`` is False for boxes with a
    NaN/inf coordinate, an inverted or zero-area extent, or no overlap with the image;
    ``num_clipped`` counts kept boxes that reached outside the image.
    """
    boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    finite = np.isfinite(boxes).all(1)
    safe = np.where(finite[:, None], boxes, 0.0).astype(np.float32)
    clipped = safe.copy()
    clipped[:, 0::2] = np.clip(clipped[:, 0::2], 0, np.reshape(width, (-1, 1)))
    clipped[:, 1::2] = np.clip(clipped[:, 1::2], 0, np.reshape(height, (-1, 1)))
    keep = finite & (clipped[:, 2] - clipped[:, 0] > min_size) & (clipped[:, 3] - clipped[:, 1] > min_size)
    moved = moved_boxes(clipped, safe)
    return clipped, keep, int((moved & keep).sum())


def moved_boxes(clipped: np.ndarray, safe: np.ndarray) -> np.ndarray:
    """Boxes that clipping moved by more than 1e-3 px."""
    return np.abs(clipped - safe).max(1) > 1e-3 if len(safe) else np.zeros(0, dtype=bool)


def usable_boxes(boxes: np.ndarray) -> np.ndarray:
    """Finite boxes with an extent: what a wrong recorded size may still save."""
    return np.isfinite(boxes).all(1) & (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])


def summary_text(stats: dict[str, int], examples: dict[str, list[str]]) -> str:
    """``"3 kind, 1 other kind; first cases: kind: where; ..."``."""
    counts = [(kind, count) for kind, count in sorted(stats.items()) if count]
    text = ", ".join(f"{count} {kind}" for kind, count in counts)
    cases = [f"{kind}: {'; '.join(examples[kind])}" for kind, _ in counts if examples.get(kind)]
    return text + (f"; first cases: {' | '.join(cases)}" if cases else "")


def empty_dataset_message(
    name: str, source: str, listed: int, stats: dict[str, int], summary: str, empty_hint: str
) -> str:
    """Why ``source`` left dataset ``name`` with no image (``listed`` images were read)."""
    if listed == 0:
        return (
            f"{name}: {source} yields 0 images: it lists no usable image"
            + (f" ({empty_hint})" if empty_hint else "")
            + (f"; {summary}" if summary else "")
        )
    reasons = [f"{listed} images read"]
    if stats[FILTERED_EMPTY]:
        reasons.append(
            f"{stats[FILTERED_EMPTY]} filtered because they have no (non-ignored) object "
            "(filter_empty=True; check the annotations' image_id / category_id / boxes)"
        )
    if stats[MISSING_FILES]:
        reasons.append(f"{stats[MISSING_FILES]} skipped because their file does not exist (check the image folder)")
    if empty_hint:
        reasons.append(empty_hint)
    return (
        f"{name}: {source} yields 0 images after filtering: "
        + ", ".join(reasons)
        + (f" [all counts: {summary}]" if summary else "")
    )
