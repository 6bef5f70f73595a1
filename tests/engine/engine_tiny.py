"""Tiny model, dataset and metric for the engine tests (registered under test-only names)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from resdet.engine.hooks import Hook
from resdet.registry import DATASETS, MODELS


@pytest.fixture(autouse=True)
def single_thread():
    """Tiny ops run fastest on one thread (2 threads spin against the other jobs on the box)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@MODELS.register_module(name="EngineTinyNet", force=True)
class EngineTinyNet(nn.Module):
    """uint8 ``N x 3 x 4 x 4`` -> MLP (no BN; optional dropout) -> ``N x num_classes``."""

    def __init__(
        self, num_classes: int = 3, hidden: int = 16, dropout: float = 0.0, nan_at_call: int | None = None
    ) -> None:
        super().__init__()
        self.fc1 = nn.Linear(48, hidden)
        self.drop = nn.Dropout(dropout)
        self.fc2 = nn.Linear(hidden, num_classes)
        self.nan_at_call, self.calls = nan_at_call, 0

    def forward(self, inputs, targets=None):
        x = inputs.float().flatten(1) / 255.0 if not inputs.is_floating_point() else inputs.flatten(1)
        logits = self.fc2(self.drop(F.relu(self.fc1(x))))
        self.last_dtype = logits.dtype
        if not self.training:
            return logits
        self.calls += 1
        labels = targets["labels"]
        loss = F.cross_entropy(logits, labels)
        if self.nan_at_call is not None and self.calls >= self.nan_at_call:
            loss = loss * float("nan")
        err = (logits.argmax(1) != labels).float().mean()
        return {"loss_cls": loss, "train_err": err}


@DATASETS.register_module(name="EngineTinyDataset", force=True)
class EngineTinyDataset(Dataset):
    """``num`` random ``size x size`` images, labels ``index % num_classes``, random flip augmentation.

    Indices in ``bad`` are "unreadable": ``None`` (strict=False, with a warning) or an error.
    """

    def __init__(
        self,
        num: int = 32,
        num_classes: int = 3,
        bad=(),
        strict: bool = False,
        seed: int = 0,
        augment: bool = True,
        size: int = 4,
    ) -> None:
        rng = np.random.default_rng(seed)
        self.images = rng.integers(0, 256, size=(num, size, size, 3), dtype=np.uint8)
        self.labels = np.arange(num) % num_classes
        self.bad, self.strict, self.augment = set(bad), strict, augment

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int):
        if index in self.bad:
            if self.strict:
                raise OSError(f"cannot read image tiny_{index}.jpg")
            warnings.warn(f"skipping unreadable image tiny_{index}.jpg", stacklevel=2)
            return None
        img = self.images[index]
        if self.augment and np.random.rand() < 0.5:
            img = img[:, ::-1].copy()
        return {"img": img, "label": int(self.labels[index]), "img_id": index}


class EngineTinyAccuracy:
    """A METRICS-protocol metric: top-1 error (rank-gathered)."""

    primary_key, higher_is_better = "top1_err", False

    def __init__(self) -> None:
        self.wrong = self.total = 0

    def bind(self, dataset):
        return self

    def reset(self) -> None:
        self.wrong = self.total = 0

    def process(self, predictions, targets) -> None:
        labels = targets["labels"]
        self.wrong += int((predictions.argmax(1).cpu() != labels).sum())
        self.total += int(labels.numel())

    def compute(self) -> dict:
        from resdet.utils import dist

        counts = dist.all_gather_object((self.wrong, self.total))
        wrong, total = sum(c[0] for c in counts), sum(c[1] for c in counts)
        return {"top1_err": wrong / max(total, 1), "count": total}


def tiny_config(
    work_dir: str,
    max_iters: int = 6,
    batch_size: int = 8,
    num_workers: int = 0,
    dropout: float = 0.0,
    val: bool = False,
    **train_cfg,
) -> dict:
    """Keyword arguments of ``Trainer`` for a tiny run."""
    cfg = dict(
        model=dict(type="EngineTinyNet", dropout=dropout),
        work_dir=work_dir,
        train_dataloader=dict(
            batch_size=batch_size,
            num_workers=num_workers,
            dataset=dict(type="EngineTinyDataset", num=32),
            collate="cls_collate",
        ),
        optimizer=dict(type="SGD", lr=0.1, momentum=0.9, weight_decay=1e-4),
        param_scheduler=dict(type="StepLR", milestones=[4], gamma=0.1),
        train_cfg=dict(
            dict(max_iters=max_iters, log_interval=2, checkpoint_interval=3, keep_last=2, val_interval=3, seed=0),
            **train_cfg,
        ),
        device="cpu",
    )
    if val:
        cfg["val_dataloader"] = dict(
            batch_size=8,
            num_workers=0,
            collate="cls_collate",
            dataset=dict(type="EngineTinyDataset", num=16, seed=1, augment=False),
        )
        cfg["val_evaluator"] = EngineTinyAccuracy()
    return cfg


def weights(trainer) -> dict[str, torch.Tensor]:
    from resdet.engine.inference import unwrap_model

    return {k: v.detach().clone() for k, v in unwrap_model(trainer.model).state_dict().items()}


class Crash(RuntimeError):
    pass


class CrashAfter(Hook):
    """Simulates a killed run: raises after ``iteration`` finished iterations."""

    priority = 100

    def __init__(self, iteration):
        self.iteration = iteration

    def after_iter(self, trainer, log_vars):
        if trainer.iter == self.iteration:
            raise Crash(f"killed after iter {trainer.iter}")
