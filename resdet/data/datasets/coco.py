"""COCO-format detection datasets (instances json: boxes, polygons / RLE masks, crowds).

Sparse category ids (COCO's 1..90) map to contiguous labels ``0..C-1`` in ascending id
order; ``label_to_cat_id`` maps them back when results are written. ``iscrowd`` regions
become ``ignore`` boxes. The json is read field by field with one rule each
(``coco_fields``; docs/CONTRACTS.md) into flat arrays, through the per-node record cache; no
pycocotools ``COCO`` is kept (``coco`` builds one on first use, for evaluation).
``ShapesCocoDataset`` is the embedded synthetic default: a COCO-json set generated on
first use.
"""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from ...registry import DATASETS
from ...structures.mask_checks import checked_annotations
from ...structures.masks import segmentation_to_rle
from ..problems import DataError, DataFileNotFoundError
from ..synthetic.cache import split_seed
from .coco_fields import (
    MAX_IMAGE_PIXELS,
    bbox_corners,
    categories_of,
    empty_hint,
    flag,
    image_size,
    is_int,
    read_instances,
)
from .det_base import DetectionDataset

BAD_SIZE = "images without a valid size skipped"
BAD_IMAGE_ID = "images without an integer id skipped"
DUPLICATE_IMAGE = "images with a duplicate id skipped"
UNKNOWN_IMAGE = "annotations of images not in 'images' skipped"
BAD_FIELD = "annotations with an invalid field skipped"
UNKNOWN_CATEGORY = "annotations with unknown category ids skipped"


