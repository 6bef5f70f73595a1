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

from .. import __version__
from ..data.loader import batch_len, build_dataloader, build_dataset, move_to_device
from ..evaluation.builder import build_metrics
from ..models.converters import load_weights
from ..models.detectors import compile_for_training
from ..registry import MODELS
from ..utils import dist
from ..utils.device import resolve_device
from ..utils.errors import ConfigError, TrainingError
from ..utils.hints import did_you_mean
from ..utils.io import atomic_write_json, remove_stale_temporaries
from . import workdir_lock
from .amp import autocast_context, build_grad_scaler, check_amp
from .checkpoint import (
    check_resume_fits,
    find_latest_valid,
    get_rng_state,
    load_training_checkpoint,
    mismatch_error,
    save_checkpoint,
    set_rng_state,
    set_seed,
)
from .class_check import check_num_classes
from .config_check import check_engine_config
from .hooks import CheckpointHook, EvalHook, LoggerHook, build_hooks, redo_pending_validation
from .inference import run_inference, unwrap_model
from .logger import RepeatedWarnings, save_run_info, setup_logger
from .optim import build_optimizer
from .schedules import LRScheduler
from .signals import StopSignals, restart_count, stop_for_signal
from .tensorboard import tensorboard_hooks

TRAIN_CFG_DEFAULTS = dict(max_iters=None, max_epochs=None, val_interval=1000, checkpoint_interval=1000,
                          keep_last=3, log_interval=50, amp=None, clip_grad=None, sync_bn=False, seed=0,
                          deterministic=False, save_best="auto", rule=None, tensorboard=False,
                          channels_last=False, find_unused_parameters=False, cudnn_benchmark=False,
                          threads=None, compile=False)


class NonFiniteLossError(TrainingError, FloatingPointError):
    """The summed training loss became NaN or infinite."""


def sum_losses(losses: dict[str, torch.Tensor]) -> torch.Tensor:
    """Sum of every entry whose key contains ``'loss'`` (CONTRACTS.md)."""
    if not isinstance(losses, dict):
        raise TypeError(f"a model in train mode must return a dict of losses, got {type(losses).__name__}")
    terms = [v for k, v in losses.items() if "loss" in k]
    if not terms:
        raise KeyError(f"the model's loss dict has no key containing 'loss' (keys: {sorted(losses)})")
    return sum(terms[1:], terms[0])


