"""The ``loc`` flavour of the shapes generator, written in the ILSVRC CLS-LOC layout (the
embedded localization default read by ``ShapesLocDataset``)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence

import numpy as np

from ...utils.io import atomic_write_text
from .cache import ensure_generated
from .shapes import SHAPE_CLASSES, _write_image, generation_progress, render_det_image


def _write_loc_xml(path: str, width: int, height: int, name: str, boxes: np.ndarray) -> None:
    objects = "".join(
        f"<object><name>{name}</name><bndbox><xmin>{b[0]:g}</xmin><ymin>{b[1]:g}</ymin>"
        f"<xmax>{b[2]:g}</xmax><ymax>{b[3]:g}</ymax></bndbox></object>"
        for b in boxes
    )
    text = (
        f"<annotation><size><width>{width}</width><height>{height}</height><depth>3</depth></size>"
        f"{objects}</annotation>"
    )
    atomic_write_text(text, path)


def generate_shapes_loc(
    root: str, split: str, num_images: int, image_size: int = 128, seed: int = 0, classes: Sequence[str] = None
) -> dict:
    """Write the ``loc`` flavour of the shapes generator in the ILSVRC CLS-LOC layout:
    one dominant shape per image (boxed, its class is the image's class) plus small
    unannotated distractor shapes of other classes, as ILSVRC annotates only the image's
    class. ``train`` images go into class folders, other splits into one folder."""
    classes = tuple(classes or SHAPE_CLASSES)
    img_root = os.path.join(root, "Data", "CLS-LOC", split)
    ann_root = os.path.join(root, "Annotations", "CLS-LOC", split)
    progress = generation_progress(num_images, os.path.join(root, split))
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
        _write_loc_xml(
            os.path.join(ann_root, sub, stem + ".xml"), image_size, image_size, name, np.asarray(boxes, np.float32)
        )
        progress.update(1)
    progress.close()
    return dict(img_dir=img_root, ann_dir=ann_root, num_images=num_images, classes=list(classes))


def ensure_shapes_loc(
    root: str, split: str, num_images: int, image_size: int, seed: int, classes: Sequence[str]
) -> None:
    """Generate the split unless its meta file ``root/shapes_loc_<split>.json`` says this set
    is there already (see ``resdet.data.synthetic.cache``)."""
    meta = dict(
        num_images=int(num_images), image_size=int(image_size), seed=int(seed), classes=list(classes), version=1
    )

    def clear() -> None:
        for prefix in ("Data", "Annotations"):
            shutil.rmtree(os.path.join(root, prefix, "CLS-LOC", split), ignore_errors=True)

    ensure_generated(
        os.path.join(root, f"shapes_loc_{split}"),
        meta,
        lambda: generate_shapes_loc(root, split, num_images, image_size, seed, classes),
        clear,
        meta_path=os.path.join(root, f"shapes_loc_{split}.json"),
    )
