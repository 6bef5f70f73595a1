"""Training hooks (``HOOKS`` registry): logging, validation, checkpoints.

A hook implements any of these call points (``Trainer.call_hooks`` calls them):

    before_train(trainer)               the loop starts (also after a resume)
    before_iter(trainer)                before the batch is fetched and the step runs
    after_iter(trainer, log_vars)       after the step (``run_step``'s values; ``{}``: skipped batch)
    after_checkpoint(trainer, path)     a checkpoint was written (every rank; rank 0 wrote it)
    after_val(trainer, results)         a validation finished
    after_train(trainer)                the run reached ``max_iters``
    on_exit(trainer)                    always: the end, a stop signal or an error

The trainer calls hooks in ``priority`` order (lower first): ``LoggerHook`` (10),
``CheckpointHook`` (40), ``EvalHook`` (50). The checkpoint comes before the validation, so a
validation that crashes (out of memory, a bad annotation) does not take the iteration's
checkpoint with it; that checkpoint records ``meta['val_pending']`` and a run resumed from it
validates first (``redo_pending_validation``), so the plateau schedule, ``best.pth`` and
``metrics.jsonl`` end as in an uninterrupted run. ``trainer.iter`` counts finished iterations
(``after_iter`` sees the step counted). Every rank calls every hook (collectives inside stay
in step); only rank 0 writes files.
"""

from __future__ import annotations

import math
import sys
import time

import torch

from ..registry import HOOKS
from ..utils import dist
from ..utils.progress import Progress, format_fields, format_seconds, is_terminal
from .inference import primary_metric
from .logger import MetricsWriter, point_console_at


class Hook:
    priority = 50

    def before_train(self, trainer) -> None:
        pass

    def before_iter(self, trainer) -> None:
        pass

    def after_iter(self, trainer, log_vars: dict[str, torch.Tensor]) -> None:
        pass

    def after_checkpoint(self, trainer, path: str) -> None:
        pass

    def after_val(self, trainer, results: dict[str, float]) -> None:
        pass

    def after_train(self, trainer) -> None:
        pass

    def on_exit(self, trainer) -> None:
        pass


def _every(it: int, interval: int | None) -> bool:
    return bool(interval) and interval > 0 and it % interval == 0


