"""``torch.export`` of the whole test path (``wrappers.py``) with dynamic height and width.

The ExportedProgram is the one graph both formats come from: ``--format torch-export`` saves it
as a ``.pt2``; ``--format onnx`` translates it with ``torch.onnx.export(..., dynamo=True)``.
"""

from __future__ import annotations

import io
import os
from typing import Any

import torch
from torch import nn
from torch.export import Dim

from ..models.detectors.fast_inference import fold_batch_norm, is_eval_batch_norm, optimize_for_inference
from ..utils.io import atomic_write_bytes
from .errors import ExportError
from .wrappers import ClassifierGraph, DetectorGraph, check_exportable

MIN_SIDE, MAX_SIDE = 32, 8192  # the range of input sides the exported graph accepts


@torch.library.register_fake("torchvision::nms", allow_override=True)
def _nms_fake(dets, scores, iou_threshold):
    """torchvision's own fake ``nms`` claims at least 2 kept boxes (``create_unbacked_symint``'s
    default), which an exported program then asserts at run time; 0 or 1 are valid counts."""
    torch._check(dets.dim() == 2 and dets.size(1) == 4, lambda: "nms boxes must be N x 4")
    torch._check(dets.size(0) == scores.size(0), lambda: "nms boxes and scores differ in length")
    kept = torch._custom_ops.get_ctx().new_dynamic_size()
    torch._check(kept <= dets.size(0))
    return dets.new_empty(kept, dtype=torch.long)


def freeze_batch_norm(model: nn.Module) -> nn.Module:
    """``model`` itself when it has no BatchNorm running on its statistics; else a copy whose
    BatchNorm layers are ``FrozenBatchNorm2d`` with those statistics, folded into the preceding
    convolutions where there is one (``fold_batch_norm``). A config
    trained with plain BN (e.g. frcnn_r50_c4_bccd.py) keeps it in eval mode, where it is the
    same affine map; its functional form guards on the (data-dependent) number of RoIs, so the
    graph gets the folded form. Outputs agree up to float rounding."""
    if not any(is_eval_batch_norm(m) for m in model.modules()):
        return model
    return fold_batch_norm(model)


def graph_module(model: nn.Module, cfg: Any = None, fold_bn: bool = True) -> nn.Module:
    """The wrapper module exported for ``model``: ``DetectorGraph`` or ``ClassifierGraph``
    around its inference fast path (``optimize_for_inference``: a copy, ``model`` left as it
    is, unless it is optimised already), or with ``fold_bn=False`` around ``model`` as it is
    (BatchNorm on its statistics still frozen and folded: ``freeze_batch_norm``)."""
    kind = check_exportable(model, cfg)
    model = optimize_for_inference(model) if fold_bn else freeze_batch_norm(model)
    wrapper = DetectorGraph(model, cfg) if kind == "detector" else ClassifierGraph(model)
    return wrapper.eval()


def example_input(kind: str, model: nn.Module) -> torch.Tensor:
    """A uint8 example the graph is traced with (its sizes are symbolic in the program)."""
    generator = torch.Generator().manual_seed(0)
    device = next(model.parameters()).device
    shape = (3, 256, 320) if kind == "detector" else (2, 3, 64, 64)
    return torch.randint(0, 256, shape, generator=generator, dtype=torch.uint8).to(device)


def dynamic_shapes(kind: str) -> dict:
    """Height and width (and a classifier's batch) dynamic. ``Dim.DYNAMIC``: an error if the
    trace fixes them to the example's values, but guards that hold for every size and that the
    solver cannot prove (floor divisions of strided layers) are kept as run-time checks."""
    height, width = Dim.DYNAMIC(min=MIN_SIDE, max=MAX_SIDE), Dim.DYNAMIC(min=MIN_SIDE, max=MAX_SIDE)
    if kind == "detector":
        return {"image": {1: height, 2: width}}
    return {"images": {0: Dim.DYNAMIC(min=1, max=1024), 2: height, 3: width}}


def export_program(
    model: nn.Module, cfg: Any = None, fold_bn: bool = True
) -> tuple[torch.export.ExportedProgram, str, torch.Tensor]:
    """``(ExportedProgram with dynamic H and W, kind, example input)`` of ``model`` in eval mode
    (``cfg``: its config, for the test pipeline's resize; default ``model.cfg``), on its
    inference fast path unless ``fold_bn=False`` (see ``graph_module``)."""
    cfg = cfg if cfg is not None else getattr(model, "cfg", None)
    wrapper = graph_module(model, cfg, fold_bn=fold_bn)
    kind = "detector" if isinstance(wrapper, DetectorGraph) else "classifier"
    example = example_input(kind, model)
    try:
        with torch.no_grad():
            program = torch.export.export(wrapper, (example,), dynamic_shapes=dynamic_shapes(kind), strict=False)
    except ExportError:
        raise
    except Exception as err:  # an unsupported layer or op: say which, keep the trace as the cause
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ExportError(f"torch.export of {type(model).__name__} failed: {first}") from err
    return program, kind, example


def save_program(program: torch.export.ExportedProgram, path: str) -> None:
    """Write a ``.pt2`` atomically (``torch.export.load`` reads it)."""
    buffer = io.BytesIO()
    torch.export.save(program, buffer)
    atomic_write_bytes(buffer.getvalue(), os.fspath(path))
