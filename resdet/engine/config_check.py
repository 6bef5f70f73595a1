"""Checks of the engine's config values before anything is built, so that a wrong value
(``train_cfg.max_iters=abc``, ``train_dataloader.batch_size=0``, ``optimizer.lr=-1``) ends in
one ``ConfigError`` naming the key, the value and what is allowed, not in a traceback from
deep inside the loop."""
from __future__ import annotations

from typing import Any, Callable

import torch

from ..data.loader import check_loader_config  # noqa: F401  (re-exported: evaluate_model uses it)
from ..utils.config_values import bool_value as _bool
from ..utils.config_values import check_section as _check_section
from ..utils.config_values import choice_value as _choice
from ..utils.config_values import int_value as _int
from ..utils.config_values import number_value as _number
from ..utils.errors import ConfigError

_AMP = (None, "bf16", "fp16")


def _clip_grad(value: Any) -> str | None:
    if value is None or (not isinstance(value, bool) and isinstance(value, (int, float)) and value > 0):
        return None
    if isinstance(value, dict) and "max_norm" in value and _number()(value["max_norm"]) is None:
        return None
    return "None, a max norm > 0, or dict(max_norm=..., norm_type=...)"


def _compile(value: Any) -> str | None:
    if isinstance(value, bool) or (isinstance(value, (list, tuple)) and value
                                   and all(isinstance(v, str) and v for v in value)):
        return None
    return "True, False, or a list of submodule names (e.g. ['backbone', 'neck'])"


TRAIN_CFG_CHECKS: dict[str, Callable[[Any], str | None]] = {
    "max_iters": _int(1, optional=True), "max_epochs": _int(1, optional=True),
    "val_interval": _int(0), "checkpoint_interval": _int(0),  # 0: only at the end
    "keep_last": _int(0), "log_interval": _int(1),
    "amp": _choice(*_AMP), "clip_grad": _clip_grad, "sync_bn": _bool, "seed": _int(0),
    "deterministic": _bool, "channels_last": _bool, "find_unused_parameters": _bool,
    "cudnn_benchmark": _bool, "tensorboard": _bool, "threads": _int(1, optional=True),
    "compile": _compile,
}
OPTIMIZER_CHECKS: dict[str, Callable[[Any], str | None]] = {
    "lr": _number(), "momentum": _number(positive=False), "weight_decay": _number(positive=False),
}


def check_amp_device(amp: Any, device: torch.device | str, key: str = "train_cfg.amp") -> None:
    """fp16 autocast needs a CUDA GPU (on a CPU it is neither supported by every kernel nor
    faster); refused for training and evaluation alike, before anything is built."""
    if amp == "fp16" and torch.device(device).type != "cuda":
        way_out = "--amp bf16" if key.startswith("--") else f"--cfg-options {key}=bf16 (or None)"
        raise ConfigError(f"{key}='fp16' needs a CUDA GPU but this run is on {torch.device(device)}; "
                          f"use {way_out} on the CPU")


def check_engine_config(train_cfg: dict | None, train_dataloader: Any, val_dataloader: Any = None,
                        optimizer: Any = None, device: torch.device | str | None = None) -> None:
    """Raise ``ConfigError`` for the first value of the wrong type or range (``device``: the
    training device, against which ``train_cfg.amp`` is checked)."""
    _check_section("train_cfg", train_cfg, TRAIN_CFG_CHECKS)
    if train_cfg and train_cfg.get("max_iters") is None and train_cfg.get("max_epochs") is None:
        raise ConfigError("train_cfg needs max_iters (or max_epochs), e.g. --cfg-options train_cfg.max_iters=1000")
    if train_cfg and device is not None:
        check_amp_device(train_cfg.get("amp"), device)
    check_loader_config("train_dataloader", train_dataloader)
    check_loader_config("val_dataloader", val_dataloader)
    _check_section("optimizer", optimizer, OPTIMIZER_CHECKS)
