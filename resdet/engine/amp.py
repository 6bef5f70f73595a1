"""Mixed precision switch: ``amp=None | 'bf16' | 'fp16'``.

CUDA: autocast in the chosen dtype; fp16 also uses a ``GradScaler`` (bf16 needs none).
CPU: bf16 autocast only, and only where the CPU computes bf16 natively (AVX512-BF16 or AMX).
Elsewhere (an AVX2-only CPU, say) oneDNN emulates bf16 and a training step runs 10-70x slower
than in fp32 (ResNet-18, 64 px, batch 32 on 2 AVX2 cores: 0.4 s fp32 against 4-30 s bf16), so
``amp='bf16'`` falls back to fp32 there with a warning (``RESDET_CPU_BF16=1`` forces bf16).
"""

from __future__ import annotations

import contextlib
import os
import warnings
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
        raise ConfigError(
            f"{key}='fp16' needs a CUDA GPU but this run is on {torch.device(device)}; use {way_out} on the CPU"
        )


def effective_amp(amp: str | None, device: torch.device) -> str | None:
    """The autocast mode a run uses for the configured ``amp``: ``'bf16'`` on a CPU without
    native bf16 becomes ``None`` (fp32), with a warning."""
    if (
        amp == "bf16"
        and device.type == "cpu"
        and not cpu_has_native_bf16()
        and os.environ.get("RESDET_CPU_BF16") != "1"
    ):
        warnings.warn(
            "amp='bf16' ignored: this CPU has no native bf16 (no AVX512-BF16 or AMX), where bf16 "
            "autocast runs many times slower than fp32; running in fp32 (RESDET_CPU_BF16=1 forces bf16)",
            stacklevel=2,
        )
        return None
    return amp


def cpu_has_native_bf16() -> bool:
    """Whether this CPU has bf16 instructions (AVX512-BF16 or AMX tiles) for oneDNN's kernels."""
    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(bool(getattr(torch.cpu, name, lambda: False)()) for name in probes)


def autocast_context(device: torch.device, amp: str | None):
    """``torch.autocast`` for ``amp`` on ``device`` (a null context when ``amp`` is None)."""
    if amp is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=_DTYPES[amp])


def build_grad_scaler(device: torch.device, amp: str | None) -> torch.amp.GradScaler:
    """A grad scaler that is active only for fp16 on CUDA (a no-op otherwise)."""
    return torch.amp.GradScaler(device.type, enabled=(amp == "fp16" and device.type == "cuda"))
