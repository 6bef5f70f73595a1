"""Classification datasets read from image files: the ImageNet folder layout
(``root/<class>/**/*.jpg``) and the ILSVRC flat validation folder with a label file.

Images are decoded in ``__getitem__`` (so in the loader's worker processes) with
``imread_rgb``. An unreadable image (0 bytes, truncated, not an image, too large) is
skipped and counted in ``num_skipped`` every time, with a warning naming the file the first
time (per process); ``__getitem__`` then returns ``None`` (the collate function drops it).
With ``strict=True`` it raises instead.
"""
from __future__ import annotations

import logging
import os
from typing import Sequence

import numpy as np
from torch.utils.data import Dataset

from ...registry import DATASETS
from ..image_io import ImageReadError, imread_rgb
from ..problems import DataError, DataFileNotFoundError, SkipReporter
from ..transforms.det_transforms import build_pipeline

logger = logging.getLogger("resdet")

IMG_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm")


class ClsDataset(Dataset):
    """Base of the classification datasets: ``samples`` is a list of ``(source, label)``;
    subclasses override ``load_image`` when the source is not a file path.

    Args:
        pipeline: transform configs (``TRANSFORMS``) applied to each sample dict.
        strict: raise on an unreadable image instead of skipping it.

    ``__getitem__(i)`` returns ``{'img': H x W x 3 uint8 RGB, 'label': int, 'img_id': i,
    'orig_size': (h, w), 'img_path': str}`` after the pipeline, or ``None``.
    """

    class_names: list[str]

    def __init__(self, pipeline: Sequence[dict] | None = None, strict: bool = False) -> None:
        self.pipeline = build_pipeline(pipeline)
        self.strict = strict
        self.samples: list[tuple[str, int]] = []
        self.skips = SkipReporter()

    @property
    def classes(self) -> list[str]:
        return self.class_names

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def labels(self) -> list[int]:
        """Ground-truth label of every index (for metrics; no decoding)."""
        return [label for _, label in self.samples]

    @property
    def num_skipped(self) -> int:
        """Unreadable images skipped so far in this process (every time, not once per file)."""
        return self.skips.counts["unreadable images skipped"]

    def get_label(self, idx: int) -> int:
        return self.samples[idx][1]

    def describe(self, idx: int) -> str:
        """Where sample ``idx`` comes from, for messages."""
        return str(self.samples[idx][0])

    def __len__(self) -> int:
        return len(self.samples)

    def load_image(self, idx: int) -> np.ndarray:
        return imread_rgb(self.samples[idx][0])

    def load_sample(self, idx: int) -> dict | None:
        """The untransformed sample of ``idx``; ``None`` if unreadable and not strict."""
        source, label = self.samples[idx]
        try:
            img = self.load_image(idx)
        except ImageReadError as err:
            if self.strict:
                raise ImageReadError(f"{err} (pass strict=False to skip unreadable images)") from err
            self.skips.report("unreadable images skipped", str(source),
                              f"{type(self).__name__}: skipping unreadable image {source}: {err}")
            return None
        h, w = img.shape[:2]
        return dict(img=img, label=int(label), img_id=idx, orig_size=(h, w), img_path=str(source),
                    img_shape=(h, w), scale_factor=(1.0, 1.0), flip=False)

    def __getitem__(self, idx: int) -> dict | None:
        sample = self.load_sample(idx)
        return None if sample is None else self.pipeline(sample)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(images={len(self)}, classes={self.num_classes})"


def _read_class_list(classes: Sequence[str] | str | None) -> list[str] | None:
    if classes is None or not isinstance(classes, str):
        return None if classes is None else [str(c) for c in classes]
    if not os.path.isfile(classes):
        raise DataFileNotFoundError(f"class list file {classes} does not exist (one class name per line)", classes)
    with open(classes, encoding="utf-8") as fh:
        return [line.split()[0] for line in fh if line.strip()]


def _is_image(name: str, extensions: Sequence[str]) -> bool:
    return name.lower().endswith(tuple(extensions))


