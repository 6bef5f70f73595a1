"""Weight initialisation helpers (He et al. 2015, "Delving deep into rectifiers")."""

from __future__ import annotations

from torch import nn


def kaiming_init(module: nn.Module, mode: str = "fan_out", nonlinearity: str = "relu") -> None:
    """He-normal init of a conv / linear weight, zero bias."""
    nn.init.kaiming_normal_(module.weight, mode=mode, nonlinearity=nonlinearity)
    if getattr(module, "bias", None) is not None:
        nn.init.zeros_(module.bias)


def normal_init(module: nn.Module, std: float = 0.01) -> None:
    """Zero-mean normal init of a weight, zero bias (fc layers of VGG and heads)."""
    nn.init.normal_(module.weight, mean=0.0, std=std)
    if getattr(module, "bias", None) is not None:
        nn.init.zeros_(module.bias)


def init_conv_and_norm(model: nn.Module) -> None:
    """He init for every ``Conv2d``; weight 1 / bias 0 for every affine BN layer."""
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            kaiming_init(module)
        elif isinstance(module, (nn.BatchNorm2d, nn.SyncBatchNorm, nn.GroupNorm)):
            if module.weight is not None:
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
