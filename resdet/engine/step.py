"""The pieces of a step: a collate batch moved to the device (4-d images in channels-last
memory format when asked) and fed to the model under autocast (training and inference alike),
the one rule that sums a loss dict, gradient clipping and the per-iteration all-reduce."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..data.loader import move_to_device
from ..utils import dist
from .amp import autocast_context


def forward_batch(
    model: nn.Module, batch: dict, device: torch.device, amp: str | None = None, channels_last: bool = False
) -> Any:
    """``model(inputs, targets)`` for a collate dict ``{'inputs', 'targets', ...}``.

    Args:
        model: called in its current mode (train: a loss dict; eval: predictions).
        batch: ``inputs`` (an ``N x 3 x H x W`` tensor or a list of ``3 x H x W`` images) and
            ``targets``; both are moved to ``device`` (``batch`` itself is left as it is).
        amp: ``None`` | ``'bf16'`` | ``'fp16'`` autocast for the forward pass.
        channels_last: a 4-d ``inputs`` tensor goes in channels-last memory format.
    """
    inputs = move_to_device(batch["inputs"], device)
    if channels_last and isinstance(inputs, torch.Tensor) and inputs.dim() == 4:
        inputs = inputs.contiguous(memory_format=torch.channels_last)
    targets = move_to_device(batch["targets"], device)
    with autocast_context(device, amp):
        return model(inputs, targets)


def sum_losses(losses: dict[str, torch.Tensor]) -> torch.Tensor:
    """Sum of every entry whose key contains ``'loss'`` (CONTRACTS.md)."""
    if not isinstance(losses, dict):
        raise TypeError(f"a model in train mode must return a dict of losses, got {type(losses).__name__}")
    terms = [v for k, v in losses.items() if "loss" in k]
    if not terms:
        raise KeyError(f"the model's loss dict has no key containing 'loss' (keys: {sorted(losses)})")
    return sum(terms[1:], terms[0])


def scalar(value: Any, device: torch.device) -> torch.Tensor:
    """A float32 scalar tensor on ``device`` (tensors are averaged, numbers wrapped)."""
    if isinstance(value, torch.Tensor):
        return value.detach().float().mean().to(device)
    return torch.tensor(float(value), device=device)


def all_reduce_scalars(values: list, device: torch.device) -> list[float]:
    """The mean over ranks of each value, in one collective (``device``: nccl needs the GPU)."""
    stacked = torch.stack([scalar(v, device) for v in values])
    return dist.all_reduce_mean(stacked).tolist()


def clip_gradients(optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler, clip: float | dict) -> torch.Tensor:
    """Clip the gradients of ``optimizer``'s parameters to ``clip`` (a max norm or
    ``dict(max_norm=..., norm_type=...)``), unscaled first; the total norm before clipping."""
    clip = dict(max_norm=float(clip)) if isinstance(clip, (int, float)) else dict(clip)
    scaler.unscale_(optimizer)
    params = [p for g in optimizer.param_groups for p in g["params"] if p.grad is not None]
    return torch.nn.utils.clip_grad_norm_(params, **clip).detach().float()
