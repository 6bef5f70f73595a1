"""What COCO- and VOC-style detection datasets share: annotation cleaning with counts,
empty-image filtering, strict / non-strict handling of missing or corrupt images, the
metric-facing interface of CONTRACTS.md and ``__getitem__`` through a transform pipeline.

Subclasses parse their annotation files into ``records`` (one dict per image, original
image coordinates) and call ``_finish_loading()``.
"""
from __future__ import annotations

import logging
import os
import warnings
from collections import Counter
from typing import Any, Sequence

import numpy as np
from torch.utils.data import Dataset

from ..image_io import ImageReadError, imread_rgb
from ..transforms.det_transforms import build_pipeline
from ...structures.masks import PolygonMasks, masks_to_bitmaps, rles_to_bitmaps

logger = logging.getLogger("resdet")


def clean_boxes(boxes: np.ndarray, height: float, width: float,
                min_size: float = 1e-3) -> tuple[np.ndarray, np.ndarray, int]:
    """Clip ``N x 4`` xyxy boxes to the image and find the unusable ones.

    Returns ``(clipped_boxes, keep, num_clipped)``: ``keep`` is False for boxes with a
    NaN/inf coordinate, an inverted or zero-area extent, or no overlap with the image;
    ``num_clipped`` counts kept boxes that reached outside the image.
    """
    boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    finite = np.isfinite(boxes).all(1)
    safe = np.where(finite[:, None], boxes, 0.0).astype(np.float32)
    clipped = safe.copy()
    clipped[:, 0::2] = clipped[:, 0::2].clip(0, width)
    clipped[:, 1::2] = clipped[:, 1::2].clip(0, height)
    keep = finite & (clipped[:, 2] - clipped[:, 0] > min_size) & (clipped[:, 3] - clipped[:, 1] > min_size)
    moved = np.abs(clipped - safe).max(1) > 1e-3 if len(safe) else np.zeros(0, dtype=bool)
    return clipped, keep, int((moved & keep).sum())