def load_coco_api(ann_file: str, drop_ann_ids: Sequence = ()):
    """A pycocotools ``COCO`` of ``ann_file`` (its progress prints silenced), without the
    annotations ``drop_ann_ids`` (those whose ``bbox`` pycocotools could not read).
    Costly: the time and memory of loading the whole file; only evaluation needs it."""
    from pycocotools.coco import COCO

    data = read_instances(ann_file)
    for key in ("images", "annotations", "categories"):
        data.setdefault(key, [])
    if drop_ann_ids:
        dropped = set(drop_ann_ids)
        data["annotations"] = [a for a in data["annotations"] if not (isinstance(a, dict) and a.get("id") in dropped)]
    coco = COCO()
    coco.dataset = data
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            coco.createIndex()
    except (KeyError, TypeError, AttributeError) as err:
        raise DataError(
            f"COCO annotation file {ann_file} is not an instances file (entries need 'id', "
            f"'image_id', 'category_id'): {type(err).__name__}: {err}"
        ) from err
    return coco


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
        cache_dir: the record cache folder (``resdet.data.record_cache``): ``None`` = default
            (``$RESDET_CACHE_DIR``, else ``~/.cache/resdet/records``), ``False`` = no cache.

    ``__getitem__`` returns the transformed sample dict (``None`` for an unreadable image
    when not strict). ``coco`` is a pycocotools ``COCO`` of the file for ``CocoMetric``,
    built on first use (costly: the whole json in Python objects; training never uses it).

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

    def __init__(
        self,
        ann_file: str,
        img_dir: str,
        pipeline: Sequence[dict] | None = None,
        filter_empty: bool = True,
        strict: bool = True,
        with_masks: bool = False,
        classes: Sequence[str] | None = None,
        exif_annotations: str = "auto",
        cache_dir: str | bool | None = None,
    ) -> None:
        super().__init__(
            pipeline=pipeline,
            filter_empty=filter_empty,
            strict=strict,
            with_masks=with_masks,
            exif_annotations=exif_annotations,
        )
        self.ann_file, self.img_dir = ann_file, img_dir
        self._coco = None
        if not os.path.isfile(ann_file):
            raise DataFileNotFoundError(f"COCO annotation file {ann_file} does not exist", ann_file)
        classes = None if classes is None else list(classes)
        options = dict(img_dir=os.path.abspath(img_dir), classes=classes)
        meta = self._load_records(
            "coco", [ann_file], options, lambda: self._parse(classes), cache_dir, meta=lambda: self._meta
        )
        self._meta, self._rejected_images = {}, set()  # parsing leftovers
        self._set_classes(meta["categories"], classes)
        self._eval_drop_ann_ids = meta["eval_drop_ann_ids"]
        self._finish_loading(ann_file, meta["empty_hint"])

    @property
    def coco(self):
        """The pycocotools ``COCO`` of ``ann_file``, built on first use (costly; see the class)."""
        if self._coco is None:
            self._coco = load_coco_api(self.ann_file, self._eval_drop_ann_ids)
        return self._coco

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_coco"] = None  # workers never evaluate: do not ship the (big) COCO object
        return state

    def _set_classes(self, cats: list[dict], classes: list[str] | None) -> set:
        """Labels from the file's categories (and ``classes``); returns the category ids left out."""
        if classes is not None:
            names = {c["name"] for c in cats}
            unknown = [c for c in classes if c not in names]
            if unknown:
                raise DataError(
                    f"classes {unknown} are not categories of {self.ann_file} (it has: {', '.join(sorted(names))})"
                )
            by_name: dict = {}
            for cat in cats:
                by_name.setdefault(cat["name"], cat)
            chosen = [by_name[name] for name in dict.fromkeys(classes)]  # labels follow the order given
        else:
            chosen = cats
        self.class_names = [c["name"] for c in chosen]
        self.label_to_cat_id = [c["id"] for c in chosen]
        self.cat_id_to_label = {cat_id: label for label, cat_id in enumerate(self.label_to_cat_id)}
        return {c["id"] for c in cats} - set(self.label_to_cat_id)

    def _parse(self, classes: list[str] | None) -> None:
        data = read_instances(self.ann_file)
        cats = categories_of(data, self.ann_file)
        skipped_cat_ids = self._set_classes(cats, classes)
        images = self._parse_images(data.get("images", []))
        buckets, drop_ids = self._annotations_by_image(
            data.get("annotations", []), images, listed=bool(data.get("images"))
        )
        self._meta = dict(categories=cats, empty_hint=empty_hint(data), eval_drop_ann_ids=drop_ids)
        del data
        accepted = []  # (image index, annotation, label, ignore) of the annotations whose fields pass
        for k, (img_id, _, _, _) in enumerate(images):
            for ann in buckets[k]:
                fields = self._annotation_fields(ann, img_id, skipped_cat_ids)
                if fields is not None:
                    accepted.append((k, ann, *fields))
            buckets[k] = None  # free as we go
        anns = [entry[1] for entry in accepted]
        if self.with_masks:  # bad polygons / RLEs: dropped and counted, or a clear error (all at once)
            anns = checked_annotations(
                self,
                anns,
                [images[entry[0]][0] for entry in accepted],
                [images[entry[0]][2] for entry in accepted],
                [images[entry[0]][3] for entry in accepted],
            )
        inst_image, boxes, labels, ignore, segms = [], [], [], [], []
        for (k, _, label, ignored), ann in zip(accepted, anns):
            if ann is None:
                continue
            box, readable = bbox_corners(ann.get("bbox"))
            if not readable:
                drop_ids.append(ann.get("id"))
            inst_image.append(k)
            boxes.append(box)
            labels.append(label)
            ignore.append(ignored)
            segms.append(self._segm_of(ann, images[k][2], images[k][3]) if self.with_masks else None)
        self._add_images(
            [i[0] for i in images],
            [os.path.join(self.img_dir, i[1]) for i in images],
            np.asarray([i[2] for i in images], np.int64),
            np.asarray([i[3] for i in images], np.int64),
            np.asarray(inst_image, np.int64),
            np.asarray(boxes, np.float64).reshape(-1, 4),
            np.asarray(labels, np.int64),
            np.asarray(ignore, bool),
            segms if self.with_masks else None,
            _Where(images, self.ann_file),
        )

    def _parse_images(self, entries: list) -> list[tuple[int, str, int, int]]:
        """``(id, file_name, height, width)`` of the valid ``images``, sorted by id."""
        images, seen, where = [], {}, self.ann_file
        self._rejected_images: set = set()
        for i, info in enumerate(entries):
            img_id = info.get("id") if isinstance(info, dict) else None
            if not is_int(img_id):
                self._problem(
                    BAD_IMAGE_ID, f"{where}: images[{i}] has 'id' {img_id!r}; an image id must be a JSON integer"
                )
                continue
            if img_id in seen:
                self._problem(
                    DUPLICATE_IMAGE,
                    f"{where}: image id {img_id} appears twice in 'images' (entries "
                    f"{seen[img_id]} and {i}); only the first is read",
                )
                continue
            seen[img_id] = i
            height, width, name = image_size(info.get("height")), image_size(info.get("width")), info.get("file_name")
            bad = [
                f"{key}={info.get(key)!r}"
                for key, ok in (("height", height), ("width", width), ("file_name", isinstance(name, str) and name))
                if not ok
            ]
            if not bad and height * width > MAX_IMAGE_PIXELS:
                bad = [
                    f"height x width = {height} x {width} is more pixels than any decodable image ({MAX_IMAGE_PIXELS})"
                ]
            if bad:
                self._rejected_images.add(img_id)
                self._problem(
                    BAD_SIZE,
                    f"image id {img_id} ({name}) in {where} has no valid 'height'/'width'/"
                    f"'file_name' ({', '.join(bad)}; height and width must be whole JSON "
                    "numbers >= 1, file_name a non-empty string)",
                )
                continue
            images.append((img_id, name, height, width))
        images.sort(key=lambda image: image[0])
        return images

    def _annotations_by_image(self, entries: list, images: list, listed: bool) -> tuple[list[list], list]:
        """``annotations`` grouped by image (file order kept); annotations of an image id not
        in ``images`` are a problem (those of images skipped above go silently, and so do all
        when the file lists no image at all: the 0-images error says so)."""
        index = {image[0]: k for k, image in enumerate(images)}
        buckets: list[list] = [[] for _ in images]
        for i, ann in enumerate(entries):
            img_id = ann.get("image_id") if isinstance(ann, dict) else None
            k = index.get(img_id) if is_int(img_id) else None
            if k is not None:
                buckets[k].append(ann)
            elif listed and (img_id not in self._rejected_images or not is_int(img_id)):
                self._problem(
                    UNKNOWN_IMAGE,
                    f"annotation {ann.get('id') if isinstance(ann, dict) else None!r} "
                    f"(annotations[{i}]) in {self.ann_file} has image_id {img_id!r}, "
                    "which is not the id of an entry of 'images'",
                )
        return buckets, []

    def _annotation_fields(self, ann: dict, img_id: int, skipped_cat_ids: set) -> tuple | None:
        """``(label, ignore)`` of one annotation by the category and flag rules, or ``None``
        (skipped: a class left out by ``classes``, or a counted / raised problem)."""
        cat_id = ann.get("category_id")
        if is_int(cat_id) and cat_id in skipped_cat_ids:
            return None
        label = self.cat_id_to_label.get(cat_id) if is_int(cat_id) else None
        where = f"annotation {ann.get('id')} of image {img_id} in {self.ann_file}"
        if label is None:
            self._problem(
                UNKNOWN_CATEGORY,
                f"{where} has category_id {cat_id!r}, which is not in 'categories' "
                f"(known ids: {sorted(self.cat_id_to_label)})",
            )
            return None
        crowd, ignored = flag(ann.get("iscrowd")), flag(ann.get("ignore"))
        if crowd is None or ignored is None:
            key = "iscrowd" if crowd is None else "ignore"
            self._problem(BAD_FIELD, f"{where}: '{key}' is {ann.get(key)!r}; it must be 0 or 1 (a JSON number)")
            return None
        return label, crowd or ignored

    def _segm_of(self, ann: dict, height: int, width: int) -> Any:
        """Polygons stay polygons; RLE (crowds) becomes a compressed RLE; a missing
        segmentation falls back to the box as a rectangle polygon."""
        segm = ann.get("segmentation")
        if isinstance(segm, list) and segm:
            return [p for p in segm if len(p) >= 6] or self._box_polygon(ann)
        if isinstance(segm, dict):
            return segmentation_to_rle(segm, height, width)
        return self._box_polygon(ann)

    @staticmethod
    def _box_polygon(ann: dict) -> list:
        x1, y1, x2, y2 = np.nan_to_num(bbox_corners(ann.get("bbox"))[0])
        return [[x1, y1, x2, y1, x2, y2, x1, y2]]

    def __repr__(self) -> str:
        return (
            f"CocoDataset({self.ann_file}, images={len(self)}, classes={len(self.class_names)}, "
            f"with_masks={self.with_masks})"
        )


