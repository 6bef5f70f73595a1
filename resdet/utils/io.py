"""Atomic writes and safe checkpoint loading.

Every writer here goes through ``atomic_write_bytes``: a temporary file in the target's
folder, flushed and fsynced, then renamed over the target; the file gets the permissions of
an ordinary new file (``0666`` less the umask).

Checkpoints hold tensors and plain Python types only, so they load with
``torch.load(weights_only=True)``: a file holding pickled code is refused, never run.
"""
from __future__ import annotations

import io
import json
import os
import pickle
import secrets
import zipfile
from typing import Any

import torch


from .errors import CheckpointError  # noqa: F401  (re-exported: raised by safe_load)


# flags of the temporary file: never follow a planted link, never reuse an existing file
_TMP_FLAGS = (os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
              | getattr(os, "O_BINARY", 0) | getattr(os, "O_CLOEXEC", 0))
# what the file's mode asks for; the kernel removes the umask bits (or applies the folder's
# default ACL), exactly as for open(path, "w")
FILE_MODE = 0o666


def _create_temporary(directory: str, name: str) -> tuple[int, str]:
    """Create and open a new, empty ``.tmp-XXXX<name>`` in ``directory``.

    Unlike ``tempfile.mkstemp`` (which always creates 0600), the file is created with mode
    ``0666`` less the umask *by the kernel*, at ``open`` time: no need to read the umask, whose
    only reader ``os.umask`` sets it process-wide (another thread creating a file between
    the set and the restore would get a wrong mode)."""
    for _ in range(100):
        tmp = os.path.join(directory, f".tmp-{secrets.token_hex(6)}{name}")
        try:
            return os.open(tmp, _TMP_FLAGS, FILE_MODE), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"could not create a temporary file in {directory} (100 names taken)")


def atomic_write_bytes(data: bytes, path: str) -> None:
    """Write ``data`` to a temporary file in the same folder, fsync, then rename over ``path``.

    The file ends with the mode a plain ``open(path, "w")`` would give a new file
    (``0666`` less the umask: ``0644`` under umask 022), so others on a shared machine can
    read checkpoints, configs and pictures; a previous file's mode is not kept.
    A kill during the write leaves the previous file at ``path`` intact.
    """
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = _create_temporary(directory, os.path.basename(path))
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    try:  # make the rename itself durable
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:
        pass


def atomic_save(obj: Any, path: str) -> None:
    """``torch.save`` to a temporary file in the same folder, fsync, then rename over ``path``.

    A kill during the write leaves the previous file at ``path`` intact.
    """
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    atomic_write_bytes(buffer.getvalue(), path)


def atomic_write_text(text: str, path: str) -> None:
    """``text`` (UTF-8) to ``path``, atomically (see ``atomic_write_bytes``)."""
    atomic_write_bytes(text.encode("utf-8"), path)


def atomic_write_json(obj: Any, path: str, indent: int | None = 2) -> None:
    """``obj`` as JSON to ``path``, atomically (see ``atomic_write_bytes``)."""
    atomic_write_bytes(json.dumps(obj, indent=indent).encode("utf-8"), path)


def atomic_save_figure(fig: Any, path: str, dpi: int = 120) -> None:
    """Render a matplotlib figure (format from the extension of ``path``) and write it atomically."""
    buffer = io.BytesIO()
    fmt = os.path.splitext(path)[1].lstrip(".").lower() or "png"
    fig.savefig(buffer, format=fmt, dpi=dpi)
    atomic_write_bytes(buffer.getvalue(), path)


def safe_load(path: str, map_location: str | torch.device = "cpu") -> Any:
    """Load a checkpoint with ``weights_only=True``; raise ``CheckpointError`` with the
    file name on anything that is not a readable, code-free torch checkpoint."""
    if not os.path.isfile(path):
        raise CheckpointError(f"checkpoint {path} does not exist")
    if os.path.getsize(path) == 0:
        raise CheckpointError(f"checkpoint {path} is empty (0 bytes)")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        raise CheckpointError(
            f"checkpoint {path} holds objects other than tensors and plain Python types "
            f"(refused: loading it could run code): {str(err).splitlines()[0]}") from err
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError, OSError) as err:
        raise CheckpointError(f"checkpoint {path} is truncated or not a torch checkpoint: "
                              f"{str(err).splitlines()[0] if str(err) else type(err).__name__}") from err
