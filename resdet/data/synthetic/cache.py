"""Generate-once caching of the synthetic data sets, shared by every shapes dataset.

A generated set is marked complete by a meta file (json) written last; it records every
setting the images depend on, so a set generated with other settings (image size, count,
seed, classes, generator options) is cleared and generated again instead of being reused.
Independent runs sharing a folder serialise on a lock file; in distributed runs rank 0
generates and the other ranks wait at a barrier.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from typing import Callable

from ...utils.dist import barrier, is_main_process
from ...utils.io import atomic_write_json

META_FILE = "shapes_meta.json"
SPLIT_SEED_OFFSETS = {"train": 0, "val": 1, "test": 2}


def split_seed(seed: int, split: str) -> int:
    """The one seeding rule of every synthetic split: ``train`` uses ``seed``, ``val``
    ``seed + 1``, ``test`` ``seed + 2`` (``datasets/generate_shapes.py`` follows it too)."""
    if split not in SPLIT_SEED_OFFSETS:
        raise ValueError(f"synthetic split must be one of {', '.join(SPLIT_SEED_OFFSETS)}, got {split!r}")
    return int(seed) + SPLIT_SEED_OFFSETS[split]


@contextlib.contextmanager
def generation_lock(target: str, done: Callable[[], bool], stale_s: float = 600.0, poll_s: float = 0.5):
    """Serialise generation between independent runs sharing ``target``: an exclusive lock
    file ``<target>.lock``; a run that finds it waits until ``done()`` or the lock goes away
    (a lock older than ``stale_s`` seconds is taken as left by a killed run and removed)."""
    os.makedirs(os.path.dirname(os.path.abspath(target)) or ".", exist_ok=True)
    lock = os.path.abspath(target).rstrip(os.sep) + ".lock"
    while True:
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666)
            break
        except FileExistsError:
            try:
                if time.time() - os.path.getmtime(lock) > stale_s:
                    os.remove(lock)
                    continue
            except OSError:
                continue
            if done():
                yield
                return
            time.sleep(poll_s)
    try:
        os.write(fd, str(os.getpid()).encode())
        os.close(fd)
        yield
    finally:
        try:
            os.remove(lock)
        except OSError:
            pass


def read_meta(meta_path: str) -> dict | None:
    try:
        with open(meta_path, encoding="utf-8") as fh:
            return json.load(fh)
    except (OSError, ValueError):
        return None


def ensure_generated(
    target: str,
    meta: dict,
    generate: Callable[[], object],
    clear: Callable[[], None] | None = None,
    meta_path: str | None = None,
) -> None:
    """Make ``target`` hold the set described by ``meta`` (json-serialisable settings).

    Unless ``meta_path`` (default ``target/shapes_meta.json``) already equals ``meta``: rank 0
    takes the lock, calls ``clear()`` (remove what an earlier, different set left) and
    ``generate()``, then writes the meta file atomically; every rank then waits at a barrier.
    Raises RuntimeError when the set is still incomplete afterwards.
    """
    meta = json.loads(json.dumps(meta))  # the form it takes once read back (tuples -> lists)
    meta_path = meta_path or os.path.join(target, META_FILE)

    def complete() -> bool:
        return read_meta(meta_path) == meta

    if not complete() and is_main_process():
        with generation_lock(target, complete):
            if not complete():
                if clear is not None:
                    clear()
                generate()
                atomic_write_json(meta, meta_path)
    barrier()
    if not complete():
        raise RuntimeError(f"generating {target} did not complete ({meta_path} missing or from other settings)")
