"""The check that the model predicts as many classes as the training set has."""

from __future__ import annotations

from typing import Any

from torch import nn

from ..utils.errors import ConfigError


def _num_classes_key(model_cfg: dict) -> str:
    """The config key that sets the model's class count (the outermost one present)."""
    for path in (("num_classes",), ("roi_heads", "num_classes"), ("head", "num_classes")):
        node: Any = model_cfg
        for part in path:
            node = node.get(part) if isinstance(node, dict) else None
        if node is not None:
            return "model." + ".".join(path)
    return "model.num_classes"


def check_num_classes(model: nn.Module, dataset: Any, model_cfg: dict) -> None:
    """Stop before training when the model predicts another number of classes than the
    training set has (a wrong ``num_classes`` would otherwise train without a word)."""
    model_classes = getattr(model, "num_classes", None)
    data_classes = getattr(dataset, "num_classes", None)
    if data_classes is None and isinstance(getattr(dataset, "class_names", None), (list, tuple)):
        data_classes = len(dataset.class_names)
    if not isinstance(model_classes, int) or not isinstance(data_classes, int) or model_classes == data_classes:
        return
    names = list(getattr(dataset, "class_names", None) or [])
    shown = f" ({', '.join(map(str, names[:10]))}{', ...' if len(names) > 10 else ''})" if names else ""
    raise ConfigError(
        f"{_num_classes_key(model_cfg)} = {model_classes} but the training set "
        f"({type(dataset).__name__}) has {data_classes} classes{shown}; set "
        f"{_num_classes_key(model_cfg)}={data_classes} (e.g. --cfg-options "
        f"{_num_classes_key(model_cfg)}={data_classes}) or fix the dataset's classes"
    )
