"""Parameter and multiply-add counting with a real operator-level counter.

``torch.utils.flop_counter.FlopCounterMode`` intercepts every aten op the forward pass
runs and counts 2 FLOPs per multiply-add of convolutions and matrix products; we report
multiply-adds (its count / 2), the unit of the paper's Table 1 ("FLOPs"). BN, ReLU,
pooling and additions are not counted, as in the paper. By default the model is run on
the ``meta`` device (shapes only, no memory, no arithmetic), so even ResNet-1202 or
VGG-19 at 224x224 take a fraction of a second.
"""

from __future__ import annotations

import copy
from collections import defaultdict
from collections.abc import Sequence

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


def count_params(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (buffers such as BN statistics excluded)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def _multiply_adds_by_op(counter: FlopCounterMode) -> dict[str, int]:
    by_op: dict[str, int] = defaultdict(int)
    for op, flops in counter.get_flop_counts().get("Global", {}).items():
        name = str(op)
        if name.startswith("aten."):  # 'aten.convolution.default' -> 'convolution'
            name = name.split(".")[1]
        by_op[name] += int(flops) // 2
    return dict(by_op)


def _top_level_macs(counter: FlopCounterMode, root: str) -> dict[str, int]:
    """Multiply-adds per direct child of ``root`` (e.g. backbone, head)."""
    result = {}
    prefix = root + "."
    for name, ops in counter.get_flop_counts().items():
        if name.startswith(prefix) and "." not in name[len(prefix) :]:
            result[name[len(prefix) :]] = sum(int(v) for v in ops.values()) // 2
    return result


def get_model_complexity(
    model: nn.Module,
    input_shape: Sequence[int] = (3, 224, 224),
    batch_size: int = 1,
    device: str | torch.device = "meta",
) -> dict:
    """Count parameters and multiply-adds of one forward pass of ``model`` in eval mode.

    Args:
        model: any module taking one ``N x C x H x W`` tensor (classifiers get a float input,
            which their preprocessor passes through).
        input_shape: ``(C, H, W)`` of one image.
        batch_size: images per forward; multiply-adds are reported per image.
        device: ``'meta'`` (default: a shape-only copy of the model) or a real device.

    Returns ``{'params', 'flops', 'flops_by_op', 'flops_by_module', 'input_shape'}`` where
    ``flops`` counts multiply-adds per image (int) and ``params`` the parameters.
    """
    if len(input_shape) != 3:
        raise ValueError(f"input_shape must be (C, H, W), got {tuple(input_shape)}")
    params = count_params(model)
    device = torch.device(device)
    on_meta = all(p.device.type == "meta" for p in model.parameters())
    if device.type == "meta" and not on_meta:
        # a deep copy keeps the caller's weights; to('meta') drops the storage
        runner = copy.deepcopy(model).to("meta")
    elif device.type == "meta":
        runner = model
    else:
        runner = model.to(device)
    was_training = runner.training
    runner.eval()
    inputs = torch.zeros((batch_size, *input_shape), device=device)
    counter = FlopCounterMode(display=False, depth=2)
    try:
        with torch.no_grad(), counter:
            runner(inputs)
    except Exception as err:  # e.g. a detector, whose data-dependent ops cannot run on meta
        first_line = str(err).splitlines()[0] if str(err) else ""
        raise ValueError(
            f"cannot count {type(model).__name__} on a {tuple(inputs.shape)} "
            f"{device.type} tensor ({type(err).__name__}: {first_line}); "
            "count a part that takes one image tensor instead (e.g. its backbone)"
        ) from err
    runner.train(was_training)
    root = type(runner).__name__
    return {
        "params": int(params),
        "flops": int(counter.get_total_flops()) // 2 // batch_size,
        "flops_by_op": {k: v // batch_size for k, v in _multiply_adds_by_op(counter).items()},
        "flops_by_module": {k: v // batch_size for k, v in _top_level_macs(counter, root).items()},
        "input_shape": [int(s) for s in input_shape],
    }


def format_complexity(result: dict, name: str = "model") -> str:
    """Human-readable summary of ``get_model_complexity``'s result."""
    lines = [
        f"{name}: input {'x'.join(str(s) for s in result['input_shape'])}",
        f"  params:        {result['params']:,} ({result['params'] / 1e6:.2f} M)",
        f"  multiply-adds: {result['flops']:,} ({result['flops'] / 1e9:.2f} x 10^9)",
    ]
    for module, macs in sorted(result.get("flops_by_module", {}).items(), key=lambda kv: -kv[1]):
        lines.append(f"    {module:<12} {macs / 1e9:.3f} x 10^9")
    return "\n".join(lines)