class Trainer:
    """Builds everything from config pieces and runs the loop.

    Args:
        model: model config dict (``MODELS``) or module.
        work_dir: where logs, ``metrics.jsonl``, ``config.py``, ``env.json`` and checkpoints go.
        train_dataloader: loader config dict (``batch_size`` is the total over ranks).
        optimizer: optimizer config (``resdet.engine.optim``).
        param_scheduler: schedule config dict or list (``resdet.engine.schedules``).
        train_cfg: keys of ``TRAIN_CFG_DEFAULTS`` (``max_iters`` or ``max_epochs`` required).
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

    def __init__(self, model: dict | nn.Module, work_dir: str, train_dataloader: dict,
                 optimizer: dict | None = None, param_scheduler: Any = None, train_cfg: dict | None = None,
                 val_dataloader: dict | None = None, val_evaluator: Any = None,
                 load_from: str | None = None, load_strict: bool = True, resume: Any = None,
                 custom_hooks: list | None = None, config_text: str | None = None,
                 classes: list[str] | None = None, device: str | torch.device | None = None) -> None:
        self.distributed = dist.init_distributed()
        self.rank, self.world_size = dist.get_rank(), dist.get_world_size()
        self.device = resolve_device(device, "device")  # None: cuda:LOCAL_RANK if available, else cpu
        cfg = dict(TRAIN_CFG_DEFAULTS)
        unknown = sorted(set(train_cfg or {}) - set(cfg))
        if unknown:
            hint = did_you_mean(unknown[0], cfg)
            raise ConfigError(f"unknown train_cfg keys {unknown}{hint}; allowed keys: {', '.join(cfg)}")
        cfg.update(train_cfg or {})
        check_engine_config(cfg, train_dataloader, val_dataloader, optimizer, device=self.device)
        self.cfg, self.work_dir = cfg, os.path.abspath(work_dir)
        self.amp = check_amp(cfg["amp"], self.device)
        self.config_text, self.classes = config_text, classes
        self.logger = setup_logger(self.work_dir, self.rank)  # train.log opens at its first line
        self._lock = None  # one run per work dir: global rank 0 holds it (resdet.engine.workdir_lock)
        if self.rank == 0:  # then removes what a killed checkpoint write left behind
            self._lock = weakref.finalize(self, workdir_lock.release, workdir_lock.acquire(self.work_dir))
            for tmp, size in remove_stale_temporaries(self.work_dir):
                self.logger.info("removed %s (%.1f MB), a temporary file left by an interrupted write",
                                 tmp, size / 2 ** 20)
        if cfg["threads"] is not None:
            threads = cfg["threads"]
            if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
                raise ValueError(f"train_cfg.threads must be a positive integer or None, got {threads!r}")
            torch.set_num_threads(threads)  # CPU intra-op threads of this process
        self.seed = int(cfg["seed"])
        set_seed(self.seed + self.rank, bool(cfg["deterministic"]))
        if cfg["cudnn_benchmark"] and not cfg["deterministic"]:
            torch.backends.cudnn.benchmark = True  # fixed input sizes (classification) only

        self.train_loader_cfg = dict(train_dataloader)
        self.train_dataset = build_dataset(self.train_loader_cfg.pop("dataset", None))
        global_batch = int(self.train_loader_cfg.get("batch_size", 1))
        self.iters_per_epoch = max(1, math.ceil(len(self.train_dataset) / global_batch))
        if cfg["max_iters"] is None and cfg["max_epochs"] is None:
            raise KeyError("train_cfg needs 'max_iters' (or 'max_epochs')")
        self.max_iters = int(cfg["max_iters"] if cfg["max_iters"] is not None
                             else cfg["max_epochs"] * self.iters_per_epoch)

        if self.classes is None:  # stored in checkpoints' meta for inference APIs
            names = getattr(self.train_dataset, "class_names", None) or getattr(self.train_dataset, "classes", None)
            self.classes = list(names) if isinstance(names, (list, tuple)) else None
        self.load_report: dict | None = None
        resume_path, resume_ckpt = self._find_resume(resume)
        self.model = self._build_model(model, load_from, load_strict, from_scratch=resume_ckpt is None)
        check_num_classes(self.model, self.train_dataset, model if isinstance(model, dict) else {})
        self.optimizer = build_optimizer(self.model, optimizer)
        self.scheduler = LRScheduler(self.optimizer, param_scheduler, self.max_iters)
        self.scaler = build_grad_scaler(self.device, self.amp)
        self.iter, self.best_score, self.best_iter = 0, None, None
        self.skipped_before = 0  # skipped samples of earlier (resumed) runs, all ranks
        self.skipped_local = 0
        self.last_checkpoint: str | None = None
        self.val_pending = False  # the resumed checkpoint was written just before a validation
        if resume_ckpt is not None:
            self._resume(resume_path, resume_ckpt)
        self.ddp_model = self._wrap(self.model)

        self.val_loader = self.metrics = None
        if val_dataloader is not None:
            self.val_loader = build_dataloader(val_dataloader, training=False, seed=self.seed)
            self.metrics = build_metrics(val_evaluator, self.val_loader.raw_dataset)
            if not self.metrics:
                raise KeyError("val_dataloader is set but val_evaluator is empty (e.g. dict(type='TopKError'))")
        hooks = [LoggerHook(cfg["log_interval"], tensorboard=cfg["tensorboard"]),
                 CheckpointHook(cfg["checkpoint_interval"], keep_last=cfg["keep_last"])]
        if self.val_loader is not None:
            hooks.append(EvalHook(cfg["val_interval"], save_best=cfg["save_best"], rule=cfg["rule"]))
        self.hooks = build_hooks(hooks + tensorboard_hooks(cfg["tensorboard"], custom_hooks) + list(custom_hooks or []))
        self.iter_time = self.data_time = 0.0
        if self.rank == 0:
            save_run_info(self.work_dir, config_text, self.device, self.world_size,
                          resumed_iter=self.iter if resume_ckpt is not None else None)

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_config(cls, cfg, work_dir: str | None = None, resume: Any = None, **overrides) -> Trainer:
        """Build from a loaded config (``mmengine.Config`` or dict) following CONTRACTS.md."""
        get = cfg.get
        work_dir = work_dir or get("work_dir")
        if not work_dir:
            raise KeyError("no work_dir: pass --work-dir or set work_dir in the config")
        text = None
        if hasattr(cfg, "pretty_text"):
            try:
                text = cfg.pretty_text
            except Exception:  # yapf cannot format some configs; keep the raw file text
                text = getattr(cfg, "text", None)
        to_dict = (lambda v: v.to_dict() if hasattr(v, "to_dict") else v)
        for key in ("model", "train_dataloader"):
            if get(key) is None:
                raise KeyError(f"config has no '{key}'")
        hooks = get("custom_hooks") or []
        args = dict(model=to_dict(get("model")), work_dir=work_dir,
                    train_dataloader=to_dict(get("train_dataloader")),
                    optimizer=to_dict(get("optimizer")), param_scheduler=to_dict(get("param_scheduler")),
                    train_cfg=to_dict(get("train_cfg")), val_dataloader=to_dict(get("val_dataloader")),
                    val_evaluator=to_dict(get("val_evaluator")), load_from=get("load_from"),
                    load_strict=bool(get("load_strict", True)), resume=resume,
                    custom_hooks=[to_dict(h) for h in hooks], config_text=text, classes=get("classes"))
        args.update(overrides)
        return cls(**args)

    def _build_model(self, model: Any, load_from: str | None, strict: bool, from_scratch: bool) -> nn.Module:
        """Build the model; its ``init_weights()`` (``init_cfg`` pretraining) runs only when the
        run starts from scratch: neither a resumed checkpoint nor ``load_from`` follows."""
        model = MODELS.build(model) if isinstance(model, dict) else model
        report = None
        if from_scratch and not load_from and callable(getattr(model, "init_weights", None)):
            report = model.init_weights()
        if load_from:
            report = self.load_report = load_weights(model, load_from, strict=strict)
            self.logger.info("loaded weights from %s", load_from)
        if isinstance(report, dict) and report and self.rank == 0:  # the full key lists; logs show counts
            atomic_write_json(report, os.path.join(self.work_dir, "weights_report.json"))
        if self.cfg["sync_bn"]:
            if self.distributed and self.device.type == "cuda":
                model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
            elif self.distributed:
                self.logger.warning("sync_bn=True ignored: SyncBatchNorm needs CUDA devices")
        model = model.to(self.device)
        if self.cfg["channels_last"]:
            model = model.to(memory_format=torch.channels_last)
        self.compiled_parts = {}
        if self.cfg["compile"]:
            parts = None if self.cfg["compile"] is True else tuple(self.cfg["compile"])
            self.compiled_parts = compile_for_training(model, parts)
            self.logger.info("train_cfg.compile: %s compiled for training (the first step pays the "
                             "one-time cost; a part that fails to compile runs eagerly)",
                             ", ".join(self.compiled_parts) or "no part")
        return model

    def _wrap(self, model: nn.Module) -> nn.Module:
        if not self.distributed:
            return model
        return nn.parallel.DistributedDataParallel(
            model, device_ids=[self.device.index] if self.device.type == "cuda" else None,
            find_unused_parameters=bool(self.cfg["find_unused_parameters"]))

    # ------------------------------------------------------------------ checkpoints
    def _find_resume(self, resume: Any) -> tuple[str | None, dict | None]:
        """The checkpoint a ``resume`` setting points to: ``(path, checkpoint)`` or ``(None, None)``;
        after torchrun restarted the group (on any rank: agents count restarts apart) the newest."""
        restarted = max(dist.all_gather_object(restart_count())) > 0
        if restarted or resume is True or resume == "auto":  # rank 0 picks: all ranks load one file
            path, ckpt = find_latest_valid(self.work_dir) if self.rank == 0 else (None, None)
            path = dist.broadcast_object(path)
            if path is not None or not restarted or resume in (None, False, True, "auto"):
                self.logger.info("%s: %s", "elastic restart" if restarted else "resume",
                                 f"resuming from {path}" if path else f"no checkpoint in {self.work_dir}; "
                                 "starting from scratch")
                return path, (ckpt if ckpt is not None or path is None else load_training_checkpoint(path))
        if resume in (None, False):
            return None, None
        return str(resume), load_training_checkpoint(str(resume))

    def _resume(self, path: str, ckpt: dict) -> None:
        model = unwrap_model(self.model)
        check_resume_fits(path, ckpt, model, self.optimizer)  # a changed config: say so, by name
        model.load_state_dict(ckpt["model"])
        parts = [("optimizer", self.optimizer, ckpt["optimizer"]),
                 ("param_scheduler", self.scheduler, ckpt.get("scheduler")),
                 ("scaler (amp)", self.scaler, ckpt.get("scaler"))]
        for what, target, state in parts:
            if not state and what != "optimizer":
                continue
            try:
                target.load_state_dict(state)
            except (KeyError, ValueError, TypeError, IndexError, RuntimeError) as err:
                raise mismatch_error(path, f"its {what} state does not fit the config's "
                                           f"({str(err).splitlines()[0] if str(err) else type(err).__name__})") from err
        self.iter = int(ckpt["iter"])
        meta = ckpt.get("meta", {})
        self.best_score, self.best_iter = meta.get("best_score"), meta.get("best_iter")
        self.val_pending = bool(meta.get("val_pending", False))
        self.skipped_before = int(meta.get("num_skipped", 0))
        rng = ckpt.get("rng") or {}
        states = rng.get("ranks", [])
        if len(states) == self.world_size:
            set_rng_state(states[self.rank])
        else:
            self.logger.warning("checkpoint RNG states are for %d ranks, running %d: reseeding (the run "
                                "continues but is not bit-identical to an uninterrupted one)",
                                len(states), self.world_size)
            set_seed(self.seed + 1000003 * self.iter + self.rank)
        self.last_checkpoint = path
        self.logger.info("resumed from %s at iteration %d", path, self.iter)

    def checkpoint_state(self, val_pending: bool = False) -> dict:
        """The checkpoint dict (all ranks must call: RNG states are gathered). ``val_pending``:
        written just before this iteration's validation (a resume validates first)."""
        rng_states = dist.all_gather_object(get_rng_state())
        skipped = self.total_skipped()
        return {"model": unwrap_model(self.model).state_dict(), "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(), "scaler": self.scaler.state_dict(),
                "iter": int(self.iter), "rng": {"ranks": rng_states},
                "meta": {"config": self.config_text or "", "resdet_version": __version__,
                         "optimizer": type(self.optimizer).__name__,
                         "classes": list(self.classes) if self.classes else None,
                         "epoch": self.epoch, "world_size": self.world_size, "best_score": self.best_score,
                         "best_iter": self.best_iter, "num_skipped": skipped, "time": time.time(),
                         "val_pending": bool(val_pending)}}

    def save_checkpoint(self, name: str, keep_last: int | None = None, update_pointer: bool = True,
                        val_pending: bool = False) -> str:
        state = self.checkpoint_state(val_pending)
        path = os.path.join(self.work_dir, name)
        if self.rank == 0:
            save_checkpoint(path, state, self.work_dir, keep_last=keep_last, update_pointer=update_pointer)
            self.logger.info("saved checkpoint %s", path)
        if update_pointer:
            self.last_checkpoint = path
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
        results = run_inference(self.model, self.val_loader, self.metrics, self.device, amp=self.amp,
                                channels_last=bool(self.cfg["channels_last"]), description="validation")
        self.scheduler.observe_val(self.iter, results)
        for hook in self.hooks:
            hook.after_val(self, results)
        self.last_val = results
        return results

    def _scalar(self, value: Any) -> torch.Tensor:
        """A float32 scalar tensor on the device (tensors are averaged, numbers wrapped)."""
        if isinstance(value, torch.Tensor):
            return value.detach().float().mean().to(self.device)
        return torch.tensor(float(value), device=self.device)

    def _reduce_flags(self, values: list[torch.Tensor]) -> list[float]:
        """One collective per iteration: mean over ranks of the stacked scalars."""
        stacked = torch.stack([self._scalar(v) for v in values])
        return dist.all_reduce_mean(stacked).tolist()

    # ------------------------------------------------------------------ the loop
    def train(self) -> dict:
        """Run from ``self.iter`` to ``max_iters``; return the last validation results plus
        ``'checkpoint'`` (the final checkpoint) and ``'iter'``."""
        self.last_val: dict[str, float] = {}
        loader = build_dataloader(self.train_loader_cfg, training=True, seed=self.seed,
                                  start_iter=self.iter, dataset=self.train_dataset)
        self.logger.info("training %s from iter %d to %d on %s x%d (%d iters/epoch, batch %d per rank)",
                         type(unwrap_model(self.model)).__name__, self.iter, self.max_iters, self.device,
                         self.world_size, self.iters_per_epoch, loader.batch_size_per_rank)
        if self.iter >= self.max_iters:
            self.logger.info("nothing to do: checkpoint is at iteration %d >= max_iters", self.iter)
            return {"checkpoint": self.last_checkpoint, "iter": self.iter}
        try:  # stop signals set a flag (resdet.engine.signals); forked loader workers inherit it
            with RepeatedWarnings(self.logger), StopSignals() as signals:
                self._loop(loader, signals)
        finally:
            for hook in self.hooks:
                getattr(hook, "on_exit", lambda trainer: None)(self)
            if self._lock is not None:
                self._lock()  # the work dir is free again
        dist.barrier()
        return dict(self.last_val, checkpoint=self.last_checkpoint, iter=self.iter)

    def _loop(self, loader, signals: StopSignals) -> None:
        for hook in self.hooks:
            hook.before_train(self)
        redo_pending_validation(self)  # resumed from a checkpoint written just before a validation
        self.model.train()
        data_iter = iter(loader)
        train_metric_keys = self.scheduler.train_metrics
        while self.iter < self.max_iters:
            start = time.perf_counter()
            try:
                batch = next(data_iter)
            except Exception:
                if not signals.requested:
                    raise
                batch = None  # the loader's workers died of the stop signal (SIGTERM) too
            self.data_time = time.perf_counter() - start
            log_vars = self._step(batch, train_metric_keys, stop=signals.requested)
            if log_vars is None:  # all ranks agreed to stop: checkpoint self.iter, exit
                stop_for_signal(self, signals.signal_name)
            self.iter += 1
            self.iter_time = time.perf_counter() - start
            for hook in self.hooks:
                hook.after_iter(self, log_vars)
        del data_iter  # stops the loader's worker processes
        for hook in self.hooks:
            hook.after_train(self)

    def _step(self, batch: dict | None, train_metric_keys: list[str], stop: bool = False) -> dict | None:
        """One update; ``None`` (and no update) when a rank got a stop signal (``stop``): the
        ranks agree in the all-reduce they do anyway, so all stop after the same iteration."""
        it = self.iter
        count = batch_len(batch["inputs"]) if batch is not None else 0
        if self.distributed:  # every rank must skip (or stop) together, or DDP's all-reduce would hang
            flags = self._reduce_flags([torch.tensor(float(count == 0)), torch.tensor(float(stop))])
            count, stop = (0 if flags[0] > 0 else count), flags[1] > 0
        if stop:  # the batch (None: not fetched) is not used; a resume reads it again
            return None
        self.skipped_local += int(batch.get("num_skipped", 0))
        if count == 0:
            self.logger.warning("iteration %d: every sample of the batch was unreadable; no update", it + 1)
            return {}
        self.scheduler.step(it)
        inputs = move_to_device(batch["inputs"], self.device)
        if self.cfg["channels_last"] and isinstance(inputs, torch.Tensor) and inputs.dim() == 4:
            inputs = inputs.contiguous(memory_format=torch.channels_last)
        targets = move_to_device(batch["targets"], self.device)
        with autocast_context(self.device, self.amp):
            losses = self.ddp_model(inputs, targets)
        total = sum_losses(losses)
        flags = [(~torch.isfinite(total.detach())).float()]
        for key in train_metric_keys:
            if key not in losses:
                raise KeyError(f"a schedule needs '{key}' but the model's loss dict has {sorted(losses)}")
            flags.append(losses[key])
        reduced = self._reduce_flags(flags)
        if reduced[0] > 0:
            values = ", ".join(f"{k}={float(self._scalar(v)):.4g}" for k, v in losses.items())
            raise NonFiniteLossError(
                f"non-finite loss at iteration {it + 1} ({values}); stopping. Last good checkpoint: "
                f"{self.last_checkpoint or 'none (no checkpoint written yet)'}. Lower the learning rate, "
                "add warm-up or gradient clipping (train_cfg.clip_grad), then --resume")
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(total).backward()
        log_vars = {k: self._scalar(v) for k, v in losses.items()}
        log_vars["loss"] = total.detach().float()
        clip = self.cfg["clip_grad"]
        if clip:
            clip = dict(max_norm=float(clip)) if isinstance(clip, (int, float)) else dict(clip)
            self.scaler.unscale_(self.optimizer)
            params = [p for g in self.optimizer.param_groups for p in g["params"] if p.grad is not None]
            log_vars["grad_norm"] = torch.nn.utils.clip_grad_norm_(params, **clip).detach().float()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        if train_metric_keys:
            self.scheduler.observe_train(it, dict(zip(train_metric_keys, reduced[1:])))
        return log_vars
