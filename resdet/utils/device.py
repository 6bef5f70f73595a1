"""``resolve_device``: the one reading of a ``--device`` value (or a ``device=`` argument) that
every subcommand, ``init_model`` and the trainer share.

A malformed name (``gpu0``, ``cuda:x``) or a device this machine lacks (``cuda`` without a
GPU, ``cuda:7`` on a 2-GPU node) is a ``DeviceError`` naming the value, what this machine
has and the way out, before any model is built -- not torch's traceback from the first
``.to(device)``.
"""

from __future__ import annotations

import torch

from .dist import get_local_rank
from .errors import DeviceError

_FORMS = "cpu, cuda, cuda:N (N < the number of GPUs) or meta"


def available_devices() -> str:
    """What this machine offers, in words (for messages)."""
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if count == 0:
        return "this machine has no CUDA GPU"
    return f"this machine has {count} CUDA GPU{'s' if count > 1 else ''} (cuda:0..cuda:{count - 1})"


def default_device() -> torch.device:
    """``cuda:LOCAL_RANK`` when a GPU is available (one process per GPU under torchrun), else the CPU."""
    return torch.device(f"cuda:{get_local_rank()}" if torch.cuda.is_available() else "cpu")


def resolve_device(device: str | torch.device | None, what: str = "--device") -> torch.device:
    """``device`` as a ``torch.device`` this machine has; ``None`` gives ``default_device()``.

    Raises ``DeviceError`` (one line: the value, what is available, the way out) for a
    malformed name or a missing device."""
    if device is None or (isinstance(device, str) and device.strip().lower() in ("", "auto")):
        return default_device()
    if isinstance(device, int) and not isinstance(device, bool):
        device = f"cuda:{device}"
    try:
        parsed = device if isinstance(device, torch.device) else torch.device(str(device).strip())
    except (RuntimeError, ValueError, TypeError):
        raise DeviceError(f"{what} {device!r} is not a device name: use {_FORMS}") from None
    if parsed.type in ("cpu", "meta"):
        return parsed
    if parsed.type != "cuda":
        raise DeviceError(f"{what} {device!r}: resdet runs on {_FORMS}; {available_devices()}")
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if count == 0:
        raise DeviceError(
            f"{what} {device!r} asks for a CUDA GPU but {available_devices()} "
            f"(or its driver is not usable); use {what} cpu"
        )
    if parsed.index is not None and parsed.index >= count:
        raise DeviceError(
            f"{what} {device!r} does not exist: {available_devices()}; use {what} cuda:0"
            + (f" .. cuda:{count - 1}" if count > 1 else "")
        )
    return parsed
