"""Validation images with their predictions in TensorBoard.

``train_cfg.tensorboard=True`` makes the logger write every ``metrics.jsonl`` number as a
TensorBoard scalar (``resdet.engine.logger``) and, through ``TensorBoardImagesHook``, draw the
first few validation images with the model's predictions after each validation, under
``val_images/`` in ``<work_dir>/tensorboard`` (slide the step to watch them improve):

  * a detector: its boxes above ``score_thr`` with class name and score;
  * a classifier: a frame around the image, green when the top-1 guess is right, red when
    wrong, labelled with the guess, its probability and the true class.

It needs the ``tensorboard`` package (``pip install -e ".[tensorboard]"``); without it the
logger warns once and the hook does nothing. Rank 0 only; the images go through the val
loader's own pipeline and collate function, so the model sees exactly what validation saw.
``custom_hooks=[dict(type='TensorBoardImagesHook', num_images=8, score_thr=0.5)]`` replaces the
default one.
"""

from __future__ import annotations

import os
from typing import Any

import torch
import torch.nn.functional as F
from torchvision.utils import draw_bounding_boxes

from ..data.loader import move_to_device
from ..data.problems import is_skipped
from ..registry import HOOKS
from ..structures.image_meta import ImageMeta
from ..utils import dist
from ..utils.containers import class_name
from .amp import autocast_context
from .hooks import Hook
from .inference import unwrap_model

MIN_SIDE = 256  # small images (64 px shapes, 32 px CIFAR) are enlarged so labels stay legible


def _enlarge(img: torch.Tensor) -> tuple[torch.Tensor, float]:
    """``3 x H x W`` uint8, scaled up (nearest) so its shorter side is at least ``MIN_SIDE``."""
    factor = max(1.0, MIN_SIDE / max(1, min(img.shape[-2:])))
    if factor == 1.0:
        return img, 1.0
    size = (round(img.shape[-2] * factor), round(img.shape[-1] * factor))
    return F.interpolate(img[None].float(), size=size, mode="nearest")[0].to(torch.uint8), factor


def draw_detections_chw(
    img: torch.Tensor, output: dict, target: dict, names: list[str] | None, score_thr: float
) -> torch.Tensor:
    """``img``: the pipeline's ``3 x H x W`` uint8 image; ``output``: a detector's
    prediction for it (``boxes`` ``N x 4`` xyxy in original-image pixels, ``scores``,
    ``labels``); ``target``: its meta (``scale_factor`` (w, h), ``flip``). Returns the
    picture ``3 x H' x W'`` uint8 with the boxes above ``score_thr`` drawn."""
    keep = output["scores"].float() >= score_thr
    boxes = output["boxes"][keep].float().cpu()
    # predictions are in the original image: forward through the pipeline's resize and flip
    boxes = ImageMeta.from_dict(target, image_shape=img.shape[-2:]).boxes_to_image(boxes)
    img, factor = _enlarge(img.cpu())
    labels = [
        f"{class_name(label, names)} {float(s):.2f}"
        for label, s in zip(output["labels"][keep].tolist(), output["scores"][keep].tolist())
    ]
    if not labels:
        return img
    return draw_bounding_boxes(img, boxes * factor, labels=labels, colors="yellow", width=2)


def draw_classification_chw(
    img: torch.Tensor, logits: torch.Tensor, label: int | None, names: list[str] | None
) -> torch.Tensor:
    """``img`` ``3 x H x W`` uint8 and its ``C`` logits: the picture framed green (right) or
    red (wrong), labelled ``guess probability (true: name)``."""
    img, _ = _enlarge(img.cpu())
    prob, guess = torch.softmax(logits.float(), dim=-1).max(dim=-1)
    text = f"{class_name(guess, names)} {float(prob):.2f}"
    if label is not None:
        text += f" (true: {class_name(label, names)})"
    colour = "lime" if label is None or int(guess) == int(label) else "red"
    frame = torch.tensor([[1.0, 1.0, img.shape[-1] - 2.0, img.shape[-2] - 2.0]])
    return draw_bounding_boxes(img, frame, labels=[text], colors=colour, width=3)


@torch.no_grad()
def validation_previews(
    model: torch.nn.Module,
    loader: Any,
    num_images: int,
    device: torch.device,
    amp: str | None = None,
    score_thr: float = 0.3,
) -> list[torch.Tensor]:
    """The first ``num_images`` images of ``loader``'s dataset with ``model``'s predictions
    drawn, each ``3 x H x W`` uint8."""
    dataset = loader.raw_dataset
    count = min(int(num_images), len(dataset))
    if count == 0:
        return []
    samples = [s for s in (dataset[i] for i in range(count)) if not is_skipped(s)]  # unreadable ones left out
    if not samples:
        return []
    batch = loader.collate_fn(samples)
    names = getattr(dataset, "class_names", None) or getattr(dataset, "classes", None)
    names = list(names) if isinstance(names, (list, tuple)) else None
    model = unwrap_model(model)
    was_training = model.training
    model.eval()
    try:
        with autocast_context(device, amp):
            outputs = model(move_to_device(batch["inputs"], device), move_to_device(batch["targets"], device))
    finally:
        model.train(was_training)
    images = [torch.as_tensor(s["img"]).permute(2, 0, 1).contiguous() for s in samples]
    if isinstance(outputs, torch.Tensor):  # a classifier: N x C logits
        labels = batch["targets"].get("labels") if isinstance(batch["targets"], dict) else None
        return [
            draw_classification_chw(img, outputs[i], None if labels is None else int(labels[i]), names)
            for i, img in enumerate(images[: len(outputs)])
        ]
    return [
        draw_detections_chw(img, out, tgt, names, score_thr) for img, out, tgt in zip(images, outputs, batch["targets"])
    ]


@HOOKS.register_module()
class TensorBoardImagesHook(Hook):
    """After each validation, the first ``num_images`` validation images with the model's
    predictions (detections above ``score_thr``), as TensorBoard images ``val_images/<i>`` at
    the current iteration, in ``<work_dir>/tensorboard``."""

    priority = 60  # after the logger has written the validation numbers

    def __init__(self, num_images: int = 4, score_thr: float = 0.3) -> None:
        self.num_images, self.score_thr = int(num_images), float(score_thr)
        self.writer = None

    def before_train(self, trainer) -> None:
        if not dist.is_main_process() or trainer.val_loader is None or self.num_images <= 0:
            return
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:  # the logger's MetricsWriter has said so already
            return
        self.writer = SummaryWriter(os.path.join(trainer.work_dir, "tensorboard"))

    def after_val(self, trainer, results: dict[str, float]) -> None:
        if self.writer is None:
            return
        pictures = validation_previews(
            trainer.model,
            trainer.val_loader,
            self.num_images,
            trainer.device,
            amp=trainer.amp,
            score_thr=self.score_thr,
        )
        for index, picture in enumerate(pictures):
            self.writer.add_image(f"val_images/{index}", picture, trainer.iter, dataformats="CHW")
        self.writer.flush()

    def after_train(self, trainer) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


def tensorboard_hooks(enabled: bool, custom_hooks: list | None) -> list[Hook]:
    """The hooks ``train_cfg.tensorboard`` adds: a ``TensorBoardImagesHook`` unless the
    config's ``custom_hooks`` already has one (with its own settings)."""
    if not enabled:
        return []
    for hook in custom_hooks or []:
        kind = hook.get("type") if isinstance(hook, dict) else type(hook).__name__
        if kind in ("TensorBoardImagesHook", TensorBoardImagesHook):
            return []
    return [TensorBoardImagesHook()]
