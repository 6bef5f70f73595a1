"""Inference fast path: fold frozen BN into the preceding convolutions, channels_last weights,
and (optionally) compiled convolution stacks.

Folding relies on the torchvision-style layout of resdet's backbones and heads: a
``FrozenBatchNorm2d`` that directly follows a ``Conv2d`` among its parent's children (``conv1``
then ``bn1``, ``downsample.0`` then ``downsample.1``) normalises that convolution's output.
The folded model gives the same outputs up to float rounding and is for inference only:
``optimize_for_inference`` returns it as a new model (or, asked to, changes the model in place)
and the inference entry points (``inference_detector``, ``resdet eval`` / ``demo`` / ``export``)
apply it themselves, so a model built by ``init_model`` keeps its checkpoint's layout.
"""

from __future__ import annotations

import copy
import logging
import os
import time

import torch
from torch import nn
from torchvision.ops import FrozenBatchNorm2d

from ...utils.errors import CheckpointError, ConfigError, TrainingError
from ..backbones.norm import frozen_batchnorm_like


@torch.no_grad()
def fold_conv_frozen_bn(conv: nn.Conv2d, bn: FrozenBatchNorm2d) -> nn.Conv2d:
    """A new ``Conv2d`` computing ``bn(conv(x))``."""
    # in float64, so the folded weights are the exact products rounded once
    scale = bn.weight.double() * (bn.running_var.double() + bn.eps).rsqrt()
    fused = nn.utils.skip_init(
        nn.Conv2d,
        conv.in_channels,
        conv.out_channels,
        conv.kernel_size,
        conv.stride,
        conv.padding,
        conv.dilation,
        conv.groups,
        bias=True,
        padding_mode=conv.padding_mode,
        device=conv.weight.device,
        dtype=conv.weight.dtype,
    )  # every value is set below
    fused.weight.copy_(conv.weight.double() * scale.view(-1, 1, 1, 1))
    bias = conv.bias.double() if conv.bias is not None else torch.zeros_like(bn.running_mean, dtype=torch.float64)
    fused.bias.copy_((bias - bn.running_mean.double()) * scale + bn.bias.double())
    fused.weight.requires_grad_(False)
    fused.bias.requires_grad_(False)
    return fused


def is_eval_batch_norm(module: nn.Module) -> bool:
    """A BatchNorm layer that normalises with its running statistics (eval mode, statistics
    tracked): the fixed affine map a ``FrozenBatchNorm2d`` computes."""
    return (
        isinstance(module, (nn.BatchNorm2d, nn.SyncBatchNorm))
        and not module.training
        and module.track_running_stats
        and module.running_mean is not None
    )


@torch.no_grad()
def _fold_plan(model: nn.Module) -> dict[int, nn.Module]:
    """``{id(module): replacement}`` for folding ``model``'s BN, leaving ``model`` as it is: each
    ``Conv2d`` followed among its parent's children by a frozen BN (or a BN on its running
    statistics) becomes the folded ``Conv2d`` and that BN ``nn.Identity``; a BN on its
    statistics that follows no convolution becomes a ``FrozenBatchNorm2d``."""
    plan: dict[int, nn.Module] = {}
    for parent in model.modules():
        children = list(parent.children())
        for conv, bn in zip(children, children[1:]):
            if not isinstance(conv, nn.Conv2d):
                continue
            frozen = bn if isinstance(bn, FrozenBatchNorm2d) else None
            if frozen is None and is_eval_batch_norm(bn):
                frozen = frozen_batchnorm_like(bn)
            if frozen is not None and conv.out_channels == frozen.weight.numel():
                plan[id(conv)], plan[id(bn)] = fold_conv_frozen_bn(conv, frozen), nn.Identity()
        for child in children:
            if id(child) not in plan and is_eval_batch_norm(child):
                plan[id(child)] = frozen_batchnorm_like(child)
    return plan


def fold_batch_norm(model: nn.Module, inplace: bool = False) -> nn.Module:
    """``model`` with its frozen BN, and its BN on running statistics (a model trained with plain
    or synchronised BN, in eval mode: the same fixed map), folded into the preceding
    convolutions (``_fold_plan``): a copy, or with ``inplace`` ``model`` itself changed. The
    copy shares nothing with ``model`` and never clones the weights that folding replaces."""
    plan = _fold_plan(model)
    if not inplace:
        return copy.deepcopy(model, memo=dict(plan))  # deepcopy takes a memo entry as the copy
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if id(child) in plan:
                setattr(parent, name, plan[id(child)])
    return model


