"""``init_model``: build a model from a config file or a short name, load weights, eval mode."""

from __future__ import annotations

import copy
import itertools
import os
import warnings
import weakref

import torch
from mmengine.config import Config
from torch import nn

from ..models.converters import load_weights
from ..models.detectors import has_fast_path, optimize_for_inference
from ..registry import MODELS
from ..utils.config import ConfigError, load_config, merge_options, resolve_config_path
from ..utils.device import resolve_device

_RESNET_DEPTHS = (18, 34, 50, 101, 152)
_CIFAR_DEPTHS = (20, 32, 44, 56, 110, 1202)
_PLAIN_CIFAR_DEPTHS = (20, 32, 44, 56, 110)
CIFAR10_MEAN = (125.307, 122.950, 113.865)  # RGB, 0..255
CIFAR10_STD = (62.993, 62.089, 66.705)


def _short_names() -> dict[str, dict]:
    names: dict[str, dict] = {}
    for depth in _RESNET_DEPTHS:
        names[f"resnet{depth}"] = dict(
            type="ImageClassifier",
            num_classes=1000,
            backbone=dict(type="ResNet", depth=depth, shortcut="B", stride_in_1x1=True),
        )
    for depth in (18, 34):
        names[f"plain{depth}"] = dict(
            type="ImageClassifier",
            num_classes=1000,
            backbone=dict(type="ResNet", depth=depth, plain=True, stride_in_1x1=True),
        )
    for prefix, depths, plain in (("resnet", _CIFAR_DEPTHS, False), ("plain", _PLAIN_CIFAR_DEPTHS, True)):
        for depth in depths:
            names[f"{prefix}{depth}_cifar"] = dict(
                type="ImageClassifier",
                num_classes=10,
                mean=CIFAR10_MEAN,
                std=CIFAR10_STD,
                backbone=dict(type="CifarResNet", depth=depth, shortcut="A", plain=plain),
            )
    for depth in (16, 19):
        for batch_norm in (False, True):
            names[f"vgg{depth}" + ("_bn" if batch_norm else "")] = dict(
                type="ImageClassifier", num_classes=1000, backbone=dict(type="VGG", depth=depth, batch_norm=batch_norm)
            )
    return names


SHORT_NAMES: dict[str, dict] = _short_names()


def default_input_shape(model_cfg: dict) -> tuple[int, int, int]:
    """``(3, 32, 32)`` for CIFAR nets, ``(3, 224, 224)`` otherwise (paper's input sizes)."""
    backbone = model_cfg.get("backbone", {})
    is_cifar = isinstance(backbone, dict) and backbone.get("type") == "CifarResNet"
    return (3, 32, 32) if is_cifar else (3, 224, 224)


def get_config(config: str | dict | Config, cfg_options: dict | None = None) -> Config:
    """A ``Config`` with a ``model`` key from a config path / name, a short model name
    (``resnet50``, ``resnet110_cifar``, ``vgg16_bn``, ...), a model dict or a ``Config``."""
    if isinstance(config, Config):
        cfg = copy.deepcopy(config)
    elif isinstance(config, dict):
        cfg = Config(dict(model=copy.deepcopy(config)) if "type" in config else copy.deepcopy(config))
    elif not isinstance(config, str):
        raise TypeError(f"config must be a path, a short model name, a dict or a Config, got {type(config).__name__}")
    elif os.path.isfile(config):
        cfg = load_config(config)
    elif config in SHORT_NAMES:
        cfg = Config(dict(model=copy.deepcopy(SHORT_NAMES[config])))
    else:
        try:
            resolve_config_path(config)
        except FileNotFoundError:
            raise ConfigError(
                f"unknown model {config!r}: not a config file and not a short name; "
                f"allowed short names: {', '.join(SHORT_NAMES)}"
            ) from None
        cfg = load_config(config)
    if cfg_options:
        merge_options(cfg, cfg_options)
    if "model" not in cfg:
        raise ConfigError(f"config {config!r} has no 'model' key")
    return cfg


