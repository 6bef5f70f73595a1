"""ImageNet ResNets of Table 1 (18/34/50/101/152), their plain counterparts, and the
shortcut options A/B/C of Sec. 3.3.

Parameter names follow torchvision (``conv1, bn1, layer1..layer4``; blocks
``conv1..3, bn1..3, downsample.0/1``) so torchvision checkpoints map with few renames.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ...registry import MODELS
from ..utils.init import init_conv_and_norm
from ..utils.shape_spec import ShapeSpec
from .norm import build_norm, check_norm, is_norm

# depth -> (block kind, blocks per stage conv2_x..conv5_x), Table 1
RESNET_SETTINGS = {
    18: ("basic", (2, 2, 2, 2)),
    34: ("basic", (3, 4, 6, 3)),
    50: ("bottleneck", (3, 4, 6, 3)),
    101: ("bottleneck", (3, 4, 23, 3)),
    152: ("bottleneck", (3, 8, 36, 3)),
}
SHORTCUT_OPTIONS = ("A", "B", "C")
STAGE_NAMES = ("c2", "c3", "c4", "c5")


def check_shortcut(shortcut: str) -> str:
    if shortcut not in SHORTCUT_OPTIONS:
        raise ValueError(
            f"unknown shortcut option {shortcut!r}; allowed values: "
            f"{', '.join(SHORTCUT_OPTIONS)} (A: zero-padded identity, "
            "B: projection where dimensions change, C: projection everywhere)"
        )
    return shortcut


def check_depth(depth: int) -> int:
    if depth not in RESNET_SETTINGS:
        raise ValueError(
            f"unsupported ResNet depth {depth!r}; allowed values: {', '.join(str(d) for d in RESNET_SETTINGS)}"
        )
    return depth


class ZeroPadShortcut(nn.Module):
    """Option A: identity, subsampled by ``stride`` when crossing map sizes, with zero
    channels appended where the width grows. No parameters.

    ``N x C_in x H x W`` -> ``N x C_out x ceil(H/stride) x ceil(W/stride)``.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        if out_channels < in_channels:
            raise ValueError(f"option A shortcut cannot shrink channels ({in_channels} -> {out_channels})")
        self.in_channels, self.out_channels, self.stride = in_channels, out_channels, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride > 1:
            x = x[:, :, :: self.stride, :: self.stride]
        extra = self.out_channels - self.in_channels
        return F.pad(x, (0, 0, 0, 0, 0, extra)) if extra else x

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}, stride={self.stride}"


def make_shortcut(shortcut: str, in_channels: int, out_channels: int, stride: int, norm: str) -> nn.Module | None:
    """The shortcut branch of one block; ``None`` means a plain identity."""
    check_shortcut(shortcut)
    changes = in_channels != out_channels or stride != 1
    if shortcut == "A":
        return ZeroPadShortcut(in_channels, out_channels, stride) if changes else None
    if shortcut == "B" and not changes:
        return None
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False), build_norm(norm, out_channels)
    )


