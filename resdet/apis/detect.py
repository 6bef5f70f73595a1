"""``inference_detector``: run a detector on image files, arrays or tensors with its
config's test pipeline; results come back in original image pixels."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from ..data.image_io import imread_rgb
from ..data.transforms.det_transforms import build_pipeline, inference_pipeline_of
from ..engine import Trainer
from ..models.converters import is_weights_name
from ..utils.config import ConfigError, load_config
from ..utils.dist import barrier
from ..visualization import class_name, draw_detections, output_paths, save_image, select_detections
from .model import fast_path


def _to_rgb_array(image: Any, index: int) -> np.ndarray:
    if isinstance(image, str):
        return imread_rgb(image)
    if isinstance(image, torch.Tensor):
        if image.ndim != 3 or image.shape[0] != 3:
            raise ValueError(f"image {index}: a tensor must be 3 x H x W (RGB), got {tuple(image.shape)}")
        t = image.detach().cpu()
        if t.dtype != torch.uint8:  # float: 0..1 (torchvision convention) or 0..255
            t = t.float()
            t = (t * 255.0 if float(t.max()) <= 1.0 else t).round().clamp(0, 255).to(torch.uint8)
        return np.ascontiguousarray(t.permute(1, 2, 0).numpy())
    arr = np.asarray(image)
    if arr.ndim != 3 or arr.shape[2] != 3 or arr.dtype != np.uint8:
        raise ValueError(
            f"image {index}: expected a path, an H x W x 3 uint8 RGB array or a "
            f"3 x H x W tensor, got {type(image).__name__} of shape {getattr(arr, 'shape', None)} "
            f"and dtype {getattr(arr, 'dtype', None)}"
        )
    return np.ascontiguousarray(arr)


@torch.inference_mode()
def inference_detector(
    model: nn.Module,
    images: Any,
    pipeline: Sequence[dict] | None = None,
    batch_size: int = 4,
    cfg: Any = None,
    class_names: Sequence[str] | None = None,
) -> list[dict] | dict:
    """Detect objects in one image or a list of them.

    Args:
        model: a detector (e.g. from ``init_model``). A Faster / Mask R-CNN runs on its fast path
            (``optimize_for_inference``: BN folded, ``channels_last``) as a copy, ``model`` itself
            left as it is; the copy is made once and reused while ``model`` is unchanged (its
            weights and settings), so calling in a loop costs one folding.
        cfg: the config whose test pipeline is applied (default: ``model.cfg``, the config
            ``init_model`` built the model from); ``pipeline`` overrides both.
        images: a path, an ``H x W x 3`` uint8 RGB array, a ``3 x H x W`` tensor (uint8, or
            float in 0..1 or 0..255), or a list of them.
        pipeline: test transforms overriding the config's (e.g. ``[]`` for none).
        batch_size: images per forward pass.
        class_names: the names of the labels (default: ``model.class_names`` when set, e.g.
            from a checkpoint's ``meta['classes']``; else the config's ``classes``; else the
            ``classes`` of its val / test dataset; see ``class_names_of``).

    Returns one dict per image (a single dict for a single image) with CPU tensors:
    ``boxes`` (``K x 4`` xyxy in original image pixels), ``scores`` (``K``), ``labels``
    (``K``) and ``masks`` (``K x H x W``) when the model predicts them, plus ``class_names``:
    a list of ``K`` strings, the name of each detection's label (aligned with ``labels``;
    the label number as a string where no name is known), e.g.
    ``result['class_names'] == ['cat', 'dog']`` for ``result['labels'] == tensor([3, 5])``.
    """
    single = isinstance(images, (str, np.ndarray)) or (isinstance(images, torch.Tensor) and images.ndim == 3)
    items = [images] if single else list(images)
    cfg = cfg if cfg is not None else getattr(model, "cfg", None)
    names = class_names_of(cfg, model, class_names)
    transforms = build_pipeline(pipeline if pipeline is not None else inference_pipeline_of(cfg))
    model = fast_path(model)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    results: list[dict] = []
    try:
        for start in range(0, len(items), batch_size):
            inputs, metas = [], []
            for offset, image in enumerate(items[start : start + batch_size]):
                img = _to_rgb_array(image, start + offset)
                h, w = img.shape[:2]
                sample = transforms(
                    dict(
                        img=img,
                        img_id=start + offset,
                        orig_size=(h, w),
                        scale_factor=(1.0, 1.0),
                        flip=False,
                        img_shape=(h, w),
                    )
                )
                inputs.append(torch.from_numpy(np.ascontiguousarray(sample["img"])).permute(2, 0, 1).to(device))
                metas.append(
                    dict(
                        img_id=sample["img_id"],
                        orig_size=tuple(sample["orig_size"]),
                        img_shape=tuple(sample["img_shape"]),
                        scale_factor=tuple(sample["scale_factor"]),
                        flip=bool(sample["flip"]),
                    )
                )
            outputs = model(inputs, metas)
            for out in outputs:
                result = {k: (v.detach().cpu() if isinstance(v, torch.Tensor) else v) for k, v in out.items()}
                if "labels" in result:
                    result["class_names"] = [
                        class_name(label, names) for label in np.asarray(result["labels"]).reshape(-1).tolist()
                    ]
                results.append(result)
    finally:
        model.train(was_training)
    return results[0] if single else results


def draw_and_save(
    model: nn.Module,
    image_paths: Sequence[str],
    out_dir: str,
    score_thr: float = 0.5,
    class_names: Sequence[str] | None = None,
    pipeline: Sequence[dict] | None = None,
    top_k: int | None = None,
    verbose: bool = False,
    cfg: Any = None,
    ext: str | None = None,
) -> list[str]:
    """Detect objects in ``image_paths`` and write annotated copies (boxes and class names with
    scores in a colour per class, translucent outlined masks, a legend when many classes show);
    returns the written paths.

    ``out_dir``: a folder (``out_dir/<image name>`` with the input's format: a ``.png`` gives a
    ``.png``; other formats than PNG / JPEG / BMP / TIFF / WebP become ``.png``), or for a single
    image a file name such as ``result.png`` (see ``resdet.visualization.output_paths``).
    ``ext``: ``'jpg'`` or ``'png'`` for every copy instead of the input's format.
    ``top_k``: draw the ``top_k`` highest-scoring predictions whatever ``score_thr``, labels
    prefixed by their rank. ``None``: a localizer's predictions (they carry ``class_boxes``:
    ranked class guesses, one box each) are all drawn; a detector's are cut at ``score_thr``.
    ``verbose``: print one line per image with what was drawn (``<out>: N drawn: ...``).
    ``cfg``: the model's config (default ``model.cfg``): test pipeline and class names
    (``class_names`` overrides; see ``inference_detector``).
    """
    cfg = cfg if cfg is not None else getattr(model, "cfg", None)
    names = class_names_of(cfg, model, class_names)
    model = fast_path(model)  # once, not at every image
    outputs = output_paths(list(image_paths), out_dir, ext)
    written = []
    for path, out in zip(image_paths, outputs):
        result = inference_detector(model, [path], pipeline=pipeline, cfg=cfg, class_names=names)[0]
        k = len(result["labels"]) if top_k is None and "class_boxes" in result else top_k
        image = imread_rgb(path)
        drawn = draw_detections(
            image,
            result["boxes"],
            result["labels"],
            result["scores"],
            masks=result.get("masks"),
            class_names=names,
            score_thr=score_thr,
            top_k=k,
        )
        save_image(drawn, out)
        written.append(out)
        if verbose:
            shown = select_detections(result["scores"], len(result["boxes"]), score_thr=score_thr, top_k=k)
            print(f"{out}: {describe_detections(result, shown)}")
    return written


def describe_detections(result: dict, shown: Sequence[int], limit: int = 10) -> str:
    """``'N drawn: name score [x1, y1, x2, y2]; ...'`` for the ``shown`` detections of an
    ``inference_detector`` result (the first ``limit`` of them listed)."""
    items = []
    for i in list(shown)[:limit]:
        box = ", ".join(f"{v:.0f}" for v in result["boxes"][int(i)].tolist())
        items.append(f"{result['class_names'][int(i)]} {float(result['scores'][int(i)]):.3f} [{box}]")
    more = f", ... ({len(shown) - limit} more)" if len(shown) > limit else ""
    return f"{len(shown)} drawn" + (": " + "; ".join(items) + more if items else "")


def _name_list(value: Any) -> list[str] | None:
    """``value`` as a list of names when it is a non-empty list / tuple (a class *file* path
    such as ImageNet's synset list is not a list of names)."""
    if isinstance(value, (list, tuple)) and value:
        return [str(v) for v in value]
    return None


def class_names_of(
    cfg: Any = None, model: nn.Module | None = None, class_names: Sequence[str] | None = None
) -> list[str] | None:
    """The label names of a detector, first found of: ``class_names``; ``model.class_names``;
    the config's ``classes``; the ``classes`` of its val, test or train dataset (or of a
    ``ConcatDataset``'s first part); ``None`` when none is known."""
    for candidate in (class_names, getattr(model, "class_names", None)):
        names = _name_list(candidate)
        if names:
            return names
    if cfg is None:
        return None
    names = _name_list(cfg.get("classes"))
    if names:
        return names
    for key in ("val_dataloader", "test_dataloader", "train_dataloader"):
        dataset = (cfg.get(key) or {}).get("dataset") or {}
        while not dataset.get("classes") and dataset.get("datasets"):
            dataset = dataset["datasets"][0]
        names = _name_list(dataset.get("classes"))
        if names:
            return names
    return None


def format_detection_results(results: dict) -> str:
    """One line of the headline numbers of a detection evaluation (COCO or VOC keys)."""
    names = {
        "bbox_AP": "mAP@[.5:.95]",
        "bbox_AP50": "mAP@0.5",
        "bbox_AP75": "mAP@0.75",
        "segm_AP": "segm mAP@[.5:.95]",
        "segm_AP50": "segm mAP@0.5",
    }
    parts = [f"{label} {results[key]:.4f}" for key, label in names.items() if isinstance(results.get(key), float)]
    parts += [
        f"{key} {value:.4f}"
        for key, value in results.items()
        if key.startswith("voc_mAP") and "/" not in key and isinstance(value, float)
    ]
    parts += [
        f"{key} {results[key]:.4f}"
        for key in ("loc_top1_err", "loc_top5_err", "loc_oracle_err")
        if isinstance(results.get(key), float)
    ]  # localizers (configs/loc_*.py)
    return ", ".join(parts)


def check_init_checkpoints(cfg: Any) -> None:
    """Fail before training when ``model.init_cfg`` names a checkpoint file that does not exist
    (``checkpoint``, or a Localizer's ``classifier`` / ``backbone``)."""
    init_cfg = (cfg.get("model") or {}).get("init_cfg") or {}
    for key in ("checkpoint", "classifier", "backbone"):
        path = init_cfg.get(key)
        if isinstance(path, str) and not is_weights_name(path) and not os.path.isfile(path):
            raise ConfigError(
                f"model.init_cfg.{key}: checkpoint {path} does not exist (relative paths are from "
                f"{os.getcwd()}). Produce it with tools/train_cls.py or tools/convert_weights.py, point "
                f"--cfg-options model.init_cfg.{key}=PATH at it, or train from random weights with "
                f"--cfg-options model.init_cfg=None"
            )


def ensure_pretrained(cfg: Any) -> str | None:
    """Run the classification stage named by ``cfg.pretrain = dict(config, checkpoint,
    cfg_options=None)`` (in this process, with the engine) when its checkpoint does not exist
    yet, with ``cfg_options`` (``key=value`` overrides) applied to that stage's config; returns
    the checkpoint path (``None`` when the config has no ``pretrain``)."""
    pretrain = cfg.get("pretrain")
    if not pretrain:
        check_init_checkpoints(cfg)
        return None
    checkpoint = pretrain["checkpoint"]
    if os.path.isfile(checkpoint):
        return checkpoint
    logging.getLogger("resdet").info(
        "pretrained checkpoint %s missing: running %s first", checkpoint, pretrain["config"]
    )
    print(f"pretraining stage: {checkpoint} not found, training {pretrain['config']} first", flush=True)
    cls_cfg = load_config(pretrain["config"], dict(pretrain.get("cfg_options") or {}) or None)
    work_dir = os.path.dirname(checkpoint) or "."
    results = Trainer.from_config(cls_cfg, work_dir=work_dir).train()
    barrier()
    produced = results.get("checkpoint")
    if not os.path.isfile(checkpoint):
        raise ConfigError(
            f"the pretraining stage {pretrain['config']} finished but {checkpoint} does "
            f"not exist (it wrote {produced}); set pretrain.checkpoint accordingly"
        )
    scores = ", ".join(f"{k} {v:.4f}" for k, v in results.items() if isinstance(v, float))
    print(f"pretraining stage done: {scores}; checkpoint {checkpoint}", flush=True)
    return checkpoint
