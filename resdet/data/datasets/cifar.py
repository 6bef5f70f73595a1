"""CIFAR-10 from the official python batches (``data_batch_1..5``, ``test_batch``,
``batches.meta``), with the paper's 45k/5k train/val split as an option.

The batches are pickles; they are read with an unpickler that only accepts the numpy
array classes they contain, so a tampered file cannot run code. The split's images and
labels are kept as one array each in the record cache (``resdet.data.record_cache``, keyed by
the batch files' contents and the split settings) and memory-mapped from there: DataLoader
workers (fork or spawn) and the ranks of a node share one copy, and the next start skips
the unpickling.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Sequence

import numpy as np

from ...registry import DATASETS
from ..problems import DataError, DataFileNotFoundError
from ..record_cache import cached_records
from ..records import FlatRecords
from .image_folder import ClsDataset, label_records

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
_TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("_codecs", "encode"),
}


class _ArrayOnlyUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) in _ALLOWED_GLOBALS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} (CIFAR batches hold arrays and lists only)")


def load_cifar_batch(path: str) -> dict:
    """One CIFAR python batch -> ``{'data': N x 32 x 32 x 3 uint8, 'labels': int64 N}`` (or the
    meta dict for ``batches.meta``). Errors name the file."""
    if not os.path.isfile(path):
        raise DataFileNotFoundError(f"CIFAR batch {path} does not exist (see datasets/README.md for the layout)", path)
    try:
        with open(path, "rb") as fh:
            raw = _ArrayOnlyUnpickler(fh, encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError) as err:
        raise DataError(f"CIFAR batch {path} is not a readable CIFAR python pickle: {err}") from err
    raw = {(k.decode() if isinstance(k, bytes) else k): v for k, v in raw.items()}
    if "data" not in raw:
        return raw
    data = np.asarray(raw["data"], dtype=np.uint8)
    if data.ndim != 2 or data.shape[1] != 3072:
        raise DataError(f"CIFAR batch {path}: 'data' must be N x 3072, got {data.shape}")
    labels = np.asarray(raw.get("labels", raw.get("fine_labels")), dtype=np.int64)
    if len(labels) != len(data):
        raise DataError(f"CIFAR batch {path}: {len(data)} images but {len(labels)} labels")
    return dict(data=data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1).copy(), labels=labels)


@DATASETS.register_module()
class CIFAR10(ClsDataset):
    """CIFAR-10 held in memory (50k train + 10k test images of 32 x 32).

    Args:
        data_root: folder with the python batches (or its ``cifar-10-batches-py`` sub-folder).
        split: ``'train'``, ``'val'`` (needs ``val_size > 0``) or ``'test'``.
        val_size: hold out this many training images as ``'val'`` (the paper's 45k/5k
            split: 5000); 0 trains on all 50k.
        split_seed: seed of the held-out selection (the same for 'train' and 'val').
        pipeline, strict: see ``ClsDataset``.
        cache_dir: the record cache folder (``None``: the default location, ``False``: keep
            the arrays in this process's memory only).
    """

    SPLITS = ("train", "val", "test")

    def __init__(
        self,
        data_root: str = "data/cifar10",
        split: str = "train",
        val_size: int = 0,
        split_seed: int = 0,
        pipeline: Sequence[dict] | None = None,
        strict: bool = False,
        cache_dir: str | bool | None = None,
    ) -> None:
        super().__init__(pipeline=pipeline, strict=strict)
        if split not in self.SPLITS:
            raise ValueError(f"CIFAR10 split must be one of {', '.join(self.SPLITS)}, got {split!r}")
        if split == "val" and val_size <= 0:
            raise ValueError("CIFAR10 split='val' needs val_size > 0 (the paper holds out 5000 training images)")
        nested = os.path.join(data_root, "cifar-10-batches-py")
        root = nested if os.path.isdir(nested) else data_root
        self.data_root, self.split = root, split
        meta_path = os.path.join(root, "batches.meta")
        meta = load_cifar_batch(meta_path) if os.path.isfile(meta_path) else {}
        names = meta.get("label_names", CIFAR10_CLASSES)
        self.class_names = [n.decode() if isinstance(n, bytes) else str(n) for n in names]
        files = [os.path.join(root, f) for f in (("test_batch",) if split == "test" else _TRAIN_BATCHES)]
        for path in files:
            if not os.path.isfile(path):
                raise DataFileNotFoundError(
                    f"CIFAR batch {path} does not exist (see datasets/README.md for the layout)", path
                )
        held_out = int(val_size) if split != "test" else 0
        options = dict(split=split, val_size=held_out, split_seed=int(split_seed) if held_out else 0, format=1)
        self.index = cached_records(
            "cifar10", files, options, lambda: _build_split(files, split, held_out, split_seed), cache_dir=cache_dir
        )
        self.source_name = f"{root}/{split}"

    @property
    def images(self) -> np.ndarray:
        """The split's images, N x 32 x 32 x 3 uint8 RGB (read-only, memory-mapped when cached)."""
        return self.index["image"]

    @property
    def targets(self) -> np.ndarray:
        """The split's labels, int64 N."""
        return self.index["label"]

    def load_image(self, idx: int) -> np.ndarray:
        return self.images[idx].copy()  # transforms may write in place

    def pixel_mean(self) -> np.ndarray:
        """Per-pixel mean of the split, ``3 x 32 x 32`` float32 in 0..255 (RGB)."""
        return self.images.mean(axis=0, dtype=np.float64).transpose(2, 0, 1).astype(np.float32)


def _build_split(files: Sequence[str], split: str, val_size: int, split_seed: int) -> FlatRecords:
    """The split's ``image`` (N x 32 x 32 x 3 uint8) and ``label`` (int64 N) arrays."""
    batches = [load_cifar_batch(path) for path in files]
    images = np.concatenate([b["data"] for b in batches])
    labels = np.concatenate([b["labels"] for b in batches])
    if val_size > 0:
        if val_size >= len(images):
            raise ValueError(f"val_size {val_size} must be smaller than the {len(images)} training images")
        order = np.random.default_rng(split_seed).permutation(len(images))
        chosen = np.sort(order[:val_size] if split == "val" else order[val_size:])
        images, labels = images[chosen], labels[chosen]
    return label_records(labels, image=np.ascontiguousarray(images))
