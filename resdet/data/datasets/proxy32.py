"""``Proxy32Dataset``: the harder 32 x 32 synthetic classification set (twenty shape classes,
scale, rotation, colour, clutter, occlusion, noise), the CPU proxy of CIFAR-10 used by
``resdet reproduce``. Generated on first use under ``data_root/<split>/images.npz``, held
as one memory-mapped array in the record cache like ``CIFAR10``; splits seeded by
``split_seed``."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from ...registry import DATASETS
from ..problems import DataError
from ..record_cache import cached_records
from ..records import FlatRecords
from ..synthetic.cache import ensure_generated, split_seed
from ..synthetic.proxy32 import PROXY32_CLASSES, PROXY32_FILE, PROXY32_VERSION, generate_proxy32
from .image_folder import ClsDataset, label_records


def ensure_proxy32(split_dir: str, num_images: int, image_size: int, seed: int) -> str:
    """Generate ``split_dir/images.npz`` unless it already holds exactly this set; returns its path."""
    meta = dict(
        preset="proxy32",
        num_images=int(num_images),
        image_size=int(image_size),
        seed=int(seed),
        classes=list(PROXY32_CLASSES),
        version=PROXY32_VERSION,
    )
    path = os.path.join(split_dir, PROXY32_FILE)

    def clear() -> None:
        if os.path.isfile(path):
            os.remove(path)

    ensure_generated(split_dir, meta, lambda: generate_proxy32(split_dir, num_images, image_size, seed), clear)
    return path


@DATASETS.register_module()
class Proxy32Dataset(ClsDataset):
    """The CIFAR-10 proxy: ``num_images`` images of ``image_size`` (32) with twenty balanced classes.

    Args:
        data_root: root of the set (``data/proxy32``); a split lives in ``data_root/<split>``.
        split: ``'train'`` (seed), ``'val'`` (seed + 1) or ``'test'`` (seed + 2).
        num_images: images in this split (the reproduction uses 20000 train / 5000 test).
        image_size: side of the square images.
        seed: base seed.
        pipeline, strict: see ``ClsDataset``.
        cache_dir: the record cache folder (see ``CIFAR10``).
    """

    def __init__(
        self,
        data_root: str = "data/proxy32",
        split: str = "train",
        num_images: int = 20000,
        image_size: int = 32,
        seed: int = 0,
        pipeline: Sequence[dict] | None = None,
        strict: bool = False,
        cache_dir: str | bool | None = None,
    ) -> None:
        super().__init__(pipeline=pipeline, strict=strict)
        if num_images < 1:
            raise ValueError(f"Proxy32Dataset num_images must be positive, got {num_images}")
        split_dir = os.path.join(data_root, split)
        path = ensure_proxy32(split_dir, num_images, image_size, split_seed(seed, split))
        self.index = cached_records(
            "proxy32", [path], dict(format=1), lambda: _read_split(path, split_dir), cache_dir=cache_dir
        )
        self.class_names = list(PROXY32_CLASSES)
        self.data_root, self.split = data_root, split
        self.source_name = split_dir

    @property
    def images(self) -> np.ndarray:
        """The split's images, N x H x W x 3 uint8 RGB (read-only, memory-mapped when cached)."""
        return self.index["image"]

    def load_image(self, idx: int) -> np.ndarray:
        return self.images[idx].copy()  # transforms may write in place

    def pixel_mean(self) -> np.ndarray:
        """Per-pixel mean of the split, ``3 x H x W`` float32 in 0..255 (RGB)."""
        return self.images.mean(axis=0, dtype=np.float64).transpose(2, 0, 1).astype(np.float32)


def _read_split(path: str, split_dir: str) -> FlatRecords:
    try:
        with np.load(path) as arrays:
            return label_records(arrays["labels"].astype(np.int64), image=np.ascontiguousarray(arrays["images"]))
    except (OSError, KeyError, ValueError) as err:
        raise DataError(f"{path} is not a readable proxy32 split ({err}); delete {split_dir} to regenerate") from err
