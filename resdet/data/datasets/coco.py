"""COCO-format detection datasets (instances json: boxes, polygons / RLE masks, crowds).

Sparse category ids (COCO's 1..90) map to contiguous labels ``0..C-1`` in ascending id
order; ``label_to_cat_id`` maps them back when results are written. ``iscrowd`` regions
become ``ignore`` boxes. ``ShapesCocoDataset`` is the embedded synthetic default: a
COCO-json set generated on first use.
"""
from __future__ import annotations

import contextlib
import io
import json
import os
from typing import Any, Sequence

import numpy as np

from ...registry import DATASETS
from ...structures.mask_checks import checked_annotation
from ...structures.masks import segmentation_to_rle
from ..problems import DataError, DataFileNotFoundError
from ..synthetic.cache import split_seed
from .det_base import DetectionDataset


def load_coco_api(ann_file: str):
    """A pycocotools ``COCO`` for ``ann_file`` (its progress prints silenced).

    Raises ``DataError`` naming the file (and the line and column of a JSON syntax error),
    ``DataFileNotFoundError`` when it does not exist.
    """
    from pycocotools.coco import COCO
    if not os.path.isfile(ann_file):
        raise DataFileNotFoundError(f"COCO annotation file {ann_file} does not exist", ann_file)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            return COCO(ann_file)
    except json.JSONDecodeError as err:
        raise DataError(f"COCO annotation file {ann_file} is not valid JSON: line {err.lineno}, column "
                        f"{err.colno}: {err.msg}") from err
    except UnicodeDecodeError as err:
        raise DataError(f"COCO annotation file {ann_file} is not UTF-8 text: {err}") from err
    except (KeyError, TypeError, AssertionError, AttributeError) as err:
        raise DataError(f"COCO annotation file {ann_file} is not an instances file (a JSON object with "
                        f"'images', 'annotations' and 'categories' lists whose entries have 'id', "
                        f"'image_id', 'category_id'): {type(err).__name__}: {err}") from err


def _bbox_corners(bbox: Any) -> list[float]:
    """COCO ``[x, y, w, h]`` -> ``[x1, y1, x2, y2]``; NaN for a missing, null, short or
    non-numeric box (cleaning then drops and counts it)."""
    if not isinstance(bbox, (list, tuple)) or len(bbox) != 4:
        return [float("nan")] * 4
    values = []
    for v in bbox:
        try:
            values.append(float(v) if v is not None and not isinstance(v, bool) else float("nan"))
        except (TypeError, ValueError):
            values.append(float("nan"))
    x, y, w, h = values
    return [x, y, x + w, y + h]


