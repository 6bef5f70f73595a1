"""``browse_dataset``: draw what a model will see -- the ground truth of a config's dataset
after its pipeline (augmentations included), or before it.

Detection sets (COCO, VOC, the synthetic shapes, ILSVRC CLS-LOC / shapes localization) give
one picture per sample: boxes and class names in a colour per class, translucent outlined
masks, ignored (crowd / difficult) boxes dashed, a localization image's class in a caption.
Classification sets (ImageFolder, the synthetic shapes, CIFAR-10) give one contact sheet per
class: a grid of that class's first images under its name.
"""

from __future__ import annotations

import copy
import os
import random
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ..data.datasets import ClsDataset
from ..data.problems import is_skipped
from ..registry import DATASETS
from ..utils.errors import ConfigError, DataError, ResdetError
from ..visualization import class_name, contact_sheet, draw_detections, save_image

SPLITS = {
    "train": ("train_dataloader",),
    "val": ("val_dataloader", "test_dataloader"),
    "test": ("test_dataloader", "val_dataloader"),
}
DEFAULT_MAX_DETECTION = 20  # pictures
DEFAULT_MAX_CLASSIFICATION = 16  # images per class sheet


@dataclass
class BrowseReport:
    """What ``browse_dataset`` did: ``kind`` (``'detection'`` or ``'classification'``),
    the ``written`` picture paths, the config key of the dataset, the dataset's description,
    the samples ``skipped`` as unreadable and, for classification, the classes without images."""

    kind: str
    written: list[str]
    dataset_key: str
    dataset: str
    skipped: int = 0
    empty_classes: list[str] = field(default_factory=list)


def dataset_config(cfg: Any, split: str = "train") -> tuple[str, dict]:
    """``(key, dataset config)`` of ``split``: ``train_dataloader.dataset`` for ``'train'``;
    ``val_dataloader.dataset`` (else ``test_dataloader.dataset``) for ``'val'``; the reverse
    for ``'test'``. Raises ``ConfigError`` naming the keys when the config has none."""
    if split not in SPLITS:
        raise ConfigError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    for key in SPLITS[split]:
        loader = cfg.get(key)
        if loader and loader.get("dataset"):
            dataset = loader["dataset"]
            return f"{key}.dataset", dataset.to_dict() if hasattr(dataset, "to_dict") else copy.deepcopy(dataset)
    raise ConfigError(f"the config has no {' or '.join(k + '.dataset' for k in SPLITS[split])} for split {split!r}")


def without_pipelines(dataset_cfg: dict) -> dict:
    """A copy of ``dataset_cfg`` whose pipelines (its own and its parts') are empty."""
    out = copy.deepcopy(dataset_cfg)
    if "pipeline" in out or "datasets" not in out:
        out["pipeline"] = []
    for part in out.get("datasets") or []:
        if isinstance(part, dict):
            part.update(without_pipelines(part))
    return out


def build_browse_dataset(cfg: Any, split: str = "train", use_pipeline: bool = True):
    """``(dataset, key)``: the dataset of ``split`` built from the config (its pipeline emptied
    when ``use_pipeline`` is False). Errors name the config key."""
    key, dataset_cfg = dataset_config(cfg, split)
    if not use_pipeline:
        dataset_cfg = without_pipelines(dataset_cfg)
    where = f"{key} ({dataset_cfg.get('type')})"
    try:
        return DATASETS.build(dataset_cfg), key
    except ResdetError as err:
        try:
            named = type(err)(f"{where}: {err}")
        except Exception:  # an error class with another constructor: keep it as it is
            raise err from None
        raise named from err
    except FileNotFoundError as err:
        raise DataError(f"{where}: {err}") from err
    except (KeyError, TypeError, ValueError) as err:
        raise ConfigError(f"{where} cannot be built: {type(err).__name__}: {err}") from err


def display_names(dataset: Any) -> list[str]:
    """Class names to print: readable names where a dataset has them (ILSVRC wnids)."""
    names = list(getattr(dataset, "class_names", None) or getattr(dataset, "classes", None) or [])
    readable = getattr(dataset, "readable_names", None)
    if readable is not None and len(readable) == len(names):
        return [str(n) for n in readable]
    return [str(n) for n in names]


def _file_part(value: Any) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", str(value)).strip("._") or "x"


