"""Shapes that modules publish and hand forward, and the one rule a component derives with.

Backbones and necks publish ``output_shape() -> {name: ShapeSpec(channels, stride)}``, one entry
per feature map their ``forward`` returns; a pooler publishes its per-RoI features
(``ShapeSpec(channels, size=S)``), a box head the features it makes (``stride=None``: they live on
the RoI's grid, not the image's). A parent hands each child the shapes of its input
(``input_shape=``) and the child derives its own channels, strides, scales and sizes with
``derive``: a value the config leaves out (``None``) is derived, a value it states must agree,
else ``ShapeError`` names the key and both values. ``build_part`` builds a child and prefixes the
child's key to such an error, so it reaches the user as ``model.rpn.head.in_channels = ...``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from torch import nn

from ...registry import MODELS
from ...utils.config import ConfigError

# a stride or scale measured on every batch (``padded size // feature size``, torchvision's rule)
# instead of a fixed number: ``AnchorGenerator(strides=PER_BATCH)``, ``RoIPooler(spatial_scale=PER_BATCH)``
PER_BATCH = "per_batch"


@dataclass(frozen=True)
class ShapeSpec:
    """Shape of one output, per image: ``channels`` of an ``N x channels x H x W`` feature map
    whose cells are ``stride`` input pixels apart (``None``: not on the image's grid, or unknown);
    per-RoI features (``R x channels x size x size``) give their ``size``.

    ``publisher`` and ``name`` only word error messages (``label``): they never compare.
    """

    channels: int
    stride: int | None = None
    size: int | None = None
    publisher: str = field(default="", compare=False, repr=False)
    name: str | None = field(default=None, compare=False, repr=False)

    def has(self, fact: str) -> str:
        """``"the backbone's output 'c4' has stride 16"``, ``"the box pooler's features have 256 channels"``."""
        if not self.publisher:
            return f"the input {self.name!r} has {fact}" if self.name else f"the input has {fact}"
        if self.name is None:
            return f"the {self.publisher}'s features have {fact}"
        return f"the {self.publisher}'s output {self.name!r} has {fact}"


Shapes = Mapping[str, ShapeSpec]


def label(shapes: Shapes, publisher: str) -> dict[str, ShapeSpec]:
    """``shapes`` named for messages as the outputs of ``publisher`` (``'backbone'``, ``'neck'``)."""
    return {name: replace(spec, publisher=publisher, name=name) for name, spec in shapes.items()}


def published_shapes(module: nn.Module, publisher: str) -> dict[str, ShapeSpec] | None:
    """``module.output_shape()`` labelled as ``publisher``'s, or ``None`` for a module that
    publishes none (its consumers' configs must then state every value)."""
    output_shape = getattr(module, "output_shape", None)
    return label(output_shape(), publisher) if callable(output_shape) else None


class ShapeError(ConfigError):
    """A config value that does not fit the shapes its component was handed. ``key`` is the path
    of the value; each parent that built the component prefixes its own key (``build_part``)."""

    def __init__(self, key: str, template: str) -> None:
        super().__init__(key, template)
        self.key, self.template = key, template

    def __str__(self) -> str:  # the template names the key as {key}, once or more
        return self.template.replace("{key}", self.key)


def derive(name: str, stated: Any, derived: Any, reason: str) -> Any:
    """The value of the argument ``name``: ``derived`` when the config leaves it out
    (``stated is None``); the stated value when nothing is derived (``derived is None``) or when
    both agree; else ``ShapeError`` naming the key and both values. ``reason`` says where the
    derived value comes from (``"the backbone's output 'c4' has 1024 channels"``)."""
    if stated is None or derived is None:
        return derived if stated is None else stated
    if not same_value(stated, derived):
        raise ShapeError(
            name,
            f"{{key}} = {stated!r} but {reason}; leave {{key}} out of the config to use the derived value {derived!r}",
        )
    return stated


def derive_channels(stated: int | None, input_shape: ShapeSpec | None, default: int) -> int:
    """``in_channels`` of a component that reads one input: derived from ``input_shape``;
    without one the stated value, else ``default``."""
    if input_shape is None:
        return default if stated is None else stated
    channels = input_shape.channels
    return derive("in_channels", stated, channels, input_shape.has(f"{channels} channels"))


def same_value(stated: Any, derived: Any) -> bool:
    """Config equality: numbers up to float rounding (``1.0 / 16 == 0.0625``), lists == tuples."""
    if isinstance(stated, (list, tuple)) and isinstance(derived, (list, tuple)):
        return len(stated) == len(derived) and all(same_value(a, b) for a, b in zip(stated, derived))
    numbers = (int, float)
    if isinstance(stated, numbers) and isinstance(derived, numbers) and not isinstance(stated, bool):
        return math.isclose(stated, derived, rel_tol=1e-9, abs_tol=0.0)
    return stated == derived


def select_inputs(shapes: Shapes, names: Sequence[str], key: str) -> dict[str, ShapeSpec]:
    """The shapes of the outputs ``names`` a component reads (its argument ``key``)."""
    missing = [name for name in names if name not in shapes]
    if missing:
        publisher = next((s.publisher for s in shapes.values() if s.publisher), "")
        owner = f"the {publisher}" if publisher else "the input"
        raise ShapeError(
            key, f"{{key}} = {tuple(names)} but {owner} has no output {missing}; its outputs: {', '.join(shapes)}"
        )
    return {name: shapes[name] for name in names}


def describe_outputs(shapes: Shapes, fact: str) -> str:
    """``"the backbone's outputs ('c2', 'c3') have strides (4, 8)"``."""
    publisher = next((s.publisher for s in shapes.values() if s.publisher), "")
    owner = f"the {publisher}'s outputs" if publisher else "the inputs"
    return f"{owner} {tuple(shapes)} have {fact}"


def shared_channels(shapes: Shapes, key: str) -> int:
    """The channels of ``shapes`` that one component reads all of: equal on every level."""
    channels = [spec.channels for spec in shapes.values()]
    if len(set(channels)) > 1:
        raise ShapeError(
            key,
            f"{{key}}: {describe_outputs(shapes, f'{channels} channels')}, but one "
            "component reads them all; pick outputs of equal width (e.g. a neck's)",
        )
    return channels[0]


def build_part(cfg: dict | nn.Module, key: str, **handed_down: Any) -> nn.Module:
    """Build a child from its config with what its parent hands down (``input_shape=...``,
    always taken by the child); a ``ShapeError`` inside gets ``key`` prefixed. A module is used
    as given: it was built by the caller, who handed it its shapes."""
    if not isinstance(cfg, Mapping):
        return MODELS.build(cfg)
    try:
        return MODELS.build(dict(cfg), default_args=handed_down)
    except ShapeError as error:
        error.key = f"{key}.{error.key}"
        raise
