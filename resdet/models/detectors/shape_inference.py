"""Complete a detector's head configs from the shapes its backbone and neck publish.

A detector builds its backbone (and neck) first, reads their ``output_shape()`` and completes
the configs of the parts it builds next, in the order it builds them (so random initialisation
is unchanged). A value the config leaves out is derived; a value it states must equal the
derived one, else ``ConfigError`` names the key and both values. Only arguments that the
configured class takes are filled. Derived:

=====================================  =====================================================
``neck.in_channels``, ``in_strides``   the backbone outputs named by ``neck.in_features``
``rpn.head.in_channels``               the channels of ``rpn.in_features`` (equal on every
                                       level: one head is shared)
``rpn.head.num_anchors``               anchor sizes x aspect ratios per location (equal on
                                       every level)
``rpn.anchor_generator.strides``       the strides of ``rpn.in_features`` (``anchor_strides``)
``roi_heads.box_pooler.spatial_scale`` 1 / stride of its feature map (one map only: a
                                       multi-level ``MultiScaleRoIAlign`` measures its scales)
``roi_heads.box_head.in_channels``     the box pooler's feature channels
``roi_heads.box_head.pooled_size``     the box pooler's ``output_size``
``roi_heads.box_predictor.in_channels`` the box head's published ``'box_features'``
``roi_heads.mask_pooler.spatial_scale`` as for the box pooler
``roi_heads.mask_head.in_channels``    the mask pooler's feature channels, or with
                                       ``mask_pooler=None`` (C4) the box head's ``'res5'``
=====================================  =====================================================

Keys in messages are named as in a config file (``model.rpn.head.in_channels``).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

from torch import nn

from ...registry import MODELS
from ...utils.config import ConfigError
from ..utils.shape_spec import ShapeSpec, arg_or_default, config_class, fill_derived, takes_arg

Shapes = Mapping[str, ShapeSpec]


def published_shapes(module: nn.Module) -> dict[str, ShapeSpec] | None:
    """``module.output_shape()``, or ``None`` for a module that publishes none (its consumers'
    configs must then state every value)."""
    output_shape = getattr(module, "output_shape", None)
    return output_shape() if callable(output_shape) else None


def anchor_strides(nominal: Sequence[int], size_divisor: int) -> tuple[int, ...] | None:
    """The anchor generator's ``strides`` for feature maps of these strides.

    The strides themselves when the preprocessor pads every batch to a multiple of each: then
    a map has exactly ``padded / stride`` cells and anchors spaced by the stride are those of
    the generator's own rule. Otherwise ``None``, which keeps that rule, torchvision's: anchors
    spaced by ``padded size // feature size`` (FPN's P6, stride 64, on a batch padded to 800 has
    13 cells: 61 pixels apart), as torchvision's weights were trained with.
    """
    if all(size_divisor % stride == 0 for stride in nominal):
        return tuple(int(s) for s in nominal)
    return None


def _levels(shapes: Shapes, names: Sequence[str], key: str, source: str) -> list[ShapeSpec]:
    missing = [name for name in names if name not in shapes]
    if missing:
        raise ConfigError(f"{key} = {tuple(names)} but the {source} has no output {missing}; its "
                          f"outputs: {', '.join(shapes)}")
    return [shapes[name] for name in names]


def _shared_channels(levels: list[ShapeSpec], names: Sequence[str], key: str, source: str) -> int:
    channels = [level.channels for level in levels]
    if len(set(channels)) > 1:
        raise ConfigError(f"{key} = {tuple(names)}: the {source}'s outputs have {channels} channels, "
                          "but one head reads them all; pick outputs of equal width (e.g. a neck's)")
    return channels[0]


def complete_neck(cfg: Mapping, shapes: Shapes, key: str = "model.neck", source: str = "backbone") -> dict:
    """The neck config with ``in_channels`` / ``in_strides`` of the backbone outputs it reads."""
    cfg = dict(cfg)
    names = tuple(arg_or_default(cfg, "in_features"))
    levels = _levels(shapes, names, f"{key}.in_features", source)
    channels = tuple(level.channels for level in levels)
    strides = tuple(level.stride for level in levels)
    if takes_arg(cfg, "in_channels"):
        fill_derived(cfg, "in_channels", channels, key, f"the {source}'s outputs {names} have {channels} channels")
    if takes_arg(cfg, "in_strides") and None not in strides:
        fill_derived(cfg, "in_strides", strides, key, f"the {source}'s outputs {names} have strides {strides}")
    return cfg


def complete_rpn(cfg: Mapping, shapes: Shapes, size_divisor: int, key: str = "model.rpn",
                 source: str = "backbone") -> dict:
    """The RPN config with its anchor generator's ``strides`` and its head's ``in_channels`` and
    ``num_anchors`` filled in; ``size_divisor`` is the preprocessor's padding."""
    cfg = dict(cfg)
    names = tuple(arg_or_default(cfg, "in_features"))
    levels = _levels(shapes, names, f"{key}.in_features", source)
    anchors = cfg.get("anchor_generator")
    if isinstance(anchors, Mapping):
        cfg["anchor_generator"] = anchors = _complete_anchor_strides(
            dict(anchors), levels, names, size_divisor, f"{key}.anchor_generator", source)
    head = cfg.get("head")
    if isinstance(head, Mapping):
        head = dict(head)
        if takes_arg(head, "in_channels"):
            channels = _shared_channels(levels, names, f"{key}.in_features", source)
            fill_derived(head, "in_channels", channels, f"{key}.head",
                         f"the {source}'s output {names[0]!r} has {channels} channels")
        if takes_arg(head, "num_anchors") and anchors is not None:
            count, how = _anchors_per_location(anchors, f"{key}.anchor_generator")
            fill_derived(head, "num_anchors", count, f"{key}.head",
                         f"the anchor generator makes {count} anchors per location ({how})")
        cfg["head"] = head
    return cfg


