"""Collate functions (``COLLATE_FUNCTIONS``): sample dicts -> the batch dict of CONTRACTS.md.

Every function takes readable sample dicts and returns ``{'inputs', 'targets'}``; the
loader wraps it in ``SkipCollate``, which removes the samples a dataset could not read
(``Skipped`` markers, or ``None``) first and adds ``num_skipped``. Images stay uint8 until
they reach the model's device; the model normalises them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Callable

import numpy as np
import torch

from ..registry import COLLATE_FUNCTIONS
from ..structures.image_meta import META_KEYS
from .problems import Skipped, is_skipped


def _image_chw(img: Any) -> torch.Tensor:
    """``H x W x 3`` uint8 numpy (or an already ``3 x H x W`` tensor) -> ``3 x H x W`` tensor."""
    if isinstance(img, torch.Tensor):
        return img
    array = np.asarray(img)
    if array.ndim != 3 or array.shape[2] != 3:
        raise ValueError(f"sample 'img' must be H x W x 3, got shape {array.shape}")
    return torch.from_numpy(np.ascontiguousarray(array)).permute(2, 0, 1)


@COLLATE_FUNCTIONS.register_module(name="cls_collate")
def cls_collate(samples: Sequence[dict]) -> dict:
    """Classification batch: ``inputs`` uint8 ``N x 3 x H x W``, ``targets`` ``{'labels': int64 N}``
    (plus ``'img_ids'``, a list, when the samples carry ``img_id``).

    All images of a batch must have the same size (crop/resize in the pipeline).
    """
    if not samples:
        return {
            "inputs": torch.empty(0, 3, 0, 0, dtype=torch.uint8),
            "targets": {"labels": torch.empty(0, dtype=torch.int64)},
        }
    sizes = {np.shape(s["img"])[:2] for s in samples}
    if len(sizes) > 1:
        raise ValueError(
            f"cls_collate needs images of one size per batch, got sizes {sorted(sizes)}; "
            "add a crop or resize transform to the pipeline"
        )
    first = samples[0]["img"]
    if isinstance(first, torch.Tensor):
        inputs = torch.stack([s["img"] for s in samples])
    else:  # one copy: N x H x W x 3 -> N x 3 x H x W (contiguous)
        inputs = torch.from_numpy(np.stack([s["img"] for s in samples])).permute(0, 3, 1, 2).contiguous()
    targets = {"labels": torch.as_tensor([int(s["label"]) for s in samples], dtype=torch.int64)}
    if all("img_id" in s for s in samples):  # lets metrics de-duplicate samples across ranks
        targets["img_ids"] = [s["img_id"] for s in samples]
    return {"inputs": inputs, "targets": targets}


def _as_tensor(value: Any, dtype: torch.dtype) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value.to(dtype)
    return torch.as_tensor(np.asarray(value), dtype=dtype)


@COLLATE_FUNCTIONS.register_module(name="det_collate")
def det_collate(samples: Sequence[dict]) -> dict:
    """Detection batch: ``inputs`` list of uint8 ``3 x H_i x W_i``; ``targets`` list of dicts with
    ``boxes`` (float32 ``N_i x 4``), ``labels`` (int64 ``N_i``), ``ignore`` (bool ``N_i``),
    optional ``masks`` (uint8 ``N_i x H x W``; polygons are passed through unchanged), and the
    ``img_id`` and the meta keys of ``resdet.structures.image_meta`` (``orig_size``, ``img_shape``,
    ``scale_factor``, ``flip``)."""
    inputs, targets = [], []
    for sample in samples:
        image = _image_chw(sample["img"])
        inputs.append(image)
        boxes = _as_tensor(sample.get("boxes", np.zeros((0, 4), np.float32)), torch.float32).reshape(-1, 4)
        target = {
            "boxes": boxes,
            "labels": _as_tensor(sample.get("labels", np.zeros(0, np.int64)), torch.int64).reshape(-1),
        }
        ignore = sample.get("ignore")
        target["ignore"] = (
            torch.zeros(len(boxes), dtype=torch.bool) if ignore is None else _as_tensor(ignore, torch.bool).reshape(-1)
        )
        masks = sample.get("masks")
        if masks is not None:
            target["masks"] = _as_tensor(masks, torch.uint8) if isinstance(masks, (np.ndarray, torch.Tensor)) else masks
        for key in ("img_id", *META_KEYS):  # the model reads META_KEYS as one ImageMeta per image
            if key in sample:
                target[key] = sample[key]
        target.setdefault("img_shape", tuple(image.shape[-2:]))
        target.setdefault("orig_size", target["img_shape"])
        target.setdefault("scale_factor", (1.0, 1.0))
        target.setdefault("flip", False)
        targets.append(target)
    return {"inputs": inputs, "targets": targets}


@COLLATE_FUNCTIONS.register_module(name="loc_collate")
def loc_collate(samples: Sequence[dict]) -> dict:
    """``det_collate`` plus, per target, ``image_labels`` (int64 ``K``: the image's classes —
    its ``label``, else the classes of its boxes). Images with no boxes keep their class."""
    batch = det_collate(samples)
    for sample, target in zip(samples, batch["targets"]):
        if "label" in sample:
            classes = [int(sample["label"])]
        else:
            classes = sorted({int(v) for v in np.asarray(sample.get("labels", [])).reshape(-1)})
        target["image_labels"] = torch.as_tensor(classes, dtype=torch.int64)
    return batch


class SkipCollate:
    """Wraps a collate function: removes the samples a dataset could not read (``Skipped``
    markers, or ``None``) before it runs, putting a marker's ``replacement`` (a training
    stand-in) in its place, and adds to the batch ``num_skipped`` (how many were skipped,
    replaced ones included) and, when any, ``skipped`` (``str()`` of each marker: the file
    and image id). Picklable, for worker processes."""

    def __init__(self, collate: Callable[[list], dict]) -> None:
        self.collate = collate

    def __call__(self, samples: Sequence[Any]) -> dict:
        kept, skipped = [], []
        for sample in samples:
            if not is_skipped(sample):
                kept.append(sample)
                continue
            skipped.append(sample)
            if sample is not None and sample.replacement is not None:
                kept.append(sample.replacement)
        batch = self.collate(kept)
        if isinstance(batch, dict):  # a custom collate's tuple batch carries no counts
            batch["num_skipped"] = len(skipped)
            named = [str(s) for s in skipped if isinstance(s, Skipped)]
            if named:
                batch["skipped"] = named
        return batch
