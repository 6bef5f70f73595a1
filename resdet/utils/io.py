"""Atomic writes and safe checkpoint loading.

Every writer here goes through ``atomic_write_bytes``: a temporary file in the target's
folder, flushed and fsynced, then renamed over the target; the file gets the permissions of
an ordinary new file (``0666`` less the umask).

Checkpoints hold tensors and plain Python types only, so they load with
``torch.load(weights_only=True)``: a file holding pickled code is refused, never run.

A checkpoint with a ``meta`` dict records ``meta['checksum']`` (``'sha256:<hex>'``, written by
``atomic_save``): the sha256 of its *content* -- every tensor's dtype, shape and bytes, and
every plain value, in order -- so a file damaged after it was written (a flipped block inside
tensor data that ``torch.load`` still reads without complaint) is recognised when
``safe_load`` reads it. The checksum lives inside the file rather than in a sidecar: it
travels with the file when it is copied or renamed, it is written by the same atomic rename
(no window where file and sidecar disagree), and the file stays a plain
``weights_only``-loadable dict of tensors and plain types. Hashing the content rather than
the file's bytes also lets a file be rewritten (another zip layout, another torch version)
without a new checksum. Cost: 0.06-0.14 s per 100 MB of tensors (ResNet-50 weights, a
2-core CPU with SHA extensions), once at save and once at load.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import pickle
import re
import secrets
import stat
import time
import warnings
import zipfile
from collections.abc import Mapping
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors_bytes
from safetensors.torch import save as save_safetensors_bytes

from .checkpoint_folder import folder_message
from .errors import CheckpointError  # noqa: F401  (re-exported: raised by safe_load)
from .outputs import OUTPUT_ERRNOS, OutputError, check_output_path, output_error  # noqa: F401

# flags of the temporary file: never follow a planted link, never reuse an existing file
_TMP_FLAGS = (
    os.O_WRONLY
    | os.O_CREAT
    | os.O_EXCL
    | getattr(os, "O_NOFOLLOW", 0)
    | getattr(os, "O_BINARY", 0)
    | getattr(os, "O_CLOEXEC", 0)
)
# what the file's mode asks for; the kernel removes the umask bits (or applies the folder's
# default ACL), exactly as for open(path, "w")
FILE_MODE = 0o666


_TMP_PREFIX = ".tmp-"
_TMP_TOKEN_HEX = 12  # secrets.token_hex(6)
# the names create_temporary gives: '.tmp-' + 12 lowercase hex digits + the target's name
_TMP_NAME_RE = re.compile(rf"^\.tmp-[0-9a-f]{{{_TMP_TOKEN_HEX}}}.+$", re.DOTALL)
logger = logging.getLogger("resdet")


def create_temporary(directory: str, name: str) -> tuple[int, str]:
    """Create and open a new, empty ``.tmp-XXXX<name>`` in ``directory``.

    Unlike ``tempfile.mkstemp`` (which always creates 0600), the file is created with mode
    ``0666`` less the umask *by the kernel*, at ``open`` time: no need to read the umask, whose
    only reader ``os.umask`` sets it process-wide (another thread creating a file between
    the set and the restore would get a wrong mode)."""
    for _ in range(100):
        tmp = os.path.join(directory, f"{_TMP_PREFIX}{secrets.token_hex(_TMP_TOKEN_HEX // 2)}{name}")
        try:
            return os.open(tmp, _TMP_FLAGS, FILE_MODE), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"could not create a temporary file in {directory} (100 names taken)")


def remove_stale_temporaries(directory: str, min_age_s: float = 30.0) -> list[tuple[str, int]]:
    """Remove the temporary files an interrupted atomic write left in ``directory``.

    Only regular files named as ``create_temporary`` names them (``.tmp-`` + 12 hex digits
    + a name) and not modified for ``min_age_s`` seconds are removed (a write in progress
    in another process keeps its file). Returns ``[(path, size_in_bytes)]`` of what was removed."""
    removed: list[tuple[str, int]] = []
    try:
        names = sorted(os.listdir(directory))
    except OSError:
        return removed
    now = time.time()
    for name in names:
        if not _TMP_NAME_RE.match(name):
            continue
        path = os.path.join(directory, name)
        try:
            info = os.lstat(path)
            if not stat.S_ISREG(info.st_mode) or now - info.st_mtime < min_age_s:
                continue
            os.unlink(path)
        except OSError:
            continue
        removed.append((path, int(info.st_size)))
    return removed


def atomic_write_bytes(data: bytes, path: str) -> None:
    """Write ``data`` to a temporary file in the same folder, fsync, then rename over ``path``.

    The file ends with the mode a plain ``open(path, "w")`` would give a new file
    (``0666`` less the umask: ``0644`` under umask 022), so others on a shared machine can
    read checkpoints, configs and pictures; a previous file's mode is not kept.
    A kill during the write leaves the previous file at ``path`` intact.
    """
    directory = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(directory, exist_ok=True)
        fd, tmp = create_temporary(directory, os.path.basename(path))
    except OSError as err:
        if err.errno in OUTPUT_ERRNOS:
            raise output_error(err, path) from None
        raise
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        if os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(err, OSError) and not isinstance(err, OutputError) and err.errno in OUTPUT_ERRNOS:
            raise output_error(err, path) from None  # a full disk: name the file and the disk
        raise
    try:  # make the rename itself durable
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:
        pass


# ---------------------------------------------------------------- content checksums
CHECKSUM_KEY = "checksum"
_CHECKSUM_ALGORITHM = "sha256"


def _feed(digest: Any, obj: Any) -> None:
    """Add ``obj`` (tensors and plain Python types, nested) to ``digest``, type-tagged so that
    e.g. ``1``, ``1.0``, ``True`` and ``'1'`` differ; containers in their own order."""
    update = digest.update
    if isinstance(obj, torch.Tensor):
        tensor = obj.detach()
        if tensor.layout != torch.strided:
            tensor = tensor.to_dense()
        update(f"T{tensor.dtype}{tuple(tensor.shape)};".encode())
        if tensor.device.type == "meta" or tensor.numel() == 0:
            return
        tensor = tensor.resolve_conj().resolve_neg().cpu().contiguous().reshape(-1)
        update(tensor.view(torch.uint8).numpy())  # the bytes themselves (no copy)
    elif obj is None:
        update(b"N")
    elif isinstance(obj, bool):
        update(b"B1" if obj else b"B0")
    elif isinstance(obj, int):
        update(b"I%d;" % obj)
    elif isinstance(obj, float):
        update(b"F" + float(obj).hex().encode() + b";")
    elif isinstance(obj, str):
        data = obj.encode("utf-8", "surrogatepass")
        update(b"S%d;" % len(data) + data)
    elif isinstance(obj, (bytes, bytearray)):
        update(b"Y%d;" % len(obj) + bytes(obj))
    elif isinstance(obj, Mapping):
        update(b"D%d;" % len(obj))
        for key, value in obj.items():
            _feed(digest, key)
            _feed(digest, value)
    elif isinstance(obj, (list, tuple)):  # torch.Size is a tuple; tuples and lists alike
        update(b"L%d;" % len(obj))
        for item in obj:
            _feed(digest, item)
    else:  # torch.dtype, torch.device, ...: types weights_only loading allows
        data = f"{type(obj).__name__}:{obj!r}".encode("utf-8", "surrogatepass")
        update(b"R%d;" % len(data) + data)


def content_checksum(obj: Any) -> str:
    """``'sha256:<hex>'`` of a checkpoint's content, leaving out ``meta['checksum']`` itself."""
    if isinstance(obj, Mapping) and isinstance(obj.get("meta"), Mapping) and CHECKSUM_KEY in obj["meta"]:
        obj = dict(obj)
        obj["meta"] = {k: v for k, v in obj["meta"].items() if k != CHECKSUM_KEY}
    digest = hashlib.new(_CHECKSUM_ALGORITHM)
    _feed(digest, obj)
    return f"{_CHECKSUM_ALGORITHM}:{digest.hexdigest()}"