class DetectionDataset(Dataset):
    """Base of the detection datasets (see the module docstring).

    Args:
        pipeline: transform configs applied to each sample (``TRANSFORMS`` registry).
        filter_empty: drop images without a single non-ignored object (training); keep
            them for evaluation.
        strict: raise on unknown categories, missing and corrupt images (naming the
            file); otherwise skip them, count them and warn once.
        with_masks: load instance masks (polygons kept as ``PolygonMasks`` through the
            pipeline and rasterised at its end).
    """

    class_names: list[str]
    label_to_cat_id: list[Any]

    def __init__(self, pipeline: Sequence[dict] | None = None, filter_empty: bool = True,
                 strict: bool = True, with_masks: bool = False) -> None:
        self.pipeline = build_pipeline(pipeline)
        self.filter_empty = filter_empty
        self.strict = strict
        self.with_masks = with_masks
        self.records: list[dict] = []
        self.stats: Counter = Counter()

    # ----------------------------------------------------------------- loading helpers
    def _problem(self, kind: str, message: str, error: type[Exception] = ValueError) -> None:
        """A bad file or annotation: raise in strict mode, else count it (and log it)."""
        if self.strict:
            raise error(message + " (pass strict=False to skip such entries and count them)")
        self.stats[kind] += 1
        logger.debug("skipped: %s", message)

    def _add_boxes(self, record: dict, boxes: np.ndarray, labels: np.ndarray, ignore: np.ndarray,
                   segms: list | None = None) -> None:
        """Clean one image's boxes, count the clipped/dropped ones, store the rest."""
        clipped, keep, num_clipped = clean_boxes(boxes, record["height"], record["width"])
        self.stats["boxes clipped to the image"] += num_clipped
        self.stats["invalid boxes dropped (zero-area, inverted, NaN or outside)"] += int((~keep).sum())
        record["boxes"] = clipped[keep].astype(np.float32)
        record["labels"] = np.asarray(labels, dtype=np.int64).reshape(-1)[keep]
        record["ignore"] = np.asarray(ignore, dtype=bool).reshape(-1)[keep]
        if segms is not None:
            record["segms"] = [s for s, k in zip(segms, keep) if k]
        self.records.append(record)

    def _finish_loading(self, source: str) -> None:
        """Filter missing files / empty images, then warn once with every count."""
        kept = []
        for record in self.records:
            if not os.path.isfile(record["file"]):
                self._problem("missing image files skipped",
                              f"image file {record['file']} (image id {record['img_id']!r}) listed in "
                              f"{source} does not exist", FileNotFoundError)
                continue
            if self.filter_empty and not (~record["ignore"]).any():
                self.stats["images without objects filtered"] += 1
                continue
            kept.append(record)
        self.records = kept
        self.img_ids = [r["img_id"] for r in self.records]
        self.aspect_ratios = [float(r["width"]) / float(r["height"]) for r in self.records]
        problems = {k: v for k, v in self.stats.items() if v}
        if problems:
            text = ", ".join(f"{v} {k}" for k, v in sorted(problems.items()))
            message = f"{type(self).__name__} {source}: {text}"
            warnings.warn(message, UserWarning, stacklevel=3)
            logger.warning(message)

    # ----------------------------------------------------------------- interface
    def __len__(self) -> int:
        return len(self.records)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def _masks_of(self, record: dict) -> Any:
        """Masks of one record in original coordinates: ``PolygonMasks`` when every
        instance is a polygon, else ``N x H x W`` bitmaps."""
        segms = record.get("segms", [])
        h, w = record["height"], record["width"]
        if all(isinstance(s, list) for s in segms):
            return PolygonMasks(segms)
        bitmaps = []
        for s in segms:
            bitmaps.append(PolygonMasks([s]).to_bitmap(h, w) if isinstance(s, list)
                           else rles_to_bitmaps([s], h, w))
        return np.concatenate(bitmaps, 0) if bitmaps else np.zeros((0, h, w), dtype=np.uint8)

    def get_ann(self, idx: int) -> dict:
        """Ground truth of image ``idx`` in original image coordinates (no decoding):
        ``img_id, orig_size, boxes (N x 4 xyxy float32), labels, ignore`` and, with masks,
        ``masks`` (``N x H x W`` uint8)."""
        record = self.records[idx]
        ann = dict(img_id=record["img_id"], orig_size=(record["height"], record["width"]),
                   boxes=record["boxes"].copy(), labels=record["labels"].copy(),
                   ignore=record["ignore"].copy())
        if self.with_masks:
            ann["masks"] = masks_to_bitmaps(self._masks_of(record), record["height"], record["width"])
        return ann

    def load_sample(self, idx: int) -> dict | None:
        """The untransformed sample dict of image ``idx`` (``None`` if unreadable and not strict)."""
        record = self.records[idx]
        try:
            img = imread_rgb(record["file"])
        except ImageReadError as err:
            if self.strict:
                raise
            self.stats["unreadable images skipped"] += 1
            warnings.warn(f"{type(self).__name__}: skipping image id {record['img_id']!r}: {err}",
                          UserWarning, stacklevel=2)
            return None
        h, w = img.shape[:2]
        boxes = record["boxes"].copy()
        if (h, w) != (record["height"], record["width"]):
            # the annotation's size is wrong: trust the pixels, rescale the boxes
            sx, sy = w / record["width"], h / record["height"]
            boxes *= np.array([sx, sy, sx, sy], dtype=np.float32)
            warnings.warn(f"image file {record['file']} is {w}x{h} but its annotation says "
                          f"{record['width']}x{record['height']}; boxes rescaled", UserWarning, stacklevel=2)
        sample = dict(img=img, img_id=record["img_id"], orig_size=(h, w), img_path=record["file"],
                      boxes=boxes, labels=record["labels"].copy(), ignore=record["ignore"].copy(),
                      scale_factor=(1.0, 1.0), flip=False, img_shape=(h, w))
        if self.with_masks:
            masks = self._masks_of(record)
            if (h, w) != (record["height"], record["width"]):
                masks = masks_to_bitmaps(masks, record["height"], record["width"])
                import cv2  # local: only for the rare wrong-size annotation
                masks = np.stack([cv2.resize(m, (w, h), interpolation=cv2.INTER_NEAREST) for m in masks]) \
                    if len(masks) else np.zeros((0, h, w), dtype=np.uint8)
            sample["masks"] = masks
        return sample

    def __getitem__(self, idx: int) -> dict | None:
        sample = self.load_sample(idx)
        if sample is None:
            return None
        sample = self.pipeline(sample)
        if sample is not None and isinstance(sample.get("masks"), PolygonMasks):
            h, w = sample["img"].shape[:2]
            sample["masks"] = sample["masks"].to_bitmap(h, w)
        if sample is not None and self.with_masks:
            from ...structures.mask_checks import drop_empty_masks
            sample = drop_empty_masks(sample)
        return sample