@HOOKS.register_module()
class LoggerHook(Hook):
    """Averages the loss dict over ``interval`` iterations and over ranks; writes
    ``metrics.jsonl`` (see ``resdet.engine.logger``), log lines and the TTY progress bar."""

    priority = 10

    def __init__(self, interval: int = 50, tensorboard: bool = False) -> None:
        self.interval, self.tensorboard = int(interval), bool(tensorboard)
        self.sums: dict[str, torch.Tensor] = {}
        self.count = 0
        self.time_sum = self.data_time_sum = 0.0
        self.writer: MetricsWriter | None = None
        self.display: Progress | None = None
        self.best_text = ""

    def before_train(self, trainer) -> None:
        if dist.is_main_process():
            self.writer = MetricsWriter(trainer.work_dir, tensorboard=self.tensorboard)
            # a fresh run starts a new log; a resumed one drops what the lost iterations logged
            # (and the validation it is about to redo)
            self.writer.truncate_after(trainer.iter, drop_val_at_end=trainer.val_pending)
        # the bar (a terminal only: the periodic log lines below are the plain form) and the
        # log lines come from rank 0 only (other ranks share its terminal)
        self.display = Progress(
            trainer.max_iters,
            "train",
            stream=sys.stdout,
            start=trainer.iter,
            enabled=dist.is_main_process() and is_terminal(sys.stdout),
        )
        if self.display.live:
            point_console_at(sys.stdout)  # rich's proxy now: log lines print above the bar
        self.start_iter, self.start_time = trainer.iter, time.perf_counter()

    def after_iter(self, trainer, log_vars: dict[str, torch.Tensor]) -> None:
        for key, value in log_vars.items():
            self.sums[key] = self.sums[key] + value if key in self.sums else value.clone()
        self.count += 1 if log_vars else 0
        self.time_sum += trainer.iter_time
        self.data_time_sum += trainer.data_time
        it = trainer.iter
        done = max(it - self.start_iter, 1)
        eta = (time.perf_counter() - self.start_time) / done * (trainer.max_iters - it)
        if self.display is not None and self.display.live:
            fields = {"loss": float(log_vars["loss"])} if log_vars else {}
            self.display.update(it - self.display.done, **fields, lr=trainer.current_lr())
        if not (_every(it, self.interval) or it == trainer.max_iters):
            return
        keys = sorted(self.sums)
        if self.count and keys:
            stacked = torch.stack([self.sums[k].detach().float() / self.count for k in keys])
            values = dist.all_reduce_mean(stacked).tolist()
        else:
            values = []
        steps = max(it - getattr(self, "_last_logged", self.start_iter), 1)
        record = {"mode": "train", "iter": it, "epoch": trainer.epoch, "lr": trainer.current_lr()}
        record.update({k: float(v) for k, v in zip(keys, values)})
        record.update(
            {
                "time": self.time_sum / steps,
                "data_time": self.data_time_sum / steps,
                "eta_s": float(eta),
                "num_skipped": int(trainer.total_skipped()),
            }
        )
        if torch.cuda.is_available() and trainer.device.type == "cuda":
            record["memory_mb"] = int(torch.cuda.max_memory_allocated(trainer.device) / 2**20)
        self._last_logged = it
        self.sums, self.count, self.time_sum, self.data_time_sum = {}, 0, 0.0, 0.0
        if self.writer is not None:
            self.writer.write(record)
        shown = {
            k: v
            for k, v in record.items()
            if k not in ("mode", "iter", "epoch", "eta_s", "time", "data_time", "num_skipped")
        }
        if dist.is_main_process():
            trainer.logger.info(
                f"iter {it}/{trainer.max_iters} epoch {trainer.epoch} {format_fields(shown)} "
                f"time {record['time']:.3f}s data {record['data_time']:.3f}s "
                f"eta {format_seconds(eta)} skipped {record['num_skipped']}"
            )

    def after_val(self, trainer, results: dict[str, float]) -> None:
        record = {"mode": "val", "iter": trainer.iter, "epoch": trainer.epoch}
        record.update({k: v for k, v in results.items() if isinstance(v, (int, float))})
        if self.writer is not None:
            self.writer.write(record)
        key = primary_metric(trainer.metrics or [])[0]
        if key is not None and isinstance(results.get(key), float):
            self.best_text = f"{key} {results[key]:.4g}"
            if self.display is not None:
                self.display.update(0, **{key: results[key]})
        headline = f" ({self.best_text})" if self.best_text else ""
        trainer.logger.info("validation at iter %d%s; all numbers in metrics.jsonl", trainer.iter, headline)
        for line in validation_table(trainer.metrics or [], results).splitlines():
            trainer.logger.info(line)

    def on_exit(self, trainer) -> None:
        if self.display is not None:
            self.display.close()
            point_console_at(sys.stdout)  # the real stdout again
        if self.writer is not None:
            self.writer.close()


def validation_table(metrics: list, results: dict, max_classes: int = 30) -> str:
    """The metrics' own aligned tables (the COCO 12-stat block, VOC / top-k tables), with
    per-class rows only for at most ``max_classes`` classes."""
    per_class = [k for k in results if "/" in k]
    shown = results if len(per_class) <= max_classes else {k: v for k, v in results.items() if "/" not in k}
    tables = []
    for metric in metrics:
        try:
            tables.append(metric.format_table(shown))
        except (AttributeError, KeyError):  # a custom metric without a table: its numbers
            tables.append(format_fields({k: v for k, v in shown.items() if isinstance(v, float)}))
    return "\n".join(tables)