def add_checksum(ckpt: Any) -> Any:
    """``ckpt`` with ``meta['checksum']`` set (a shallow copy; the caller's dicts are not
    changed). Objects without a ``meta`` dict (bare state_dicts, caches) are returned as they are."""
    if not (isinstance(ckpt, Mapping) and isinstance(ckpt.get("meta"), Mapping)):
        return ckpt
    meta = {k: v for k, v in ckpt["meta"].items() if k != CHECKSUM_KEY}
    out = dict(ckpt)
    out["meta"] = meta
    meta[CHECKSUM_KEY] = content_checksum(out)
    return out


_NOTED_UNVERIFIED: set[str] = set()


def verify_checksum(obj: Any, path: str) -> bool | None:
    """Check ``meta['checksum']`` of a loaded checkpoint: ``True`` when it matches; ``None``
    when there is none to check (a resdet checkpoint written before checksums were recorded
    gets a one-time note; foreign files and bare state_dicts never had one). Raises
    ``CheckpointError`` naming ``path`` when the content does not match (the file was damaged)."""
    meta = obj.get("meta") if isinstance(obj, Mapping) else None
    if not isinstance(meta, Mapping):
        return None
    recorded = meta.get(CHECKSUM_KEY)
    if recorded is None:
        if "resdet_version" in meta and os.path.abspath(path) not in _NOTED_UNVERIFIED:
            _NOTED_UNVERIFIED.add(os.path.abspath(path))
            note = (
                f"checkpoint {path} has no checksum (written by resdet "
                f"{meta.get('resdet_version')}, before checksums were recorded): loaded without "
                "checking it for damage"
            )
            logger.info(note)
            warnings.warn(note, UserWarning, stacklevel=3)
        return None
    if not isinstance(recorded, str) or not recorded.startswith(f"{_CHECKSUM_ALGORITHM}:"):
        raise CheckpointError(
            f"checkpoint {path} is damaged: its meta['checksum'] is not a "
            f"'{_CHECKSUM_ALGORITHM}:<hex>' value ({str(recorded)[:40]!r}); use another "
            "checkpoint or copy this one again from its source"
        )
    actual = content_checksum(obj)
    if actual != recorded:
        raise CheckpointError(
            f"checkpoint {path} is damaged: its content no longer matches the {_CHECKSUM_ALGORITHM} checksum "
            "recorded when it was written (changed on disk or in a copy since); use another checkpoint or "
            "copy this one again from its source"
        )
    return True