log = logging.getLogger(__name__)

COMPILE_ENV = "RESDET_COMPILE"
# the parts of a detector that are pure tensor programs (no data-dependent sizes inside)
COMPILE_PARTS = ("backbone", "neck", "rpn.head", "roi_heads.box_head", "roi_heads.mask_head")
TRAIN_COMPILE_PARTS = COMPILE_PARTS + ("head",)  # a classifier's head; detectors have none by that name


def compile_requested(compile: bool | None) -> bool:
    """``compile`` if given, else the environment variable ``RESDET_COMPILE`` (``1`` = on)."""
    if compile is not None:
        return bool(compile)
    return os.environ.get(COMPILE_ENV, "0").strip().lower() in ("1", "true", "yes", "on")


def _tracing() -> bool:
    """True while torch.export, ONNX export, TorchScript or dynamo itself traces the model."""
    checks = (
        torch.compiler.is_compiling,
        getattr(torch.compiler, "is_exporting", lambda: False),
        torch.jit.is_tracing,
        torch.jit.is_scripting,
        torch.onnx.is_in_onnx_export,
    )
    return any(check() for check in checks)


class CompiledForward:
    """Replaces one module's ``forward``: a ``torch.compile``d copy of it (inductor, dynamic
    shapes). For inference (``training=False``) the weights are frozen into the graph, so oneDNN
    gets prepacked weights and conv+bias+ReLU(+add) fused; for training the graph keeps the
    parameters as inputs and inductor fuses the element-wise work (frozen BN, ReLU, residual
    add) of the forward and of the backward.

    The eager ``forward`` runs instead where the compiled graph is not the one asked for (an
    inference graph while gradients are enabled, a training graph under ``no_grad`` such as the
    validation inside a training run), while the model is being exported or traced, and for
    good after the compiled call fails once where eager succeeds (no C++ compiler, an
    unsupported op): one warning names the module and the reason. ``first_call_s`` is the
    one-time compile cost.
    """

    def __init__(self, module: nn.Module, name: str, training: bool = False) -> None:
        self.name = name
        self.training = training
        self.eager = module.forward
        options = {} if training else {"freezing": True}
        self.compiled = torch.compile(self.eager, dynamic=True, options=options)
        self.failed: str | None = None
        self.first_call_s: float | None = None

    def __call__(self, *args, **kwargs):
        if self.failed is not None or torch.is_grad_enabled() != self.training or _tracing():
            return self.eager(*args, **kwargs)
        start = time.perf_counter()
        try:
            out = self.compiled(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 -- any compile failure falls back to eager
            out = self.eager(*args, **kwargs)  # a genuine input error raises here, unmasked
            self.failed = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            log.warning("torch.compile of %s failed, running it eagerly from now on (%s)", self.name, self.failed)
            return out
        if self.first_call_s is None:
            self.first_call_s = time.perf_counter() - start
        return out


def _compile_parts(model: nn.Module, parts: tuple[str, ...], training: bool) -> dict[str, CompiledForward]:
    compiled = {}
    for name in parts:
        try:
            module = model.get_submodule(name)
        except AttributeError:
            continue
        if (
            isinstance(module, nn.Module)
            and not isinstance(module, nn.Identity)
            and not isinstance(module.forward, CompiledForward)
        ):
            module.forward = compiled[name] = CompiledForward(module, name, training=training)
    return compiled


def compile_for_inference(model: nn.Module, parts: tuple[str, ...] = COMPILE_PARTS) -> dict[str, CompiledForward]:
    """Compile the convolution stacks of a detector in place (lazily: the first forward pays
    the one-time cost). Returns ``{part name: CompiledForward}`` for the parts the model has."""
    return _compile_parts(model, parts, training=False)


def compile_for_training(model: nn.Module, parts: tuple[str, ...] | None = None) -> dict[str, CompiledForward]:
    """Compile, in place, the parts of ``model`` that carry its training compute: a detector's
    convolution stacks (``COMPILE_PARTS``) or a classifier's ``backbone`` and ``head``. The
    first training step pays the one-time cost of the forward and backward graphs; a part that
    fails to compile runs eagerly. Returns ``{part name: CompiledForward}``."""
    if parts:
        missing = [name for name in parts if not _has_submodule(model, name)]
        if missing:
            raise ConfigError(
                f"train_cfg.compile names {missing}, which {type(model).__name__} does not have; "
                f"its top-level parts are {[n for n, _ in model.named_children()]}"
            )
    return _compile_parts(model, tuple(parts) if parts else TRAIN_COMPILE_PARTS, training=True)


def _has_submodule(model: nn.Module, name: str) -> bool:
    try:
        model.get_submodule(name)
    except AttributeError:
        return False
    return True


def strip_compiled(model: nn.Module) -> int:
    """Undo ``compile_for_inference`` (the eager forwards come back). Returns how many."""
    count = 0
    for module in model.modules():
        if isinstance(module.__dict__.get("forward"), CompiledForward):
            del module.forward
            count += 1
    return count


def compile_cost_s(model: nn.Module) -> float:
    """Seconds spent by the first compiled calls of ``model``'s parts so far."""
    return sum(
        m.forward.first_call_s or 0.0 for m in model.modules() if isinstance(m.__dict__.get("forward"), CompiledForward)
    )


def has_fast_path(model: nn.Module) -> bool:
    """A detector that batches its own inputs (a ``preprocessor``) and can hand them to its
    convolutions in ``channels_last`` (a ``channels_last`` switch): Faster / Mask R-CNN. The
    inference entry points run such a model through ``optimize_for_inference``."""
    return hasattr(model, "channels_last") and hasattr(model, "preprocessor")


def is_inference_optimized(model: nn.Module) -> bool:
    """Whether ``model`` came out of ``optimize_for_inference``."""
    return bool(getattr(model, "inference_optimized", False))


def _refuse_training(module: nn.Module, args) -> None:
    if module.training:
        raise TrainingError(
            f"this {type(module).__name__} was optimised for inference (BN folded into its convolutions), "
            f"so training it would not train the model its checkpoint describes; train the model you "
            f"passed to optimize_for_inference (it is left as it was), e.g. init_model(config, checkpoint)"
        )


def _refuse_state_dict(module: nn.Module, prefix: str, keep_vars: bool) -> None:
    raise CheckpointError(
        f"this {type(module).__name__} was optimised for inference: its BN layers are folded into its "
        f"convolutions, a layout no checkpoint loader reads back; save the state_dict of the model you "
        f"passed to optimize_for_inference (it is left as it was), e.g. init_model(config, checkpoint)"
    )


def optimize_for_inference(
    model: nn.Module,
    *,
    inplace: bool = False,
    fuse_bn: bool = True,
    channels_last: bool = True,
    compile: bool | None = False,
) -> nn.Module:
    """The inference fast path of ``model``, for inference only: eval mode, frozen BN (and plain
    BN, which eval mode makes the same fixed map) folded into the preceding convolutions (in
    float64, rounded once), ``channels_last`` weights (and inputs, for a detector with a
    ``channels_last`` switch), and with ``compile`` (``None``: the ``RESDET_COMPILE``
    environment variable) its convolution stacks compiled (``compile_for_inference``). The
    outputs are the same up to float rounding.

    Like ``torch.ao.quantization.fuse_modules``, it returns a new model and leaves ``model`` as
    it was (its layout is still its checkpoint's: train it, save it, optimise it again); with
    ``inplace=True`` it changes ``model`` itself and returns it (no copy: for a caller that built
    the model for inference alone, as ``resdet eval``, ``demo`` and ``export`` do). A model
    already optimised comes back as it is.

    The optimised model refuses to run in training mode (``TrainingError``) and to give a
    ``state_dict`` (``CheckpointError``): both would be of the folded layout, not of the model
    the checkpoint describes.
    """
    if is_inference_optimized(model):
        if compile_requested(compile):
            compile_for_inference(model)
        return model
    modes = [(module, module.training) for module in model.modules()]
    model.eval()  # folding reads BN in eval mode
    if fuse_bn:
        optimized = fold_batch_norm(model, inplace=inplace)
    else:
        optimized = model if inplace else copy.deepcopy(model)
    if not inplace:
        for module, training in modes:  # the caller's model exactly as it was
            module.training = training
    model = optimized.eval()
    if channels_last:
        model.to(memory_format=torch.channels_last)
        if hasattr(model, "channels_last"):
            model.channels_last = True
    if compile_requested(compile):
        compile_for_inference(model)
    model.inference_optimized = True
    model.register_forward_pre_hook(_refuse_training)
    model.register_state_dict_pre_hook(_refuse_state_dict)
    return model
