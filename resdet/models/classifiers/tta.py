"""Test-time modes of the paper's classification results (Sec. 3.4), as model wrappers.

- ``TenCropClassifier``: the standard 10-crop test (4 corners + centre, and their mirrors);
- ``MultiScaleClassifier``: the fully-convolutional test, the whole image resized so its
  shorter side is each of ``scales`` ({224, 256, 384, 480, 640}), scores averaged (the
  classifier's global average pooling accepts any size);
- ``EnsembleClassifier``: scores of several models (checkpoints) averaged.

Each wrapper returns, in eval mode, ``N x C`` *log* averaged softmax scores: ranking (top-k)
is that of the averaged probabilities, and ``softmax`` of the output gives them back, so
the wrapper drops in wherever the classifier's logits are used. In train mode a wrapper
forwards to the wrapped classifier. ``apply_test_mode(model, test_mode)`` wraps a loaded
classifier from the config value ``test_mode`` (``None``/``'center'``, ``'ten_crop'``,
``'multi_scale'`` or a wrapper config dict).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
import torchvision.transforms.functional as TF
from torch import nn

from ...registry import MODELS
from ..converters import load_weights

TEST_MODES = ("center", "ten_crop", "multi_scale")
PAPER_TEST_SCALES = (224, 256, 384, 480, 640)


def _build(model: dict | nn.Module, checkpoint: str | None) -> nn.Module:
    model = MODELS.build(model) if isinstance(model, dict) else model
    if checkpoint:
        load_weights(model, checkpoint, strict=True)
    return model


def _image_list(inputs: torch.Tensor | Sequence[torch.Tensor]) -> list[torch.Tensor]:
    if isinstance(inputs, torch.Tensor):
        if inputs.dim() != 4 or inputs.shape[1] != 3:
            raise ValueError(f"inputs must be N x 3 x H x W, got shape {tuple(inputs.shape)}")
        return list(inputs)
    return list(inputs)


def mean_log_prob(probs: Sequence[torch.Tensor], weights: Sequence[float] | None = None) -> torch.Tensor:
    """``log`` of the (weighted) mean of ``N x C`` probability tensors."""
    stacked = torch.stack([p.float() for p in probs])
    if weights is None:
        mean = stacked.mean(0)
    else:
        w = torch.as_tensor(weights, dtype=stacked.dtype, device=stacked.device)
        mean = (stacked * (w / w.sum()).view(-1, 1, 1)).sum(0)
    return mean.clamp_min(torch.finfo(torch.float32).tiny).log()


class _TestTimeWrapper(nn.Module):
    """Holds ``classifier``; train mode forwards to it, eval mode calls ``predict``."""

    def __init__(self, classifier: dict | nn.Module, checkpoint: str | None = None) -> None:
        super().__init__()
        self.classifier = _build(classifier, checkpoint)

    @property
    def num_classes(self) -> int:
        return self.classifier.num_classes

    def forward(self, inputs, targets=None):
        if self.training:
            return self.classifier(inputs, targets)
        return self.predict(inputs)  # defined by each subclass


def ten_crop_views(images: torch.Tensor, crop_size: int | Sequence[int] = 224, flip: bool = True) -> torch.Tensor:
    """``N x 3 x H x W`` -> ``N x V x 3 x h x w`` with V = 10 (or 5 without ``flip``): the
    top-left, top-right, bottom-left, bottom-right and centre crops, then the same crops of
    the mirrored image (torchvision's order)."""
    size = [int(crop_size)] * 2 if isinstance(crop_size, int) else [int(s) for s in crop_size]
    if images.shape[-2] < size[0] or images.shape[-1] < size[1]:
        raise ValueError(
            f"10-crop of {size[0]}x{size[1]} needs images at least that large, got "
            f"{tuple(images.shape[-2:])}; resize the shorter side first (e.g. to 256)"
        )
    crops = TF.ten_crop(images, size) if flip else TF.five_crop(images, size)
    return torch.stack(list(crops), dim=1)


@MODELS.register_module()
class TenCropClassifier(_TestTimeWrapper):
    """The standard 10-crop test: softmax scores of the 4 corner and centre ``crop_size``
    crops and their mirrors, averaged. Inputs: a uint8 ``N x 3 x H x W`` batch (e.g. shorter
    side 256, centre 256 x 256 as AlexNet) or a list of differently sized ``3 x H_i x W_i``.

    Args:
        classifier: the classifier (config dict or module).
        crop_size: crop side (224).
        flip: also use the mirrored crops (10 views; 5 without).
        checkpoint: weights to load into the classifier.
    """

    def __init__(
        self, classifier: dict | nn.Module, crop_size: int = 224, flip: bool = True, checkpoint: str | None = None
    ) -> None:
        super().__init__(classifier, checkpoint)
        self.crop_size, self.flip = crop_size, flip

    def predict(self, inputs) -> torch.Tensor:
        if isinstance(inputs, torch.Tensor):
            views = ten_crop_views(inputs, self.crop_size, self.flip)
        else:
            views = torch.stack([ten_crop_views(img[None], self.crop_size, self.flip)[0] for img in inputs])
        n, v = views.shape[:2]
        probs = F.softmax(self.classifier(views.flatten(0, 1)).float(), dim=1).view(n, v, -1)
        return mean_log_prob(list(probs.unbind(1)))


def resize_shorter_side(images: torch.Tensor, size: int, max_size: int | None = None) -> torch.Tensor:
    """Resize a float ``N x 3 x H x W`` batch so its shorter side is ``size`` (aspect kept,
    the longer side capped at ``max_size``), bilinear with antialiasing when shrinking."""
    h, w = images.shape[-2:]
    scale = size / min(h, w)
    if max_size is not None and max(h, w) * scale > max_size:
        scale = max_size / max(h, w)
    new_h, new_w = max(1, int(round(h * scale))), max(1, int(round(w * scale)))
    if (new_h, new_w) == (h, w):
        return images
    return F.interpolate(images, size=(new_h, new_w), mode="bilinear", align_corners=False, antialias=scale < 1)


@MODELS.register_module()
class MultiScaleClassifier(_TestTimeWrapper):
    """The fully-convolutional multi-scale test: the image (normalised by the classifier's
    preprocessor at its given size) is resized so the shorter side is each of ``scales``,
    classified whole, and the softmax scores are averaged over scales (and mirrors with
    ``flip``). Inputs: a uint8 / normalised float ``N x 3 x H x W`` batch or a list of
    ``3 x H_i x W_i`` images (each processed on its own).

    Args:
        classifier: the classifier (config dict or module), global average pooling head.
        scales: shorter-side sizes (the paper's {224, 256, 384, 480, 640}).
        flip: also average the mirrored images.
        max_size: cap on the longer side (``None``: none).
        checkpoint: weights to load into the classifier.
    """

    def __init__(
        self,
        classifier: dict | nn.Module,
        scales: Sequence[int] = PAPER_TEST_SCALES,
        flip: bool = False,
        max_size: int | None = None,
        checkpoint: str | None = None,
    ) -> None:
        super().__init__(classifier, checkpoint)
        if not scales or min(int(s) for s in scales) <= 0:
            raise ValueError(f"scales must be positive sizes, got {scales!r}")
        self.scales, self.flip, self.max_size = tuple(int(s) for s in scales), flip, max_size

    def scale_probs(self, images: torch.Tensor) -> list[torch.Tensor]:
        """Softmax scores (``N x C`` each) of one same-size batch at every scale (and flip)."""
        normalised = self.classifier.preprocessor(images)
        probs = []
        for size in self.scales:
            resized = resize_shorter_side(normalised, size, self.max_size)
            probs.append(F.softmax(self.classifier(resized).float(), dim=1))
            if self.flip:
                probs.append(F.softmax(self.classifier(resized.flip(-1)).float(), dim=1))
        return probs

    def predict(self, inputs) -> torch.Tensor:
        if isinstance(inputs, torch.Tensor):
            return mean_log_prob(self.scale_probs(inputs))
        return torch.cat([mean_log_prob(self.scale_probs(img[None])) for img in _image_list(inputs)])


@MODELS.register_module()
class EnsembleClassifier(nn.Module):
    """Averages the softmax scores of several classifiers (Table 5's ensembles).

    Args:
        members: classifier config dicts or modules (each may be a test-time wrapper, e.g.
            ``dict(type='TenCropClassifier', classifier=dict(...))``).
        checkpoints: one weights file per member (``None`` entries load nothing).
        weights: relative weight of each member's scores (default: equal).

    Eval only: ``model(inputs) -> N x C`` log averaged scores.
    """

    def __init__(
        self,
        members: Sequence[dict | nn.Module],
        checkpoints: Sequence[str | None] | None = None,
        weights: Sequence[float] | None = None,
    ) -> None:
        super().__init__()
        if not members:
            raise ValueError("EnsembleClassifier needs at least one member")
        checkpoints = list(checkpoints) if checkpoints is not None else [None] * len(members)
        if len(checkpoints) != len(members):
            raise ValueError(f"EnsembleClassifier: {len(members)} members but {len(checkpoints)} checkpoints")
        if weights is not None and (len(weights) != len(members) or min(weights) < 0 or sum(weights) <= 0):
            raise ValueError(
                f"weights must be {len(members)} non-negative numbers with a positive sum, got {weights!r}"
            )
        self.members = nn.ModuleList(_build(m, c) for m, c in zip(members, checkpoints))
        self.weights = None if weights is None else [float(w) for w in weights]

    @property
    def num_classes(self) -> int:
        return self.members[0].num_classes

    def forward(self, inputs, targets=None) -> torch.Tensor:
        if self.training:
            raise RuntimeError(
                "EnsembleClassifier is for evaluation; train its members one by one and call .eval() on the ensemble"
            )
        probs = [F.softmax(member(inputs).float(), dim=1) for member in self.members]
        return mean_log_prob(probs, self.weights)


def apply_test_mode(model: nn.Module, test_mode: Any = None) -> nn.Module:
    """Wrap a (loaded) classifier for a test mode: ``None``/``'center'`` returns it unchanged,
    ``'ten_crop'`` / ``'multi_scale'`` wrap with the paper's settings, a dict such as
    ``dict(type='MultiScaleClassifier', scales=(224, 256), flip=True)`` is built with the model
    as its ``classifier``. The result is in the model's train/eval mode."""
    if test_mode in (None, "center", "single"):
        return model
    if isinstance(test_mode, str):
        if test_mode not in TEST_MODES:
            raise ValueError(
                f"unknown test_mode {test_mode!r}; allowed: None, {', '.join(TEST_MODES)} or a wrapper config dict"
            )
        test_mode = dict(type="TenCropClassifier" if test_mode == "ten_crop" else "MultiScaleClassifier")
    if not isinstance(test_mode, dict) or "type" not in test_mode:
        raise TypeError(
            f"test_mode must be None, a name ({', '.join(TEST_MODES)}) or a config dict with 'type', got {test_mode!r}"
        )
    wrapped = MODELS.build(dict(test_mode, classifier=model))
    return wrapped.train(model.training)


def build_tta(model: nn.Module, cfg: Any, test_mode: Any = None) -> tuple[nn.Module, dict | None]:
    """For evaluation tools: wrap ``model`` for ``test_mode`` (default: the config's
    ``test_mode``) and return ``(model, loader_cfg)``, where ``loader_cfg`` is the config's
    ``test_dataloaders[<mode name>]`` (e.g. the 10-crop's resize + 256 centre crop) or ``None``
    to keep the usual test/val loader."""
    mode = cfg.get("test_mode") if test_mode is None else test_mode
    if mode in (None, "center", "single"):
        return model, None
    name = (
        mode
        if isinstance(mode, str)
        else {"TenCropClassifier": "ten_crop", "MultiScaleClassifier": "multi_scale"}.get(mode.get("type"))
    )
    loaders = cfg.get("test_dataloaders") or {}
    loader = loaders.get(name) if name else None
    if hasattr(loader, "to_dict"):
        loader = loader.to_dict()
    return apply_test_mode(model, mode.to_dict() if hasattr(mode, "to_dict") else mode), loader