def atomic_save(obj: Any, path: str) -> None:
    """``torch.save`` to a temporary file in the same folder, fsync, then rename over ``path``.

    A dict with a ``meta`` dict (every resdet checkpoint) is saved with ``meta['checksum']``
    (see ``add_checksum``); ``obj`` itself is not changed. A kill during the write leaves the
    previous file at ``path`` intact.
    """
    obj = add_checksum(obj)
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


# torch's own words on the refused object (its advice to retry unsafely is left out)
_REFUSED_WHAT = (
    re.compile(r"Unsupported global: GLOBAL ([\w.]+)"),
    re.compile(r"unsupported GLOBAL ([\w.]+)"),
    re.compile(r"Unsupported operand (\d+)"),
)


def _refusal_reason(err: BaseException) -> str:
    """What ``weights_only`` loading refused, from torch's message, without its suggestion to
    load with ``weights_only=False`` (which would run the file's code)."""
    text = str(err)
    for pattern in _REFUSED_WHAT:
        match = pattern.search(text)
        if match:
            what = match.group(1)
            return f"it refers to {what}" if not what.isdigit() else f"it uses pickle opcode {what}"
    return "it is not made of tensors and plain Python types only"


# ---------------------------------------------------------------- safetensors (published weights)
SAFETENSORS_META_KEY = "resdet_meta"  # the file's string metadata holds the meta dict as json


