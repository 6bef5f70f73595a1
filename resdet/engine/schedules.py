"""Iteration-based learning-rate schedules (``PARAM_SCHEDULERS``), composable as a list.

The rate of a param group at iteration ``i`` (0-based, the iteration about to run) is
``base_lr * prod(s.factor(i, base_lr) for s in schedules)``. Fixed-shape rules (``StepLR``,
``CosineLR``, ``LinearWarmupLR``) are pure functions of ``i``; data-driven rules keep state
and are told what happened:

- ``PlateauLR``: ``observe_val(i, results)`` after each validation; multiplies its factor by
  ``factor`` after ``patience`` validations without improvement (the paper's ImageNet rule,
  "divide by 10 when the error plateaus").
- ``WarmupUntilLR``: ``observe_train(i, metrics)`` after every iteration with the training
  metrics averaged over ranks; uses ``warmup_lr`` until the mean of ``metric`` over the last
  ``window`` iterations falls below ``threshold``, then the base rate for good (the paper's
  ResNet-110 rule: 0.01 until training error < 80%, then 0.1).

``LRScheduler`` applies the product to an optimizer and round-trips its state through
checkpoints (plain Python types only).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence

import torch

from ..registry import PARAM_SCHEDULERS


class LRSchedule:
    """One rule. Subclasses override ``factor`` and, if stateful, the observe/state methods."""

    train_metric: str | None = None  # training metric this rule needs every iteration

    def bind(self, max_iters: int) -> None:
        self.max_iters = int(max_iters)

    def factor(self, it: int, base_lr: float) -> float:
        return 1.0

    def observe_train(self, it: int, metrics: dict[str, float]) -> None:
        pass

    def observe_val(self, it: int, results: dict[str, float]) -> None:
        pass

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


@PARAM_SCHEDULERS.register_module()
class StepLR(LRSchedule):
    """Multiply by ``gamma`` at each of ``milestones`` (iterations; from that iteration on)."""

    def __init__(self, milestones: Sequence[int], gamma: float = 0.1) -> None:
        self.milestones = sorted(int(m) for m in milestones)
        self.gamma = float(gamma)

    def factor(self, it: int, base_lr: float) -> float:
        return self.gamma ** sum(1 for m in self.milestones if it >= m)


@PARAM_SCHEDULERS.register_module()
class LinearWarmupLR(LRSchedule):
    """Ramp the factor linearly from ``start_factor`` at iteration 0 to 1 at ``warmup_iters``."""

    def __init__(self, warmup_iters: int, start_factor: float = 0.001) -> None:
        if warmup_iters < 1:
            raise ValueError(f"LinearWarmupLR.warmup_iters must be >= 1, got {warmup_iters}")
        self.warmup_iters, self.start_factor = int(warmup_iters), float(start_factor)

    def factor(self, it: int, base_lr: float) -> float:
        if it >= self.warmup_iters:
            return 1.0
        return self.start_factor + (1.0 - self.start_factor) * it / self.warmup_iters


@PARAM_SCHEDULERS.register_module()
class CosineLR(LRSchedule):
    """Half-cosine from ``base_lr`` at ``begin`` to ``min_lr`` at ``end`` (default ``max_iters``)."""

    def __init__(self, min_lr: float = 0.0, begin: int = 0, end: int | None = None) -> None:
        self.min_lr, self.begin, self.end = float(min_lr), int(begin), end

    def factor(self, it: int, base_lr: float) -> float:
        end = self.end if self.end is not None else self.max_iters
        progress = min(max((it - self.begin) / max(end - self.begin, 1), 0.0), 1.0)
        lr = self.min_lr + (base_lr - self.min_lr) * 0.5 * (1.0 + math.cos(math.pi * progress))
        return lr / base_lr if base_lr > 0 else 0.0


@PARAM_SCHEDULERS.register_module()
class PlateauLR(LRSchedule):
    """Multiply by ``factor`` when validation ``metric`` has not improved for ``patience`` evaluations.

    Args:
        metric: key of the validation results (e.g. ``'top1_err'``).
        mode: ``'min'`` (errors) or ``'max'`` (accuracies, mAP).
        patience: cut after this many consecutive evaluations without improvement (>= 1).
        factor: multiplier applied at each cut.
        min_lr: the rate never goes below this.
        threshold: relative improvement needed to count as better.
    """

    def __init__(
        self,
        metric: str = "top1_err",
        mode: str = "min",
        patience: int = 2,
        factor: float = 0.1,
        min_lr: float = 0.0,
        threshold: float = 1e-4,
    ) -> None:
        if mode not in ("min", "max"):
            raise ValueError(f"PlateauLR.mode must be 'min' or 'max', got {mode!r}")
        self.metric, self.mode, self.patience = metric, mode, int(patience)
        self.cut, self.min_lr, self.threshold = float(factor), float(min_lr), float(threshold)
        self.best: float | None = None
        self.bad_evals = 0
        self.scale = 1.0
        self.cuts: list[int] = []  # iterations at which the rate was cut

    def _better(self, value: float) -> bool:
        if self.best is None:
            return True
        if self.mode == "min":
            return value < self.best * (1.0 - self.threshold) if self.best > 0 else value < self.best
        return value > self.best * (1.0 + self.threshold) if self.best > 0 else value > self.best

    def observe_val(self, it: int, results: dict[str, float]) -> None:
        if self.metric not in results:
            raise KeyError(
                f"PlateauLR watches '{self.metric}' but validation returned "
                f"{', '.join(sorted(results)) or 'nothing'}; set param_scheduler.metric"
            )
        value = float(results[self.metric])
        if self._better(value):
            self.best, self.bad_evals = value, 0
            return
        self.bad_evals += 1
        if self.bad_evals >= max(self.patience, 1):
            self.scale *= self.cut
            self.bad_evals = 0
            self.cuts.append(int(it))

    def factor(self, it: int, base_lr: float) -> float:
        if base_lr <= 0:
            return self.scale
        return max(self.scale, self.min_lr / base_lr)

    def state_dict(self) -> dict:
        return {"best": self.best, "bad_evals": self.bad_evals, "scale": self.scale, "cuts": list(self.cuts)}

    def load_state_dict(self, state: dict) -> None:
        self.best, self.bad_evals = state["best"], int(state["bad_evals"])
        self.scale, self.cuts = float(state["scale"]), list(state["cuts"])


@PARAM_SCHEDULERS.register_module()
class WarmupUntilLR(LRSchedule):
    """Use ``warmup_lr`` until the running mean of a training metric falls below ``threshold``.

    Args:
        warmup_lr: absolute rate during the warm-up (0.01 in the paper).
        threshold: switch once the running mean of ``metric`` is below this (0.8).
        metric: training metric reported by the model's loss dict (``'train_err'``).
        window: iterations averaged; no switch before the window is full.
        max_warmup_iters: switch at this iteration at the latest (``None``: no limit).
        ramp_iters: after the switch, move linearly from ``warmup_lr`` to the base rate over
            this many iterations (0: the paper's jump straight to the base rate).
    """

    def __init__(
        self,
        warmup_lr: float = 0.01,
        threshold: float = 0.8,
        metric: str = "train_err",
        window: int = 20,
        max_warmup_iters: int | None = None,
        ramp_iters: int = 0,
    ) -> None:
        if window < 1:
            raise ValueError(f"WarmupUntilLR.window must be >= 1, got {window}")
        if ramp_iters < 0:
            raise ValueError(f"WarmupUntilLR.ramp_iters must be >= 0, got {ramp_iters}")
        self.ramp_iters = int(ramp_iters)
        self.warmup_lr, self.threshold, self.train_metric = float(warmup_lr), float(threshold), metric
        self.window, self.max_warmup_iters = int(window), max_warmup_iters
        self.recent: deque[float] = deque(maxlen=self.window)
        self.switched_at: int | None = None

    def observe_train(self, it: int, metrics: dict[str, float]) -> None:
        if self.switched_at is not None:
            return
        if self.train_metric not in metrics:
            raise KeyError(
                f"WarmupUntilLR watches '{self.train_metric}' but the model's loss dict has "
                f"{', '.join(sorted(metrics))}"
            )
        self.recent.append(float(metrics[self.train_metric]))
        full = len(self.recent) == self.window
        if (full and sum(self.recent) / self.window < self.threshold) or (
            self.max_warmup_iters is not None and it + 1 >= self.max_warmup_iters
        ):
            self.switched_at = int(it) + 1  # the first iteration past the warm-up rate (of the ramp, if any)

    def factor(self, it: int, base_lr: float) -> float:
        warm = self.warmup_lr / base_lr if base_lr > 0 else 0.0
        if self.switched_at is None or it < self.switched_at:
            return warm
        done = it - self.switched_at + 1  # iterations into the ramp, the first one included
        if done >= self.ramp_iters:
            return 1.0
        return warm + (1.0 - warm) * done / self.ramp_iters

    def state_dict(self) -> dict:
        return {"recent": list(self.recent), "switched_at": self.switched_at}

    def load_state_dict(self, state: dict) -> None:
        self.recent = deque((float(v) for v in state["recent"]), maxlen=self.window)
        self.switched_at = state["switched_at"]


class LRScheduler:
    """Sets each param group's ``lr`` to ``initial_lr * prod(factors)`` before every iteration."""

    def __init__(
        self, optimizer: torch.optim.Optimizer, schedules: Sequence[LRSchedule | dict] | dict | None, max_iters: int
    ) -> None:
        if schedules is None:
            schedules = []
        elif isinstance(schedules, (dict, LRSchedule)):
            schedules = [schedules]
        self.optimizer = optimizer
        self.schedules = [PARAM_SCHEDULERS.build(s) if isinstance(s, dict) else s for s in schedules]
        for schedule in self.schedules:
            schedule.bind(max_iters)
        for group in optimizer.param_groups:
            group.setdefault("initial_lr", group["lr"])
        self.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]

    @property
    def train_metrics(self) -> list[str]:
        """Training metrics that must be reported (averaged over ranks) every iteration."""
        return sorted({s.train_metric for s in self.schedules if s.train_metric})

    def lr_at(self, it: int) -> list[float]:
        lrs = []
        for base in self.base_lrs:
            factor = 1.0
            for schedule in self.schedules:
                factor *= schedule.factor(it, base)
            lrs.append(base * factor)
        return lrs

    def step(self, it: int) -> None:
        for group, lr in zip(self.optimizer.param_groups, self.lr_at(it)):
            group["lr"] = lr

    def observe_train(self, it: int, metrics: dict[str, float]) -> None:
        for schedule in self.schedules:
            schedule.observe_train(it, metrics)

    def observe_val(self, it: int, results: dict[str, float]) -> None:
        for schedule in self.schedules:
            schedule.observe_val(it, results)

    def state_dict(self) -> dict:
        return {
            "base_lrs": list(self.base_lrs),
            "schedules": [{"type": type(s).__name__, "state": s.state_dict()} for s in self.schedules],
        }

    def load_state_dict(self, state: dict) -> None:
        saved = state.get("schedules", [])
        names = [type(s).__name__ for s in self.schedules]
        if [s["type"] for s in saved] != names:
            raise ValueError(
                f"checkpoint scheduler has schedules {[s['type'] for s in saved]} but the config has {names}"
            )
        for schedule, entry in zip(self.schedules, saved):
            schedule.load_state_dict(entry["state"])
