"""How the data package reports bad data: errors that name the file, and skips that are
counted every time but warned about once per file.

- ``DataError`` (``resdet.utils.errors``): a dataset, annotation or list file that cannot be
  used; ``DataFileNotFoundError`` is the one for a missing annotation / list file (also a
  ``FileNotFoundError``). Unreadable images raise ``image_io.ImageReadError``.
- ``SkipReporter``: a non-strict dataset's memory of what it skipped. ``report(key, message)``
  warns (``UserWarning``) and logs the first time a key (a file) is seen in this process and
  only logs at debug level afterwards, so a bad image does not print one warning per epoch.
  Python's own once-per-location filter cannot do this: any ``warnings.catch_warnings`` or
  filter change anywhere in the process (libraries do it) resets it.
- ``Skipped``: what a non-strict dataset's ``__getitem__`` returns for a sample it cannot read
  (after reporting it): the index, the file and the reason. The loader's collate wrapper
  (``collate.SkipCollate``) counts and removes these markers; ``is_skipped`` also accepts
  ``None``, which datasets of other projects and transforms that drop a sample return.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from ..utils.errors import DataError

logger = logging.getLogger("resdet")

__all__ = ["DataError", "DataFileNotFoundError", "SkipReporter", "Skipped", "is_skipped"]


class DataFileNotFoundError(DataError, FileNotFoundError):
    """An annotation, list or data file that does not exist. Given the ``path``, a relative one
    is said to be read from the working directory (config paths keep that meaning)."""

    def __init__(self, message: str, path: str | None = None) -> None:
        if path is not None and not os.path.isabs(path):
            message += f" (relative paths are read from the working directory, {os.getcwd()})"
        super().__init__(message)


class SkipReporter:
    """Counts skips by kind (``counts``) and warns once per key (see the module docstring).

    Picklable (loader workers get a copy: each process warns once per key and keeps its
    own counts; batches carry the per-batch ``num_skipped`` to the main process).
    """

    def __init__(self, counts: Counter | None = None) -> None:
        self.counts: Counter = counts if counts is not None else Counter()
        self._warned: set = set()

    def report(self, kind: str, key: str, message: str, stacklevel: int = 3) -> None:
        self.counts[kind] += 1
        if key in self._warned:
            logger.debug("%s (%d %s so far in this process)", message, self.counts[kind], kind)
            return
        self._warned.add(key)
        warnings.warn(message, UserWarning, stacklevel=stacklevel)
        logger.warning(message)


@dataclass(frozen=True)
class Skipped:
    """Sample ``index`` could not be read: ``file`` (``img_id`` where the dataset has one) and
    ``reason``. In training the loader attaches the sample read in its place
    (``replacement``), so the batch keeps its size; ``str()`` names the sample for messages."""

    index: int
    file: str
    reason: str
    img_id: Any = None
    replacement: dict | None = field(default=None, repr=False, compare=False)

    def __str__(self) -> str:
        return self.file if self.img_id is None else f"{self.file} (image id {self.img_id!r})"


def is_skipped(sample: Any) -> bool:
    """Whether a dataset's ``__getitem__`` result stands for no sample (``Skipped`` or ``None``)."""
    return sample is None or isinstance(sample, Skipped)