def _complete_anchor_strides(anchors: dict, levels: list[ShapeSpec], names: Sequence[str], size_divisor: int,
                             key: str, source: str) -> dict:
    nominal = tuple(level.stride for level in levels)
    if not takes_arg(anchors, "strides") or None in nominal:
        return anchors  # unknown strides: the generator measures them on every batch
    if "strides" not in anchors:
        anchors["strides"] = anchor_strides(nominal, size_divisor)
    elif anchors["strides"] is not None:  # None states the measuring rule explicitly
        fill_derived(anchors, "strides", nominal, key, f"the {source}'s outputs {names} have strides {nominal}")
    return anchors


def _anchors_per_location(anchors: Mapping | nn.Module, key: str) -> tuple[int, str]:
    # an anchor generator has no parameters: building it here draws no random numbers
    generator = MODELS.build(dict(anchors)) if isinstance(anchors, Mapping) else anchors
    counts = list(generator.num_anchors_per_location)
    if len(set(counts)) != 1:
        raise ConfigError(f"{key} makes {counts} anchors per location on its levels, but one RPN head "
                          "reads every level: give every level as many sizes x aspect ratios")
    sizes, ratios = getattr(generator, "sizes", None), getattr(generator, "aspect_ratios", None)
    how = f"{len(sizes[0])} sizes x {len(ratios[0])} aspect ratios" if sizes and ratios else "per level"
    return counts[0], how


def complete_pooler(cfg: Mapping, shapes: Shapes, key: str, source: str = "backbone") -> tuple[dict, int, int]:
    """``(config with spatial_scale, feature channels, output_size)`` of a ``RoIPooler`` config.
    A stated ``spatial_scale=None`` keeps measuring the scale on every batch."""
    cfg = dict(cfg)
    names = tuple(arg_or_default(cfg, "featmap_names"))
    levels = _levels(shapes, names, f"{key}.featmap_names", source)
    channels = _shared_channels(levels, names, f"{key}.featmap_names", source)
    stride = levels[0].stride
    if len(names) == 1 and stride is not None and takes_arg(cfg, "spatial_scale") \
            and cfg.get("spatial_scale", 0.0) is not None:
        fill_derived(cfg, "spatial_scale", 1.0 / stride, key, f"the {source}'s output {names[0]!r} has stride {stride}")
    return cfg, channels, int(arg_or_default(cfg, "output_size"))


def _complete_roi_input(head: dict, channels: int, output_size: int, key: str, pooler: str) -> dict:
    """A per-RoI head reading ``channels x output_size x output_size`` pooled features."""
    if takes_arg(head, "in_channels"):
        fill_derived(head, "in_channels", channels, key, f"the {pooler}'s features have {channels} channels")
    if takes_arg(head, "pooled_size"):
        fill_derived(head, "pooled_size", output_size, key, f"the {pooler}'s output_size is {output_size}")
    return head


def _box_head_outputs(box_head: Mapping) -> dict[str, ShapeSpec]:
    """What a box head built from ``box_head`` publishes (``output_shape_for``), or ``{}``."""
    output_shape_for = getattr(config_class(box_head), "output_shape_for", None)
    return output_shape_for(box_head) if callable(output_shape_for) else {}


def complete_roi_heads(cfg: Mapping, shapes: Shapes, key: str = "model.roi_heads", source: str = "backbone") -> dict:
    """The RoI-heads config with its poolers' scales and its heads' input sizes filled in."""
    cfg = dict(cfg)
    pooled = None
    if isinstance(cfg.get("box_pooler"), Mapping):
        cfg["box_pooler"], *pooled = complete_pooler(cfg["box_pooler"], shapes, f"{key}.box_pooler", source)
    box_outputs: dict[str, ShapeSpec] = {}
    if isinstance(cfg.get("box_head"), Mapping):
        box_head = dict(cfg["box_head"])
        if pooled is not None:
            box_head = _complete_roi_input(box_head, *pooled, f"{key}.box_head", "box pooler")
        cfg["box_head"], box_outputs = box_head, _box_head_outputs(box_head)
    predictor = cfg.get("box_predictor")
    if isinstance(predictor, Mapping) and "box_features" in box_outputs and takes_arg(predictor, "in_channels"):
        predictor, channels = dict(predictor), box_outputs["box_features"].channels
        fill_derived(predictor, "in_channels", channels, f"{key}.box_predictor",
                     f"the box head's 'box_features' have {channels} channels")
        cfg["box_predictor"] = predictor
    if isinstance(cfg.get("mask_head"), Mapping):
        _complete_mask_branch(cfg, shapes, box_outputs, key, source)
    return cfg


def _complete_mask_branch(cfg: dict, shapes: Shapes, box_outputs: Mapping[str, ShapeSpec], key: str,
                          source: str) -> None:
    mask_pooler = cfg.get("mask_pooler")
    if isinstance(mask_pooler, Mapping):
        cfg["mask_pooler"], channels, size = complete_pooler(mask_pooler, shapes, f"{key}.mask_pooler", source)
        cfg["mask_head"] = _complete_roi_input(dict(cfg["mask_head"]), channels, size, f"{key}.mask_head",
                                               "mask pooler")
    elif mask_pooler is None and "res5" in box_outputs:  # C4: the mask head reads the box head's conv5
        mask_head, channels = dict(cfg["mask_head"]), box_outputs["res5"].channels
        if takes_arg(mask_head, "in_channels"):
            fill_derived(mask_head, "in_channels", channels, f"{key}.mask_head",
                         f"the box head's 'res5' output has {channels} channels")
        cfg["mask_head"] = mask_head
