"""Classification training throughput: resdet's engine vs a plain PyTorch loop on torchvision.

    python tools/benchmark.py cls [--iters 5 --warmup 2 --batch 32 --size 224 --amp bf16
                                   --channels-last --num-workers 0 --device cpu|cuda]

resdet: ``ImageClassifier`` with ``ResNet(depth=50, stride_in_1x1=False)`` trained by the real
``Trainer`` loop (sampler, collate, preprocessor, loss dict, non-finite check, scheduler,
hooks) on an in-memory dataset of random uint8 images (no disk I/O).
Peer: torchvision's ``resnet50(weights=None)`` in a hand-written loop over the same images
(``DataLoader`` + ``torch.stack``), same SGD, same normalisation, same AMP / memory format.
Both run in this process; by default one torchvision step runs after every resdet iteration
(each timed on its own, GPU synchronised), so both sides see the same machine load; the
ratio resdet / torchvision is printed (>= 1.0 means resdet is at least as fast).
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from ..engine.amp import autocast_context
from ..engine.hooks import Hook
from ..models.classifiers.image_classifier import IMAGENET_MEAN, IMAGENET_STD
from ..utils.device import resolve_device
from ._timing import sync, time_calls


@dataclass(frozen=True)
class ClsBenchOptions:
    """What the classification benchmark runs (the command line's options)."""

    iters: int = 5  # timed iterations
    warmup: int = 2  # untimed iterations first
    batch: int = 32
    size: int = 224
    amp: str | None = None  # 'bf16' / 'fp16'
    channels_last: bool = False
    num_workers: int = 0


class InMemoryImages(Dataset):
    """``num`` random ``size x size`` uint8 RGB images with labels in ``0..num_classes-1``."""

    def __init__(self, num: int, size: int, num_classes: int = 1000, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        self.images = rng.integers(0, 256, size=(num, size, size, 3), dtype=np.uint8)
        self.labels = rng.integers(0, num_classes, size=num)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> dict:
        return {"img": self.images[index], "label": int(self.labels[index]), "img_id": index}


class _PlainImages(Dataset):
    """The same images as ``3 x H x W`` uint8 tensors for the plain loop."""

    def __init__(self, source: InMemoryImages) -> None:
        self.images = torch.from_numpy(source.images).permute(0, 3, 1, 2)
        self.labels = torch.from_numpy(source.labels)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int):
        return self.images[index], self.labels[index]


class _Timer(Hook):
    """Times resdet iterations ``warmup+1 .. warmup+iters``; with ``peer`` set, runs one peer
    step after every resdet iteration (timed separately), so both see the same machine load."""

    priority = 99

    def __init__(self, warmup: int, iters: int, peer: TorchvisionLoop | None = None) -> None:
        self.warmup, self.iters, self.peer = warmup, iters, peer
        self.seconds = self.peer_seconds = 0.0
        self.mark = 0.0

    def before_train(self, trainer) -> None:
        self.mark = time.perf_counter()

    def after_iter(self, trainer, log_vars) -> None:
        sync(trainer.device)
        now = time.perf_counter()
        timed = self.warmup < trainer.iter <= self.warmup + self.iters
        if timed:
            self.seconds += now - self.mark
        if self.peer is not None:
            elapsed = self.peer.step()
            if timed:
                self.peer_seconds += elapsed
        self.mark = time.perf_counter()


def run_resdet(
    dataset: InMemoryImages, args: ClsBenchOptions, device: torch.device, peer: TorchvisionLoop | None = None
):
    """resdet img/s (and the interleaved peer's img/s when ``peer`` is given)."""
    from ..engine.trainer import Trainer

    timer = _Timer(args.warmup, args.iters, peer)
    with tempfile.TemporaryDirectory() as work_dir:
        trainer = Trainer(
            model=dict(
                type="ImageClassifier", num_classes=1000, backbone=dict(type="ResNet", depth=50, stride_in_1x1=False)
            ),
            work_dir=work_dir,
            train_dataloader=dict(
                batch_size=args.batch, num_workers=args.num_workers, dataset=dataset, collate="cls_collate"
            ),
            optimizer=dict(type="SGD", lr=0.01, momentum=0.9, weight_decay=1e-4),
            train_cfg=dict(
                max_iters=args.warmup + args.iters,
                log_interval=10**9,
                checkpoint_interval=0,
                amp=args.amp,
                channels_last=args.channels_last,
                seed=0,
                cudnn_benchmark=device.type == "cuda",
            ),
            custom_hooks=[timer],
            device=str(device),
        )
        trainer.hooks = [h for h in trainer.hooks if type(h).__name__ != "CheckpointHook"]  # no 100 MB write
        trainer.logger.setLevel(logging.WARNING)
        trainer.train()
    images = args.iters * args.batch
    return images / timer.seconds, (images / timer.peer_seconds if peer is not None else None)


class TorchvisionLoop:
    """The peer: torchvision's resnet50 in a hand-written loop; ``step()`` runs one iteration
    and returns its wall time in seconds."""

    def __init__(self, dataset: InMemoryImages, args: ClsBenchOptions, device: torch.device) -> None:
        import torchvision

        torch.manual_seed(0)
        self.model = torchvision.models.resnet50(weights=None).to(device)
        if args.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.model.train()
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
        self.mean = torch.tensor(IMAGENET_MEAN, device=device).view(1, 3, 1, 1)
        self.std = torch.tensor(IMAGENET_STD, device=device).view(1, 3, 1, 1)
        self.loader = DataLoader(
            _PlainImages(dataset),
            batch_size=args.batch,
            shuffle=True,
            drop_last=True,
            num_workers=args.num_workers,
            pin_memory=device.type == "cuda",
        )
        self.iterator = iter(self.loader)
        self.args, self.device = args, device

    def step(self) -> float:
        start = time.perf_counter()
        try:
            images, labels = next(self.iterator)
        except StopIteration:
            self.iterator = iter(self.loader)
            images, labels = next(self.iterator)
        images = images.to(self.device, non_blocking=True)
        if self.args.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        labels = labels.to(self.device, non_blocking=True)
        with autocast_context(self.device, self.args.amp):
            logits = self.model((images.float() - self.mean) / self.std)
            loss = F.cross_entropy(logits, labels)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        sync(self.device)
        return time.perf_counter() - start


def run_torchvision(dataset: InMemoryImages, args: ClsBenchOptions, device: torch.device) -> float:
    """torchvision's img/s, run alone."""
    loop = TorchvisionLoop(dataset, args, device)
    return args.iters * args.batch / time_calls(loop.step, args.iters, args.warmup, device).total


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="benchmark.py cls", description=__doc__.split("\n\n")[0])
    parser.add_argument("--iters", type=int, default=ClsBenchOptions.iters, help="timed iterations")
    parser.add_argument("--warmup", type=int, default=ClsBenchOptions.warmup, help="untimed iterations first")
    parser.add_argument("--batch", type=int, default=ClsBenchOptions.batch)
    parser.add_argument("--size", type=int, default=ClsBenchOptions.size)
    parser.add_argument("--amp", choices=["bf16", "fp16"], default=None)
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument("--num-workers", type=int, default=0)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--repeats", type=int, default=1, help="measure this many times; report the best")
    parser.add_argument(
        "--sequential",
        action="store_true",
        help="run resdet then torchvision (default: interleave one step of each, so "
        "both see the same load on a shared machine)",
    )
    args = parser.parse_args(argv)
    if args.iters < 1 or args.warmup < 1 or args.repeats < 1:
        parser.error("--iters, --warmup and --repeats must be >= 1")
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    opts = ClsBenchOptions(
        iters=args.iters,
        warmup=args.warmup,
        batch=args.batch,
        size=args.size,
        amp=args.amp,
        channels_last=args.channels_last,
        num_workers=args.num_workers,
    )
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    dataset = InMemoryImages(num=args.batch * 2, size=args.size)
    speed = {"torchvision": 0.0, "resdet": 0.0}
    for _ in range(args.repeats):  # keep each side's best
        if args.sequential:
            resdet_speed = run_resdet(dataset, opts, device)[0]
            peer_speed = run_torchvision(dataset, opts, device)
        else:
            resdet_speed, peer_speed = run_resdet(dataset, opts, device, TorchvisionLoop(dataset, opts, device))
        speed["resdet"] = max(speed["resdet"], resdet_speed)
        speed["torchvision"] = max(speed["torchvision"], peer_speed)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu x{torch.get_num_threads()} threads"
    print(
        f"ResNet-50 training, batch {args.batch}, {args.size}x{args.size}, amp={args.amp}, "
        f"channels_last={args.channels_last}, {args.iters} timed iters after {args.warmup} warm-up, "
        f"best of {args.repeats}, {'sequential' if args.sequential else 'interleaved'}, {name}"
    )
    print(f"  resdet Trainer (ImageClassifier/ResNet-50): {speed['resdet']:8.2f} img/s")
    print(f"  torchvision resnet50, plain loop:           {speed['torchvision']:8.2f} img/s")
    print(f"  ratio resdet / torchvision:                 {speed['resdet'] / speed['torchvision']:8.3f}")
    return 0
