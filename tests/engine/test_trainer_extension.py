"""Extending the trainer: ``TrainConfig`` (one place for train_cfg keys and checks), a subclass
overriding ``run_step`` / ``build_optimizer`` / ``config_class``, and the hooks' call points."""

import json
import os
from dataclasses import dataclass

import pytest
import torch
from engine_tiny import single_thread, tiny_config, weights  # noqa: F401 (autouse fixture)

from resdet.data.loader import batch_len
from resdet.engine import Trainer
from resdet.engine.hooks import Hook
from resdet.engine.train_config import TrainConfig, config_field
from resdet.utils.config_values import bool_value
from resdet.utils.errors import ConfigError


def _records(work_dir, mode="train"):
    with open(os.path.join(work_dir, "metrics.jsonl")) as fh:
        return [r for r in map(json.loads, fh) if r["mode"] == mode]


def test_train_config_defaults_unknown_keys_and_values():
    cfg = TrainConfig.from_dict(dict(max_iters=5, amp="bf16"), device="cpu")
    assert (cfg.max_iters, cfg.val_interval, cfg.keep_last, cfg.amp, cfg.save_best) == (5, 1000, 3, "bf16", "auto")
    assert list(cfg.as_dict()) == TrainConfig.keys() and len(TrainConfig.keys()) == 19
    with pytest.raises(
        ConfigError,
        match=r"^unknown train_cfg keys \['val_intervl'\] "
        r"\(did you mean 'val_interval'\?\); "
        r"allowed keys: max_iters, max_epochs, val_interval",
    ):
        TrainConfig.from_dict(dict(max_iters=5, val_intervl=3))
    with pytest.raises(
        ConfigError,
        match=r"^train_cfg.max_iters = 0 \(int\) is not valid: "
        r"expected an integer >= 1 or None$",
    ):
        TrainConfig(max_iters=0)
    with pytest.raises(
        ConfigError,
        match=r"^train_cfg.rule = 'better' \(str\) is not valid: expected one of None, "
        r"'less', 'greater'$",
    ):
        TrainConfig(max_iters=1, rule="better")
    with pytest.raises(ConfigError, match="train_cfg needs max_iters"):
        TrainConfig.from_dict(None)
    with pytest.raises(ConfigError, match="train_cfg.amp='fp16' needs a CUDA GPU but this run is on cpu"):
        TrainConfig.from_dict(dict(max_iters=1, amp="fp16"), device=torch.device("cpu"))


@dataclass
class NormConfig(TrainConfig):
    log_weight_norm: bool = config_field(False, bool_value)


class NormLoggingTrainer(Trainer):
    """Logs the weights' total norm after each update, when its own train_cfg key says so."""

    config_class = NormConfig

    def __init__(self, **kwargs):
        self.batch_sizes = []
        super().__init__(**kwargs)

    def run_step(self, batch):
        self.batch_sizes.append(batch_len(batch["inputs"]))
        log_vars = super().run_step(batch)
        if self.cfg.log_weight_norm:
            log_vars["weight_norm"] = sum(p.detach().norm() for p in self.model.parameters())
        return log_vars


def test_subclass_run_step_and_train_cfg_key_are_used(tmp_path):
    work = str(tmp_path / "norm")
    trainer = NormLoggingTrainer(**tiny_config(work, max_iters=4, log_interval=1, log_weight_norm=True))
    trainer.train()
    assert trainer.batch_sizes == [8, 8, 8, 8]  # every update went through the override
    records = _records(work)
    assert [r["iter"] for r in records] == [1, 2, 3, 4]
    final_norm = float(sum(v.norm() for v in weights(trainer).values()))
    assert records[-1]["weight_norm"] == pytest.approx(final_norm, rel=1e-5)
    assert records[0]["weight_norm"] != pytest.approx(final_norm, rel=1e-5)  # the weights moved
    assert all(r["loss"] == pytest.approx(r["loss_cls"]) for r in records)  # the base step's values stay
    with pytest.raises(
        ConfigError,
        match=r"train_cfg.log_weight_norm = 'yes' \(str\) is not valid: "
        r"expected True or False",
    ):
        NormLoggingTrainer(**tiny_config(str(tmp_path / "bad"), log_weight_norm="yes"))
    with pytest.raises(ConfigError, match=r"unknown train_cfg keys \['log_weight_norm'\]"):
        Trainer(**tiny_config(str(tmp_path / "plain"), log_weight_norm=True))  # not a key of the base config


class HeadOnlyTrainer(Trainer):
    """Fine-tunes the last layer only, at its own learning rate."""

    def build_optimizer(self, model, cfg):
        return torch.optim.SGD(model.fc2.parameters(), lr=0.5)


def test_subclass_build_optimizer_is_used(tmp_path):
    cfg = dict(tiny_config(str(tmp_path / "head"), max_iters=3), param_scheduler=None)
    trainer = HeadOnlyTrainer(**cfg)
    before = weights(trainer)
    trainer.train()
    after = weights(trainer)
    assert torch.equal(before["fc1.weight"], after["fc1.weight"]) and torch.equal(before["fc1.bias"], after["fc1.bias"])
    assert not torch.allclose(before["fc2.weight"], after["fc2.weight"])
    assert [g["lr"] for g in trainer.optimizer.param_groups] == [0.5]
    assert sum(p.numel() for g in trainer.optimizer.param_groups for p in g["params"]) == 16 * 3 + 3


class Calls(Hook):
    priority = 45  # after CheckpointHook (40), before EvalHook (50)

    def __init__(self):
        self.calls = []

    def before_train(self, trainer):
        self.calls.append("before_train")

    def before_iter(self, trainer):
        self.calls.append(f"before_iter {trainer.iter}")

    def after_iter(self, trainer, log_vars):
        self.calls.append(f"after_iter {trainer.iter} {sorted(log_vars)}")

    def after_checkpoint(self, trainer, path):
        self.calls.append(f"checkpoint {os.path.basename(path)}")

    def after_val(self, trainer, results):
        self.calls.append(f"val {trainer.iter}")

    def after_train(self, trainer):
        self.calls.append("after_train")

    def on_exit(self, trainer):
        self.calls.append("on_exit")


def test_hook_call_points_in_order(tmp_path):
    hook = Calls()
    Trainer(
        **tiny_config(str(tmp_path / "hooks"), max_iters=2, checkpoint_interval=1, val_interval=2, val=True),
        custom_hooks=[hook],
    ).train()
    logged = "['loss', 'loss_cls', 'train_err']"
    assert hook.calls == [
        "before_train",
        "before_iter 0",
        "checkpoint iter_1.pth",
        f"after_iter 1 {logged}",
        "before_iter 1",
        f"after_iter 2 {logged}",
        "val 2",
        "checkpoint best.pth",
        "checkpoint final.pth",
        "after_train",
        "on_exit",
    ]
