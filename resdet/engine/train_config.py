"""``TrainConfig``: every ``train_cfg`` key of a config, with its default, type and check, in
one place (the trainer, ``resdet print-config`` and the engine's config check all read it).

    cfg = TrainConfig.from_dict(dict(max_iters=1000, amp="bf16"), device=torch.device("cpu"))
    cfg.val_interval        # 1000, the default

An unknown key is an ``UnknownKeyError`` with the closest allowed name; a value of the wrong
type or range a one-line ``ConfigError`` (``train_cfg.max_iters = 'abc' (str) is not valid:
expected an integer >= 1 or None``). A trainer with keys of its own subclasses the dataclass
(``extra: int = config_field(1, int_value(1))``) and sets ``Trainer.config_class``.
``trainer_arguments`` reads a whole config into the ``Trainer``'s arguments.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

import torch

from ..utils.config_values import Check, bool_value, check_section, choice_value, int_value, number_value
from ..utils.errors import ConfigError
from .amp import AMP_MODES, check_amp_device


def _clip_grad(value: Any) -> str | None:
    if value is None or (not isinstance(value, bool) and isinstance(value, (int, float)) and value > 0):
        return None
    if isinstance(value, dict) and "max_norm" in value and number_value()(value["max_norm"]) is None:
        return None
    return "None, a max norm > 0, or dict(max_norm=..., norm_type=...)"


def _compile(value: Any) -> str | None:
    if isinstance(value, bool) or (
        isinstance(value, (list, tuple)) and value and all(isinstance(v, str) and v for v in value)
    ):
        return None
    return "True, False, or a list of submodule names (e.g. ['backbone', 'neck'])"


def _optional_str(value: Any) -> str | None:
    return None if value is None or (isinstance(value, str) and value) else "a result key, 'auto' or None"


def config_field(default: Any, check: Check) -> Any:
    """A ``TrainConfig`` field: its default and its check (``resdet.utils.config_values``: returns
    ``None`` when the value is fine, else what is expected)."""
    return field(default=default, metadata={"check": check})


@dataclass
class TrainConfig:
    """The ``train_cfg`` section: loop length, intervals, precision, reproducibility.

    Attributes:
        max_iters, max_epochs: the run's length (one of them; ``max_iters`` wins).
        val_interval, checkpoint_interval: iterations between validations / ``iter_N.pth``
            (0: only at the end); ``keep_last`` periodic checkpoints are kept.
        log_interval: iterations between ``metrics.jsonl`` records and log lines.
        amp: ``None`` | ``'bf16'`` | ``'fp16'`` (a CUDA GPU only) autocast.
        clip_grad: a max gradient norm, or ``dict(max_norm=..., norm_type=...)``.
        sync_bn: SyncBatchNorm under DDP on GPUs.
        seed, deterministic: the seed of rank 0 (rank r: ``seed + r``); deterministic kernels.
        save_best, rule: the validation key that selects ``best.pth`` and whether ``'less'`` or
            ``'greater'`` is better (``'auto'`` / ``None``: from the first metric).
        tensorboard: also write TensorBoard scalars and validation pictures.
        channels_last: model and 4-d image batches in channels-last memory format.
        find_unused_parameters: DDP's option, for models whose losses skip parameters.
        cudnn_benchmark: cuDNN autotuning (fixed input sizes only; off when deterministic).
        threads: CPU intra-op threads of this process (``None``: torch's default).
        compile: ``torch.compile`` the model's parts for training (``True`` or their names).
    """

    max_iters: int | None = config_field(None, int_value(1, optional=True))
    max_epochs: int | None = config_field(None, int_value(1, optional=True))
    val_interval: int = config_field(1000, int_value(0))  # 0: only at the end
    checkpoint_interval: int = config_field(1000, int_value(0))
    keep_last: int = config_field(3, int_value(0))
    log_interval: int = config_field(50, int_value(1))
    amp: str | None = config_field(None, choice_value(*AMP_MODES))
    clip_grad: float | dict | None = config_field(None, _clip_grad)
    sync_bn: bool = config_field(False, bool_value)
    seed: int = config_field(0, int_value(0))
    deterministic: bool = config_field(False, bool_value)
    save_best: str | None = config_field("auto", _optional_str)
    rule: str | None = config_field(None, choice_value(None, "less", "greater"))
    tensorboard: bool = config_field(False, bool_value)
    channels_last: bool = config_field(False, bool_value)
    find_unused_parameters: bool = config_field(False, bool_value)
    cudnn_benchmark: bool = config_field(False, bool_value)
    threads: int | None = config_field(None, int_value(1, optional=True))
    compile: bool | list[str] = config_field(False, _compile)

    def __post_init__(self) -> None:
        checks = {f.name: f.metadata["check"] for f in fields(self) if "check" in f.metadata}
        check_section("train_cfg", self.as_dict(), checks)
        if self.max_iters is None and self.max_epochs is None:
            raise ConfigError("train_cfg needs max_iters (or max_epochs), e.g. --cfg-options train_cfg.max_iters=1000")

    @classmethod
    def from_dict(cls, values: Mapping | None, device: torch.device | str | None = None) -> TrainConfig:
        """The checked config of a ``train_cfg`` dict (``None``: all defaults); ``device``: the
        training device, against which ``amp`` is checked."""
        if hasattr(values, "to_dict"):
            values = values.to_dict()
        check_section("train_cfg", {} if values is None else values, {}, allowed_keys=cls.keys())
        cfg = cls(**(values or {}))
        if device is not None:
            check_amp_device(cfg.amp, device)
        return cfg

    @classmethod
    def keys(cls) -> list[str]:
        return [f.name for f in fields(cls)]

    def as_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.keys()}


def trainer_arguments(cfg: Any, work_dir: str | None = None, resume: Any = None) -> dict[str, Any]:
    """The ``Trainer`` arguments of a loaded config (``mmengine.Config`` or dict), CONTRACTS.md."""
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
    to_dict = lambda v: v.to_dict() if hasattr(v, "to_dict") else v
    for key in ("model", "train_dataloader"):
        if get(key) is None:
            raise KeyError(f"config has no '{key}'")
    hooks = get("custom_hooks") or []
    return dict(
        model=to_dict(get("model")),
        work_dir=work_dir,
        train_dataloader=to_dict(get("train_dataloader")),
        optimizer=to_dict(get("optimizer")),
        param_scheduler=to_dict(get("param_scheduler")),
        train_cfg=to_dict(get("train_cfg")),
        val_dataloader=to_dict(get("val_dataloader")),
        val_evaluator=to_dict(get("val_evaluator")),
        load_from=get("load_from"),
        load_strict=bool(get("load_strict", True)),
        resume=resume,
        custom_hooks=[to_dict(h) for h in hooks],
        config_text=text,
        classes=get("classes"),
    )
