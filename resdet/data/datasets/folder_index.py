"""The index of an ImageNet-style folder (``root/<class>/**/<image>``) as flat arrays, and its
cache.

Scanning 1.28 M files takes a while (one ``os.scandir`` per folder, plus a ``stat`` per
symbolic link) and a list of ``(path, label)`` tuples is millions of Python objects that
every forked DataLoader worker ends up copying (reference counts are written on access).
``scan_class_folders`` returns a ``FlatRecords`` instead: the relative paths as one UTF-8
buffer + offsets (``path``, ``path.offsets``) and the labels as ``int64`` (``label``);
``cached_folder_index`` keeps it in the per-node record cache (``resdet.data.record_cache``:
location, lock, atomic rename), so a second start memory-maps it instead of scanning.

Cache key and change signal: the key is the root folder (absolute), the class list, the
extensions and the index format; the signal is the mtime (and size) of the root folder and
of every class folder. Adding, removing or renaming a file directly inside a class folder
changes that folder's mtime (POSIX updates a directory's mtime when an entry is created,
removed or renamed in it), and adding or removing a class changes the root's mtime; a
mismatch rebuilds the index with one warning. Not seen: a change inside a *nested*
sub-folder of a class (only that sub-folder's mtime changes) and a file rewritten in place
(names are indexed, not contents) -- touch the class folder, or pass ``cache_dir=False``.
The signal is read before the scan, so a change made while scanning is seen at the next
start.

Symbolic links are followed, but each real directory (device, inode) is read once: a loop
such as ``ants/again -> .`` or a second link to an already listed folder is skipped and
counted (``meta['skipped_dirs']``, with the first few link paths), so every file is listed
once; the dataset warns about them at each start. Links to files are listed like files.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from ..record_cache import cached_records
from ..records import OFFSETS, FlatRecords, pack_strings

INDEX_FORMAT = 1  # bump when the scan's rules change: old cache files are then not used


def _is_image(name: str, extensions: tuple[str, ...]) -> bool:
    return name.lower().endswith(extensions)


def _dir_key(path: str) -> tuple[int, int] | None:
    try:
        info = os.stat(path)
    except OSError:
        return None
    return info.st_dev, info.st_ino


def walk_images(root: str, top: str, extensions: tuple[str, ...], visited: set, skipped: list) -> list[str]:
    """Paths (relative to ``root``) of the image files under ``root/top``, following symbolic
    links; a directory whose (device, inode) is in ``visited`` is skipped and its path
    appended to ``skipped``. Sub-folders are entered in sorted order, so which of two paths to
    one folder is kept does not depend on the file system's listing order."""
    files: list[str] = []
    pending = [top]
    while pending:
        rel = pending.pop()
        key = _dir_key(os.path.join(root, rel))
        if key is None:
            continue
        if key in visited:
            skipped.append(rel)
            continue
        visited.add(key)
        subdirs = []
        try:
            with os.scandir(os.path.join(root, rel)) as entries:
                for entry in entries:
                    try:
                        is_dir = entry.is_dir()  # follows links, like os.walk(followlinks=True)
                    except OSError:
                        is_dir = False
                    if is_dir:
                        subdirs.append(entry.name)
                    elif _is_image(entry.name, extensions):
                        files.append(os.path.join(rel, entry.name))
        except OSError:  # unreadable folder: skipped, as os.walk does
            continue
        pending += [os.path.join(rel, d) for d in sorted(subdirs, reverse=True)]
    return files


def scan_class_folders(
    root: str, folders: Sequence[str], class_names: Sequence[str], extensions: Sequence[str]
) -> FlatRecords:
    """The index of ``root/<folder>/**`` for each of ``folders`` (every one in ``class_names``):
    rows sorted by class folder, then path; ``label`` is the folder's position in
    ``class_names``."""
    extensions = tuple(e.lower() for e in extensions)
    index = {name: i for i, name in enumerate(class_names)}
    visited: set = set()
    skipped: list[str] = []
    paths: list[str] = []
    counts = []
    for name in folders:
        files = sorted(walk_images(root, name, extensions, visited, skipped))
        paths += files
        counts.append(len(files))
    labels = np.repeat(np.asarray([index[n] for n in folders], np.int64), counts)
    values, offsets = pack_strings(paths)
    return FlatRecords(
        {"path": values, "path" + OFFSETS: offsets, "label": labels},
        dict(length=len(paths), skipped_dirs=len(skipped), skipped_examples=skipped[:3]),
    )


def cached_folder_index(
    root: str,
    folders: Sequence[str],
    class_names: Sequence[str],
    extensions: Sequence[str],
    cache_dir: str | bool | None = None,
) -> FlatRecords:
    """``scan_class_folders`` through the record cache (see the module docstring)."""
    options = dict(
        root=os.path.abspath(root),
        folders=list(folders),
        classes=list(class_names),
        extensions=[e.lower() for e in extensions],
        format=INDEX_FORMAT,
    )
    signal = [root] + [os.path.join(root, name) for name in folders]
    return cached_records(
        "imagefolder",
        [],
        options,
        lambda: scan_class_folders(root, folders, class_names, extensions),
        cache_dir=cache_dir,
        stat_sources=signal,
    )
