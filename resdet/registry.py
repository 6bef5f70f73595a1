"""Registries of resdet, built on mmengine's ``Registry`` (scope ``resdet``).

Every buildable component registers itself in one of these and is built from a
config dict such as ``dict(type='ResNet', depth=101)``. ``locations`` makes a
registry import the modules that fill it on first use, so ``MODELS.build(...)``
works without importing ``resdet.models`` by hand.

An unknown ``type`` raises a ``KeyError`` that names the registry, the bad name
and the closest registered names.
"""
from __future__ import annotations

import copy
import inspect
from typing import Any

from mmengine.registry import Registry

from .utils.errors import ConfigError
from .utils.hints import close_names, did_you_mean, format_hint


class BadArgumentError(ConfigError, TypeError):
    """A config key the component does not take, or a required one it lacks."""


class UnknownTypeError(ConfigError, KeyError):
    """A config ``type`` that is not registered (a ``KeyError`` too, for older handlers)."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


def _closest(name: str, registry: Registry) -> list[str]:
    names = sorted(registry.module_dict.keys())
    close = close_names(name, names, n=3, cutoff=0.5)
    if not close:  # case-insensitive prefix match catches 'resnet' -> 'ResNet'
        close = [n for n in names if n.lower().startswith(name.lower()[:3])][:3]
    return close


def build_from_cfg(cfg: Any, registry: Registry, default_args: dict | None = None) -> Any:
    """Build ``cfg['type']`` from ``registry`` with the other keys as kwargs.

    ``cfg`` may also be an already-built object, which is returned unchanged.
    """
    if hasattr(cfg, "to_dict"):  # an mmengine ConfigDict
        cfg = cfg.to_dict()
    if not isinstance(cfg, dict):
        if cfg is None:
            raise TypeError(f"cannot build from None in the '{registry.name}' registry")
        return cfg
    if "type" not in cfg:
        raise KeyError(f"config for the '{registry.name}' registry has no 'type' key: {dict(cfg)}")
    args = dict(copy.deepcopy(dict(cfg)))
    if default_args:
        for key, value in default_args.items():
            args.setdefault(key, value)
    obj_type = args.pop("type")
    if isinstance(obj_type, str):
        obj_cls = registry.get(obj_type)
        if obj_cls is None:
            hint = format_hint(_closest(obj_type, registry), paren=False)
            raise UnknownTypeError(
                f"'{obj_type}' is not registered in the resdet '{registry.name}' registry{hint} "
                f"(registered: {', '.join(sorted(registry.module_dict)) or 'none'})")
    elif inspect.isclass(obj_type) or callable(obj_type):
        obj_cls = obj_type
    else:
        raise TypeError(f"'type' must be a str or a class, got {type(obj_type).__name__}")
    _check_arguments(obj_cls, args, registry)
    try:
        return obj_cls(**args)
    except BadArgumentError as err:  # a nested component's bad key: say where it sits
        raise BadArgumentError(f"building {getattr(obj_cls, '__name__', obj_cls)}: {err}") from err
    except TypeError as err:  # name the component so a bad key is easy to find
        raise TypeError(f"building {getattr(obj_cls, '__name__', obj_cls)} "
                        f"from the '{registry.name}' registry: {err}") from err


def _check_arguments(obj_cls: Any, args: dict, registry: Registry) -> None:
    """A config key the component does not take (a typo) or a required one it lacks is a
    ``ConfigError`` naming the component, the key and the accepted names."""
    try:
        signature = inspect.signature(obj_cls)
    except (TypeError, ValueError):  # builtins without a signature: let the call decide
        return
    params = signature.parameters
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return
    name = getattr(obj_cls, "__name__", str(obj_cls))
    accepted = [p for p in params if params[p].kind in (params[p].POSITIONAL_OR_KEYWORD, params[p].KEYWORD_ONLY)]
    for key in args:
        if key not in params:
            raise BadArgumentError(f"{name} (the '{registry.name}' registry) has no argument '{key}'"
                                   f"{did_you_mean(key, accepted)}; "
                              f"it takes: {', '.join(accepted) or 'no arguments'}")
    missing = [p for p in accepted if params[p].default is inspect.Parameter.empty and p not in args]
    if missing:
        raise BadArgumentError(f"{name} (the '{registry.name}' registry) needs {', '.join(repr(m) for m in missing)}")


def _registry(name: str, location: str) -> Registry:
    reg = Registry(name, build_func=build_from_cfg, scope="resdet", locations=[location])
    return reg


MODELS = _registry("model", "resdet.models")
DATASETS = _registry("dataset", "resdet.data.datasets")
TRANSFORMS = _registry("transform", "resdet.data.transforms")
DATA_SAMPLERS = _registry("data sampler", "resdet.data.samplers")
COLLATE_FUNCTIONS = _registry("collate function", "resdet.data.collate")
METRICS = _registry("metric", "resdet.evaluation")
HOOKS = _registry("hook", "resdet.engine.hooks")
PARAM_SCHEDULERS = _registry("param scheduler", "resdet.engine.schedules")
