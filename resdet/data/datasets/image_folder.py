"""Classification datasets read from image files: the ImageNet folder layout
(``root/<class>/**/*.jpg``) and the ILSVRC flat validation folder with a label file.

Images are decoded in ``__getitem__`` (so in the loader's worker processes) with
``imread_rgb``. An unreadable image (0 bytes, truncated, not an image, too large) is
skipped and counted in ``num_skipped`` every time, with a warning naming the file the first
time (per process); ``__getitem__`` then returns a ``Skipped`` marker (the loader counts it).
With ``strict=True`` it raises instead.

Storage: the sample list is a ``FlatRecords`` (``resdet.data.records``) -- labels as one
``int64`` array, file paths as one UTF-8 buffer + offsets, in-memory images as one array --
never a list of Python objects, so forked DataLoader workers share its pages instead of
copying them; the folder index is cached and memory-mapped (``folder_index``), so
``spawn`` / ``forkserver`` workers and the ranks of a node map one copy.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Sequence

import numpy as np
from torch.utils.data import Dataset

from ...registry import DATASETS
from ..image_io import ImageReadError, imread_rgb
from ..problems import DataError, DataFileNotFoundError, Skipped, SkipReporter
from ..records import OFFSETS, FlatRecords, pack_strings
from ..transforms.det_transforms import build_pipeline
from .folder_index import cached_folder_index

logger = logging.getLogger("resdet")

IMG_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm")


def label_records(labels: np.ndarray, **arrays: np.ndarray) -> FlatRecords:
    """A classification index: ``label`` (``int64`` N) plus other per-sample arrays."""
    labels = np.asarray(labels, dtype=np.int64).reshape(-1)
    return FlatRecords(dict(label=labels, **arrays), dict(length=len(labels)))


def path_records(paths: Sequence[str], labels: Sequence[int]) -> FlatRecords:
    """A classification index of image files: ``path`` (UTF-8 + offsets) and ``label``."""
    values, offsets = pack_strings(paths)
    return label_records(np.asarray(labels, dtype=np.int64), path=values, **{"path" + OFFSETS: offsets})


class SampleList(Sequence):
    """``dataset.samples``: a read-only sequence of ``(source, label)`` tuples made on access
    from the dataset's arrays (the list of tuples it replaces cost ~150 bytes per sample in
    every worker)."""

    def __init__(self, dataset: ClsDataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, idx):
        if isinstance(idx, slice):
            return [self[i] for i in range(*idx.indices(len(self)))]
        if idx < 0:
            idx += len(self)
        if not 0 <= idx < len(self):
            raise IndexError(f"sample index {idx} out of range for {len(self)} samples")
        return self.dataset.describe(idx), int(self.dataset.label_array[idx])


class ClsDataset(Dataset):
    """Base of the classification datasets. Subclasses set ``index`` (a ``FlatRecords`` with
    ``label`` and either ``path`` -- file paths, relative to ``path_prefix`` -- or their own
    image arrays, then ``source_name`` names sample ``i`` as ``source_name[i]`` and
    ``load_image`` is overridden).

    Args:
        pipeline: transform configs (``TRANSFORMS``) applied to each sample dict.
        strict: raise on an unreadable image instead of skipping it.

    ``__getitem__(i)`` returns ``{'img': H x W x 3 uint8 RGB, 'label': int, 'img_id': i,
    'orig_size': (h, w), 'img_path': str}`` after the pipeline, or ``Skipped``.
    """

    class_names: list[str]

    def __init__(self, pipeline: Sequence[dict] | None = None, strict: bool = False) -> None:
        self.pipeline = build_pipeline(pipeline)
        self.strict = strict
        self.index = label_records(np.zeros(0, np.int64))
        self.path_prefix = ""
        self.source_name = type(self).__name__
        self.skips = SkipReporter()

    @property
    def samples(self) -> SampleList:
        """``(source, label)`` of every index, as a sequence view (see ``SampleList``)."""
        return SampleList(self)

    @property
    def classes(self) -> list[str]:
        return self.class_names

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def label_array(self) -> np.ndarray:
        """Ground-truth labels, ``int64`` N (read-only; shared, not copied, by workers)."""
        return self.index["label"]

    @property
    def labels(self) -> list[int]:
        """Ground-truth label of every index (for metrics; no decoding)."""
        return self.index["label"].tolist()

    @property
    def num_skipped(self) -> int:
        """Unreadable images skipped so far in this process (every time, not once per file)."""
        return self.skips.counts["unreadable images skipped"]

    def describe(self, idx: int) -> str:
        """Where sample ``idx`` comes from: its file, or ``source_name[idx]``."""
        if "path" in self.index:
            return self.path_prefix + self.index.string("path", idx)
        return f"{self.source_name}[{idx}]"

    def __len__(self) -> int:
        return len(self.index["label"])

    def load_image(self, idx: int) -> np.ndarray:
        return imread_rgb(self.describe(idx))

    def load_sample(self, idx: int) -> dict | Skipped:
        """The untransformed sample of ``idx``; ``Skipped`` if unreadable and not strict."""
        source, label = self.describe(idx), int(self.index["label"][idx])
        try:
            img = self.load_image(idx)
        except ImageReadError as err:
            if self.strict:
                raise ImageReadError(f"{err} (pass strict=False to skip unreadable images)") from err
            self.skips.report(
                "unreadable images skipped", source, f"{type(self).__name__}: skipping unreadable image {source}: {err}"
            )
            return Skipped(idx, source, f"unreadable image: {err}")
        h, w = img.shape[:2]
        return dict(
            img=img,
            label=label,
            img_id=idx,
            orig_size=(h, w),
            img_path=source,
            img_shape=(h, w),
            scale_factor=(1.0, 1.0),
            flip=False,
        )

    def __getitem__(self, idx: int) -> dict | Skipped | None:
        sample = self.load_sample(idx)
        return sample if isinstance(sample, Skipped) else self.pipeline(sample)

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
        cache_dir: where the scanned index of a class-folder layout is cached
            (``resdet.data.record_cache``): ``None`` the default location
            (``$RESDET_CACHE_DIR``, else ``~/.cache/resdet/records``), a folder, or ``False``
            to scan at every start. The cache is rebuilt (one warning) when the root or a
            class folder changes (see ``folder_index`` for what that does and does not see).

    Symbolic links are followed; a folder reached a second time (a loop such as
    ``ants/again -> .``, or two links to one folder) is skipped, so each image is listed
    once, and the dataset warns with the count at each start (it is not an error: a
    link farm may legitimately point twice at one folder).
    """

    def __init__(
        self,
        data_root: str,
        ann_file: str | None = None,
        classes: Sequence[str] | str | None = None,
        label_offset: int = 0,
        extensions: Sequence[str] = IMG_EXTENSIONS,
        pipeline: Sequence[dict] | None = None,
        strict: bool = False,
        cache_dir: str | bool | None = None,
    ) -> None:
        super().__init__(pipeline=pipeline, strict=strict)
        if not os.path.isdir(data_root):
            raise DataFileNotFoundError(
                f"image folder {data_root} does not exist (expected "
                f"{data_root}/<class>/<image>, see datasets/README.md)",
                data_root,
            )
        self.data_root, self.ann_file = data_root, ann_file
        class_list = _read_class_list(classes)
        extensions = tuple(e.lower() for e in extensions)
        if ann_file is None:
            self._scan_class_folders(class_list, extensions, cache_dir)
        else:
            self._read_label_file(class_list, label_offset, extensions)
        self.source_name = data_root
        if not len(self):
            raise DataFileNotFoundError(
                f"no images with endings {', '.join(extensions)} found under "
                f"{data_root}" + (f" for {ann_file}" if ann_file else "")
            )

    def _scan_class_folders(
        self, class_list: list[str] | None, extensions: tuple, cache_dir: str | bool | None
    ) -> None:
        found = sorted(d.name for d in os.scandir(self.data_root) if d.is_dir())
        if not found:
            raise DataFileNotFoundError(
                f"{self.data_root} has no class sub-folders (expected "
                f"{self.data_root}/<class>/<image>; for a flat ILSVRC val "
                "folder pass ann_file=)"
            )
        if class_list is not None:
            extra = [d for d in found if d not in set(class_list)]
            if extra:
                raise DataError(
                    f"sub-folders {extra[:5]} of {self.data_root} are not in the given "
                    f"classes ({len(class_list)} names)"
                )
        self.class_names = class_list if class_list is not None else found
        self.index = cached_folder_index(self.data_root, found, self.class_names, extensions, cache_dir)
        self.path_prefix = os.path.join(self.data_root, "")
        skipped = int(self.index.meta.get("skipped_dirs", 0))
        if skipped:
            message = (
                f"ImageFolder {self.data_root}: {skipped} folders reached a second time through "
                f"symbolic links skipped (a link loop, or two links to one folder: "
                f"{', '.join(self.index.meta.get('skipped_examples', []))}); each image is listed once"
            )
            warnings.warn(message, UserWarning, stacklevel=3)
            logger.warning(message)

    def _read_label_file(self, class_list: list[str] | None, label_offset: int, extensions: tuple) -> None:
        if not os.path.isfile(self.ann_file):
            raise DataFileNotFoundError(f"label file {self.ann_file} does not exist", self.ann_file)
        with open(self.ann_file, encoding="utf-8") as fh:
            rows = [line.split() for line in fh if line.strip()]
        if rows and all(len(r) == 1 for r in rows):  # one label per sorted image file
            files = sorted(f for f in os.listdir(self.data_root) if _is_image(f, extensions))
            if len(files) != len(rows):
                raise DataError(
                    f"{self.ann_file} has {len(rows)} labels but {self.data_root} has "
                    f"{len(files)} images; a one-column label file needs one line per image"
                )
            rows = [[f, r[0]] for f, r in zip(files, rows)]
        labels, paths, names = [], [], class_list
        position = {name: i for i, name in reversed(list(enumerate(names or [])))}  # first one wins, as .index
        for lineno, row in enumerate(rows, 1):
            if len(row) < 2:
                raise DataError(f"{self.ann_file}, line {lineno}: expected '<file name> <label>', got {row}")
            token = row[1]
            if token.lstrip("-").isdigit():
                label = int(token) - label_offset
            elif token in position:
                label = position[token]
            else:
                raise DataError(
                    f"{self.ann_file}, line {lineno}: label {token!r} is not an integer "
                    "nor a name in the given classes (pass classes= for name labels)"
                )
            labels.append(label)
            paths.append(os.path.join(self.data_root, row[0]))
        if names is None:
            names = [str(i) for i in range(max(labels) + 1)] if labels else []
        bad = [lab for lab in labels if not 0 <= lab < len(names)]
        if bad:
            raise DataError(
                f"{self.ann_file}: labels {sorted(set(bad))[:5]} are outside 0..{len(names) - 1} "
                f"({len(names)} classes; check label_offset and classes)"
            )
        self.class_names = list(names)
        self.index = path_records(paths, labels)
