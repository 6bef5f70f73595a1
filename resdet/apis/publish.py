"""``publish_checkpoint``: the file to share a trained model with — its weights only (no
optimizer, scheduler, scaler or RNG state), the config it was trained with and its class names,
named ``<name>-<first 8 hex digits of its sha256>.<ext>`` (mmdetection's publish_model
convention), in safetensors (default) or a ``.pth`` that ``torch.load(weights_only=True)`` reads.

``init_model(config, published_file)``, ``resdet eval`` and ``resdet demo`` load it like any
checkpoint; its content checksum is verified on load.
"""

from __future__ import annotations

import hashlib
import io
import os

import torch

from .. import __version__
from ..models.converters import extract_state_dict
from ..utils.errors import CheckpointError
from ..utils.io import add_checksum, atomic_write_bytes, safe_load, safetensors_bytes

FORMATS = {"safetensors": ".safetensors", "pth": ".pth"}
_KEPT_META = ("config", "classes", "stride_in_1x1", "source", "arch")


def published_meta(source: dict, checkpoint: str) -> dict:
    """What a published file says about itself: the training config and classes (when the
    checkpoint recorded them), where it came from, and the resdet version."""
    meta = source.get("meta") if isinstance(source.get("meta"), dict) else {}
    out = {key: meta[key] for key in _KEPT_META if meta.get(key) is not None}
    out.update(resdet_version=__version__, published_from=os.path.basename(checkpoint))
    if isinstance(source.get("iter"), int):
        out["iter"] = int(source["iter"])
    return out


def _target_stem(out: str) -> str:
    stem, ext = os.path.splitext(out)
    return stem if ext in FORMATS.values() else out


def publish_checkpoint(checkpoint: str, out: str, fmt: str | None = None) -> dict:
    """Write the published file for ``checkpoint``; ``out`` is the name without the hash
    (``work_dirs/x/shapes_frcnn`` or ``.../shapes_frcnn.safetensors``; an extension of
    ``.pth`` / ``.safetensors`` picks the format unless ``fmt`` does). Returns ``{'path',
    'sha256', 'bytes', 'source_bytes', 'num_tensors'}``."""
    ext = os.path.splitext(out)[1]
    fmt = fmt or next((name for name, e in FORMATS.items() if e == ext), "safetensors")
    if fmt not in FORMATS:
        raise CheckpointError(f"publish format {fmt!r} unknown; allowed: {', '.join(FORMATS)}")
    source = safe_load(checkpoint)
    state = extract_state_dict(source, checkpoint)
    obj = {
        "model": {k: v.detach().cpu() for k, v in state.items()},
        "meta": published_meta(source if isinstance(source, dict) else {}, checkpoint),
    }
    if fmt == "safetensors":
        data = safetensors_bytes(obj)
    else:
        buffer = io.BytesIO()
        torch.save(add_checksum(obj), buffer)
        data = buffer.getvalue()
    digest = hashlib.sha256(data).hexdigest()
    path = f"{_target_stem(out)}-{digest[:8]}{FORMATS[fmt]}"
    if os.path.dirname(path):
        os.makedirs(os.path.dirname(path), exist_ok=True)
    atomic_write_bytes(data, path)
    return {
        "path": path,
        "sha256": digest,
        "bytes": len(data),
        "source_bytes": os.path.getsize(checkpoint),
        "num_tensors": len(obj["model"]),
    }
