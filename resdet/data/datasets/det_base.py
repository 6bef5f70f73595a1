"""What COCO- and VOC-style detection datasets share: annotation cleaning with counts,
empty-image filtering, strict / non-strict handling of missing or corrupt images, the
metric-facing interface of CONTRACTS.md and ``__getitem__`` through a transform pipeline.

Subclasses parse their annotation files inside ``_load_records(parse=...)`` (which goes
through the per-node record cache, ``record_cache``), adding images with ``_add_boxes`` (one
record dict, original image coordinates) or ``_add_images`` (many at once, vectorised), then
call ``_finish_loading()``. The records are held as flat arrays (``det_records``: one
object per field, memory-mapped from the cache, so DataLoader workers share them);
``records[i]`` still gives the record dict, built on access.

Rules for bad data (every message names the file, and the image id / annotation where
one applies):
- strict (default): unknown categories, malformed entries, missing or unreadable images
  raise ``DataError`` / ``ImageReadError``; non-strict: they are skipped, counted in
  ``stats`` and warned about (once per file: ``problems.SkipReporter``); an unreadable
  image's ``__getitem__`` returns a ``problems.Skipped`` marker.
- repairable boxes (NaN, inverted, zero-area, outside the image) are dropped or clipped and
  counted in both modes; the counts are warned once after loading.
- a dataset left with 0 images raises ``DataError`` saying why (nothing listed, every image
  filtered as empty, every file missing ...): an empty training set cannot train.
- images are decoded with their EXIF orientation applied and annotations follow them; a
  recorded size that disagrees with the pixels is repaired per image (see
  ``annotation_frame``: rescaled, or taken as pixel coordinates, then clipped) and counted.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np
from torch.utils.data import Dataset

from ...structures.mask_checks import drop_empty_masks
from ...structures.masks import PolygonMasks, masks_to_bitmaps, rles_to_bitmaps
from ..image_io import ImageReadError, MissingImageError, decode_image
from ..problems import DataError, DataFileNotFoundError, Skipped, SkipReporter
from ..record_cache import cached_records
from ..records import FlatRecords
from ..transforms.det_transforms import build_pipeline
from .annotation_frame import (
    EXIF_ANNOTATION_MODES,
    Frame,
    apply_frame_to_bitmaps,
    apply_frame_to_boxes,
    apply_frame_to_polygons,
    choose_frame,
)
from .det_cleaning import (  # noqa: F401 (the counted kinds are read from here too)
    CLIPPED,
    DROPPED_BOXES,
    EXIF_MOVED,
    FILTERED_EMPTY,
    MISSING_FILES,
    SIZE_MISMATCH,
    UNREADABLE,
    clean_boxes,
    empty_dataset_message,
    moved_boxes,
    summary_text,
    usable_boxes,
)
from .det_records import _BASE_KEYS, RecordBuilder, RecordView

logger = logging.getLogger("resdet")

RECORDS_VERSION = 1  # of the records' layout and parsing rules: part of every cache key


class DetectionDataset(Dataset):
    """Base of the detection datasets (see the module docstring).

    Args:
        pipeline: transform configs applied to each sample (``TRANSFORMS`` registry).
        filter_empty: drop images without a single non-ignored object (training); keep
            them for evaluation.
        strict: raise on unknown categories, malformed entries, missing and unreadable
            images (naming the file); otherwise skip them, count them in ``stats`` and warn
            once per file.
        with_masks: load instance masks (polygons kept as ``PolygonMasks`` through the
            pipeline and rasterised at its end).
        exif_annotations: which pixels the annotations of EXIF-rotated images were drawn on:
            ``'auto'`` (the displayed image, unless the recorded width/height are those of the
            stored pixels), ``'displayed'`` or ``'stored'`` (see ``annotation_frame``).
    """

    class_names: list[str]
    label_to_cat_id: list[Any]

    def __init__(
        self,
        pipeline: Sequence[dict] | None = None,
        filter_empty: bool = True,
        strict: bool = True,
        with_masks: bool = False,
        exif_annotations: str = "auto",
    ) -> None:
        if exif_annotations not in EXIF_ANNOTATION_MODES:
            raise ValueError(
                f"exif_annotations must be one of {', '.join(EXIF_ANNOTATION_MODES)}, got {exif_annotations!r}"
            )
        self.pipeline = build_pipeline(pipeline)
        self.filter_empty = filter_empty
        self.strict = strict
        self.with_masks = with_masks
        self.exif_annotations = exif_annotations
        self.records: RecordView | list = []
        self.img_ids: list = []
        self.aspect_ratios: list[float] = []
        self._builder = RecordBuilder(with_masks)
        self._store: FlatRecords | None = None
        self.stats: Counter = Counter()
        self.skips = SkipReporter(self.stats)
        self._examples: dict[str, list[str]] = {}

    # ----------------------------------------------------------------- loading helpers
    def _problem(self, kind: str, message: str, error: type[Exception] = DataError) -> None:
        """A bad file or annotation: raise in strict mode, else count it (and log it)."""
        if self.strict:
            if error is FileNotFoundError:
                error = DataFileNotFoundError
            raise error(message + " (pass strict=False to skip such entries and count them)")
        self.stats[kind] += 1
        self._example(kind, message)
        logger.debug("skipped: %s", message)

    def _example(self, kind: str, where: str) -> None:
        """Remember the first few places of a problem for the summary warning."""
        examples = self._examples.setdefault(kind, [])
        if len(examples) < 2:
            examples.append(where)

    def _add_boxes(
        self,
        record: dict,
        boxes: np.ndarray,
        labels: np.ndarray,
        ignore: np.ndarray,
        segms: list | None = None,
        where: str | None = None,
    ) -> None:
        """Clean one image's boxes, count the clipped/dropped ones, store the rest.

        ``record`` holds ``img_id, file, height, width`` (and any extra scalar fields a
        subclass wants back in ``records[i]``). The cleaned boxes (recorded frame) are what
        ``get_ann`` returns. When cleaning changed anything, the finite, non-degenerate boxes
        before clipping are kept too (``records[i]['unclipped']``): if the recorded size turns
        out to be wrong, ``load_sample`` clips them to the real image instead.
        """
        boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
        labels = np.asarray(labels, dtype=np.int64).reshape(-1)
        ignore = np.asarray(ignore, dtype=bool).reshape(-1)
        clipped, keep, num_clipped = clean_boxes(boxes, record["height"], record["width"])
        dropped = int((~keep).sum())
        self.stats[CLIPPED] += num_clipped
        self.stats[DROPPED_BOXES] += dropped
        if dropped:
            self._example(DROPPED_BOXES, where or record["file"])
        usable = usable_boxes(boxes) if (num_clipped or dropped) else np.zeros(len(boxes), bool)
        extras = {k: [v] for k, v in record.items() if k not in _BASE_KEYS}
        record.update(boxes=clipped[keep], labels=labels[keep], ignore=ignore[keep])  # for the caller
        self._builder.add_images(
            [record["img_id"]],
            [record["file"]],
            [record["height"]],
            [record["width"]],
            [int(keep.sum())],
            [bool(num_clipped or dropped)],
            [int(usable.sum())],
            extras,
        )
        self._builder.kept.add(
            clipped[keep], labels[keep], ignore[keep], None if segms is None else [s for s, k in zip(segms, keep) if k]
        )
        self._builder.unclipped.add(
            boxes[usable],
            labels[usable],
            ignore[usable],
            None if segms is None else [s for s, u in zip(segms, usable) if u],
        )

    def _add_images(
        self,
        img_ids: list,
        files: list[str],
        heights: np.ndarray,
        widths: np.ndarray,
        inst_image: np.ndarray,
        boxes: np.ndarray,
        labels: np.ndarray,
        ignore: np.ndarray,
        segms: list | None,
        where: list[str],
    ) -> None:
        """``_add_boxes`` for many images at once (same results, vectorised): instance ``j``
        belongs to image ``inst_image[j]`` (ascending); ``where[k]`` names image ``k``."""
        n = len(img_ids)
        heights, widths = np.asarray(heights, np.int64), np.asarray(widths, np.int64)
        boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
        clipped, keep, num_clipped = clean_boxes(boxes, heights[inst_image], widths[inst_image])
        changed = ~keep | (moved_boxes(clipped, np.where(np.isfinite(boxes), boxes, 0)) & keep)
        self.stats[CLIPPED] += num_clipped
        self.stats[DROPPED_BOXES] += int((~keep).sum())
        for k in np.unique(inst_image[~keep])[:2]:
            self._example(DROPPED_BOXES, where[int(k)])
        has_unclipped = np.bincount(inst_image[changed], minlength=n) > 0
        usable = usable_boxes(boxes) & has_unclipped[inst_image]
        self._builder.add_images(
            img_ids,
            files,
            heights,
            widths,
            np.bincount(inst_image[keep], minlength=n),
            has_unclipped,
            np.bincount(inst_image[usable], minlength=n),
        )
        for mask, target, values in ((keep, self._builder.kept, clipped), (usable, self._builder.unclipped, boxes)):
            target.add(
                values[mask],
                labels[mask],
                ignore[mask],
                None if segms is None else [s for s, m in zip(segms, mask) if m],
            )

    def _load_records(
        self, name: str, sources: list[str], options: dict, parse, cache_dir, stat_sources=(), meta=None
    ) -> dict:
        """Run ``parse()`` (which adds every image) through the record cache; the parse-time
        counts and examples travel in the cache, so ``stats`` and warnings are the same
        either way. ``meta()`` gives extra JSON-able facts to keep (returned)."""

        def build() -> FlatRecords:
            parse()
            extra = dict(stats=dict(self.stats), examples=self._examples, extra=meta() if meta else {})
            return self._builder.finish(extra)

        options = dict(
            options,
            version=RECORDS_VERSION,
            with_masks=self.with_masks,
            strict=self.strict,
            dataset=type(self).__name__,
        )
        self._store = cached_records(name, sources, options, build, cache_dir, stat_sources)
        self._builder = RecordBuilder(self.with_masks)  # parsing leftovers are not kept
        self.stats.clear()
        self.stats.update(self._store.meta["stats"])
        self._examples = {k: list(v) for k, v in self._store.meta["examples"].items()}
        return self._store.meta["extra"]

    def _finish_loading(self, source: str, empty_hint: str = "") -> None:
        """Filter missing files / empty images, warn once with every count, and refuse a
        dataset left with no image (``DataError`` naming ``source`` and the reasons)."""
        if self._store is None:  # parsed without _load_records (no cache)
            self._store = self._builder.finish(dict(stats={}, examples={}, extra={}))
            self._builder = RecordBuilder(self.with_masks)
        view = RecordView(self._store, np.arange(len(self._store)))
        listed = len(view)
        inst_image = np.repeat(np.arange(listed), np.diff(self._store["inst.offsets"]))
        has_object = np.bincount(inst_image[~self._store["ignore"]], minlength=listed) > 0
        kept = []
        for row in range(listed):
            file = view.file(row)
            if not os.path.isfile(file):
                self._problem(
                    MISSING_FILES,
                    f"image file {file} (image id {view.img_id(row)!r}) listed in {source} does not exist",
                    MissingImageError,
                )
                continue
            if self.filter_empty and not has_object[row]:
                self.stats[FILTERED_EMPTY] += 1
                continue
            kept.append(row)
        self.records = RecordView(self._store, np.asarray(kept, np.int64))
        self.img_ids = [view.img_id(row) for row in kept]
        heights, widths = self._store["height"][kept], self._store["width"][kept]
        self.aspect_ratios = (widths.astype(np.float64) / heights.astype(np.float64)).tolist()
        summary = self.problem_summary()
        if not self.records:
            raise DataError(empty_dataset_message(type(self).__name__, source, listed, self.stats, summary, empty_hint))
        if summary:
            message = f"{type(self).__name__} {source}: {summary}"
            warnings.warn(message, UserWarning, stacklevel=3)
            logger.warning(message)

    # ----------------------------------------------------------------- interface
    def problem_summary(self) -> str:
        """The counted problems of the load and their first cases, as warned after loading."""
        return summary_text(self.stats, self._examples)

    def __len__(self) -> int:
        return len(self.records)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def describe(self, idx: int) -> str:
        """Where sample ``idx`` comes from (file and image id), for messages."""
        row = int(self.records.rows[idx])
        return f"{self.records.file(row)} (image id {self.records.img_id(row)!r})"

    def _masks_of(self, record: dict, segms: list | None = None) -> Any:
        """Masks of one record in original coordinates: ``PolygonMasks`` when every
        instance is a polygon, else ``N x H x W`` bitmaps."""
        segms = record.get("segms", []) if segms is None else segms
        h, w = record["height"], record["width"]
        if all(isinstance(s, list) for s in segms):
            return PolygonMasks(segms)
        bitmaps = []
        for s in segms:
            bitmaps.append(PolygonMasks([s]).to_bitmap(h, w) if isinstance(s, list) else rles_to_bitmaps([s], h, w))
        return np.concatenate(bitmaps, 0) if bitmaps else np.zeros((0, h, w), dtype=np.uint8)

    def get_ann(self, idx: int) -> dict:
        """Ground truth of image ``idx`` in original image coordinates (no decoding):
        ``img_id, orig_size, boxes (N x 4 xyxy float32), labels, ignore`` and, with masks,
        ``masks`` (``N x H x W`` uint8)."""
        record = self.records[idx]
        ann = dict(
            img_id=record["img_id"],
            orig_size=(record["height"], record["width"]),
            boxes=record["boxes"].copy(),
            labels=record["labels"].copy(),
            ignore=record["ignore"].copy(),
        )
        if self.with_masks:
            ann["masks"] = masks_to_bitmaps(self._masks_of(record), record["height"], record["width"])
        return ann

    def _read_image(self, idx: int, record: dict):
        """The ``DecodedImage`` of image ``idx``; ``Skipped`` (counted, warned once) when
        unreadable and not strict."""
        try:
            return decode_image(record["file"])
        except ImageReadError as err:
            if self.strict:
                raise type(err)(
                    f"{err} (image id {record['img_id']!r}; pass strict=False to skip unreadable images and count them)"
                ) from err
            self.skips.report(
                UNREADABLE, record["file"], f"{type(self).__name__}: skipping image id {record['img_id']!r}: {err}"
            )
            return Skipped(idx, record["file"], f"unreadable image: {err}", img_id=record["img_id"])

    def load_sample(self, idx: int) -> dict | Skipped:
        """The untransformed sample dict of image ``idx`` (``Skipped`` if unreadable and not strict),
        its annotations moved onto the decoded pixels (EXIF orientation, wrong recorded size)."""
        record = self.records[idx]
        decoded = self._read_image(idx, record)
        if isinstance(decoded, Skipped):
            return decoded
        img = decoded.img
        h, w = img.shape[:2]
        recorded = (record["height"], record["width"])
        source = record.get("unclipped") or record
        frame = Frame()
        if decoded.orientation != 1 or (h, w) != recorded:
            frame = choose_frame(
                recorded, (h, w), decoded.stored_size, decoded.orientation, source["boxes"], self.exif_annotations
            )
        sample = dict(
            img=img,
            img_id=record["img_id"],
            orig_size=(h, w),
            img_path=record["file"],
            scale_factor=(1.0, 1.0),
            flip=False,
            img_shape=(h, w),
        )
        if frame.identity:
            sample.update(boxes=record["boxes"].copy(), labels=record["labels"].copy(), ignore=record["ignore"].copy())
            if self.with_masks:
                sample["masks"] = self._masks_of(record)
            return sample
        self._report_frame(record, frame, (h, w), decoded.orientation)
        boxes, keep, _ = clean_boxes(apply_frame_to_boxes(source["boxes"], frame, recorded), h, w)
        sample.update(boxes=boxes[keep], labels=source["labels"][keep].copy(), ignore=source["ignore"][keep].copy())
        if self.with_masks:
            segms = [s for s, k in zip(source.get("segms") or [], keep) if k]
            masks = self._masks_of(record, segms)
            if isinstance(masks, PolygonMasks):
                masks = PolygonMasks(apply_frame_to_polygons(masks.polygons, frame, recorded))
            else:
                masks = apply_frame_to_bitmaps(masks, frame, (h, w))
            sample["masks"] = masks
        return sample

    def _report_frame(self, record: dict, frame: Frame, size: tuple[int, int], orientation: int) -> None:
        """Count (every time) and warn (once per file) about a repaired annotation frame."""
        h, w = size
        if frame.orientation != 1:
            self.stats[EXIF_MOVED] += 1
            logger.debug(
                "image file %s: EXIF orientation %d; annotations made on the stored pixels moved with the image",
                record["file"],
                orientation,
            )
        if frame.mismatch:
            how = (
                "boxes taken as pixel coordinates (they do not fit the recorded size)"
                if frame.pixel_coordinates
                else f"annotations rescaled by {frame.scale[0]:.3g} x {frame.scale[1]:.3g}"
            )
            self.skips.report(
                SIZE_MISMATCH,
                record["file"],
                f"{type(self).__name__}: image file {record['file']} (image id {record['img_id']!r}) "
                f"is {w}x{h} but its annotation says {record['width']}x{record['height']}"
                f"{' (after EXIF rotation)' if frame.orientation in (5, 6, 7, 8) else ''}; {how}, "
                "then clipped",
            )

    def __getitem__(self, idx: int) -> dict | Skipped | None:
        sample = self.load_sample(idx)
        if isinstance(sample, Skipped):
            return sample
        sample = self.pipeline(sample)
        if sample is not None and isinstance(sample.get("masks"), PolygonMasks):
            h, w = sample["img"].shape[:2]
            sample["masks"] = sample["masks"].to_bitmap(h, w)
        if sample is not None and self.with_masks:
            sample = drop_empty_masks(sample)
        return sample
