"""The embedded synthetic classification (``ShapesClsDataset``) and localization
(``ShapesLocDataset``) sets, generated on first use; the COCO-json detection flavour of the
same generator is read by ``ShapesCocoDataset`` (``coco.py``). Splits are seeded by
``split_seed``."""

from __future__ import annotations

import glob
import os
from collections.abc import Sequence

from ...registry import DATASETS
from ..synthetic.cache import ensure_generated, split_seed
from ..synthetic.shapes import SHAPE_CLASSES, generate_shapes_cls
from ..synthetic.shapes_loc import ensure_shapes_loc
from .image_folder import ImageFolder
from .imagenet_loc import ImageNetLocDataset


def ensure_shapes_cls(
    split_dir: str, num_images: int, image_size: int, seed: int, classes: Sequence[str], ext: str = "png"
) -> None:
    """Generate ``split_dir`` unless it already holds exactly this set (see
    ``resdet.data.synthetic.cache``)."""
    meta = dict(
        num_images=int(num_images),
        image_size=int(image_size),
        seed=int(seed),
        classes=list(classes),
        ext=ext,
        version=2,
    )

    def clear() -> None:
        for stale in glob.glob(os.path.join(split_dir, "*", "[0-9]*.*")):
            os.remove(stale)  # a set generated with other settings

    ensure_generated(
        split_dir,
        meta,
        lambda: generate_shapes_cls(split_dir, num_images, image_size=image_size, seed=seed, classes=classes, ext=ext),
        clear,
    )


@DATASETS.register_module()
class ShapesClsDataset(ImageFolder):
    """Synthetic shapes (circle, square, triangle, star, cross on textured noisy
    backgrounds), one per image, in ``data_root/<split>/<class>/*.png``; generated
    deterministically from ``seed`` when missing.

    Args:
        data_root: root of the set (``data/shapes_cls``).
        split: ``'train'`` (seed), ``'val'`` (seed + 1) or ``'test'`` (seed + 2).
        num_images: images in this split (classes balanced).
        image_size: side of the square images.
        seed: base seed.
        classes: a subset of the shape classes.
        pipeline, strict: see ``ClsDataset``.
    """

    def __init__(
        self,
        data_root: str = "data/shapes_cls",
        split: str = "train",
        num_images: int = 2500,
        image_size: int = 64,
        seed: int = 0,
        classes: Sequence[str] = SHAPE_CLASSES,
        pipeline: Sequence[dict] | None = None,
        strict: bool = False,
    ) -> None:
        unknown = [c for c in classes if c not in SHAPE_CLASSES]
        if unknown:
            raise ValueError(f"unknown shape classes {unknown}; allowed: {', '.join(SHAPE_CLASSES)}")
        split_dir = os.path.join(data_root, split)
        ensure_shapes_cls(split_dir, num_images, image_size, split_seed(seed, split), tuple(classes))
        super().__init__(split_dir, classes=list(classes), pipeline=pipeline, strict=strict)


@DATASETS.register_module()
class ShapesLocDataset(ImageNetLocDataset):
    """The embedded localization default: the shapes generator's ``loc`` flavour written in
    the ILSVRC CLS-LOC layout under ``data_root`` (generated on first use, deterministic:
    seeds per split as ``split_seed``) and read by ``ImageNetLocDataset``."""

    def __init__(
        self,
        data_root: str = "data/shapes_loc",
        split: str = "train",
        num_images: int = 1000,
        image_size: int = 128,
        seed: int = 0,
        classes: Sequence[str] | None = None,
        pipeline: Sequence[dict] | None = None,
        strict: bool = True,
    ) -> None:
        classes = tuple(classes or SHAPE_CLASSES)
        ensure_shapes_loc(data_root, split, num_images, image_size, split_seed(seed, split), classes)
        super().__init__(root=data_root, split=split, classes=classes, pipeline=pipeline, strict=strict)