class BasicBlock(nn.Module):
    """Two 3x3 convolutions (ResNet-18/34, CIFAR nets). ``N x C_in x H x W`` ->
    ``N x C_out x H/stride x W/stride``. ``plain=True`` drops the shortcut."""

    expansion = 1

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int = 1,
        shortcut: str = "B",
        norm: str = "BN",
        plain: bool = False,
        stride_in_1x1: bool = True,
    ) -> None:
        super().__init__()
        del stride_in_1x1  # a basic block has no 1x1 convolution
        self.plain = plain
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = build_norm(norm, out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = build_norm(norm, out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None if plain else make_shortcut(shortcut, in_channels, out_channels, stride, norm)

    @property
    def last_norm(self) -> nn.Module:
        return self.bn2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if not self.plain:
            out = out + (x if self.downsample is None else self.downsample(x))
        return self.relu(out)


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3, 1x1 expand (x4). ``stride_in_1x1=True`` puts the stride on the first
    1x1 (the MSRA layout of the paper), ``False`` on the 3x3 (torchvision "v1.5")."""

    expansion = 4

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int = 1,
        shortcut: str = "B",
        norm: str = "BN",
        plain: bool = False,
        stride_in_1x1: bool = True,
    ) -> None:
        super().__init__()
        width = out_channels // self.expansion
        self.plain = plain
        self.conv1 = nn.Conv2d(in_channels, width, 1, bias=False)
        self.bn1 = build_norm(norm, width)
        self.conv2 = nn.Conv2d(width, width, 3, padding=1, bias=False)
        self.bn2 = build_norm(norm, width)
        self.conv3 = nn.Conv2d(width, out_channels, 1, bias=False)
        self.bn3 = build_norm(norm, out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None if plain else make_shortcut(shortcut, in_channels, out_channels, stride, norm)
        self.stride = stride
        self.set_stride_in_1x1(stride_in_1x1)

    def set_stride_in_1x1(self, stride_in_1x1: bool) -> None:
        """Move the block's stride between the first 1x1 and the 3x3 (same parameters)."""
        self.stride_in_1x1 = stride_in_1x1
        s = self.stride
        self.conv1.stride = (s, s) if stride_in_1x1 else (1, 1)
        self.conv2.stride = (1, 1) if stride_in_1x1 else (s, s)

    @property
    def last_norm(self) -> nn.Module:
        return self.bn3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        if not self.plain:
            out = out + (x if self.downsample is None else self.downsample(x))
        return self.relu(out)


def stage_out_channels(depth: int, stage: int) -> int:
    """Output channels of stage ``stage`` (0..3 = conv2_x..conv5_x) of a ResNet-``depth``."""
    kind, _ = RESNET_SETTINGS[check_depth(depth)]
    return 64 * 2**stage * (4 if kind == "bottleneck" else 1)


def make_res_stage(
    depth: int,
    stage: int,
    in_channels: int,
    stride: int,
    shortcut: str = "B",
    stride_in_1x1: bool = True,
    norm: str = "BN",
    plain: bool = False,
) -> nn.Sequential:
    """Build one stage of a ResNet-``depth`` as an ``nn.Sequential`` of blocks.

    ``stage`` is 0-based like ``out_indices``: 0 = conv2_x (C2), 1 = conv3_x, 2 = conv4_x,
    3 = conv5_x (C5; the C4 detector's per-RoI head). The first block takes ``in_channels``
    and ``stride``; the output has ``stage_out_channels(depth, stage)`` channels.
    """
    kind, blocks = RESNET_SETTINGS[check_depth(depth)]
    if stage not in range(4):
        raise ValueError(f"stage must be 0, 1, 2 or 3 (conv2_x..conv5_x), got {stage!r}")
    check_shortcut(shortcut)
    check_norm(norm)
    block = Bottleneck if kind == "bottleneck" else BasicBlock
    out_channels = stage_out_channels(depth, stage)
    layers = []
    for index in range(blocks[stage]):
        layers.append(
            block(
                in_channels if index == 0 else out_channels,
                out_channels,
                stride=stride if index == 0 else 1,
                shortcut=shortcut,
                norm=norm,
                plain=plain,
                stride_in_1x1=stride_in_1x1,
            )
        )
    return nn.Sequential(*layers)


def set_stride_in_1x1(model: nn.Module, stride_in_1x1: bool) -> int:
    """Switch every bottleneck in ``model`` to the given stride layout; returns how many
    strided blocks changed."""
    changed = 0
    for module in model.modules():
        if isinstance(module, Bottleneck):
            if module.stride != 1 and module.stride_in_1x1 != stride_in_1x1:
                changed += 1
            module.set_stride_in_1x1(stride_in_1x1)
        elif isinstance(module, ResNet):
            module.stride_in_1x1 = stride_in_1x1
    return changed


@MODELS.register_module()
class ResNet(nn.Module):
    """ResNet-18/34/50/101/152 (Table 1) as a feature extractor.

    Args:
        depth: 18, 34 (basic blocks) or 50, 101, 152 (bottlenecks).
        num_stages: 4 builds conv2_x..conv5_x; 3 stops after conv4_x (the C4 detector trunk).
        out_indices: which stage outputs to return (0..3 = C2..C5, strides 4..32).
        shortcut: 'A' zero-padded identity, 'B' projection where dims change, 'C' always projection.
        plain: no shortcuts at all (the paper's plain-18/34 baselines).
        stride_in_1x1: stride on the first 1x1 of a bottleneck (MSRA, the paper's FLOPs) or
            on the 3x3 (False, torchvision v1.5).
        norm: 'BN', 'FrozenBN' or 'SyncBN'.
        frozen_stages: -1 freezes nothing, 0 the stem (conv1/bn1), k also layer1..layerk:
            parameters get ``requires_grad=False`` and their BN layers stay in eval mode.
        zero_init_residual: start the last BN of every residual block at weight 0.
        norm_eval: keep every BN layer in eval mode while training (fixed statistics).

    ``forward(x: N x 3 x H x W) -> {'c2': N x C x H/4 x W/4, ..., 'c5': ... H/32 x W/32}``
    (only the requested keys). ``output_shape()`` publishes each key's channels and stride
    (also held in the ``out_channels`` and ``strides`` dicts).
    """

    def __init__(
        self,
        depth: int = 50,
        num_stages: int = 4,
        out_indices: Sequence[int] = (3,),
        shortcut: str = "B",
        plain: bool = False,
        stride_in_1x1: bool = True,
        norm: str = "BN",
        frozen_stages: int = -1,
        zero_init_residual: bool = False,
        norm_eval: bool = False,
        in_channels: int = 3,
    ) -> None:
        super().__init__()
        check_depth(depth)
        check_shortcut(shortcut)
        check_norm(norm)
        if num_stages not in (1, 2, 3, 4):
            raise ValueError(f"num_stages must be 1, 2, 3 or 4, got {num_stages!r}")
        out_indices = tuple(int(i) for i in out_indices)
        if not out_indices or any(i not in range(num_stages) for i in out_indices):
            raise ValueError(
                f"out_indices {out_indices} must be non-empty values in "
                f"0..{num_stages - 1} (C2..C{num_stages + 1}) for num_stages={num_stages}"
            )
        if frozen_stages not in range(-1, num_stages + 1):
            raise ValueError(f"frozen_stages must be in -1..{num_stages}, got {frozen_stages!r}")
        if plain and zero_init_residual:
            raise ValueError(
                "zero_init_residual=True would zero every block of a plain network "
                "(no shortcut carries the signal); use it only with plain=False"
            )
        self.depth, self.num_stages, self.out_indices = depth, num_stages, out_indices
        self.shortcut, self.plain, self.stride_in_1x1 = shortcut, plain, stride_in_1x1
        self.norm, self.frozen_stages, self.norm_eval = norm, frozen_stages, norm_eval

        self.conv1 = nn.Conv2d(in_channels, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = build_norm(norm, 64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        channels = 64
        self.out_channels: dict[str, int] = {}
        self.strides: dict[str, int] = {}
        for stage in range(num_stages):
            layer = make_res_stage(
                depth,
                stage,
                channels,
                stride=1 if stage == 0 else 2,
                shortcut=shortcut,
                stride_in_1x1=stride_in_1x1,
                norm=norm,
                plain=plain,
            )
            self.add_module(f"layer{stage + 1}", layer)
            channels = stage_out_channels(depth, stage)
            if stage in out_indices:
                self.out_channels[STAGE_NAMES[stage]] = channels
                self.strides[STAGE_NAMES[stage]] = 4 * 2**stage
        self.init_weights(zero_init_residual)
        self._freeze_stages()

    def init_weights(self, zero_init_residual: bool = False) -> None:
        """He init of convolutions, BN at identity; optionally zero the last BN per block."""
        init_conv_and_norm(self)
        if zero_init_residual:
            for module in self.modules():
                if isinstance(module, (BasicBlock, Bottleneck)) and hasattr(module.last_norm, "weight"):
                    nn.init.zeros_(module.last_norm.weight)

    def _frozen_modules(self) -> list[nn.Module]:
        if self.frozen_stages < 0:
            return []
        modules: list[nn.Module] = [self.conv1, self.bn1]
        modules += [getattr(self, f"layer{i}") for i in range(1, self.frozen_stages + 1)]
        return modules

    def _freeze_stages(self) -> None:
        for module in self._frozen_modules():
            module.eval()
            for param in module.parameters():
                param.requires_grad_(False)

    def train(self, mode: bool = True) -> ResNet:
        """Like ``nn.Module.train``, but frozen stages (and all BN with ``norm_eval``) stay in eval."""
        super().train(mode)
        if mode:
            for module in self._frozen_modules():
                module.eval()
            if self.norm_eval:
                for module in self.modules():
                    if is_norm(module):
                        module.eval()
        return self

    def output_shape(self) -> dict[str, ShapeSpec]:
        """``{'c4': ShapeSpec(channels=1024, stride=16), ...}`` for the returned feature maps."""
        return {name: ShapeSpec(self.out_channels[name], self.strides[name]) for name in self.out_channels}

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        outputs = {}
        for stage in range(self.num_stages):
            x = getattr(self, f"layer{stage + 1}")(x)
            if stage in self.out_indices:
                outputs[STAGE_NAMES[stage]] = x
        return outputs


def warn_layout_switch(model: nn.Module, source: str, stride_in_1x1: bool = False) -> int:
    """Switch ``model``'s bottlenecks to the layout the weights in ``source`` were trained
    with (default: torchvision v1.5, stride on the 3x3), warning when anything changes;
    returns how many strided blocks changed."""
    changed = set_stride_in_1x1(model, stride_in_1x1)
    if changed:
        layout = (
            "MSRA bottleneck layout (stride on the first 1x1"
            if stride_in_1x1
            else "torchvision v1.5 bottleneck layout (stride on the 3x3"
        )
        warnings.warn(
            f"{source} uses the {layout} convolution); switched {changed} strided "
            f"bottleneck(s) of the model to stride_in_1x1={stride_in_1x1} so the weights "
            "give the outputs they were trained for",
            UserWarning,
            stacklevel=2,
        )
    return changed