class _Where:
    """``where[k]``: how messages name image ``k`` (built only when one is needed)."""

    def __init__(self, images: list, ann_file: str) -> None:
        self.images, self.ann_file = images, ann_file

    def __getitem__(self, k: int) -> str:
        return f"image id {self.images[k][0]!r} in {self.ann_file}"


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

    def __init__(
        self,
        data_root: str = "data/shapes_det",
        split: str = "train",
        num_images: int = 1000,
        image_size: int = 256,
        seed: int = 0,
        generator_kwargs: dict | None = None,
        pipeline: Sequence[dict] | None = None,
        filter_empty: bool = True,
        strict: bool = True,
        with_masks: bool = False,
        classes: Sequence[str] | None = None,
        cache_dir: str | bool | None = None,
    ) -> None:
        split_dir = os.path.join(data_root, split)
        ann_file = os.path.join(split_dir, "annotations.json")
        self.split_dir = split_dir
        ensure_shapes_det(
            split_dir,
            num_images=num_images,
            image_size=image_size,
            seed=split_seed(seed, split),
            generator_kwargs=generator_kwargs or {},
        )
        super().__init__(
            ann_file=ann_file,
            img_dir=os.path.join(split_dir, "images"),
            pipeline=pipeline,
            filter_empty=filter_empty,
            strict=strict,
            with_masks=with_masks,
            classes=classes,
            cache_dir=cache_dir,
        )


def ensure_shapes_det(split_dir: str, num_images: int, image_size: int, seed: int, generator_kwargs: dict) -> str:
    """Generate the shapes set in ``split_dir`` unless it already holds exactly this set (same
    count, size, seed and generator options; see ``resdet.data.synthetic.cache``). Returns the
    annotations.json path."""
    import shutil

    from ..synthetic.cache import ensure_generated
    from ..synthetic.shapes import generate_shapes_det

    meta = dict(
        kind="shapes_det",
        num_images=int(num_images),
        image_size=int(image_size),
        seed=int(seed),
        generator_kwargs=dict(sorted(generator_kwargs.items())),
        version=1,
    )

    def clear() -> None:
        shutil.rmtree(os.path.join(split_dir, "images"), ignore_errors=True)
        with contextlib.suppress(FileNotFoundError):
            os.remove(os.path.join(split_dir, "annotations.json"))

    ensure_generated(
        split_dir,
        meta,
        lambda: generate_shapes_det(
            split_dir, num_images=num_images, image_size=image_size, seed=seed, **generator_kwargs
        ),
        clear,
    )
    return os.path.join(split_dir, "annotations.json")
