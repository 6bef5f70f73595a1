"""Atomic writes and safe checkpoint loading.

Checkpoints hold tensors and plain Python types only, so they load with
``torch.load(weights_only=True)``: a file holding pickled code is refused, never run.
"""
from __future__ import annotations

import io
import json
import os
import pickle
import tempfile
import zipfile
from typing import Any

import torch


class CheckpointError(RuntimeError):
    """A file that is missing, truncated, corrupt, or not a resdet/torch checkpoint."""


def atomic_write_bytes(data: bytes, path: str) -> None:
    """Write ``data`` to a temporary file in the same folder, fsync, then rename over ``path``."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=os.path.basename(path), dir=directory)
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
    atomic_write_bytes(text.encode("utf-8"), path)


def atomic_write_json(obj: Any, path: str, indent: int | None = 2) -> None:
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
