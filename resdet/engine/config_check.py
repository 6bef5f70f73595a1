"""Checks of the engine's config values before anything is built, so that a wrong value
(``train_cfg.max_iters=abc``, ``train_dataloader.batch_size=0``, ``optimizer.lr=-1``) ends in
one ``ConfigError`` naming the key, the value and what is allowed, not in a traceback from
deep inside the loop. The ``train_cfg`` keys and their checks are ``TrainConfig``'s."""

from __future__ import annotations

from typing import Any, Callable

import torch

from ..data.loader import check_loader_config  # noqa: F401  (re-exported: evaluate_model uses it)
from ..utils.config_values import check_section
from ..utils.config_values import number_value as _number
from .amp import check_amp_device  # noqa: F401  (re-exported: evaluate_model uses it)
from .train_config import TrainConfig

OPTIMIZER_CHECKS: dict[str, Callable[[Any], str | None]] = {
    "lr": _number(),
    "momentum": _number(positive=False),
    "weight_decay": _number(positive=False),
}


def check_engine_config(
    train_cfg: Any,
    train_dataloader: Any,
    val_dataloader: Any = None,
    optimizer: Any = None,
    device: torch.device | str | None = None,
    config_class: type[TrainConfig] = TrainConfig,
) -> TrainConfig | None:
    """Raise ``ConfigError`` for the first unknown key or value of the wrong type or range;
    return the checked ``train_cfg`` (``None`` when there is none). ``device``: the training
    device, against which ``train_cfg.amp`` is checked."""
    checked = None if train_cfg is None else config_class.from_dict(train_cfg, device=device)
    check_loader_config("train_dataloader", train_dataloader)
    check_loader_config("val_dataloader", val_dataloader)
    check_section("optimizer", optimizer, OPTIMIZER_CHECKS)
    return checked
