"""Checks of the engine's config values before anything is built, so that a wrong value
(``train_cfg.max_iters=abc``, ``train_dataloader.batch_size=0``, ``optimizer.lr=-1``) ends in
one ``ConfigError`` naming the key, the value and what is allowed, not in a traceback from
deep inside the loop."""
from __future__ import annotations

import difflib
import math
from typing import Any, Callable

import torch

from ..data.loader import LOADER_KEYS
from ..utils.errors import ConfigError

_AMP = (None, "bf16", "fp16")


def _int(minimum: int, optional: bool = False) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        if value is None and optional:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            return f"an integer >= {minimum}" + (" or None" if optional else "")
        return None
    return check


def _number(positive: bool = True, optional: bool = False) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        if value is None and optional:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                or (positive and not value > 0):  # nan and inf never train
            return ("a finite number > 0" if positive else "a finite number") + (" or None" if optional else "")
        return None
    return check


def _clip_grad(value: Any) -> str | None:
    if value is None or (not isinstance(value, bool) and isinstance(value, (int, float)) and value > 0):
        return None
    if isinstance(value, dict) and "max_norm" in value and _number()(value["max_norm"]) is None:
        return None
    return "None, a max norm > 0, or dict(max_norm=..., norm_type=...)"


def _bool(value: Any) -> str | None:
    return None if isinstance(value, bool) else "True or False"


def _compile(value: Any) -> str | None:
    if isinstance(value, bool) or (isinstance(value, (list, tuple)) and value
                                   and all(isinstance(v, str) and v for v in value)):
        return None
    return "True, False, or a list of submodule names (e.g. ['backbone', 'neck'])"


def _fraction(value: Any) -> str | None:
    if value is None or (not isinstance(value, bool) and isinstance(value, (int, float)) and 0 <= value <= 1):
        return None
    return "a number in [0, 1] or None"


def _choice(*allowed: Any) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        return None if value in allowed else "one of " + ", ".join(repr(a) for a in allowed)
    return check


TRAIN_CFG_CHECKS: dict[str, Callable[[Any], str | None]] = {
    "max_iters": _int(1, optional=True), "max_epochs": _int(1, optional=True),
    "val_interval": _int(0), "checkpoint_interval": _int(0),  # 0: only at the end
    "keep_last": _int(0), "log_interval": _int(1),
    "amp": _choice(*_AMP), "clip_grad": _clip_grad, "sync_bn": _bool, "seed": _int(0),
    "deterministic": _bool, "channels_last": _bool, "find_unused_parameters": _bool,
    "cudnn_benchmark": _bool, "tensorboard": _bool, "threads": _int(1, optional=True),
    "compile": _compile,
}
LOADER_CHECKS: dict[str, Callable[[Any], str | None]] = {
    "batch_size": _int(1), "num_workers": _int(0), "prefetch_factor": _int(1),
    "pin_memory": _bool, "persistent_workers": _bool, "max_skipped_fraction": _fraction,
}
OPTIMIZER_CHECKS: dict[str, Callable[[Any], str | None]] = {
    "lr": _number(), "momentum": _number(positive=False), "weight_decay": _number(positive=False),
}


def _check_section(section: str, values: Any, checks: dict[str, Callable[[Any], str | None]]) -> None:
    if values is None:
        return
    if not isinstance(values, dict):
        raise ConfigError(f"{section} must be a dict, got {type(values).__name__} {values!r}")
    if checks is LOADER_CHECKS:
        unknown = sorted(set(values) - set(LOADER_KEYS))
        if unknown:
            close = difflib.get_close_matches(unknown[0], list(LOADER_KEYS), n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise ConfigError(f"unknown {section} keys {unknown}{hint}; allowed keys: {', '.join(LOADER_KEYS)}")
    for key, check in checks.items():
        if key in values:
            wanted = check(values[key])
            if wanted is not None:
                raise ConfigError(f"{section}.{key} = {values[key]!r} ({type(values[key]).__name__}) is "
                                  f"not valid: expected {wanted}")


def check_loader_config(section: str, loader: Any) -> None:
    """Check a dataloader config (``train_dataloader``, ``test_dataloader``, ...): unknown keys
    and values of the wrong type or range (``num_workers=-1``, ``batch_size=0``,
    ``pin_memory='yes'``) are a ``ConfigError`` naming ``SECTION.KEY``, not torch's words
    from inside ``DataLoader``."""
    _check_section(section, loader.to_dict() if hasattr(loader, "to_dict") else loader, LOADER_CHECKS)


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
