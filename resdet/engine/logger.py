"""Logging of training runs (rank 0 writes; other ranks only print warnings).

``metrics.jsonl`` in the work dir holds one JSON object per line:

- training events (every ``log_interval`` iterations): ``{"mode": "train", "iter": i,
  "epoch": e, "lr": ..., "loss": ..., <every entry of the model's loss dict, e.g.
  "loss_cls", "train_err">, "time": s/iter, "data_time": s/iter, "eta_s": ...,
  "num_skipped": running total of dropped samples}`` — values averaged over the interval
  and over ranks; ``iter`` counts finished iterations.
- validation events: ``{"mode": "val", "iter": i, "epoch": e, <metric keys, e.g.
  "top1_err", "top5_err">}``.

A fresh run in an existing work dir starts a new file; a resumed run first drops the records
of the iterations after its checkpoint, so every ``iter`` appears once per mode.
Plots read the training error as ``train_err`` of ``mode == "train"`` lines and the
validation error as e.g. ``top1_err`` of ``mode == "val"`` lines.
"""
from __future__ import annotations

import datetime
import json
import logging
import os
import platform
import sys
import time

import torch

from ..utils.io import atomic_write_json, atomic_write_text

LOGGER_NAME = "resdet"


def setup_logger(work_dir: str | None, rank: int = 0, filename: str = "train.log") -> logging.Logger:
    """The ``resdet`` logger: INFO to stdout (and ``work_dir/filename``) on rank 0,
    WARNING only on other ranks."""
    logger = logging.getLogger(LOGGER_NAME)
    logger.propagate = False
    for handler in list(logger.handlers):
        if getattr(handler, "_resdet", False):
            logger.removeHandler(handler)
            handler.close()
    logger.setLevel(logging.INFO if rank == 0 else logging.WARNING)
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%Y-%m-%d %H:%M:%S")
    stream = logging.StreamHandler(sys.stdout)
    stream.setFormatter(fmt)
    stream._resdet = True
    logger.addHandler(stream)
    if work_dir and rank == 0:
        os.makedirs(work_dir, exist_ok=True)
        file_handler = logging.FileHandler(os.path.join(work_dir, filename), encoding="utf-8")
        file_handler.setFormatter(fmt)
        file_handler._resdet = True
        logger.addHandler(file_handler)
    return logger


class MetricsWriter:
    """Appends JSON lines to ``work_dir/metrics.jsonl`` (and TensorBoard scalars if asked)."""

    def __init__(self, work_dir: str, tensorboard: bool = False) -> None:
        self.path = os.path.join(work_dir, "metrics.jsonl")
        os.makedirs(work_dir, exist_ok=True)
        self.tb = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
                self.tb = SummaryWriter(os.path.join(work_dir, "tensorboard"))
            except ImportError:
                logging.getLogger(LOGGER_NAME).warning(
                    "train_cfg.tensorboard=True but the 'tensorboard' package is not installed "
                    "(pip install tensorboard); writing metrics.jsonl only")

    def truncate_after(self, iteration: int) -> None:
        """Keep only records with ``iter <= iteration`` (all are dropped for ``iteration == 0``)."""
        if not os.path.isfile(self.path):
            return
        kept = []
        if iteration > 0:
            with open(self.path, encoding="utf-8") as fh:
                for line in fh:
                    try:
                        record = json.loads(line)
                    except json.JSONDecodeError:  # a line cut by a kill
                        continue
                    if int(record.get("iter", 0)) <= iteration:
                        kept.append(json.dumps(record) + "\n")
        atomic_write_text("".join(kept), self.path)

    def write(self, record: dict) -> None:
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(record) + "\n")
            fh.flush()
        if self.tb is not None:
            mode = record.get("mode", "train")
            for key, value in record.items():
                if isinstance(value, (int, float)) and key not in ("iter", "epoch"):
                    self.tb.add_scalar(f"{mode}/{key}", value, record.get("iter", 0))

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()


def format_seconds(seconds: float) -> str:
    return str(datetime.timedelta(seconds=int(max(seconds, 0))))


class ProgressDisplay:
    """A one-line progress bar with ETA, loss and lr on a TTY; periodic log lines otherwise."""

    def __init__(self, total: int, logger: logging.Logger, stream=None, width: int = 24) -> None:
        self.total, self.logger, self.width = int(total), logger, width
        self.stream = stream if stream is not None else sys.stdout
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.last_draw = 0.0

    def update(self, it: int, eta_s: float, loss: float | None, lr: float) -> None:
        """Redraw the bar (TTY only; at most 5 times a second)."""
        if not self.tty:
            return
        now = time.time()
        if now - self.last_draw < 0.2 and it < self.total:
            return
        self.last_draw = now
        done = int(self.width * it / max(self.total, 1))
        loss_text = f" loss {loss:.4f}" if loss is not None else ""
        self.stream.write(f"\r[{'#' * done}{'.' * (self.width - done)}] {it}/{self.total} "
                          f"eta {format_seconds(eta_s)}{loss_text} lr {lr:.3g}   ")
        self.stream.flush()

    def line(self, text: str) -> None:
        """A log line (on a TTY the bar is cleared first)."""
        if self.tty:
            self.stream.write("\r" + " " * (self.width + 60) + "\r")
        self.logger.info(text)


def environment_info(device: torch.device, world_size: int) -> dict:
    import numpy
    import torchvision

    from .. import __version__
    info = {"resdet": __version__, "python": platform.python_version(), "platform": platform.platform(),
            "torch": torch.__version__, "torchvision": torchvision.__version__, "numpy": numpy.__version__,
            "device": str(device), "world_size": int(world_size), "cuda": torch.version.cuda,
            "cudnn": torch.backends.cudnn.version() if torch.cuda.is_available() else None,
            "num_threads": torch.get_num_threads(),
            "start_time": datetime.datetime.now(datetime.timezone.utc).isoformat()}
    if device.type == "cuda":
        info["device_name"] = torch.cuda.get_device_name(device)
    return info


def save_run_info(work_dir: str, config_text: str | None, device: torch.device, world_size: int) -> None:
    """``config.py`` (the full config text) and ``env.json`` (versions, device) in the work dir."""
    if config_text:
        atomic_write_text(config_text, os.path.join(work_dir, "config.py"))
    atomic_write_json(environment_info(device, world_size), os.path.join(work_dir, "env.json"))