def init_model(
    config: str | dict | Config,
    checkpoint: str | None = None,
    device: str | torch.device = "cpu",
    cfg_options: dict | None = None,
    strict: bool = True,
    fast: bool | None = None,
    compile: bool | None = None,
) -> nn.Module:
    """Build ``cfg.model`` from the MODELS registry, load ``checkpoint`` if given, and return
    the model in eval mode on ``device``, with its checkpoint's layout: ``state_dict()`` saves a
    checkpoint ``init_model`` reads back, and ``model.train()`` fine-tunes it.

    ``config`` is a config file (path, or a name in ``configs/``), a short name (see
    ``SHORT_NAMES``: ImageNet nets have 1000 classes and the paper's ``stride_in_1x1=True``,
    CIFAR nets 10 classes), a model dict or a ``Config``. ``checkpoint`` may be a resdet
    checkpoint, a bare / wrapped state_dict, a public file by name (``torchvision://NAME``, e.g.
    ``init_model("frcnn_r50_fpn_tv", "torchvision://fasterrcnn_resnet50_fpn_coco")``: downloaded,
    verified and converted once into torch's hub cache; ``resdet weights --list``), or a
    torchvision classifier (converted; a
    torchvision ResNet-50/101/152 switches the model to ``stride_in_1x1=False`` with a
    warning). The config is kept as ``model.cfg``; ``device='meta'`` builds a shape-only model.

    The inference fast path (frozen BN folded into the convolutions, ``channels_last``,
    optionally compiled) is a separate step, ``optimize_for_inference(model)``, which
    ``inference_detector``, ``resdet eval``, ``demo`` and ``export`` apply themselves.
    ``fast`` and ``compile`` are deprecated: ``fast=True`` / ``compile=True`` still return the
    optimised detector (``fast_path(model, inplace=True, compile=compile)``), with a
    ``FutureWarning``.
    """
    device = resolve_device(device)  # a bad or missing --device: one line, before anything is built
    cfg = get_config(config, cfg_options)
    model_cfg = cfg.model.to_dict() if hasattr(cfg.model, "to_dict") else dict(cfg.model)
    if torch.device(device).type == "meta":
        with torch.device("meta"):
            model = MODELS.build(model_cfg)
    else:
        model = MODELS.build(model_cfg)
    if checkpoint is not None:
        report = load_weights(model, checkpoint, strict=strict)
        layout = getattr(getattr(model, "backbone", None), "stride_in_1x1", None)
        if isinstance(layout, bool) and isinstance(cfg.model.get("backbone"), dict):
            cfg.model.backbone.stride_in_1x1 = layout  # keep the config true to the loaded layout
        model.checkpoint_report = report
    model.cfg = cfg
    model = model.to(device).eval()
    if fast is not None or compile is not None:
        warnings.warn(
            "init_model(fast=..., compile=...) is deprecated: init_model returns the model with its "
            "checkpoint's layout; call resdet.apis.optimize_for_inference(model, compile=...) for "
            "the inference fast path",
            FutureWarning,
            stacklevel=2,
        )
        if (fast or compile) and torch.device(device).type != "meta":
            model = fast_path(model, inplace=True, compile=compile)
    return model


def fast_path(model: nn.Module, *, inplace: bool = False, compile: bool | None = False) -> nn.Module:
    """The model an inference entry point runs for ``model``: a Faster / Mask R-CNN through
    ``optimize_for_inference`` (a copy unless ``inplace``; one already optimised as it is),
    any other model (classifiers, localizers) as it is.

    The copy is kept for the next call while ``model`` is unchanged (same tensors, no in-place
    update of any weight, same plain settings such as ``roi_heads.score_thresh``), so calling
    ``inference_detector(model, image)`` in a loop folds once, not at every image."""
    if not has_fast_path(model):
        return model
    if inplace:
        return optimize_for_inference(model, inplace=True, compile=compile)
    token = _state_token(model)
    cached = _FAST_COPIES.get(model)
    if cached is not None and cached[0] == token and not compile:
        return cached[1]
    optimized = optimize_for_inference(model, compile=compile)
    _FAST_COPIES[model] = (token, optimized)
    return optimized


# model -> (its state token, its optimised copy); an entry goes with its model
_FAST_COPIES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_PLAIN = (bool, int, float, str, type(None))


def _state_token(model: nn.Module) -> tuple:
    """What the optimised copy depends on: every tensor (identity and in-place version) and the
    plain settings of every module (thresholds, sizes, flags other than ``training``)."""
    # an inference tensor (made under torch.inference_mode) has no version counter
    tensors = tuple(
        (id(t), -1 if t.is_inference() else t._version) for t in itertools.chain(model.parameters(), model.buffers())
    )
    settings = tuple(
        (name, key, repr(value))
        for name, module in model.named_modules()
        for key, value in vars(module).items()
        if key != "training"
        and not key.startswith("_")
        and (isinstance(value, _PLAIN) or isinstance(value, (tuple, list, dict)))
    )
    return tensors, settings