def is_safetensors(path: str) -> bool:
    """A safetensors file: an 8-byte little-endian header length, then a json header (the
    length itself is checked when the file is read, so a damaged one is named as such)."""
    with open(path, "rb") as fh:
        head = fh.read(9)
    return len(head) == 9 and head[8:9] == b"{"


def safetensors_bytes(obj: Mapping) -> bytes:
    """``{'model': state_dict, 'meta': dict}`` as a safetensors file: the tensors, and the meta
    (with its content checksum, computed over the json form that loading gives back)."""
    meta = json.loads(json.dumps(dict(obj.get("meta") or {})))
    # sorted by name: the order safetensors gives them back in, which the checksum depends on
    tensors = {k: v.detach().cpu().contiguous().clone() for k, v in sorted(obj["model"].items())}
    checked = add_checksum({"model": tensors, "meta": meta})
    return save_safetensors_bytes(tensors, metadata={SAFETENSORS_META_KEY: json.dumps(checked["meta"])})


def _load_safetensors(path: str, map_location: str | torch.device) -> dict:
    size = os.path.getsize(path)
    with open(path, "rb") as fh:
        header_len = int.from_bytes(fh.read(8), "little")
    if not 2 <= header_len <= size - 8:  # read before the file: a damaged length claims up to 16 EiB
        raise CheckpointError(
            f"checkpoint {path} is not a readable safetensors file: its header length field "
            f"says {header_len} bytes but the file holds {size} bytes in all (cut short or "
            "damaged); use another file or copy this one again from its source"
        )
    try:
        with open(path, "rb") as fh:
            data = fh.read()
        tensors = dict(sorted(load_safetensors_bytes(data).items()))
        header_len = int.from_bytes(data[:8], "little")
        metadata = json.loads(data[8 : 8 + header_len]).get("__metadata__") or {}
        meta = json.loads(metadata.get(SAFETENSORS_META_KEY, "{}"))
    except (SafetensorError, ValueError, OSError) as err:
        raise CheckpointError(
            f"checkpoint {path} is truncated or not a readable safetensors file ({err}); "
            "use another file or copy this one again from its source"
        ) from None
    if map_location not in (None, "cpu"):
        tensors = {k: v.to(map_location) for k, v in tensors.items()}
    return {"model": tensors, "meta": meta} if meta else tensors


def safe_load(path: str, map_location: str | torch.device = "cpu", verify: bool = True) -> Any:
    """Load a checkpoint with ``weights_only=True`` (or a safetensors file, which holds no code
    by design); raise ``CheckpointError`` with the file name on anything that is not a
    readable, code-free checkpoint. With ``verify`` (default) the recorded content checksum is
    checked too (``verify_checksum``)."""
    if os.path.isdir(path):  # a work dir: name the checkpoint files in it
        raise CheckpointError(folder_message(path))
    if not os.path.isfile(path):
        raise CheckpointError(f"checkpoint {path} does not exist")
    if os.path.getsize(path) == 0:
        raise CheckpointError(f"checkpoint {path} is empty (0 bytes)")
    if is_safetensors(path):
        obj = _load_safetensors(path, map_location)
        if verify:
            verify_checksum(obj, path)
        return obj
    try:
        obj = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        raise CheckpointError(
            f"checkpoint {path} was refused: {_refusal_reason(err)}, and a checkpoint may hold only "
            "tensors and plain Python types, so loading it could run code hidden in the file; it was not "
            "loaded. Use a checkpoint written by resdet (or convert the original weights)"
        ) from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError, OSError, SafetensorError) as err:
        raise CheckpointError(
            f"checkpoint {path} is truncated or not a torch checkpoint "
            f"({str(err).splitlines()[0] if str(err) else type(err).__name__}); "
            "use another checkpoint or copy this one again from its source"
        ) from err
    if verify:
        verify_checksum(obj, path)
    return obj
