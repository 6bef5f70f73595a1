"""Initialise a detector from a classification checkpoint (the paper's ImageNet pretraining).

Sources: ``'resdet_cls'`` (``tools/train_cls.py`` output, an ``ImageClassifier`` with keys
``backbone.*`` / ``head.*``) or ``'torchvision'`` (a torchvision ResNet / VGG state_dict).
``backbone.*`` goes to the detector's backbone; for the ResNet-C4 layout the classifier's
conv5 (``backbone.layer4.*``) goes to the RoI head's ``res5``; for VGG the classifier's
``head.fc6`` / ``head.fc7`` go to the box head's ``fc6`` / ``fc7``.
"""

from __future__ import annotations

import logging
import warnings

from torch import nn

from ...utils.io import safe_load
from ..converters import extract_state_dict, get_converter, is_weights_name, resolve_weights
from ..converters.torchvision_cls import identify_torchvision_cls

logger = logging.getLogger("resdet")
SOURCES = ("resdet_cls", "torchvision")


def _detector_key(key: str, model_keys: set[str]) -> str | None:
    """Detector parameter name for a classifier key, or ``None`` when it has no place."""
    candidates = []
    if key.startswith("backbone.layer4."):
        candidates.append("roi_heads.box_head.res5." + key[len("backbone.layer4.") :])
    if key.startswith(("head.fc6.", "head.fc7.")):
        candidates.append("roi_heads.box_head." + key[len("head.") :])
    if key.startswith("backbone."):
        candidates.append(key)
    for candidate in candidates:
        if candidate in model_keys:
            return candidate
    return None


def init_from_classifier(model: nn.Module, checkpoint: str, src: str = "resdet_cls") -> dict:
    """Copy classification weights into ``model`` (``checkpoint``: a file or ``torchvision://NAME``,
    e.g. ``torchvision://resnet50``, downloaded into torch's hub cache on first use); returns
    ``{'loaded', 'unused', 'missing', 'mismatched'}`` (key lists) and logs a summary. ``missing``
    lists the backbone and box-head parameters the checkpoint did not provide."""
    if src not in SOURCES:
        raise ValueError(f"init_cfg src {src!r} unknown; allowed values: {', '.join(SOURCES)}")
    if is_weights_name(checkpoint):  # torchvision://NAME: the torchvision file, whatever src says
        checkpoint, src = resolve_weights(checkpoint, converted=False), "torchvision"
    state = extract_state_dict(safe_load(checkpoint), checkpoint)
    if src == "torchvision":
        arch = identify_torchvision_cls(state)
        if arch is None:
            raise ValueError(f"{checkpoint} is not a torchvision ResNet / VGG classification state_dict")
        converter = get_converter("torchvision", arch)
        state = converter.convert(state)
        if converter.stride_on_3x3:
            from ..backbones.resnet import warn_layout_switch

            warn_layout_switch(model, f"{checkpoint} (torchvision {arch})")
    model_state = model.state_dict()
    model_keys = set(model_state)
    new_state, unused, mismatched = {}, [], []
    for key, value in state.items():
        if key.endswith("num_batches_tracked"):
            continue
        target = _detector_key(key, model_keys)
        if target is None:
            unused.append(key)
        elif model_state[target].shape != value.shape:
            mismatched.append(f"{key} -> {target}: {tuple(value.shape)} vs {tuple(model_state[target].shape)}")
        else:
            new_state[target] = value
    prefixes: tuple[str, ...] = ("backbone.", "roi_heads.box_head.res5.")
    if any(key.startswith("head.fc6.") for key in state):  # a VGG classifier: fc6/fc7 are expected
        prefixes += ("roi_heads.box_head.fc6.", "roi_heads.box_head.fc7.")
    missing = [
        k
        for k in model_state
        if k.startswith(prefixes) and k not in new_state and not k.endswith("num_batches_tracked")
    ]
    model.load_state_dict(new_state, strict=False)
    report = {"loaded": sorted(new_state), "unused": unused, "missing": missing, "mismatched": mismatched}
    logger.info(
        "initialised %d detector tensors from %s (%s); %s unused checkpoint keys; %s missing",
        len(new_state),
        checkpoint,
        src,
        _few(unused),
        _few(missing),
    )
    logger.debug("init_cfg %s: unused keys %s; missing keys %s", checkpoint, unused, missing)  # the full lists
    if mismatched or missing:
        warnings.warn(
            f"init_cfg {checkpoint}: {_few(missing)} missing detector keys; {_few(mismatched)} shape mismatches",
            UserWarning,
            stacklevel=2,
        )
    return report


def _few(keys: list[str], shown: int = 3) -> str:
    """``12 (head.fc.weight, head.fc.bias, ...)``: a count and the first few names."""
    if not keys:
        return "0"
    return f"{len(keys)} ({', '.join(keys[:shown])}{', ...' if len(keys) > shown else ''})"
