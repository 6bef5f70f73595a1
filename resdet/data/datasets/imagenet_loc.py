"""ILSVRC CLS-LOC localization data (the paper's Appendix C). Its synthetic stand-in is
``ShapesLocDataset`` (``shapes.py``), its collate ``loc_collate``, its training crop
``BoxRandomCrop`` and its results-file scoring ``resdet.evaluation.localization``.

Accepted layout (the official one; ``img_prefix`` / ``ann_prefix`` change the two prefixes)::

    <root>/Data/CLS-LOC/train/<wnid>/<wnid>_<n>.JPEG          training images, one folder per class
    <root>/Annotations/CLS-LOC/train/<wnid>/<wnid>_<n>.xml    their boxes (only some images have one)
    <root>/Data/CLS-LOC/val/ILSVRC2012_val_<n>.JPEG            validation images, one folder
    <root>/Annotations/CLS-LOC/val/ILSVRC2012_val_<n>.xml      their boxes; the class is in the XML

``img_prefix=''`` / ``ann_prefix='bbox'`` reads the common unpacked form
``<root>/train/<wnid>/*.JPEG`` + ``<root>/bbox/train/<wnid>/*.xml``. XMLs are VOC-style
(``<size>``, ``<object><name>wnid</name><bndbox>xmin ymin xmax ymax``); ILSVRC coordinates
are taken as continuous pixels (``one_based=True`` subtracts 1 from xmin/ymin like VOC).

Training images without an XML are kept (classification-only samples: the classifier part
can train on them, the per-class RPN skips them) unless ``with_unannotated=False``.
Problems follow the detection datasets' rules: ``strict=True`` raises naming the file,
``strict=False`` skips and counts (an XML object whose class disagrees with its folder,
unknown classes, unparsable XMLs, missing validation XMLs); boxes reaching outside the
image are clipped, boxes with no area left are dropped and counted.

Samples are detection samples plus ``label`` (the image's class) for ``loc_collate``.

Storage and cache: the records are ``DetectionDataset``'s flat arrays (the image's class is
the extra field ``x.label``; ``image_labels`` is an ``int64`` array), parsed once into the
per-node record cache (``resdet.data.record_cache``) and memory-mapped afterwards. The cache
is rebuilt (one warning) when the image or annotation split folder, a class folder of
either (a file added, removed or renamed in it changes its mtime) or an XML file (size,
mtime) changes; as for ``ImageFolder``, an image rewritten in place under the same name is
not seen (touch its folder, or pass ``cache_dir=False``).
"""

from __future__ import annotations

import logging
import os
import xml.etree.ElementTree as ET
from collections.abc import Sequence

import numpy as np

from ...registry import DATASETS
from ..problems import DataError, DataFileNotFoundError, Skipped
from .det_base import DetectionDataset
from .voc import _float, _image_size, _int

logger = logging.getLogger("resdet")
IMG_EXTS = (".jpeg", ".jpg", ".png", ".bmp")


def read_class_file(path: str) -> tuple[list[str], list[str]]:
    """``(wnids, readable names)`` from a text file with one class per line: ``wnid`` or
    ``wnid readable name`` (the ``LOC_synset_mapping.txt`` format)."""
    wnids, names = [], []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            parts = line.strip().split(maxsplit=1)
            if parts:
                wnids.append(parts[0])
                names.append(parts[1] if len(parts) > 1 else parts[0])
    if not wnids:
        raise DataError(f"class file {path} lists no classes")
    return wnids, names


def _sub_folders(folder: str) -> list[str]:
    return sorted(e.path for e in os.scandir(folder) if e.is_dir()) if os.path.isdir(folder) else []