@DATASETS.register_module()
class ImageFolder(ClsDataset):
    """ImageNet-style classification data.

    Args:
        data_root: with ``ann_file=None``, a folder of class sub-folders
            (``data_root/<class>/**/<image>``; classes are the sorted sub-folder names).
            With ``ann_file``, a flat folder of images (the ILSVRC validation layout).
        ann_file: label file for a flat folder; lines are ``<file name> <label>`` where the
            label is a class index or a class name (the ``val.txt`` of Caffe's ImageNet
            tools: ``ILSVRC2012_val_00000001.JPEG 65``), or a single column of labels,
            one per line, for the sorted image files (the devkit's ground truth; give
            ``classes`` in the order its ids use and ``label_offset=1`` for 1-based ids).
        classes: class names, or the path of a file with one name per line (e.g. the
            1000 WordNet ids, ``synsets.txt``). Needed when labels are names and for
            folders that lack some classes (keeps label indices aligned with training).
        label_offset: subtracted from integer labels of ``ann_file``.
        extensions: image file endings (case-insensitive).
        pipeline, strict: see ``ClsDataset``.
    """

    def __init__(self, data_root: str, ann_file: str | None = None,
                 classes: Sequence[str] | str | None = None, label_offset: int = 0,
                 extensions: Sequence[str] = IMG_EXTENSIONS, pipeline: Sequence[dict] | None = None,
                 strict: bool = False) -> None:
        super().__init__(pipeline=pipeline, strict=strict)
        if not os.path.isdir(data_root):
            raise DataFileNotFoundError(f"image folder {data_root} does not exist (expected "
                                        f"{data_root}/<class>/<image>, see datasets/README.md)", data_root)
        self.data_root, self.ann_file = data_root, ann_file
        class_list = _read_class_list(classes)
        if ann_file is None:
            self._scan_class_folders(class_list, tuple(extensions))
        else:
            self._read_label_file(class_list, label_offset, tuple(extensions))
        if not self.samples:
            raise DataFileNotFoundError(f"no images with endings {', '.join(extensions)} found under "
                                    f"{data_root}" + (f" for {ann_file}" if ann_file else ""))

    def _scan_class_folders(self, class_list: list[str] | None, extensions: tuple) -> None:
        found = sorted(d.name for d in os.scandir(self.data_root) if d.is_dir())
        if not found:
            raise DataFileNotFoundError(f"{self.data_root} has no class sub-folders (expected "
                                    f"{self.data_root}/<class>/<image>; for a flat ILSVRC val "
                                    "folder pass ann_file=)")
        if class_list is not None:
            extra = [d for d in found if d not in set(class_list)]
            if extra:
                raise DataError(f"sub-folders {extra[:5]} of {self.data_root} are not in the given "
                                 f"classes ({len(class_list)} names)")
        self.class_names = class_list if class_list is not None else found
        index = {name: i for i, name in enumerate(self.class_names)}
        for name in found:
            files = []
            for dirpath, _, filenames in os.walk(os.path.join(self.data_root, name), followlinks=True):
                files += [os.path.join(dirpath, f) for f in filenames if _is_image(f, extensions)]
            self.samples += [(path, index[name]) for path in sorted(files)]

    def _read_label_file(self, class_list: list[str] | None, label_offset: int, extensions: tuple) -> None:
        if not os.path.isfile(self.ann_file):
            raise DataFileNotFoundError(f"label file {self.ann_file} does not exist", self.ann_file)
        with open(self.ann_file, encoding="utf-8") as fh:
            rows = [line.split() for line in fh if line.strip()]
        if rows and all(len(r) == 1 for r in rows):  # one label per sorted image file
            files = sorted(f for f in os.listdir(self.data_root) if _is_image(f, extensions))
            if len(files) != len(rows):
                raise DataError(f"{self.ann_file} has {len(rows)} labels but {self.data_root} has "
                                 f"{len(files)} images; a one-column label file needs one line per image")
            rows = [[f, r[0]] for f, r in zip(files, rows)]
        labels, names = [], class_list
        for lineno, row in enumerate(rows, 1):
            if len(row) < 2:
                raise DataError(f"{self.ann_file}, line {lineno}: expected '<file name> <label>', got {row}")
            token = row[1]
            if token.lstrip("-").isdigit():
                label = int(token) - label_offset
            elif names is not None and token in names:
                label = names.index(token)
            else:
                raise DataError(f"{self.ann_file}, line {lineno}: label {token!r} is not an integer "
                                 "nor a name in the given classes (pass classes= for name labels)")
            labels.append(label)
            self.samples.append((os.path.join(self.data_root, row[0]), label))
        if names is None:
            names = [str(i) for i in range(max(labels) + 1)] if labels else []
        bad = [lab for lab in labels if not 0 <= lab < len(names)]
        if bad:
            raise DataError(f"{self.ann_file}: labels {sorted(set(bad))[:5]} are outside 0..{len(names) - 1} "
                             f"({len(names)} classes; check label_offset and classes)")
        self.class_names = list(names)
