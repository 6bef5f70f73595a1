"""Shapes that modules publish, and the one rule that fills a config from them.

Backbones and necks publish ``output_shape() -> {name: ShapeSpec(channels, stride)}``, one
entry per feature map their ``forward`` returns; a box head publishes the per-RoI features it
makes (``stride=None``: they live on the RoI's grid, not the image's). A detector reads them and
completes its heads' configs (``resdet.models.detectors.shape_inference``), so a config states
each number once: a value it leaves out is derived, a value it states must agree.
"""
from __future__ import annotations

import inspect
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ...registry import MODELS
from ...utils.config import ConfigError


@dataclass(frozen=True)
class ShapeSpec:
    """Shape of one output, per image: ``channels`` of an ``N x channels x H x W`` feature map
    whose cells are ``stride`` input pixels apart (``None``: not on the image's grid, or unknown)."""

    channels: int
    stride: int | None = None


def same_value(stated: Any, derived: Any) -> bool:
    """Config equality: numbers up to float rounding (``1.0 / 16 == 0.0625``), lists == tuples."""
    if isinstance(stated, (list, tuple)) and isinstance(derived, (list, tuple)):
        return len(stated) == len(derived) and all(same_value(a, b) for a, b in zip(stated, derived))
    numbers = (int, float)
    if isinstance(stated, numbers) and isinstance(derived, numbers) and not isinstance(stated, bool):
        return math.isclose(stated, derived, rel_tol=1e-9, abs_tol=0.0)
    return stated == derived


def fill_derived(cfg: dict, name: str, derived: Any, key: str, reason: str) -> None:
    """Set ``cfg[name] = derived`` when the config leaves it out; raise ``ConfigError`` naming the
    key and both values when it states another value.

    ``key`` is the config path of ``cfg`` (``'model.rpn.head'``); ``reason`` says where the
    derived value comes from (``"the backbone's output 'c4' has 1024 channels"``).
    """
    if name not in cfg:
        cfg[name] = derived
    elif not same_value(cfg[name], derived):
        raise ConfigError(f"{key}.{name} = {cfg[name]!r} but {reason}; leave {key}.{name} out of "
                          f"the config to use the derived value {derived!r}")


def config_class(cfg: Mapping) -> type | None:
    """The class a config dict builds (``MODELS`` lookup of its ``type``), ``None`` if unknown."""
    obj_type = cfg.get("type")
    return MODELS.get(obj_type) if isinstance(obj_type, str) else obj_type


def takes_arg(cfg: Mapping, name: str) -> bool:
    """Whether the class ``cfg`` builds has a constructor argument ``name``."""
    cls = config_class(cfg)
    return cls is not None and name in inspect.signature(cls).parameters


def arg_or_default(cfg: Mapping, name: str, cls: type | None = None) -> Any:
    """``cfg[name]``, else the default of that argument of ``cls`` (default: the class ``cfg`` builds)."""
    if name in cfg:
        return cfg[name]
    cls = cls or config_class(cfg)
    parameter = inspect.signature(cls).parameters.get(name) if cls is not None else None
    if parameter is None or parameter.default is inspect.Parameter.empty:
        raise ConfigError(f"config of type {cfg.get('type')!r} needs '{name}'")
    return parameter.default