@DATASETS.register_module()
class CocoDataset(DetectionDataset):
    """A COCO instances json plus an image folder.

    Args:
        ann_file: path of the instances json.
        img_dir: folder the images' ``file_name`` entries are relative to.
        pipeline, filter_empty, strict, with_masks, exif_annotations: see ``DetectionDataset``.
        classes: keep only these category names (others' annotations are dropped), label ``k``
            being ``classes[k]`` (so the names a config lists and the labels agree in any order);
            ``None`` keeps all categories of the file.

    ``__getitem__`` returns the transformed sample dict (``None`` for an unreadable image
    when not strict). ``coco`` is the pycocotools ``COCO`` of the file, for ``CocoMetric``.

    Annotation coordinates: COCO tools annotate the image as displayed, so images are
    decoded with their EXIF orientation applied and annotations are taken as they are --
    unless an image's ``width``/``height`` are those of its *stored* pixels (swapped
    relative to the displayed image, EXIF orientations 5-8): then boxes, polygons and RLE
    masks are rotated / mirrored with the pixels (``exif_annotations='stored'`` does this
    for every EXIF-oriented image, including 2-4 where the size cannot tell). A
    ``width``/``height`` that disagrees with the pixels is repaired per image (annotations
    rescaled when they fit the recorded size, else taken as pixel coordinates; clipped to
    the real image afterwards) and counted as ``size_mismatch`` (warned once per file).
    ``get_ann`` (for metrics) stays in the file's own coordinates.
    """

    def __init__(self, ann_file: str, img_dir: str, pipeline: Sequence[dict] | None = None,
                 filter_empty: bool = True, strict: bool = True, with_masks: bool = False,
                 classes: Sequence[str] | None = None, exif_annotations: str = "auto") -> None:
        super().__init__(pipeline=pipeline, filter_empty=filter_empty, strict=strict,
                         with_masks=with_masks, exif_annotations=exif_annotations)
        self.ann_file, self.img_dir = ann_file, img_dir
        self.coco = load_coco_api(ann_file)
        cats = sorted(self.coco.cats.values(), key=lambda c: c["id"])
        if classes is not None:
            names = {c["name"] for c in cats}
            unknown = [c for c in classes if c not in names]
            if unknown:
                raise DataError(f"classes {unknown} are not categories of {ann_file} "
                                 f"(it has: {', '.join(sorted(names))})")
            by_name: dict = {}
            for cat in cats:
                by_name.setdefault(cat["name"], cat)
            cats = [by_name[name] for name in dict.fromkeys(classes)]  # labels follow the order given
            skipped_ids = {c["id"] for c in self.coco.cats.values()} - {c["id"] for c in cats}
        else:
            skipped_ids = set()
        self.class_names = [c["name"] for c in cats]
        self.label_to_cat_id = [c["id"] for c in cats]
        self.cat_id_to_label = {cat_id: label for label, cat_id in enumerate(self.label_to_cat_id)}
        self._load(skipped_ids)
        self._finish_loading(ann_file, self._empty_hint())

    def _empty_hint(self) -> str:
        """Why a file may give no image, from its top-level keys."""
        data = self.coco.dataset
        missing = [k for k in ("images", "annotations", "categories") if k not in data]
        if missing:
            return f"the file has no {', '.join(repr(k) for k in missing)} key{'s' if len(missing) > 1 else ''}"
        empty = [k for k in ("images", "annotations", "categories") if not data[k]]
        return f"its {', '.join(repr(k) for k in empty)} {'is' if len(empty) == 1 else 'are'} empty" if empty else ""

    def _load(self, skipped_cat_ids: set) -> None:
        for img_id in sorted(self.coco.imgs, key=lambda i: (str(type(i)), i)):
            info = self.coco.imgs[img_id]
            height, width = _positive_int(info.get("height")), _positive_int(info.get("width"))
            if height <= 0 or width <= 0 or not isinstance(info.get("file_name"), str):
                self._problem("images without a valid size skipped",
                              f"image id {img_id} ({info.get('file_name')}) in {self.ann_file} has no "
                              f"valid 'height'/'width'/'file_name' (height={info.get('height')!r}, "
                              f"width={info.get('width')!r})")
                continue
            record = dict(img_id=img_id, file=os.path.join(self.img_dir, info["file_name"]),
                          height=height, width=width)
            anns = [a for a in self.coco.imgToAnns.get(img_id, []) if a.get("category_id") not in skipped_cat_ids]
            boxes, labels, ignore, segms = [], [], [], []
            for ann in anns:
                label = self.cat_id_to_label.get(ann.get("category_id"))
                if label is None:
                    self._problem("annotations with unknown category ids skipped",
                                  f"annotation {ann.get('id')} of image {img_id} in {self.ann_file} has "
                                  f"category_id {ann.get('category_id')!r}, which is not in 'categories' "
                                  f"(known ids: {sorted(self.cat_id_to_label)})")
                    continue
                if self.with_masks:  # bad polygons / RLEs: dropped and counted, or a clear error
                    ann = checked_annotation(self, ann, img_id, height, width)
                    if ann is None:
                        continue
                boxes.append(_bbox_corners(ann.get("bbox")))
                labels.append(label)
                ignore.append(bool(ann.get("iscrowd", 0)) or bool(ann.get("ignore", 0)))
                segms.append(self._segm_of(ann, height, width) if self.with_masks else None)
            self._add_boxes(record, np.asarray(boxes, dtype=np.float32).reshape(-1, 4),
                            np.asarray(labels, dtype=np.int64), np.asarray(ignore, dtype=bool),
                            segms if self.with_masks else None, where=f"image id {img_id!r} in {self.ann_file}")

    def _segm_of(self, ann: dict, height: int, width: int) -> Any:
        """Polygons stay polygons; RLE (crowds) becomes a compressed RLE; a missing
        segmentation falls back to the box as a rectangle polygon."""
        segm = ann.get("segmentation")
        if isinstance(segm, list) and segm:
            return [list(map(float, p)) for p in segm if len(p) >= 6] or self._box_polygon(ann)
        if isinstance(segm, dict):
            return segmentation_to_rle(segm, height, width)
        return self._box_polygon(ann)

    @staticmethod
    def _box_polygon(ann: dict) -> list:
        x1, y1, x2, y2 = np.nan_to_num(_bbox_corners(ann.get("bbox")))
        return [[x1, y1, x2, y1, x2, y2, x1, y2]]

    def __repr__(self) -> str:
        return (f"CocoDataset({self.ann_file}, images={len(self)}, classes={len(self.class_names)}, "
                f"with_masks={self.with_masks})")


