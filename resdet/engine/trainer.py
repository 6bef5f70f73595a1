"""The iteration-based training loop (CPU, one GPU, or DDP under ``torchrun``).

    trainer = Trainer.from_config(cfg, work_dir=None, resume=None)
    results = trainer.train()      # last validation results + {'checkpoint': path, 'iter': N}

One loop for every setting: ``torchrun --nnodes N --nproc_per_node G tools/train_cls.py CFG``
starts one process per device; the process group (nccl on GPU, gloo on CPU) comes from
``resdet.utils.dist.init_distributed``. The TOTAL batch size of the config is split over
ranks, the data stream is sharded by ``DistributedTrainSampler``, logged metrics are averaged
over ranks and only rank 0 writes files. See ``docs/CONTRACTS.md`` for the config schema and
``docs/distributed.md`` for multi-node runs, stop signals, elastic restarts and the work-dir lock.
"""

from __future__ import annotations

import math
import os
import time
import weakref
from typing import Any

import torch
from torch import nn
from torch.utils.data import Dataset

from ..data.loader import Loader, batch_len, build_dataloader, build_dataset
from ..evaluation.builder import build_metrics
from ..models.converters import load_weights
from ..models.detectors import compile_for_training
from ..registry import MODELS
from ..utils import dist
from ..utils.device import resolve_device
from ..utils.errors import TrainingError
from ..utils.io import atomic_write_json
from . import workdir_lock
from .amp import build_grad_scaler, effective_amp
from .checkpoint import save_checkpoint, set_seed
from .class_check import check_num_classes
from .config_check import check_engine_config
from .hooks import CheckpointHook, EvalHook, Hook, LoggerHook, build_hooks, redo_pending_validation
from .inference import run_inference, unwrap_model
from .logger import RepeatedWarnings, save_run_info, setup_logger
from .optim import build_optimizer
from .schedules import LRScheduler
from .signals import StopSignals, stop_for_signal
from .step import all_reduce_scalars, clip_gradients, forward_batch, scalar, sum_losses
from .tensorboard import tensorboard_hooks
from .train_config import TrainConfig, trainer_arguments
from .trainer_state import find_resume, restore_training_state, training_state

__all__ = ["NonFiniteLossError", "TrainConfig", "Trainer", "sum_losses"]


class NonFiniteLossError(TrainingError, FloatingPointError):
    """The summed training loss became NaN or infinite."""