@DATASETS.register_module()
class ImageNetLocDataset(DetectionDataset):
    """ILSVRC CLS-LOC images with their boxes (see the module docstring for the layout).

    Args:
        root: the dataset root (holding ``Data/`` and ``Annotations/`` by default).
        split: ``'train'``, ``'val'`` (or ``'test'``); selects ``<prefix>/<split>``.
        img_prefix, ann_prefix: folders under ``root`` holding the split folders.
        classes: class ids (wnids) in label order, or a text file of them
            (``LOC_synset_mapping.txt``); default: the sorted class folders of ``train``.
        class_folders: images sit in one folder per class (default: ``split == 'train'``);
            otherwise one folder and the class comes from the XML.
        with_unannotated: keep training images without boxes (classification only).
        one_based: subtract 1 from xmin/ymin (VOC's 1-based pixel indices).
        pipeline, strict: see ``DetectionDataset``.
        cache_dir: the record cache folder (``None``: the default location, ``False``: parse
            at every start; see the module docstring).
    """

    def __init__(
        self,
        root: str,
        split: str = "train",
        img_prefix: str = "Data/CLS-LOC",
        ann_prefix: str = "Annotations/CLS-LOC",
        classes: Sequence[str] | str | None = None,
        class_folders: bool | None = None,
        with_unannotated: bool = True,
        one_based: bool = False,
        pipeline: Sequence[dict] | None = None,
        strict: bool = True,
        cache_dir: str | bool | None = None,
    ) -> None:
        self.class_folders = split == "train" if class_folders is None else bool(class_folders)
        self.with_unannotated = with_unannotated and self.class_folders
        super().__init__(pipeline=pipeline, filter_empty=not self.with_unannotated, strict=strict)
        self.root, self.split, self.one_based = root, split, one_based
        self.img_dir = os.path.join(root, img_prefix, split)
        self.ann_dir = os.path.join(root, ann_prefix, split)
        if not os.path.isdir(self.img_dir):
            raise DataFileNotFoundError(
                f"ImageNetLocDataset: image folder {self.img_dir} does not exist "
                f"(root={root!r}, img_prefix={img_prefix!r}, split={split!r})",
                self.img_dir,
            )
        self.class_names, self.readable_names = self._resolve_classes(classes, img_prefix)
        self.label_to_cat_id = list(self.class_names)
        self.cat_id_to_label = {name: i for i, name in enumerate(self.class_names)}
        self.num_unannotated = 0
        options = dict(
            img_dir=os.path.abspath(self.img_dir),
            ann_dir=os.path.abspath(self.ann_dir),
            classes=self.class_names,
            class_folders=self.class_folders,
            with_unannotated=self.with_unannotated,
            one_based=one_based,
        )
        extra = self._load_records(
            "imagenet_loc",
            [],
            options,
            self._load_class_folders if self.class_folders else self._load_flat,
            cache_dir,
            stat_sources=self._change_signal(),
            meta=lambda: dict(num_unannotated=self.num_unannotated),
        )
        self.num_unannotated = int(extra["num_unannotated"])
        self._finish_loading(self.img_dir)
        self.image_labels = np.asarray(self._store["x.label"][self.records.rows], dtype=np.int64)
        if self.num_unannotated:
            logger.info(
                "%s: %d of %d images have no boxes (classification only)",
                self.img_dir,
                self.num_unannotated,
                len(self.records),
            )

    # ------------------------------------------------------------------ loading
    def _resolve_classes(self, classes, img_prefix: str) -> tuple[list[str], list[str]]:
        if isinstance(classes, str):
            return read_class_file(classes)
        if classes is not None:
            return list(classes), list(classes)
        train_dir = os.path.join(self.root, img_prefix, "train")
        if os.path.isdir(train_dir):
            found = sorted(d for d in os.listdir(train_dir) if os.path.isdir(os.path.join(train_dir, d)))
            if found:
                return found, found
        raise DataError(
            f"ImageNetLocDataset: no classes given and no class folders in {train_dir}; "
            "pass classes=[wnids] or a class file (e.g. LOC_synset_mapping.txt)"
        )

    def _change_signal(self) -> list[str]:
        """What the cache's freshness is judged by: the split folders, their class folders and
        every XML file (see the module docstring)."""
        img_folders, ann_folders = [self.img_dir], [self.ann_dir]
        if self.class_folders:
            img_folders += _sub_folders(self.img_dir)
            ann_folders += _sub_folders(self.ann_dir)
        xmls = [
            e.path
            for folder in ann_folders
            if os.path.isdir(folder)
            for e in os.scandir(folder)
            if e.name.endswith(".xml")
        ]
        return img_folders + ann_folders + sorted(xmls)

    def _load_class_folders(self) -> None:
        present = sorted(d for d in os.listdir(self.img_dir) if os.path.isdir(os.path.join(self.img_dir, d)))
        unknown = [d for d in present if d not in self.cat_id_to_label]
        if unknown:
            self._problem(
                "class folders not among the classes skipped",
                f"{self.img_dir} has class folders {unknown[:5]} that are not among the "
                f"{len(self.class_names)} classes",
            )
        for wnid in present:
            if wnid not in self.cat_id_to_label:
                continue
            folder = os.path.join(self.img_dir, wnid)
            ann_folder = os.path.join(self.ann_dir, wnid)
            xml_stems = (
                {f[:-4] for f in os.listdir(ann_folder) if f.endswith(".xml")} if os.path.isdir(ann_folder) else set()
            )
            for name in sorted(os.listdir(folder)):
                stem, ext = os.path.splitext(name)
                if ext.lower() not in IMG_EXTS:
                    continue
                xml_file = os.path.join(ann_folder, stem + ".xml") if stem in xml_stems else None
                self._load_one(os.path.join(folder, name), stem, xml_file, folder_class=wnid)

    def _load_flat(self) -> None:
        for name in sorted(os.listdir(self.img_dir)):
            stem, ext = os.path.splitext(name)
            if ext.lower() not in IMG_EXTS:
                continue
            xml_file = os.path.join(self.ann_dir, stem + ".xml")
            if not os.path.isfile(xml_file):
                self._problem(
                    "images without an annotation file skipped",
                    f"annotation file {xml_file} of image {name} does not exist (a {self.split} "
                    "image's class comes from its XML)",
                    FileNotFoundError,
                )
                continue
            self._load_one(os.path.join(self.img_dir, name), stem, xml_file, folder_class=None)

    def _load_one(self, img_file: str, img_id: str, xml_file: str | None, folder_class: str | None) -> None:
        boxes, labels = np.zeros((0, 4), np.float32), np.zeros(0, np.int64)
        width = height = 0
        if xml_file is not None:
            parsed = self._parse_xml(xml_file, folder_class)
            if parsed is None:
                return
            boxes, labels, width, height = parsed
        if folder_class is not None:
            label = self.cat_id_to_label[folder_class]
        elif len(labels):
            label = int(np.bincount(labels).argmax())
        else:
            self._problem(
                "validation images without a usable object skipped",
                f"annotation file {xml_file} has no object of a known class",
            )
            return
        if xml_file is None and not self.with_unannotated:
            return
        if width <= 0 or height <= 0:
            width, height = _image_size(img_file)
            if width <= 0 or height <= 0:
                self._problem("unreadable images skipped", f"image {img_file} cannot be read", FileNotFoundError)
                return
        record = dict(
            img_id=img_id, file=img_file, height=height, width=width, label=label, annotated=xml_file is not None
        )
        self._add_boxes(record, boxes, labels, np.zeros(len(labels), dtype=bool))
        if not (~record["ignore"]).any():
            self.num_unannotated += 1

    def _parse_xml(self, xml_file: str, folder_class: str | None):
        try:
            root = ET.parse(xml_file).getroot()
        except ET.ParseError as err:
            self._problem("unparsable annotation files skipped", f"annotation file {xml_file} is not valid XML: {err}")
            return None
        width, height = _int(root.find("size/width")), _int(root.find("size/height"))
        boxes, labels = [], []
        for obj in root.findall("object"):
            name = (obj.findtext("name") or "").strip()
            if folder_class is not None and name != folder_class:
                self._problem(
                    "objects whose class disagrees with their folder skipped",
                    f"annotation file {xml_file} has an object of class {name!r} but its image "
                    f"lies in the folder of class {folder_class!r}",
                )
                continue
            if name not in self.cat_id_to_label:
                self._problem(
                    "objects of unknown classes skipped",
                    f"annotation file {xml_file} has an object of class {name!r}, which is not "
                    f"one of the {len(self.class_names)} classes",
                )
                continue
            bnd = obj.find("bndbox")
            coords = [
                _float(bnd.find(k)) if bnd is not None else float("nan") for k in ("xmin", "ymin", "xmax", "ymax")
            ]
            shift = 1.0 if self.one_based else 0.0
            boxes.append([coords[0] - shift, coords[1] - shift, coords[2], coords[3]])
            labels.append(self.cat_id_to_label[name])
        return (np.asarray(boxes, np.float32).reshape(-1, 4), np.asarray(labels, np.int64), width, height)

    # ------------------------------------------------------------------ interface
    def load_sample(self, idx: int) -> dict | Skipped:
        sample = super().load_sample(idx)
        if not isinstance(sample, Skipped):
            sample["label"] = int(self.image_labels[idx])
        return sample

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.img_dir}, images={len(self)}, classes={len(self.class_names)}, "
            f"without boxes={self.num_unannotated})"
        )
