"""Optimizer construction from the ``optimizer`` config dict.

``dict(type='SGD', lr=0.1, momentum=0.9, weight_decay=1e-4, norm_bias_decay=True)``: the
paper's SGD. ``norm_bias_decay=False`` puts normalisation-layer parameters and biases in a
second param group without weight decay. ``type`` may name any ``torch.optim`` optimizer
(``'SGD'``, ``'AdamW'``, ...); the remaining keys are its keyword arguments. Optimizers that
take ``foreach`` get ``foreach=True`` unless the config says otherwise (or asks for ``fused``).
"""

from __future__ import annotations

import inspect

import torch
from torch import nn

from ..models.backbones.norm import is_norm
from ..utils.errors import ConfigError
from ..utils.hints import did_you_mean

OPTIMIZER_DEFAULTS = {"SGD": dict(momentum=0.9, weight_decay=1e-4)}


def split_decay_params(model: nn.Module) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
    """``(decay, no_decay)``: no_decay holds norm-layer parameters and every bias."""
    decay, no_decay, seen = [], [], set()
    for module in model.modules():
        for name, param in module.named_parameters(recurse=False):
            if not param.requires_grad or id(param) in seen:
                continue
            seen.add(id(param))
            (
                no_decay
                if is_norm(module) or name == "bias" or isinstance(module, (nn.GroupNorm, nn.LayerNorm))
                else decay
            ).append(param)
    return decay, no_decay


def build_optimizer(model: nn.Module, cfg: dict | None = None) -> torch.optim.Optimizer:
    """Build the optimizer for the trainable parameters of ``model``."""
    cfg = dict(cfg or dict(type="SGD", lr=0.1))
    opt_type = cfg.pop("type", "SGD")
    opt_cls = getattr(torch.optim, opt_type, None)
    if not (isinstance(opt_cls, type) and issubclass(opt_cls, torch.optim.Optimizer)):
        names = sorted(
            n
            for n in dir(torch.optim)
            if isinstance(getattr(torch.optim, n), type)
            and issubclass(getattr(torch.optim, n), torch.optim.Optimizer)
            and n != "Optimizer"
        )
        hint = did_you_mean(opt_type, names)
        raise ConfigError(
            f"optimizer.type '{opt_type}' is not a torch.optim optimizer{hint}; allowed values: {', '.join(names)}"
        )
    if "lr" not in cfg:
        raise ConfigError(f"optimizer config needs 'lr' (got keys {sorted(cfg)})")
    for key, value in OPTIMIZER_DEFAULTS.get(opt_type, {}).items():
        cfg.setdefault(key, value)
    if "foreach" in inspect.signature(opt_cls.__init__).parameters and not cfg.get("fused"):
        # the multi-tensor update: one kernel per step for all parameters instead of a Python
        # loop of small ones (torch picks it by itself on CUDA only); same arithmetic
        cfg.setdefault("foreach", True)
    norm_bias_decay = bool(cfg.pop("norm_bias_decay", True))
    if norm_bias_decay:
        params = [p for p in model.parameters() if p.requires_grad]
        groups = [{"params": params}]
    else:
        decay, no_decay = split_decay_params(model)
        groups = [{"params": decay}, {"params": no_decay, "weight_decay": 0.0}]
        groups = [g for g in groups if g["params"]]
    if not any(g["params"] for g in groups):
        raise ValueError(f"{type(model).__name__} has no trainable parameters")
    try:
        return opt_cls(groups, **cfg)
    except TypeError as err:
        raise TypeError(f"building optimizer {opt_type} from {cfg}: {err}") from err
