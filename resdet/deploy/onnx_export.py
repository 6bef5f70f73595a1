"""One ONNX file per model: the whole test path in the graph, class names in its metadata.

Built from the ``torch.export`` program (``program.py``) with ``torch.onnx.export(...,
dynamo=True)`` (onnxscript), opset 18: data-dependent counts (NMS, score threshold, top-k)
and dynamic height / width stay symbolic. onnxscript's graph optimiser is skipped
(``optimize=False``): it took half the export time; onnxruntime optimises the graph when it
loads the file anyway. The file is checked with
``onnx.checker.check_model`` before it replaces ``out`` (written to a temporary file in the
same folder, then renamed).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

import resdet

from ..utils.io import atomic_write_bytes
from .errors import ExportError
from .program import dynamic_shapes, export_program, save_program

OPSET = 18
DETECTOR_OUTPUTS = ("boxes", "scores", "labels")


def _roi_pool(input, rois, spatial_scale: float, pooled_height: int, pooled_width: int):
    """``torchvision::roi_pool`` as ONNX ``MaxRoiPool`` (the same Fast R-CNN rule: corners
    rounded at the feature scale, ``max(end - start + 1, 1)`` cells split into bins). The
    translation torch ships for it takes the wrong number of arguments."""
    from onnxscript import INT64
    from onnxscript import opset18 as op

    pooled = op.MaxRoiPool(input, rois, pooled_shape=[pooled_height, pooled_width], spatial_scale=spatial_scale)
    return pooled, op.Cast(pooled, to=INT64.dtype)  # torchvision's op also returns its argmax (unused)


def _custom_translations() -> dict:
    return {torch.ops.torchvision.roi_pool.default: _roi_pool}


def class_names_for(model: nn.Module, cfg: Any, class_names: Sequence[str] | None = None) -> list[str]:
    """The label names stored in the file: ``class_names``, ``model.class_names``, the config's
    ``classes`` (or its val / test / train dataset's); else ``class_0 .. class_{C-1}``."""
    for candidate in (class_names, getattr(model, "class_names", None)):
        if isinstance(candidate, (list, tuple)) and candidate:
            return [str(c) for c in candidate]
    if cfg is not None:
        found = cfg.get("classes")
        for key in ("val_dataloader", "test_dataloader", "train_dataloader"):
            if isinstance(found, (list, tuple)) and found:
                break
            dataset = (cfg.get(key) or {}).get("dataset") or {}
            while not dataset.get("classes") and dataset.get("datasets"):
                dataset = dataset["datasets"][0]
            found = dataset.get("classes")
        if isinstance(found, (list, tuple)) and found:
            return [str(c) for c in found]
    count = getattr(model, "num_classes", None) or getattr(getattr(model, "head", None), "num_classes", 0)
    return [f"class_{i}" for i in range(int(count or 0))]


def metadata(model: nn.Module, cfg: Any, kind: str, class_names: Sequence[str] | None = None) -> dict[str, str]:
    """``metadata_props`` of the file (all strings): class names (JSON list), resdet's version,
    the config's name, the model type and the kind (``detector`` / ``classifier``)."""
    filename = getattr(cfg, "filename", None) if cfg is not None else None
    return {
        "class_names": json.dumps(class_names_for(model, cfg, class_names)),
        "resdet_version": str(resdet.__version__),
        "config": os.path.basename(filename) if filename else "",
        "model_type": type(model).__name__,
        "kind": kind,
    }


def export_onnx(
    model: nn.Module,
    out: str,
    cfg: Any = None,
    class_names: Sequence[str] | None = None,
    extra_metadata: dict[str, str] | None = None,
    program: tuple | None = None,
) -> dict[str, str]:
    """Export ``model`` (eval mode; e.g. ``resdet.apis.init_model``'s, BN folded) to ``out``.

    Detectors: input ``image`` uint8 ``3 x H x W`` RGB; outputs ``boxes`` (``N x 4`` float32
    xyxy input pixels), ``scores`` (``N``), ``labels`` (``N`` int64, 0-based) and for Mask
    R-CNN ``masks`` (``N x H x W`` uint8 0/1). Classifiers: ``images`` uint8 ``N x 3 x H x W``
    -> ``logits``. Returns the metadata written. Raises ``ExportError`` naming what is
    unsupported; ``out`` is untouched then. ``program``: ``export_program(model, cfg)``'s
    result when the caller already has it (e.g. to save the ``.pt2`` of the same graph).
    """
    import onnx

    cfg = cfg if cfg is not None else getattr(model, "cfg", None)
    program, kind, example = program if program is not None else export_program(model, cfg)
    names = (
        list(DETECTOR_OUTPUTS) + (["masks"] if getattr(model, "has_masks", False) else [])
        if kind == "detector"
        else ["logits"]
    )
    try:
        onnx_program = torch.onnx.export(
            program,
            (example,),
            dynamic_shapes=dynamic_shapes(kind),
            dynamo=True,
            opset_version=OPSET,
            input_names=["image" if kind == "detector" else "images"],
            output_names=names,
            verbose=False,
            optimize=False,
            custom_translation_table=_custom_translations(),
        )
    except Exception as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ExportError(f"ONNX translation of {type(model).__name__} failed: {first}") from err
    proto = onnx_program.model_proto
    props = metadata(model, cfg, kind, class_names)
    props.update(extra_metadata or {})
    onnx.helper.set_model_props(proto, props)
    data = proto.SerializeToString()
    try:
        onnx.checker.check_model(proto, full_check=True)
    except onnx.checker.ValidationError as err:
        raise ExportError(f"the exported ONNX model of {type(model).__name__} does not validate: {err}") from err
    atomic_write_bytes(data, os.fspath(out))
    return props


def export_torch(model: nn.Module, out: str, cfg: Any = None) -> str:
    """Save the ``torch.export`` program of ``model`` (dynamic H and W) as a ``.pt2`` at
    ``out``; returns its kind (``detector`` / ``classifier``). ``torch.export.load`` reads it."""
    cfg = cfg if cfg is not None else getattr(model, "cfg", None)
    program, kind, _ = export_program(model, cfg)
    save_program(program, out)
    return kind


def temporary_onnx(model: nn.Module, cfg: Any = None, class_names: Sequence[str] | None = None) -> str:
    """Export to a new temporary ``.onnx`` file and return its path (the caller removes it)."""
    fd, path = tempfile.mkstemp(suffix=".onnx", prefix="resdet-")
    os.close(fd)
    try:
        export_onnx(model, path, cfg=cfg, class_names=class_names)
    except BaseException:
        os.remove(path)
        raise
    return path
