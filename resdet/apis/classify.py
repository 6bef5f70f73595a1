"""Classification entry points: ``inference_classifier`` (top-k classes of images) and the
per-pixel mean of a training set (``compute_pixel_mean`` / ``resolve_pixel_mean``) that
``tools/train_cls.py`` loads into ``model.mean`` (the paper's per-pixel mean subtraction).
"""

from __future__ import annotations

import copy
import logging
import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Subset

from ..data.image_io import imread_rgb
from ..data.problems import is_skipped
from ..data.transforms.det_transforms import build_pipeline
from ..registry import DATASETS
from ..utils import dist
from ..utils.io import atomic_save, safe_load

logger = logging.getLogger("resdet")


def _test_pipeline(model: nn.Module) -> list:
    """The ``val_dataloader`` pipeline of the model's config (``init_model`` keeps it as
    ``model.cfg``), or none."""
    cfg = getattr(model, "cfg", None)
    try:
        pipeline = cfg.val_dataloader.dataset.pipeline  # type: ignore[union-attr]
    except AttributeError:
        return []
    return [p.to_dict() if hasattr(p, "to_dict") else dict(p) for p in (pipeline or [])]


def _class_names(model: nn.Module) -> list[str] | None:
    names = getattr(model, "class_names", None)
    cfg = getattr(model, "cfg", None)
    if names is None and cfg is not None and cfg.get("classes"):
        names = list(cfg.get("classes"))
    return list(names) if names is not None else None


def _to_hwc_uint8(image: Any) -> np.ndarray:
    if isinstance(image, (str, os.PathLike)):
        return imread_rgb(str(image))
    if isinstance(image, torch.Tensor):
        if image.dim() != 3 or image.shape[0] != 3:
            raise ValueError(f"a tensor image must be 3 x H x W, got shape {tuple(image.shape)}")
        image = image.detach().cpu()
        if image.is_floating_point():
            raise TypeError(
                "tensor images must be uint8 (0..255); float tensors are taken as "
                "normalised model inputs: call the model directly"
            )
        return image.permute(1, 2, 0).numpy()
    array = np.asarray(image)
    if array.ndim != 3 or array.shape[2] != 3 or array.dtype != np.uint8:
        raise ValueError(f"array images must be H x W x 3 uint8 RGB, got shape {array.shape} {array.dtype}")
    return array


@torch.inference_mode()
def inference_classifier(
    model: nn.Module, images: Any, topk: int = 5, pipeline: Sequence[dict] | None = None
) -> list[dict] | dict:
    """Classify images with a classifier in eval mode (e.g. from ``init_model``).

    Args:
        model: returns ``N x C`` scores for a uint8 ``N x 3 x H x W`` batch.
        images: a path, an ``H x W x 3`` uint8 RGB array, a uint8 ``3 x H x W`` tensor, a list
            of those, or a uint8 ``N x 3 x H x W`` tensor.
        topk: how many classes to return per image.
        pipeline: transforms applied to each image first (default: the config's
            ``val_dataloader`` pipeline, e.g. resize + centre crop).

    Returns one dict per image (a single dict for a single image): ``labels`` (top-k class
    indices, best first), ``scores`` (their softmax probabilities) and ``class_names`` when
    the model's config names its classes.
    """
    single = isinstance(images, (str, os.PathLike, np.ndarray)) or (
        isinstance(images, torch.Tensor) and images.dim() == 3
    )
    if isinstance(images, torch.Tensor) and images.dim() == 4:
        items = list(images)
    else:
        items = [images] if single else list(images)
    transform = build_pipeline(_test_pipeline(model) if pipeline is None else pipeline)
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    names = _class_names(model)
    results = []
    for item in items:  # images may differ in size: one forward each
        sample = transform(dict(img=_to_hwc_uint8(item), label=-1, img_id=len(results)))
        img = torch.from_numpy(np.ascontiguousarray(sample["img"])).permute(2, 0, 1)[None].to(device)
        probs = F.softmax(model(img).float(), dim=1)[0]
        k = min(int(topk), probs.numel())
        scores, labels = probs.topk(k)
        result = dict(labels=labels.tolist(), scores=scores.tolist())
        if names is not None:
            result["class_names"] = [names[i] for i in result["labels"]]
        results.append(result)
    return results[0] if single else results


def _keep_sample(sample):
    return sample