class Trainer:
    """Builds everything from config pieces and runs the loop.

    Override points (a subclass replaces one and keeps the rest): ``build_train_dataset``,
    ``build_train_loader``, ``build_val_loader``, ``build_metrics``, ``build_model``,
    ``build_optimizer``, ``build_scheduler``, ``build_hooks`` and ``run_step`` (one update);
    ``config_class`` is the ``train_cfg`` dataclass (a subclass of ``TrainConfig`` adds keys).

    Args:
        model: model config dict (``MODELS``) or module.
        work_dir: where logs, ``metrics.jsonl``, ``config.py``, ``env.json`` and checkpoints go.
        train_dataloader: loader config dict (``batch_size`` is the total over ranks).
        optimizer: optimizer config (``resdet.engine.optim``).
        param_scheduler: schedule config dict or list (``resdet.engine.schedules``).
        train_cfg: keys of ``TrainConfig`` (``max_iters`` or ``max_epochs`` required).
        val_dataloader, val_evaluator: validation loader config and ``METRICS`` config(s).
        load_from: weights to start from (fine-tuning); ``load_strict=False`` skips keys
            that are missing, unexpected or of another shape, and reports them.
        resume: ``None``/``False`` (fresh), ``True``/``'auto'`` (latest readable checkpoint in
            ``work_dir``, fresh if none) or a checkpoint path.
        custom_hooks: extra hook configs / objects.
        config_text: the config file text, saved in the work dir and in checkpoints' meta.
        classes: class names stored in checkpoints' meta.
        device: override the device (default: ``cuda:LOCAL_RANK`` if available, else CPU).
    """

    config_class: type[TrainConfig] = TrainConfig

    def __init__(
        self,
        model: dict | nn.Module,
        work_dir: str,
        train_dataloader: dict,
        optimizer: dict | None = None,
        param_scheduler: Any = None,
        train_cfg: dict | None = None,
        val_dataloader: dict | None = None,
        val_evaluator: Any = None,
        load_from: str | None = None,
        load_strict: bool = True,
        resume: Any = None,
        custom_hooks: list | None = None,
        config_text: str | None = None,
        classes: list[str] | None = None,
        device: str | torch.device | None = None,
    ) -> None:
        """Every value is checked first, then the parts are built in this order (each step
        needs the ones before it): work dir (lock) and seeds, the training set (the run's
        length), the model (its random init follows the seed), optimizer, schedule and grad
        scaler, the resumed state (which restores them), DDP, validation, hooks."""
        self.distributed = dist.init_distributed()
        self.rank, self.world_size = dist.get_rank(), dist.get_world_size()
        self.device = resolve_device(device, "device")  # None: cuda:LOCAL_RANK if available, else cpu
        self.cfg = check_engine_config(
            train_cfg or {},
            train_dataloader,
            val_dataloader,
            optimizer,
            device=self.device,
            config_class=self.config_class,
        )
        self.amp, self.work_dir = effective_amp(self.cfg.amp, self.device), os.path.abspath(work_dir)
        self.config_text, self.classes = config_text, classes
        self.logger = setup_logger(self.work_dir, self.rank)  # train.log opens at its first line
        self._lock = self._claim_work_dir()
        self._seed_process()

        self.train_loader_cfg = dict(train_dataloader)
        self.train_dataset = self.build_train_dataset(self.train_loader_cfg.pop("dataset", None))
        self.iters_per_epoch, self.max_iters = self._run_length()
        if self.classes is None:  # stored in checkpoints' meta for inference APIs
            names = getattr(self.train_dataset, "class_names", None) or getattr(self.train_dataset, "classes", None)
            self.classes = list(names) if isinstance(names, (list, tuple)) else None

        resume_path, resume_ckpt = find_resume(self.work_dir, resume, self.logger)
        self.load_report: dict | None = None
        self.model = self._prepare_model(
            self.build_model(model), load_from, load_strict, from_scratch=resume_ckpt is None
        )
        check_num_classes(self.model, self.train_dataset, model if isinstance(model, dict) else {})
        self.optimizer = self.build_optimizer(self.model, optimizer)
        self.scheduler = self.build_scheduler(self.optimizer, param_scheduler)
        self.scaler = build_grad_scaler(self.device, self.amp)
        self._reset_state()
        if resume_ckpt is not None:
            restore_training_state(self, resume_path, resume_ckpt)
        self.ddp_model = self._wrap(self.model)

        self.val_loader = self.build_val_loader(val_dataloader)
        self.metrics = self.build_metrics(val_evaluator) if self.val_loader is not None else None
        self.hooks = self.build_hooks(custom_hooks)
        if self.rank == 0:
            save_run_info(
                self.work_dir,
                config_text,
                self.device,
                self.world_size,
                resumed_iter=self.iter if resume_ckpt is not None else None,
            )

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_config(cls, cfg, work_dir: str | None = None, resume: Any = None, **overrides) -> Trainer:
        """Build from a loaded config (``mmengine.Config`` or dict) following CONTRACTS.md;
        ``overrides``: arguments that replace the config's."""
        return cls(**dict(trainer_arguments(cfg, work_dir, resume), **overrides))

    def build_train_dataset(self, cfg: Any) -> Dataset:
        """The training set from ``train_dataloader.dataset`` (its loader comes at ``train()``)."""
        return build_dataset(cfg)

    def build_train_loader(self) -> Loader:
        """The training stream from iteration ``self.iter`` on (a resumed run continues it)."""
        return build_dataloader(
            self.train_loader_cfg, training=True, seed=self.seed, start_iter=self.iter, dataset=self.train_dataset
        )

    def build_val_loader(self, cfg: dict | None) -> Loader | None:
        return None if cfg is None else build_dataloader(cfg, training=False, seed=self.seed)

    def build_metrics(self, cfg: Any) -> list:
        """The validation metrics, bound to ``self.val_loader``'s dataset."""
        metrics = build_metrics(cfg, self.val_loader.raw_dataset)
        if not metrics:
            raise KeyError("val_dataloader is set but val_evaluator is empty (e.g. dict(type='TopKError'))")
        return metrics

    def build_model(self, cfg: dict | nn.Module) -> nn.Module:
        """The network (weights, device, SyncBN and compilation are applied after)."""
        return MODELS.build(cfg) if isinstance(cfg, dict) else cfg

    def build_optimizer(self, model: nn.Module, cfg: dict | None) -> torch.optim.Optimizer:
        return build_optimizer(model, cfg)

    def build_scheduler(self, optimizer: torch.optim.Optimizer, cfg: Any) -> LRScheduler:
        return LRScheduler(optimizer, cfg, self.max_iters)

    def build_hooks(self, custom_hooks: list | None) -> list[Hook]:
        """Logger, checkpoint and (with a validation loader) eval hooks, TensorBoard's and
        ``custom_hooks``, in ``priority`` order."""
        cfg = self.cfg
        hooks = [
            LoggerHook(cfg.log_interval, tensorboard=cfg.tensorboard),
            CheckpointHook(cfg.checkpoint_interval, keep_last=cfg.keep_last),
        ]
        if self.val_loader is not None:
            hooks.append(EvalHook(cfg.val_interval, save_best=cfg.save_best, rule=cfg.rule))
        return build_hooks(hooks + tensorboard_hooks(cfg.tensorboard, custom_hooks) + list(custom_hooks or []))

    def _claim_work_dir(self) -> weakref.finalize | None:
        """One run per work dir: global rank 0 holds the lock (``resdet.engine.workdir_lock``)."""
        return workdir_lock.claim(self, self.work_dir, self.logger) if self.rank == 0 else None

    def _run_length(self) -> tuple[int, int]:
        """``(iters_per_epoch, max_iters)``: ``max_epochs`` counts epochs of the total batch."""
        global_batch = int(self.train_loader_cfg.get("batch_size", 1))
        iters_per_epoch = max(1, math.ceil(len(self.train_dataset) / global_batch))
        max_iters = self.cfg.max_iters if self.cfg.max_iters is not None else self.cfg.max_epochs * iters_per_epoch
        return iters_per_epoch, int(max_iters)

    def _seed_process(self) -> None:
        if self.cfg.threads is not None:
            torch.set_num_threads(self.cfg.threads)  # CPU intra-op threads of this process
        self.seed = int(self.cfg.seed)
        set_seed(self.seed + self.rank, bool(self.cfg.deterministic))
        if self.cfg.cudnn_benchmark and not self.cfg.deterministic:
            torch.backends.cudnn.benchmark = True  # fixed input sizes (classification) only

    def _reset_state(self) -> None:
        """The loop's counters (a resume then restores them from the checkpoint)."""
        self.iter, self.best_score, self.best_iter = 0, None, None
        self.skipped_before = 0  # skipped samples of earlier (resumed) runs, all ranks
        self.skipped_local = 0
        self.last_checkpoint: str | None = None
        self.val_pending = False  # the resumed checkpoint was written just before a validation
        self.iter_time = self.data_time = 0.0

    def _prepare_model(self, model: nn.Module, load_from: str | None, strict: bool, from_scratch: bool) -> nn.Module:
        """Weights, SyncBN, device, memory format, compilation. ``init_weights()`` (``init_cfg``
        pretraining) runs only when the run starts from scratch: neither a resumed checkpoint
        nor ``load_from`` follows."""
        report = None
        if from_scratch and not load_from and callable(getattr(model, "init_weights", None)):
            report = model.init_weights()
        if load_from:
            report = self.load_report = load_weights(model, load_from, strict=strict)
            self.logger.info("loaded weights from %s", load_from)
        if isinstance(report, dict) and report and self.rank == 0:  # the full key lists; logs show counts
            atomic_write_json(report, os.path.join(self.work_dir, "weights_report.json"))
        if self.cfg.sync_bn:
            if self.distributed and self.device.type == "cuda":
                model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
            elif self.distributed:
                self.logger.warning("sync_bn=True ignored: SyncBatchNorm needs CUDA devices")
        model = model.to(self.device)
        if self.cfg.channels_last:
            model = model.to(memory_format=torch.channels_last)
        self.compiled_parts = {}
        if self.cfg.compile:
            parts = None if self.cfg.compile is True else tuple(self.cfg.compile)
            self.compiled_parts = compile_for_training(model, parts)
            self.logger.info(
                "train_cfg.compile: %s compiled for training (the first step pays the "
                "one-time cost; a part that fails to compile runs eagerly)",
                ", ".join(self.compiled_parts) or "no part",
            )
        return model

    def _wrap(self, model: nn.Module) -> nn.Module:
        if not self.distributed:
            return model
        return nn.parallel.DistributedDataParallel(
            model,
            device_ids=[self.device.index] if self.device.type == "cuda" else None,
            find_unused_parameters=bool(self.cfg.find_unused_parameters),
        )

    # ------------------------------------------------------------------ checkpoints
    def checkpoint_state(self, val_pending: bool = False) -> dict:
        """The checkpoint dict (all ranks must call: RNG states are gathered). ``val_pending``:
        written just before this iteration's validation (a resume validates first)."""
        return training_state(self, val_pending)

    def save_checkpoint(
        self, name: str, keep_last: int | None = None, update_pointer: bool = True, val_pending: bool = False
    ) -> str:
        state = self.checkpoint_state(val_pending)
        path = os.path.join(self.work_dir, name)
        if self.rank == 0:
            save_checkpoint(path, state, self.work_dir, keep_last=keep_last, update_pointer=update_pointer)
            self.logger.info("saved checkpoint %s", path)
        if update_pointer:
            self.last_checkpoint = path
        self.call_hooks("after_checkpoint", path)
        return path

    # ------------------------------------------------------------------ helpers
    @property
    def epoch(self) -> int:
        return self.iter // self.iters_per_epoch

    def current_lr(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])

    def total_skipped(self) -> int:
        """Samples dropped (unreadable) so far, over all ranks and earlier runs (collective)."""
        local = torch.tensor([float(self.skipped_local)], device=self.device)  # nccl: on the GPU
        summed = dist.all_reduce_mean(local) * self.world_size
        return self.skipped_before + int(round(summed.item()))

    def validate(self) -> dict[str, float]:
        results = run_inference(
            self.model,
            self.val_loader,
            self.metrics,
            self.device,
            amp=self.amp,
            channels_last=self.cfg.channels_last,
            description="validation",
        )
        self.scheduler.observe_val(self.iter, results)
        self.call_hooks("after_val", results)
        self.last_val = results
        return results

    def call_hooks(self, point: str, *args: Any) -> None:
        """Call ``point`` (``before_train``, ``before_iter``, ``after_iter``, ``after_val``,
        ``after_checkpoint``, ``after_train``, ``on_exit``) of every hook, in priority order."""
        for hook in self.hooks:
            method = getattr(hook, point, None)
            if method is not None:
                method(self, *args)

    # ------------------------------------------------------------------ the loop
    def train(self) -> dict:
        """Run from ``self.iter`` to ``max_iters``; return the last validation results plus
        ``'checkpoint'`` (the final checkpoint) and ``'iter'``."""
        self.last_val: dict[str, float] = {}
        loader = self.build_train_loader()
        self.logger.info(
            "training %s from iter %d to %d on %s x%d (%d iters/epoch, batch %d per rank)",
            type(unwrap_model(self.model)).__name__,
            self.iter,
            self.max_iters,
            self.device,
            self.world_size,
            self.iters_per_epoch,
            loader.batch_size_per_rank,
        )
        if self.iter >= self.max_iters:
            self.logger.info("nothing to do: checkpoint is at iteration %d >= max_iters", self.iter)
            return {"checkpoint": self.last_checkpoint, "iter": self.iter}
        try:  # stop signals set a flag (resdet.engine.signals); forked loader workers inherit it
            with RepeatedWarnings(self.logger), StopSignals() as signals:
                self._loop(loader, signals)
        finally:
            self.call_hooks("on_exit")
            if self._lock is not None:
                self._lock()  # the work dir is free again
        dist.barrier()
        return dict(self.last_val, checkpoint=self.last_checkpoint, iter=self.iter)

    def _loop(self, loader: Loader, signals: StopSignals) -> None:
        """The hooks' call points: ``before_train``; per iteration ``before_iter``, the step,
        ``after_iter`` (``self.iter`` counts it; checkpoint, then validation, come from hooks
        here); ``after_train`` at ``max_iters``."""
        self.call_hooks("before_train")
        redo_pending_validation(self)  # resumed from a checkpoint written just before a validation
        self.model.train()
        data_iter = iter(loader)
        while self.iter < self.max_iters:
            self.call_hooks("before_iter")
            start = time.perf_counter()
            try:
                batch = next(data_iter)
            except Exception:
                if not signals.requested:
                    raise
                batch = None  # the loader's workers died of the stop signal (SIGTERM) too
            self.data_time = time.perf_counter() - start
            log_vars = self._iteration(batch, stop=signals.requested)
            if log_vars is None:  # all ranks agreed to stop: checkpoint self.iter, exit
                stop_for_signal(self, signals.signal_name)
            self.iter += 1
            self.iter_time = time.perf_counter() - start
            self.call_hooks("after_iter", log_vars)
        del data_iter  # stops the loader's worker processes
        self.call_hooks("after_train")

    def _iteration(self, batch: dict | None, stop: bool = False) -> dict | None:
        """``run_step`` with the loop's bookkeeping around it: ``None`` (and no update) when a
        rank got a stop signal (``stop``): the ranks agree in the all-reduce they do anyway,
        so all stop after the same iteration; ``{}`` for a batch of unreadable samples only."""
        count = batch_len(batch["inputs"]) if batch is not None else 0
        if self.distributed:  # every rank must skip (or stop) together, or DDP's all-reduce would hang
            flags = all_reduce_scalars([float(count == 0), float(stop)], self.device)
            count, stop = (0 if flags[0] > 0 else count), flags[1] > 0
        if stop:  # the batch (None: not fetched) is not used; a resume reads it again
            return None
        self.skipped_local += int(batch.get("num_skipped", 0))
        if count == 0:
            self.logger.warning("iteration %d: every sample of the batch was unreadable; no update", self.iter + 1)
            return {}
        self.scheduler.step(self.iter)  # this iteration's learning rate
        return self.run_step(batch)

    def run_step(self, batch: dict) -> dict[str, torch.Tensor]:
        """One update on a collate batch: forward (autocast), loss sum, the non-finite check
        (all ranks), backward, gradient clipping, optimizer / grad-scaler step.

        Returns the logged values (scalar tensors, averaged over ``log_interval`` iterations and
        ranks by ``LoggerHook``): each entry of the model's loss dict, ``'loss'`` (the sum) and,
        with ``clip_grad``, ``'grad_norm'`` (before clipping). A subclass overrides it for
        another update rule; skips, stop signals, the schedule and hooks stay with the loop.
        """
        losses = forward_batch(self.ddp_model, batch, self.device, amp=self.amp, channels_last=self.cfg.channels_last)
        total = sum_losses(losses)
        watched = self.check_losses(total, losses)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(total).backward()
        log_vars = {k: scalar(v, self.device) for k, v in losses.items()}
        log_vars["loss"] = total.detach().float()
        if self.cfg.clip_grad:
            log_vars["grad_norm"] = clip_gradients(self.optimizer, self.scaler, self.cfg.clip_grad)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        if watched:
            self.scheduler.observe_train(self.iter, watched)
        return log_vars

    def check_losses(self, total: torch.Tensor, losses: dict[str, torch.Tensor]) -> dict[str, float]:
        """Raise ``NonFiniteLossError`` on every rank when the sum is NaN / inf on any; return
        the rank-averaged losses a schedule watches (``scheduler.train_metrics``). One collective."""
        keys = self.scheduler.train_metrics
        flags = [(~torch.isfinite(total.detach())).float()]
        for key in keys:
            if key not in losses:
                raise KeyError(f"a schedule needs '{key}' but the model's loss dict has {sorted(losses)}")
            flags.append(losses[key])
        reduced = all_reduce_scalars(flags, self.device)
        if reduced[0] > 0:
            values = ", ".join(f"{k}={float(scalar(v, self.device)):.4g}" for k, v in losses.items())
            raise NonFiniteLossError(
                f"non-finite loss at iteration {self.iter + 1} ({values}); stopping. Last good checkpoint: "
                f"{self.last_checkpoint or 'none (no checkpoint written yet)'}. Lower the learning rate, "
                "add warm-up or gradient clipping (train_cfg.clip_grad), then --resume"
            )
        return dict(zip(keys, reduced[1:]))