def _positive_int(value: Any) -> int:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return 0
    return int(number) if np.isfinite(number) and number >= 1 else 0


@DATASETS.register_module()
class ShapesCocoDataset(CocoDataset):
    """The embedded synthetic default: a COCO-json shapes set under ``data_root/<split>``,
    generated with ``resdet.data.synthetic.shapes.generate_shapes_det`` when missing.

    Args:
        data_root: folder holding ``<split>/annotations.json`` and ``<split>/images``.
        split: ``'train'``, ``'val'`` or ``'test'``: the folder, and the seed (``split_seed``).
        num_images: images to generate for this split.
        image_size: side of the square images.
        seed: base seed of the generator; the split's own is ``split_seed(seed, split)``
            (train ``seed``, val ``seed + 1``), so one seed serves every split.
        generator_kwargs: extra keyword arguments of ``generate_shapes_det``.
        other arguments: see ``CocoDataset``.
    """

    def __init__(self, data_root: str = "data/shapes_det", split: str = "train", num_images: int = 1000,
                 image_size: int = 256, seed: int = 0, generator_kwargs: dict | None = None,
                 pipeline: Sequence[dict] | None = None, filter_empty: bool = True, strict: bool = True,
                 with_masks: bool = False, classes: Sequence[str] | None = None) -> None:
        split_dir = os.path.join(data_root, split)
        ann_file = os.path.join(split_dir, "annotations.json")
        self.split_dir = split_dir
        ensure_shapes_det(split_dir, num_images=num_images, image_size=image_size,
                          seed=split_seed(seed, split), generator_kwargs=generator_kwargs or {})
        super().__init__(ann_file=ann_file, img_dir=os.path.join(split_dir, "images"), pipeline=pipeline,
                         filter_empty=filter_empty, strict=strict, with_masks=with_masks, classes=classes)


def ensure_shapes_det(split_dir: str, num_images: int, image_size: int, seed: int,
                      generator_kwargs: dict) -> str:
    """Generate the shapes set in ``split_dir`` unless it already holds exactly this set (same
    count, size, seed and generator options; see ``resdet.data.synthetic.cache``). Returns the
    annotations.json path."""
    import shutil

    from ..synthetic.cache import ensure_generated
    from ..synthetic.shapes import generate_shapes_det
    meta = dict(kind="shapes_det", num_images=int(num_images), image_size=int(image_size), seed=int(seed),
                generator_kwargs=dict(sorted(generator_kwargs.items())), version=1)

    def clear() -> None:
        shutil.rmtree(os.path.join(split_dir, "images"), ignore_errors=True)
        with contextlib.suppress(FileNotFoundError):
            os.remove(os.path.join(split_dir, "annotations.json"))

    ensure_generated(split_dir, meta, lambda: generate_shapes_det(split_dir, num_images=num_images,
                                                                  image_size=image_size, seed=seed,
                                                                  **generator_kwargs), clear)
    return os.path.join(split_dir, "annotations.json")