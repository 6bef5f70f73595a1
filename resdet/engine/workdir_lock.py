"""One training run per work dir: a lock file held with ``fcntl.flock``.

Two runs writing one work dir interleave ``metrics.jsonl``, ``train.log`` and checkpoints,
and each prunes the other's ``iter_<N>.pth``. The first run holds ``<work_dir>/.resdet.lock``
(its pid, host and start time inside, for the message the second run prints); the second
stops with ``WorkDirBusyError`` (a ``ResdetError``: one line, exit code 2) naming the first.

The kernel drops a ``flock`` when its process ends, however it ends (SIGKILL, OOM killer,
node reboot), so a lock file left behind by a dead run is free to take: the next run takes it
over with a warning naming the run that left it. (On NFS, Linux emulates ``flock`` with
byte-range locks, which the server keeps per client, so runs on two hosts exclude each other
too.) Under DDP only global rank 0 takes the lock. Trainers of one process share it (a
process does not exclude itself: tests and notebooks build several trainers on one dir).
"""

from __future__ import annotations

import fcntl
import logging
import os
import socket
import time
import weakref

from ..utils.errors import ResdetError
from ..utils.io import remove_stale_temporaries

LOCK_NAME = ".resdet.lock"
logger = logging.getLogger("resdet")
_HELD: dict[str, list] = {}  # realpath -> [fd, number of holders in this process]


class WorkDirBusyError(ResdetError, RuntimeError):
    """Another live training run holds the work dir."""


def _describe(text: str) -> str:
    fields = dict(part.split("=", 1) for part in text.split() if "=" in part)
    if not fields.get("pid"):
        return "a run that left no details"
    return f"pid {fields['pid']} on {fields.get('host', '?')}, started {fields.get('started', '?')}"


def _read(fd: int) -> str:
    os.lseek(fd, 0, os.SEEK_SET)
    return os.read(fd, 4096).decode("utf-8", "replace").strip()


def acquire(work_dir: str) -> str:
    """Take the lock of ``work_dir`` (which must exist); return the lock file's path.

    Raises ``WorkDirBusyError`` when another process holds it."""
    path = os.path.realpath(os.path.join(work_dir, LOCK_NAME))
    if path in _HELD:
        _HELD[path][1] += 1
        return path
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _read(fd)
        os.close(fd)
        raise WorkDirBusyError(
            f"work dir {work_dir} is in use by another training run ({_describe(holder)}; lock file "
            f"{path}); wait for it to end or stop it, or give this run another --work-dir"
        ) from None
    previous = _read(fd)
    if previous:  # the content is cleared on release: a dead run left it
        logger.warning(
            "work dir lock %s was left by a run that did not end cleanly (%s); taking it over",
            path,
            _describe(previous),
        )
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"pid={os.getpid()} host={socket.gethostname()} started={stamp}\n".encode(), 0)
    os.fsync(fd)
    _HELD[path] = [fd, 1]
    return path


def release(path: str | None) -> None:
    """Give back a lock taken by ``acquire`` (its content is cleared, the file stays: removing
    it would let a run that opened it just before lock a file no longer in the directory)."""
    held = _HELD.get(path) if path else None
    if held is None:
        return
    held[1] -= 1
    if held[1] > 0:
        return
    del _HELD[path]
    fd = held[0]
    try:
        os.ftruncate(fd, 0)
    finally:
        os.close(fd)  # closing drops the flock


def claim(owner: object, work_dir: str, logger: logging.Logger) -> weakref.finalize:
    """Lock ``work_dir`` for as long as ``owner`` lives (released when it is collected or the
    process exits), then remove the temporary files a killed checkpoint write left there."""
    lock = weakref.finalize(owner, release, acquire(work_dir))
    for tmp, size in remove_stale_temporaries(work_dir):
        logger.info("removed %s (%.1f MB), a temporary file left by an interrupted write", tmp, size / 2**20)
    return lock
