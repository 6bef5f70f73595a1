"""Mixed precision switch: ``amp=None | 'bf16' | 'fp16'``.

CUDA: autocast in the chosen dtype; fp16 also uses a ``GradScaler`` (bf16 needs none).
CPU: bf16 autocast only.
"""
from __future__ import annotations

import contextlib
from typing import Any

import torch

from ..utils.errors import ConfigError

AMP_MODES = (None, "bf16", "fp16")
_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def check_amp_device(amp: Any, device: torch.device | str, key: str = "train_cfg.amp") -> None:
    """fp16 autocast needs a CUDA GPU (on a CPU it is neither supported by every kernel nor
    faster); refused for training and evaluation alike, before anything is built."""
    if amp == "fp16" and torch.device(device).type != "cuda":
        way_out = "--amp bf16" if key.startswith("--") else f"--cfg-options {key}=bf16 (or None)"
        raise ConfigError(f"{key}='fp16' needs a CUDA GPU but this run is on {torch.device(device)}; "
                          f"use {way_out} on the CPU")


def autocast_context(device: torch.device, amp: str | None):
    """``torch.autocast`` for ``amp`` on ``device`` (a null context when ``amp`` is None)."""
    if amp is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=_DTYPES[amp])


def build_grad_scaler(device: torch.device, amp: str | None) -> torch.amp.GradScaler:
    """A grad scaler that is active only for fp16 on CUDA (a no-op otherwise)."""
    return torch.amp.GradScaler(device.type, enabled=(amp == "fp16" and device.type == "cuda"))
