"""Registries of resdet, built on mmengine's ``Registry`` (scope ``resdet``).

Every buildable component registers itself in one of these and is built from a
config dict such as ``dict(type='ResNet', depth=101)``. ``locations`` makes a
registry import the modules that fill it on first use, so ``MODELS.build(...)``
works without importing ``resdet.models`` by hand.

An unknown ``type`` raises a ``KeyError`` that names the registry, the bad name
and the closest registered names. ``COLLATE_FUNCTIONS`` holds functions: building one
returns the function itself (its other config keys bound as keyword arguments).
"""

from __future__ import annotations

import copy
import functools
import inspect
from typing import Any, Callable

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


def lookup(obj_type: Any, registry: Registry) -> Any:
    """The class (or function) a config's ``type`` names in ``registry``; a class or callable
    is returned as it is. An unknown name is an ``UnknownTypeError`` with the closest names."""
    if isinstance(obj_type, str):
        obj_cls = registry.get(obj_type)
        if obj_cls is None:
            hint = format_hint(_closest(obj_type, registry), paren=False)
            raise UnknownTypeError(
                f"'{obj_type}' is not registered in the resdet '{registry.name}' registry{hint} "
                f"(registered: {', '.join(sorted(registry.module_dict)) or 'none'})"
            )
        return obj_cls
    if inspect.isclass(obj_type) or callable(obj_type):
        return obj_type
    raise TypeError(f"'type' must be a str or a class, got {type(obj_type).__name__}")


def _config_args(cfg: Any, registry: Registry, default_args: dict | None) -> dict | None:
    """``cfg`` as a fresh dict of arguments with ``default_args`` filled in (``'type'``
    included); ``None`` when ``cfg`` is an already-built object."""
    if hasattr(cfg, "to_dict"):  # an mmengine ConfigDict
        cfg = cfg.to_dict()
    if not isinstance(cfg, dict):
        if cfg is None:
            raise TypeError(f"cannot build from None in the '{registry.name}' registry")
        return None
    if "type" not in cfg:
        raise KeyError(f"config for the '{registry.name}' registry has no 'type' key: {dict(cfg)}")
    args = dict(copy.deepcopy(dict(cfg)))
    for key, value in (default_args or {}).items():
        args.setdefault(key, value)
    return args


def build_function(cfg: Any, registry: Registry, default_args: dict | None = None) -> Callable:
    """The registered function ``cfg['type']`` names (a name alone, ``'det_collate'``, is
    enough), with the config's other keys bound as keyword arguments. A callable is
    returned unchanged."""
    if isinstance(cfg, str):
        cfg = dict(type=cfg)
    args = _config_args(cfg, registry, default_args)
    if args is None:
        return cfg
    fn = lookup(args.pop("type"), registry)
    check_arguments(fn, args, registry, check_missing=False)  # the call gives the rest
    return functools.partial(fn, **args) if args else fn


def build_from_cfg(cfg: Any, registry: Registry, default_args: dict | None = None) -> Any:
    """Build ``cfg['type']`` from ``registry`` with the other keys as kwargs.

    ``cfg`` may also be an already-built object, which is returned unchanged.
    """
    args = _config_args(cfg, registry, default_args)
    if args is None:
        return cfg
    obj_cls = lookup(args.pop("type"), registry)
    check_arguments(obj_cls, args, registry)
    try:
        return obj_cls(**args)
    except BadArgumentError as err:  # a nested component's bad key: say where it sits
        raise BadArgumentError(f"building {getattr(obj_cls, '__name__', obj_cls)}: {err}") from err
    except TypeError as err:  # name the component so a bad key is easy to find
        raise TypeError(
            f"building {getattr(obj_cls, '__name__', obj_cls)} from the '{registry.name}' registry: {err}"
        ) from err


def check_arguments(obj_cls: Any, args: dict, registry: Registry, check_missing: bool = True) -> None:
    """A config key the component does not take (a typo) or (with ``check_missing``) a
    required one it lacks is a ``ConfigError`` naming the component, the key and the
    accepted names."""
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
            raise BadArgumentError(
                f"{name} (the '{registry.name}' registry) has no argument '{key}'"
                f"{did_you_mean(key, accepted)}; "
                f"it takes: {', '.join(accepted) or 'no arguments'}"
            )
    missing = [p for p in accepted if params[p].default is inspect.Parameter.empty and p not in args]
    if missing and check_missing:
        raise BadArgumentError(f"{name} (the '{registry.name}' registry) needs {', '.join(repr(m) for m in missing)}")


def _registry(name: str, location: str, build_func: Callable = build_from_cfg) -> Registry:
    return Registry(name, build_func=build_func, scope="resdet", locations=[location])


MODELS = _registry("model", "resdet.models")
DATASETS = _registry("dataset", "resdet.data.datasets")
TRANSFORMS = _registry("transform", "resdet.data.transforms")
DATA_SAMPLERS = _registry("data sampler", "resdet.data.samplers")
COLLATE_FUNCTIONS = _registry("collate function", "resdet.data.collate", build_func=build_function)
METRICS = _registry("metric", "resdet.evaluation")
HOOKS = _registry("hook", "resdet.engine.hooks")
PARAM_SCHEDULERS = _registry("param scheduler", "resdet.engine.schedules")
