"""PASCAL VOC-layout detection datasets (``VOCdevkit/VOC2007``-style folders).

``root`` holds ``Annotations/<id>.xml``, ``JPEGImages/<id>.jpg`` and
``ImageSets/Main/<split>.txt``. VOC pixel indices are 1-based and inclusive; inside resdet
boxes are continuous, so 1 is subtracted from ``xmin``/``ymin`` (``xmax``/``ymax`` stay).
``difficult`` objects become ``ignore`` boxes. 07+12 training is a ``ConcatDataset`` of two
of these. Fields are read with one rule each (docs/CONTRACTS.md, "Annotation fields: one
rule each"); the parsed records go through the per-node record cache (``record_cache``).
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from collections.abc import Sequence

import numpy as np

from ...registry import DATASETS
from ...utils.dist import is_main_process
from ...utils.progress import Progress
from ..problems import DataFileNotFoundError
from .det_base import DetectionDataset

VOC_CLASSES = (
    "aeroplane",
    "bicycle",
    "bird",
    "boat",
    "bottle",
    "bus",
    "car",
    "cat",
    "chair",
    "cow",
    "diningtable",
    "dog",
    "horse",
    "motorbike",
    "person",
    "pottedplant",
    "sheep",
    "sofa",
    "train",
    "tvmonitor",
)


@DATASETS.register_module()
class VOCDataset(DetectionDataset):
    """One VOC-layout folder and split.

    Args:
        root: the folder with ``Annotations``, ``JPEGImages`` and ``ImageSets/Main``
            (e.g. ``data/VOCdevkit/VOC2007``).
        split: name of the image list ``ImageSets/Main/<split>.txt`` (``trainval``, ``test``...).
        classes: class names in label order (default: the 20 VOC classes).
        keep_difficult: keep ``difficult`` objects (as ignored boxes); ``False`` drops them.
        img_ext: image file extension in ``JPEGImages``.
        pipeline, filter_empty, strict, exif_annotations: see ``DetectionDataset`` (VOC boxes
            have no masks).
        cache_dir: the record cache folder (see ``CocoDataset``; ``False`` = no cache).

    ``label_to_cat_id`` is the class names (VOC's own category ids are names). Problems follow
    ``DetectionDataset``'s rules: a missing or unparsable XML, an object of an unknown class
    or with a coordinate that is not a number raise ``DataError`` naming the file (and the
    object and field) in strict mode and are skipped and counted otherwise; an empty
    ``<split>.txt`` is a ``DataError``. EXIF orientation and a wrong ``<size>`` are handled
    as in ``CocoDataset``.
    """

    def __init__(
        self,
        root: str,
        split: str = "trainval",
        pipeline: Sequence[dict] | None = None,
        classes: Sequence[str] = VOC_CLASSES,
        filter_empty: bool = True,
        strict: bool = True,
        keep_difficult: bool = True,
        img_ext: str = ".jpg",
        exif_annotations: str = "auto",
        cache_dir: str | bool | None = None,
    ) -> None:
        super().__init__(
            pipeline=pipeline,
            filter_empty=filter_empty,
            strict=strict,
            with_masks=False,
            exif_annotations=exif_annotations,
        )
        self.root, self.split = root, split
        self.keep_difficult, self.img_ext = keep_difficult, img_ext
        self.class_names = list(classes)
        self.label_to_cat_id = list(classes)
        self.cat_id_to_label = {name: i for i, name in enumerate(self.class_names)}
        list_file = os.path.join(root, "ImageSets", "Main", f"{split}.txt")
        if not os.path.isfile(list_file):
            available = (
                sorted(f[:-4] for f in os.listdir(os.path.dirname(list_file)) if f.endswith(".txt"))
                if os.path.isdir(os.path.dirname(list_file))
                else []
            )
            raise DataFileNotFoundError(
                f"VOC image list {list_file} does not exist"
                + (f" (splits there: {', '.join(available)})" if available else ""),
                list_file,
            )
        with open(list_file, encoding="utf-8", errors="replace") as fh:
            lines = [(number, line.split()[0]) for number, line in enumerate(fh, 1) if line.strip()]
        ids = list(dict.fromkeys(img_id for _, img_id in lines))
        options = dict(
            root=os.path.abspath(root),
            split=split,
            classes=self.class_names,
            keep_difficult=keep_difficult,
            img_ext=img_ext,
        )
        xml_files = [os.path.join(root, "Annotations", f"{img_id}.xml") for img_id in ids]
        self._load_records(
            "voc", [list_file], options, lambda: self._parse(lines, list_file), cache_dir, stat_sources=xml_files
        )
        self._finish_loading(list_file, "" if ids else "the image list is empty: no image id in it")

    def _parse(self, lines: list[tuple[int, str]], list_file: str) -> None:
        """Every listed id once (a repeated id is a problem: it would be trained and
        evaluated twice)."""
        first: dict[str, int] = {}
        for number, img_id in lines:
            if img_id in first:
                self._problem(
                    "ids listed twice in the image list skipped",
                    f"image list {list_file}: image id {img_id!r} on line {number} is listed already "
                    f"on line {first[img_id]}",
                )
                continue
            first[img_id] = number
        with Progress(len(first), f"indexing {list_file}", enabled=is_main_process(), interval_s=30) as progress:
            for img_id in first:
                self._load_one(img_id)
                progress.update(1)

    def _load_one(self, img_id: str) -> None:
        xml_file = os.path.join(self.root, "Annotations", f"{img_id}.xml")
        img_file = os.path.join(self.root, "JPEGImages", f"{img_id}{self.img_ext}")
        if not os.path.isfile(xml_file):
            self._problem(
                "images without an annotation file skipped",
                f"annotation file {xml_file} (image id {img_id!r} of {self.split}.txt) does not exist",
                DataFileNotFoundError,
            )
            return
        try:
            root = ET.parse(xml_file).getroot()
        except (ET.ParseError, UnicodeDecodeError) as err:
            self._problem("unparsable annotation files skipped", f"annotation file {xml_file} is not valid XML: {err}")
            return
        width, height = _size_field(root.findtext("size/width")), _size_field(root.findtext("size/height"))
        if width is None or height is None:
            self._problem(
                "images without a valid size skipped",
                f"annotation file {xml_file}: <size> has <width> {root.findtext('size/width')!r}, "
                f"<height> {root.findtext('size/height')!r}; each must be a whole number (0 or "
                "absent: read from the image)",
            )
            return
        if width <= 0 or height <= 0:  # some exports omit <size>: read the image header
            width, height = _image_size(img_file)
        if width <= 0 or height <= 0:
            self._problem(
                "images without a valid size skipped",
                f"annotation file {xml_file} has no valid <size> and image {img_file} cannot be read",
                FileNotFoundError,
            )
            return
        boxes, labels, ignore = [], [], []
        for number, obj in enumerate(root.findall("object"), 1):
            name = (obj.findtext("name") or "").strip()
            if name not in self.cat_id_to_label:
                self._problem(
                    "objects of unknown classes skipped",
                    f"annotation file {xml_file} has an object of class {name!r}, which is not "
                    f"one of the dataset's classes ({', '.join(self.class_names)})",
                )
                continue
            difficult = difficult_flag(obj.findtext("difficult"))
            if difficult is None:
                self._problem(
                    "objects with an invalid <difficult> skipped",
                    f"annotation file {xml_file}, object {number} ({name!r}): <difficult> is "
                    f"{obj.findtext('difficult')!r}; it must be 0 or 1",
                )
                continue
            if difficult and not self.keep_difficult:
                continue
            coords = self._coords(obj, xml_file, number, name)
            if coords is None:
                continue
            # a box with xmax <= xmin (or ymax <= ymin) in VOC's own coordinates has no extent
            # (a click, not a box): keep it degenerate so cleaning drops and counts it
            shift = 0.0 if coords[2] <= coords[0] or coords[3] <= coords[1] else 1.0
            boxes.append([coords[0] - shift, coords[1] - shift, coords[2], coords[3]])
            labels.append(self.cat_id_to_label[name])
            ignore.append(difficult)
        record = dict(img_id=img_id, file=img_file, height=height, width=width)
        self._add_boxes(
            record,
            np.asarray(boxes, dtype=np.float32).reshape(-1, 4),
            np.asarray(labels, dtype=np.int64),
            np.asarray(ignore, dtype=bool),
            where=xml_file,
        )

    def _coords(self, obj, xml_file: str, number: int, name: str) -> list[float] | None:
        """``[xmin, ymin, xmax, ymax]`` of one object; a missing ``<bndbox>`` gives NaN (dropped
        and counted by cleaning); a coordinate that is not a number is a problem (strict:
        ``DataError`` naming the file, object and field; else the object is skipped)."""
        bnd = obj.find("bndbox")
        if bnd is None:
            return [float("nan")] * 4
        coords = []
        for key in ("xmin", "ymin", "xmax", "ymax"):
            node = bnd.find(key)
            text = (node.text or "").strip() if node is not None else ""
            try:
                coords.append(float(text))
            except ValueError:
                self._problem(
                    "objects with non-numeric coordinates skipped",
                    f"annotation file {xml_file}, object {number} ({name!r}): <bndbox><{key}> is "
                    f"{text!r}, not a number",
                )
                return None
        return coords

    def __repr__(self) -> str:
        return f"VOCDataset({self.root}, split={self.split!r}, images={len(self)}, classes={len(self.class_names)})"


def difficult_flag(text: str | None) -> bool | None:
    """``<difficult>``: ``0`` or ``1`` (absent or empty means 0); anything else is ``None``."""
    text = (text or "0").strip() or "0"
    return {"0": False, "1": True}.get(text)


def _size_field(text: str | None) -> int | None:
    """``<size><width>`` / ``<height>``: a whole number; absent or empty gives 0 (the
    image header is read instead); anything else is ``None``."""
    text = (text or "").strip()
    if not text:
        return 0
    try:
        value = float(text)
    except ValueError:
        return None
    return int(value) if np.isfinite(value) and value == int(value) and value >= 0 else None


def _int(node) -> int:
    try:
        return int(float(node.text)) if node is not None and node.text else 0
    except ValueError:
        return 0


def _float(node) -> float:
    try:
        return float(node.text) if node is not None and node.text else float("nan")
    except ValueError:
        return float("nan")


def _image_size(path: str) -> tuple[int, int]:
    """(width, height) from the image header without decoding; (0, 0) if unreadable."""
    try:
        from PIL import Image

        with Image.open(path) as im:
            return im.size
    except Exception:  # noqa: BLE001 - unreadable means "no size"
        return 0, 0
