"""ILSVRC CLS-LOC localization data (the paper's Appendix C) and its synthetic stand-in.

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
"""
from __future__ import annotations

import json
import logging
import os
import xml.etree.ElementTree as ET
from typing import Sequence

import numpy as np

from ...registry import COLLATE_FUNCTIONS, DATASETS, TRANSFORMS
from ..collate import det_collate
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
        raise ValueError(f"class file {path} lists no classes")
    return wnids, names


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
    """

    def __init__(self, root: str, split: str = "train", img_prefix: str = "Data/CLS-LOC",
                 ann_prefix: str = "Annotations/CLS-LOC", classes: Sequence[str] | str | None = None,
                 class_folders: bool | None = None, with_unannotated: bool = True,
                 one_based: bool = False, pipeline: Sequence[dict] | None = None,
                 strict: bool = True) -> None:
        self.class_folders = split == "train" if class_folders is None else bool(class_folders)
        self.with_unannotated = with_unannotated and self.class_folders
        super().__init__(pipeline=pipeline, filter_empty=not self.with_unannotated, strict=strict)
        self.root, self.split, self.one_based = root, split, one_based
        self.img_dir = os.path.join(root, img_prefix, split)
        self.ann_dir = os.path.join(root, ann_prefix, split)
        if not os.path.isdir(self.img_dir):
            raise FileNotFoundError(f"ImageNetLocDataset: image folder {self.img_dir} does not exist "
                                    f"(root={root!r}, img_prefix={img_prefix!r}, split={split!r})")
        self.class_names, self.readable_names = self._resolve_classes(classes, img_prefix)
        self.label_to_cat_id = list(self.class_names)
        self.cat_id_to_label = {name: i for i, name in enumerate(self.class_names)}
        self.num_unannotated = 0
        if self.class_folders:
            self._load_class_folders()
        else:
            self._load_flat()
        self._finish_loading(self.img_dir)
        self.image_labels = [r["label"] for r in self.records]
        if self.num_unannotated:
            logger.info("%s: %d of %d images have no boxes (classification only)", self.img_dir,
                        self.num_unannotated, len(self.records))

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
        raise ValueError(f"ImageNetLocDataset: no classes given and no class folders in {train_dir}; "
                         "pass classes=[wnids] or a class file (e.g. LOC_synset_mapping.txt)")

    def _load_class_folders(self) -> None:
        present = sorted(d for d in os.listdir(self.img_dir) if os.path.isdir(os.path.join(self.img_dir, d)))
        unknown = [d for d in present if d not in self.cat_id_to_label]
        if unknown:
            self._problem("class folders not among the classes skipped",
                          f"{self.img_dir} has class folders {unknown[:5]} that are not among the "
                          f"{len(self.class_names)} classes")
        for wnid in present:
            if wnid not in self.cat_id_to_label:
                continue
            folder = os.path.join(self.img_dir, wnid)
            ann_folder = os.path.join(self.ann_dir, wnid)
            xml_stems = {f[:-4] for f in os.listdir(ann_folder) if f.endswith(".xml")} \
                if os.path.isdir(ann_folder) else set()
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
                self._problem("images without an annotation file skipped",
                              f"annotation file {xml_file} of image {name} does not exist (a {self.split} "
                              "image's class comes from its XML)", FileNotFoundError)
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
            self._problem("validation images without a usable object skipped",
                          f"annotation file {xml_file} has no object of a known class")
            return
        if xml_file is None and not self.with_unannotated:
            return
        if width <= 0 or height <= 0:
            width, height = _image_size(img_file)
            if width <= 0 or height <= 0:
                self._problem("unreadable images skipped", f"image {img_file} cannot be read", FileNotFoundError)
                return
        record = dict(img_id=img_id, file=img_file, height=height, width=width, label=label,
                      annotated=xml_file is not None)
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
                self._problem("objects whose class disagrees with their folder skipped",
                              f"annotation file {xml_file} has an object of class {name!r} but its image "
                              f"lies in the folder of class {folder_class!r}")
                continue
            if name not in self.cat_id_to_label:
                self._problem("objects of unknown classes skipped",
                              f"annotation file {xml_file} has an object of class {name!r}, which is not "
                              f"one of the {len(self.class_names)} classes")
                continue
            bnd = obj.find("bndbox")
            coords = [_float(bnd.find(k)) if bnd is not None else float("nan")
                      for k in ("xmin", "ymin", "xmax", "ymax")]
            shift = 1.0 if self.one_based else 0.0
            boxes.append([coords[0] - shift, coords[1] - shift, coords[2], coords[3]])
            labels.append(self.cat_id_to_label[name])
        return (np.asarray(boxes, np.float32).reshape(-1, 4), np.asarray(labels, np.int64), width, height)

    # ------------------------------------------------------------------ interface
    def load_sample(self, idx: int) -> dict | None:
        sample = super().load_sample(idx)
        if sample is not None:
            sample["label"] = int(self.records[idx]["label"])
        return sample

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.img_dir}, images={len(self)}, classes={len(self.class_names)}, "
                f"without boxes={self.num_unannotated})")


@COLLATE_FUNCTIONS.register_module(name="loc_collate")
def loc_collate(samples: Sequence[dict | None]) -> dict:
    """``det_collate`` plus, per target, ``image_labels`` (int64 ``K``: the image's classes —
    its ``label``, else the classes of its boxes). Images with no boxes keep their class."""
    batch = det_collate(samples)
    import torch
    kept = [s for s in samples if s is not None]
    for sample, target in zip(kept, batch["targets"]):
        if "label" in sample:
            classes = [int(sample["label"])]
        else:
            classes = sorted({int(v) for v in np.asarray(sample.get("labels", [])).reshape(-1)})
        target["image_labels"] = torch.as_tensor(classes, dtype=torch.int64)
    return batch


@TRANSFORMS.register_module()
class BoxRandomCrop:
    """A random ``size x size`` crop (the paper's 224 x 224 localization training crops),
    padding smaller images (bottom / right). Boxes are shifted and clipped; a box keeping
    less than ``min_visible`` of its area becomes ``ignore`` (its anchors are neither positive
    nor negative). Training only: the crop offset is not recorded in the meta, so
    predictions on cropped images cannot be mapped back to the original image."""

    def __init__(self, size: int = 224, min_visible: float = 0.3, pad_value: int = 0) -> None:
        if size <= 0 or not 0.0 <= min_visible <= 1.0:
            raise ValueError(f"BoxRandomCrop needs size > 0 and min_visible in [0, 1], got {size}, {min_visible}")
        self.size, self.min_visible, self.pad_value = int(size), float(min_visible), int(pad_value)

    def __call__(self, sample: dict) -> dict:
        img = sample["img"]
        h, w = img.shape[:2]
        if h < self.size or w < self.size:
            img = np.pad(img, ((0, max(self.size - h, 0)), (0, max(self.size - w, 0)), (0, 0)),
                         constant_values=self.pad_value)
            h, w = img.shape[:2]
        y0, x0 = int(np.random.randint(0, h - self.size + 1)), int(np.random.randint(0, w - self.size + 1))
        sample["img"] = np.ascontiguousarray(img[y0:y0 + self.size, x0:x0 + self.size])
        boxes = np.asarray(sample.get("boxes", np.zeros((0, 4), np.float32)), np.float32).reshape(-1, 4)
        if len(boxes):
            area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
            moved = boxes - np.array([x0, y0, x0, y0], np.float32)
            moved = moved.clip(0, self.size)
            kept_area = (moved[:, 2] - moved[:, 0]) * (moved[:, 3] - moved[:, 1])
            visible = kept_area > 0
            ignore = np.asarray(sample.get("ignore", np.zeros(len(boxes), bool)), bool)
            ignore = ignore | (kept_area < self.min_visible * np.maximum(area, 1e-6))
            sample["boxes"], sample["ignore"] = moved[visible], ignore[visible]
            sample["labels"] = np.asarray(sample["labels"]).reshape(-1)[visible]
        sample["img_shape"] = (self.size, self.size)
        return sample

    def __repr__(self) -> str:
        return f"BoxRandomCrop(size={self.size}, min_visible={self.min_visible})"


# ---------------------------------------------------------------------- synthetic stand-in
def _write_loc_xml(path: str, width: int, height: int, name: str, boxes: np.ndarray) -> None:
    objects = "".join(
        f"<object><name>{name}</name><bndbox><xmin>{b[0]:g}</xmin><ymin>{b[1]:g}</ymin>"
        f"<xmax>{b[2]:g}</xmax><ymax>{b[3]:g}</ymax></bndbox></object>" for b in boxes)
    text = (f"<annotation><size><width>{width}</width><height>{height}</height><depth>3</depth></size>"
            f"{objects}</annotation>")
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(text)


def generate_shapes_loc(root: str, split: str, num_images: int, image_size: int = 128, seed: int = 0,
                        classes: Sequence[str] = None) -> dict:
    """Write the ``loc`` flavour of the shapes generator in the ILSVRC CLS-LOC layout:
    one dominant shape per image (boxed, its class is the image's class) plus small
    unannotated distractor shapes of other classes, as ILSVRC annotates only the image's
    class. ``train`` images go into class folders, other splits into one folder."""
    from ..synthetic.shapes import SHAPE_CLASSES, _write_image, render_det_image
    classes = tuple(classes or SHAPE_CLASSES)
    img_root = os.path.join(root, "Data", "CLS-LOC", split)
    ann_root = os.path.join(root, "Annotations", "CLS-LOC", split)
    for index in range(num_images):
        img, instances, dominant = render_det_image(seed, index, image_size, "loc", classes)
        name = classes[dominant]
        boxes = []
        for inst in instances:
            if inst["label"] == dominant:
                ys, xs = np.nonzero(inst["visible"])
                boxes.append([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
        sub = name if split == "train" else ""
        stem = f"{name}_{index:06d}" if split == "train" else f"shapes_{split}_{index:06d}"
        os.makedirs(os.path.join(img_root, sub), exist_ok=True)
        os.makedirs(os.path.join(ann_root, sub), exist_ok=True)
        _write_image(os.path.join(img_root, sub, stem + ".jpg"), img, "jpg")
        _write_loc_xml(os.path.join(ann_root, sub, stem + ".xml"), image_size, image_size, name,
                       np.asarray(boxes, np.float32))
    return dict(img_dir=img_root, ann_dir=ann_root, num_images=num_images, classes=list(classes))


def ensure_shapes_loc(root: str, split: str, num_images: int, image_size: int, seed: int,
                      classes: Sequence[str]) -> None:
    """Generate the split unless its meta file ``root/shapes_loc_<split>.json`` says this set
    is there already (see ``resdet.data.synthetic.cache``)."""
    import shutil

    from ..synthetic.cache import ensure_generated
    meta = dict(num_images=int(num_images), image_size=int(image_size), seed=int(seed),
                classes=list(classes), version=1)

    def clear() -> None:
        for prefix in ("Data", "Annotations"):
            shutil.rmtree(os.path.join(root, prefix, "CLS-LOC", split), ignore_errors=True)

    ensure_generated(os.path.join(root, f"shapes_loc_{split}"), meta,
                     lambda: generate_shapes_loc(root, split, num_images, image_size, seed, classes), clear,
                     meta_path=os.path.join(root, f"shapes_loc_{split}.json"))


@DATASETS.register_module()
class ShapesLocDataset(ImageNetLocDataset):
    """The embedded localization default: the shapes generator's ``loc`` flavour written in
    the ILSVRC CLS-LOC layout under ``data_root`` (generated on first use, deterministic:
    ``train`` uses ``seed``, other splits ``seed + 1``) and read by ``ImageNetLocDataset``."""

    def __init__(self, data_root: str = "data/shapes_loc", split: str = "train", num_images: int = 1000,
                 image_size: int = 128, seed: int = 0, classes: Sequence[str] | None = None,
                 pipeline: Sequence[dict] | None = None, strict: bool = True) -> None:
        from ..synthetic.shapes import SHAPE_CLASSES
        classes = tuple(classes or SHAPE_CLASSES)
        ensure_shapes_loc(data_root, split, num_images, image_size, seed + (split != "train"), classes)
        super().__init__(root=data_root, split=split, classes=classes, pipeline=pipeline, strict=strict)


# ---------------------------------------------------------------------- results files
def predictions_to_loc_results(predictions: Sequence[dict], img_ids: Sequence, class_names: Sequence[str]
                               ) -> list[dict]:
    """Localization predictions (``labels``, ``scores``, ``boxes`` xyxy per image) -> a
    COCO-results-style list: one ``{'image_id', 'category_id' (the class id, e.g. the wnid),
    'bbox' [x, y, w, h], 'score'}`` per class guess."""
    from ...evaluation.base import to_numpy
    from ...evaluation.results import detections_to_coco_results
    out = []
    for pred, img_id in zip(predictions, img_ids):
        out.extend(detections_to_coco_results(img_id, to_numpy(pred["boxes"], np.float64).reshape(-1, 4),
                                              to_numpy(pred["scores"], np.float64).reshape(-1),
                                              to_numpy(pred["labels"], np.int64).reshape(-1), class_names))
    return out


def evaluate_loc_results_file(root: str, results: str | list, split: str = "val", iou_thr: float = 0.5,
                              topk: int = 5, **dataset_kwargs) -> dict:
    """Score a localization results file (``predictions_to_loc_results``' format; ``category_id``
    a class id string or a 1-based label) against the ILSVRC-layout ground truth at ``root``.
    Images without results count as wrong. Returns ``LocalizationError``'s numbers plus
    ``'table'`` (its text)."""
    from ...evaluation.localization import LocalizationError
    from ...evaluation.results import ResultsError
    dataset = ImageNetLocDataset(root, split, strict=False, **dataset_kwargs)
    if isinstance(results, str):
        with open(results, encoding="utf-8") as fh:
            results = json.load(fh)
    if not isinstance(results, list):
        raise ResultsError("localization results must be a json list of {image_id, category_id, bbox, score}")
    index = {str(i): n for n, i in enumerate(dataset.img_ids)}
    grouped: dict[int, list[tuple[int, float, list]]] = {}
    for entry in results:
        try:
            cat, img = entry["category_id"], str(entry["image_id"])
            label = dataset.cat_id_to_label[cat] if isinstance(cat, str) else int(cat) - 1
            score, (x, y, w, h) = float(entry["score"]), (float(v) for v in entry["bbox"])
        except (KeyError, TypeError, ValueError) as err:
            raise ResultsError(f"localization result {entry!r}: {type(err).__name__} {err} (needs image_id, "
                               "category_id (class id or 1-based label), bbox [x, y, w, h], score)") from None
        if img not in index or not 0 <= label < len(dataset.class_names):
            raise ResultsError(f"localization result for image {img!r}, class {cat!r}: not in {dataset.img_dir}")
        grouped.setdefault(index[img], []).append((label, score, [x, y, x + w, y + h]))
    metric = LocalizationError(iou_thr=iou_thr, topk=topk).bind(dataset)
    predictions, targets = [], []
    for n, img_id in enumerate(dataset.img_ids):
        rows = grouped.get(n, [])
        predictions.append({"labels": np.asarray([r[0] for r in rows], np.int64),
                            "scores": np.asarray([r[1] for r in rows], np.float64),
                            "boxes": np.asarray([r[2] for r in rows], np.float64).reshape(-1, 4)})
        targets.append({"img_id": img_id})
    metric.process(predictions, targets)
    numbers = metric.compute()
    return dict(numbers, table=metric.format_table(numbers))