def compute_pixel_mean(
    dataset_cfg: dict,
    size: int = 32,
    resize: int | None = None,
    crop: int | None = None,
    max_images: int | None = None,
    seed: int = 0,
    num_workers: int = 0,
) -> torch.Tensor:
    """The mean image of a dataset, ``3 x size x size`` float32 (RGB, 0..255).

    Images pass through ``ResizeShortestEdge(resize)`` and ``CenterCrop(crop)`` when given
    (ImageNet: 256 / 224), are summed, and the mean is area-resized to ``size``. With
    ``max_images`` a fixed random subset (``seed``) is used. A dataset with a fast
    ``pixel_mean()`` (CIFAR10) is used directly when no resize/crop is asked. Images are
    decoded by ``num_workers`` loader processes.
    """
    cfg = copy.deepcopy(dict(dataset_cfg))
    pipeline = []
    if resize:
        pipeline.append(dict(type="ResizeShortestEdge", short_edge_length=int(resize), max_size=None))
    if crop:
        pipeline.append(dict(type="CenterCrop", size=int(crop)))
    cfg["pipeline"] = pipeline
    dataset = DATASETS.build(cfg)
    if not pipeline and callable(getattr(dataset, "pixel_mean", None)) and max_images is None:
        mean = torch.as_tensor(dataset.pixel_mean(), dtype=torch.float32)
    else:
        indices = np.arange(len(dataset))
        if max_images is not None and max_images < len(dataset):
            indices = np.sort(np.random.default_rng(seed).permutation(len(dataset))[:max_images])
        loader = DataLoader(
            Subset(dataset, [int(i) for i in indices]),
            batch_size=None,
            num_workers=int(num_workers),
            collate_fn=_keep_sample,
        )
        total, count = None, 0
        for sample in loader:  # decoded in worker processes
            if is_skipped(sample):
                continue
            img = sample["img"].astype(np.float64)
            if total is not None and img.shape != total.shape:
                raise ValueError(
                    f"pixel mean needs images of one size, got {img.shape} and {total.shape}; "
                    "set pixel_mean.resize and pixel_mean.crop"
                )
            total = img if total is None else total + img
            count += 1
        if not count:
            raise ValueError(f"no readable image in the dataset {cfg.get('type')} to compute the pixel mean")
        mean = torch.from_numpy(total / count).float().permute(2, 0, 1)
    if mean.shape[-2:] != (size, size):
        mean = F.interpolate(mean[None], size=(size, size), mode="area")[0]
    return mean.contiguous()


def resolve_pixel_mean(cfg: Any, work_dir: str) -> torch.Tensor | None:
    """For a config with a ``pixel_mean`` entry: the training set's mean image (computed once,
    cached as ``work_dir/pixel_mean.pth``), to be loaded into ``model.mean``; else ``None``.
    In a distributed run rank 0 computes and the others read the cache."""
    spec = cfg.get("pixel_mean")
    if not spec:
        return None
    spec = spec.to_dict() if hasattr(spec, "to_dict") else dict(spec)
    allowed = {"size", "resize", "crop", "max_images", "seed"}
    if set(spec) - allowed:
        raise KeyError(f"unknown pixel_mean keys {sorted(set(spec) - allowed)}; allowed: {', '.join(sorted(allowed))}")
    cache = os.path.join(work_dir, "pixel_mean.pth")
    if dist.is_main_process() and not os.path.isfile(cache):
        dataset_cfg = cfg.train_dataloader.dataset
        dataset_cfg = dataset_cfg.to_dict() if hasattr(dataset_cfg, "to_dict") else dict(dataset_cfg)
        workers = int(cfg.train_dataloader.get("num_workers", 0))
        mean = compute_pixel_mean(dataset_cfg, num_workers=workers, **spec)
        atomic_save({"pixel_mean": mean, "spec": spec}, cache)
        logger.info("per-pixel mean (%s) of the training set -> %s", "x".join(map(str, mean.shape)), cache)
    dist.barrier()
    mean = safe_load(cache)["pixel_mean"]
    configured = torch.as_tensor(cfg.model.get("mean", (0, 0, 0)), dtype=torch.float32)
    if configured.shape != mean.shape:
        logger.warning(
            "model.mean in the config has shape %s but the computed per-pixel mean is %s: "
            "building the model from the config file alone will not load this checkpoint's "
            "mean",
            tuple(configured.shape),
            tuple(mean.shape),
        )
    return mean
