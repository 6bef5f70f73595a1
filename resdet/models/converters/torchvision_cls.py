"""torchvision classification checkpoints -> resdet ``ImageClassifier``.

resnet18/34/50/101/152 (v1.5 bottlenecks: the target model uses ``stride_in_1x1=False``)
and vgg16/vgg19 with or without BN. Renames only; tensors are shared, not copied.
"""

from __future__ import annotations

import re

import torch

from ..backbones.resnet import RESNET_SETTINGS
from ..backbones.vgg import VGG_SETTINGS
from .loading import Converter, register_converter, register_identifier

StateDict = dict[str, torch.Tensor]
_VGG_FC = {"classifier.0.": "head.fc6.", "classifier.3.": "head.fc7.", "classifier.6.": "head.fc8."}


def _num_classes(state_dict: StateDict, key: str) -> int:
    return int(state_dict[key].shape[0]) if key in state_dict else 1000


def convert_resnet(state_dict: StateDict) -> StateDict:
    """``conv1/bn1/layerK/fc`` -> ``backbone.conv1/...``, ``head.fc``."""
    out = {}
    for key, value in state_dict.items():
        out[("head." if key.startswith("fc.") else "backbone.") + key] = value
    return out


def convert_vgg(state_dict: StateDict) -> StateDict:
    """``features.N`` -> ``backbone.features.N``; ``classifier.0/3/6`` -> ``head.fc6/fc7/fc8``."""
    out = {}
    for key, value in state_dict.items():
        for old, new in _VGG_FC.items():
            if key.startswith(old):
                out[new + key[len(old) :]] = value
                break
        else:
            out["backbone." + key] = value
    return out


def _resnet_cfg(depth: int):
    def model_cfg(state_dict: StateDict) -> dict:
        return dict(
            type="ImageClassifier",
            num_classes=_num_classes(state_dict, "fc.weight"),
            backbone=dict(type="ResNet", depth=depth, stride_in_1x1=False, shortcut="B"),
        )

    return model_cfg


def _vgg_cfg(depth: int, batch_norm: bool):
    def model_cfg(state_dict: StateDict) -> dict:
        return dict(
            type="ImageClassifier",
            num_classes=_num_classes(state_dict, "classifier.6.weight"),
            backbone=dict(type="VGG", depth=depth, batch_norm=batch_norm),
        )

    return model_cfg


def identify_torchvision_cls(state_dict: StateDict) -> str | None:
    """Architecture name of a torchvision ResNet / VGG classifier state_dict, else ``None``."""
    keys = state_dict.keys()
    if "conv1.weight" in keys and "layer1.0.conv1.weight" in keys:  # fc may have been dropped
        blocks = [0, 0, 0, 0]
        for key in keys:
            match = re.match(r"layer([1-4])\.(\d+)\.conv1\.weight$", key)
            if match:
                stage, index = int(match.group(1)) - 1, int(match.group(2))
                blocks[stage] = max(blocks[stage], index + 1)
        kind = "bottleneck" if "layer1.0.conv3.weight" in keys else "basic"
        for depth, setting in RESNET_SETTINGS.items():
            if setting == (kind, tuple(blocks)):
                return f"resnet{depth}"
        return None
    if "features.0.weight" in keys and all(k.startswith(("features.", "classifier.")) for k in keys):
        convs = sum(1 for k, v in state_dict.items() if re.match(r"features\.\d+\.weight$", k) and v.dim() == 4)
        batch_norm = any(k.endswith("running_mean") for k in keys)
        for depth, blocks in VGG_SETTINGS.items():
            if convs == sum(len(b) for b in blocks):
                return f"vgg{depth}" + ("_bn" if batch_norm else "")
    return None


for _depth, (_kind, _) in RESNET_SETTINGS.items():
    register_converter(
        "torchvision",
        f"resnet{_depth}",
        Converter(
            convert=convert_resnet,
            model_cfg=_resnet_cfg(_depth),
            keep_from_model=("preprocessor.",),
            stride_on_3x3=_kind == "bottleneck",
        ),
    )
for _depth in VGG_SETTINGS:
    for _bn in (False, True):
        register_converter(
            "torchvision",
            f"vgg{_depth}" + ("_bn" if _bn else ""),
            Converter(convert=convert_vgg, model_cfg=_vgg_cfg(_depth, _bn), keep_from_model=("preprocessor.",)),
        )
register_identifier("torchvision", identify_torchvision_cls)