@HOOKS.register_module()
class EvalHook(Hook):
    """Validate every ``interval`` iterations and at the end; keep ``best.pth``.

    Args:
        interval: iterations between validations (0: only at the end).
        save_best: result key that selects ``best.pth`` (``'auto'``: the first metric's
            ``primary_key``; ``None``: no best checkpoint).
        rule: ``'less'`` or ``'greater'`` is better (``None``: from the metric for ``'auto'``,
            else ``'less'`` for keys containing ``err``/``loss`` and ``'greater'`` otherwise).
    """

    priority = 50

    def __init__(self, interval: int = 1000, save_best: str | None = "auto", rule: str | None = None) -> None:
        if rule not in (None, "less", "greater"):
            raise ValueError(f"EvalHook.rule must be 'less' or 'greater', got {rule!r}")
        self.interval, self.save_best, self.rule = int(interval), save_best, rule

    def before_train(self, trainer) -> None:
        if self.save_best == "auto":
            key, rule = primary_metric(trainer.metrics)
            self.save_best, self.rule = key, self.rule or rule
        if self.save_best and self.rule is None:
            self.rule = "less" if ("err" in self.save_best or "loss" in self.save_best) else "greater"

    def due(self, trainer) -> bool:
        """Whether this hook validates at ``trainer.iter``."""
        return _every(trainer.iter, self.interval) or trainer.iter == trainer.max_iters

    def after_iter(self, trainer, log_vars) -> None:
        if self.due(trainer):
            self.validate(trainer)

    def validate(self, trainer) -> None:
        """Validate now; keep ``best.pth``."""
        it = trainer.iter
        results = trainer.validate()
        if not self.save_best:
            return
        if self.save_best not in results:
            raise KeyError(
                f"save_best='{self.save_best}' is not among the validation results ({', '.join(sorted(results))})"
            )
        value = float(results[self.save_best])
        best = trainer.best_score
        better = best is None or (value < best if self.rule == "less" else value > best)
        if better and math.isfinite(value):
            trainer.best_score = value
            trainer.best_iter = it
            trainer.save_checkpoint("best.pth", update_pointer=False)
            trainer.logger.info("new best %s %.4f at iter %d -> best.pth", self.save_best, value, it)


@HOOKS.register_module()
class CheckpointHook(Hook):
    """``iter_<N>.pth`` every ``interval`` iterations (the last ``keep_last`` kept), before
    that iteration's validation, and ``final.pth`` at the end."""

    priority = 40

    def __init__(self, interval: int = 1000, keep_last: int | None = 3) -> None:
        self.interval, self.keep_last = int(interval), keep_last

    def after_iter(self, trainer, log_vars) -> None:
        if _every(trainer.iter, self.interval) and trainer.iter < trainer.max_iters:
            pending = any(isinstance(h, EvalHook) and h.due(trainer) for h in trainer.hooks)
            trainer.save_checkpoint(f"iter_{trainer.iter}.pth", keep_last=self.keep_last, val_pending=pending)

    def after_train(self, trainer) -> None:
        trainer.save_checkpoint("final.pth")


def redo_pending_validation(trainer) -> None:
    """A run resumed from a checkpoint written just before a validation (which then crashed,
    or was cut by a kill) runs that validation first, as the uninterrupted run did."""
    hooks = [h for h in trainer.hooks if isinstance(h, EvalHook) and h.due(trainer)]
    if not trainer.val_pending or not hooks:
        return
    trainer.logger.info("the checkpoint of iteration %d was written before its validation: validating", trainer.iter)
    for hook in hooks:
        hook.validate(trainer)
    trainer.val_pending = False


def build_hooks(cfgs: list) -> list[Hook]:
    hooks = [HOOKS.build(c) if isinstance(c, dict) else c for c in cfgs]
    return sorted(hooks, key=lambda h: getattr(h, "priority", 50))
