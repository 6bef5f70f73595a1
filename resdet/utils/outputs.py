"""Outputs checked before the work that produces them, and write failures in words.

``check_output_path`` runs at the start of every subcommand that writes (the train work dir,
``eval --json/--out``, ``demo --out``, ``export --out``, ``publish``): a folder that is a
file, a read-only or pseudo file system (/proc) is one ``OutputError`` line *before* an
evaluation or a training runs, not a traceback after it. ``output_error`` turns an
``OSError`` met while writing (a full disk, a quota, permissions) into one line naming the
file and the disk; ``resdet.utils.io.atomic_write_bytes`` uses it for every write.
"""

from __future__ import annotations

import errno
import os
import secrets

from .errors import OutputError

# a write that fails for one of these reasons is the user's to fix (space, permissions), not a bug
OUTPUT_ERRNOS = {
    errno.ENOSPC: "no space left on the disk",
    errno.EDQUOT: "the disk quota is exceeded",
    errno.EROFS: "the file system is read-only",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.EFBIG: "the file is too large for the disk",
    errno.ENOTDIR: "a part of the path is a file, not a folder",
    errno.EISDIR: "it is a folder",
}
# pseudo file systems: writing an output there is never what was meant
_PSEUDO_ROOTS = ("/proc", "/sys", "/dev")


def _free_space(directory: str) -> str:
    try:
        usage = os.statvfs(directory)
        return f"{usage.f_bavail * usage.f_frsize / 2**20:.1f} MB free"
    except OSError:
        return "free space unknown"


def output_error(err: OSError, path: str, what: str = "") -> OutputError:
    """An ``OSError`` raised while writing ``path`` as one line: the file, the disk or folder,
    the reason and the way out."""
    directory = os.path.dirname(os.path.abspath(path)) or "."
    reason = OUTPUT_ERRNOS.get(err.errno, err.strerror or type(err).__name__)
    what = f"{what} " if what else ""
    if err.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        return OutputError(
            err.errno,
            f"cannot write {what}{path}: {reason} holding {directory} "
            f"({_free_space(directory)}); free some space or write elsewhere",
        )
    return OutputError(
        err.errno, f"cannot write {what}{path}: {reason} ({directory}); choose a folder you can write to"
    )


def _in_pseudo_fs(path: str) -> bool:
    real = os.path.realpath(path)
    return any(real == root or real.startswith(root + os.sep) for root in _PSEUDO_ROOTS)


def check_output_path(path: str | None, *, what: str, directory: bool = False) -> None:
    """Check, before any work is done, that ``path`` can be written: a file (or with
    ``directory=True`` a folder) whose existing part is of the right kind, not inside a
    pseudo file system (/proc, /sys, /dev), and whose nearest existing folder accepts a new
    file (probed by creating and removing one, so read-only mounts and permissions are seen
    as the later write would see them). ``None`` passes. Raises ``OutputError`` naming
    ``what`` (``--json``, ``work dir``, ...) and the path. Nothing is left behind."""
    if path is None:
        return
    if _in_pseudo_fs(path):
        raise OutputError(
            errno.EACCES,
            f"{what} {path} is inside {os.sep + os.path.realpath(path).split(os.sep)[1]}, "
            "a system pseudo file system; write it elsewhere",
        )
    if os.path.isdir(path) and not directory:
        raise OutputError(
            errno.EISDIR,
            f"{what} {path} is a folder, but a file is written there; give a file name (e.g. a path inside it)",
        )
    if os.path.exists(path) and directory and not os.path.isdir(path):
        raise OutputError(errno.ENOTDIR, f"{what} {path} is a file, not a folder; give a folder path")
    parent = path if directory else os.path.dirname(os.path.abspath(path))
    parent = os.path.abspath(parent)
    while not os.path.exists(parent):  # the nearest existing ancestor must accept new entries
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent):
        raise OutputError(
            errno.ENOTDIR, f"{what} {path} cannot be created: {parent} is a file, not a folder; choose another path"
        )
    probe = os.path.join(parent, f".write-probe-{secrets.token_hex(6)}")
    try:
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        os.unlink(probe)
    except OSError as err:
        state = "is read-only" if err.errno in (errno.EROFS, errno.EACCES, errno.EPERM) else "refuses new files"
        reason = err.strerror or type(err).__name__
        raise OutputError(
            err.errno, f"{what} {path} cannot be written: {parent} {state} ({reason}); choose a folder you can write to"
        ) from None
