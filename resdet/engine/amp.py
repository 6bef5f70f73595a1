"""Mixed precision switch: ``amp=None | 'bf16' | 'fp16'``.

CUDA: autocast in the chosen dtype; fp16 also uses a ``GradScaler`` (bf16 needs none).
CPU: bf16 autocast only.
"""
from __future__ import annotations

import contextlib

import torch

AMP_MODES = (None, "bf16", "fp16")
_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def check_amp(amp: str | None, device: torch.device) -> str | None:
    if amp not in AMP_MODES:
        raise ValueError(f"train_cfg.amp={amp!r}; allowed values: None, 'bf16', 'fp16'")
    if amp == "fp16" and device.type != "cuda":
        raise ValueError(f"train_cfg.amp='fp16' needs a CUDA device (running on {device}); "
                         "use amp='bf16' on the CPU")
    return amp


def autocast_context(device: torch.device, amp: str | None):
    """``torch.autocast`` for ``amp`` on ``device`` (a null context when ``amp`` is None)."""
    if amp is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=_DTYPES[amp])


def build_grad_scaler(device: torch.device, amp: str | None) -> torch.amp.GradScaler:
    """A grad scaler that is active only for fp16 on CUDA (a no-op otherwise)."""
    return torch.amp.GradScaler(device.type, enabled=(amp == "fp16" and device.type == "cuda"))