def draw_ground_truth(sample: dict, class_names: list[str] | None) -> np.ndarray:
    """One detection sample (``img``, ``boxes``, ``labels``, optional ``ignore`` / ``masks``,
    a localization sample's ``label``) drawn as an ``H x W x 3`` uint8 RGB picture."""
    img = np.asarray(sample["img"])
    if img.dtype != np.uint8:
        img = np.clip(np.rint(img), 0, 255).astype(np.uint8)
    image_label = sample.get("label")
    caption = None if image_label is None else f"image class: {class_name(image_label, class_names)}"
    return draw_detections(
        img,
        sample.get("boxes", np.zeros((0, 4), np.float32)),
        sample.get("labels", np.zeros(0, np.int64)),
        scores=None,
        masks=sample.get("masks"),
        class_names=class_names,
        ignore=sample.get("ignore"),
        caption=caption,
        caption_label=image_label,
    )


def _browse_detection(dataset, out_dir: str, max_samples: int, ext: str, report: BrowseReport) -> None:
    names = display_names(dataset)
    for idx in range(len(dataset)):
        if len(report.written) >= max_samples:
            break
        sample = dataset[idx]
        if is_skipped(sample):
            report.skipped += 1
            continue
        path = os.path.join(out_dir, f"{idx:04d}_{_file_part(sample.get('img_id', idx))}.{ext}")
        save_image(draw_ground_truth(sample, names), path)
        report.written.append(path)


def _browse_classification(
    dataset, out_dir: str, max_samples: int, ext: str, report: BrowseReport, max_classes: int | None, stage: str
) -> None:
    names = display_names(dataset)
    labels = list(dataset.labels)
    num_classes = max(len(names), max(labels) + 1 if labels else 0)
    by_class: dict[int, list[int]] = {k: [] for k in range(num_classes)}
    for idx, label in enumerate(labels):
        by_class.setdefault(int(label), []).append(idx)
    for label in sorted(by_class)[:max_classes]:
        indices, images = by_class[label], []
        for idx in indices:
            if len(images) >= max_samples:
                break
            sample = dataset[idx]
            if is_skipped(sample):
                report.skipped += 1
                continue
            images.append(np.asarray(sample["img"], dtype=np.uint8))
        name = class_name(label, names)
        if not images:
            report.empty_classes.append(name)
            continue
        title = f"{name} (label {label}): first {len(images)} of {len(indices)} images, {stage}"
        path = os.path.join(out_dir, f"class_{label:03d}_{_file_part(name)}.{ext}")
        save_image(contact_sheet(images, title), path)
        report.written.append(path)


def browse_dataset(
    cfg: Any,
    out_dir: str,
    split: str = "train",
    max_samples: int | None = None,
    use_pipeline: bool = True,
    seed: int | None = 0,
    ext: str = "png",
    max_classes: int | None = None,
) -> BrowseReport:
    """Draw the ground truth of the config's ``split`` dataset into ``out_dir``.

    Detection datasets: the first ``max_samples`` readable samples (default 20), one
    ``<index>_<image id>.<ext>`` picture each. Classification datasets: one contact sheet
    ``class_<label>_<name>.<ext>`` per class (the first ``max_classes`` classes; default
    all) of its first ``max_samples`` images (default 16).

    ``use_pipeline``: samples after the config's pipeline (what the model sees; random
    transforms drawn from ``seed``), else as decoded. Returns a ``BrowseReport``.
    """
    dataset, key = build_browse_dataset(cfg, split, use_pipeline)
    if seed is not None:
        random.seed(seed)
        np.random.seed(seed)
        torch.manual_seed(seed)
    classification = isinstance(dataset, ClsDataset)
    report = BrowseReport("classification" if classification else "detection", [], key, repr(dataset))
    if classification:
        limit = DEFAULT_MAX_CLASSIFICATION if max_samples is None else int(max_samples)
        stage = f"{split} split, " + ("after the pipeline" if use_pipeline else "before the pipeline")
        _browse_classification(dataset, out_dir, limit, ext, report, max_classes, stage)
    else:
        limit = DEFAULT_MAX_DETECTION if max_samples is None else int(max_samples)
        _browse_detection(dataset, out_dir, limit, ext, report)
    return report
