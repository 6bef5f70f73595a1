"""LR schedules: exact values of the fixed rules; the data-driven rules fire when, and only when, due."""

import math

import pytest
import torch

from resdet.engine.optim import build_optimizer
from resdet.engine.schedules import LRScheduler
from resdet.registry import PARAM_SCHEDULERS
from resdet.utils.errors import ConfigError


def _scheduler(schedules, lr=0.1, max_iters=100):
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
    optimizer = build_optimizer(model, dict(type="SGD", lr=lr))
    return LRScheduler(optimizer, schedules, max_iters), optimizer


def test_step_cosine_and_linear_warmup_values():
    sched, opt = _scheduler(dict(type="StepLR", milestones=[32000, 48000]), max_iters=64000)
    assert [sched.lr_at(i)[0] for i in (0, 31999, 32000, 47999, 48000, 63999)] == pytest.approx(
        [0.1, 0.1, 0.01, 0.01, 0.001, 0.001]
    )
    sched.step(40000)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.01)
    sched, _ = _scheduler(dict(type="CosineLR", min_lr=0.001), max_iters=100)
    assert sched.lr_at(0)[0] == pytest.approx(0.1)
    assert sched.lr_at(50)[0] == pytest.approx(0.001 + 0.099 * 0.5)
    assert sched.lr_at(25)[0] == pytest.approx(0.001 + 0.099 * 0.5 * (1 + math.cos(math.pi / 4)))
    assert sched.lr_at(100)[0] == pytest.approx(0.001)
    sched, _ = _scheduler(dict(type="LinearWarmupLR", warmup_iters=10, start_factor=0.1))
    assert [sched.lr_at(i)[0] for i in (0, 5, 10, 50)] == pytest.approx([0.01, 0.055, 0.1, 0.1])
    # composition: warm-up then steps multiply
    sched, _ = _scheduler(
        [dict(type="LinearWarmupLR", warmup_iters=10, start_factor=0.5), dict(type="StepLR", milestones=[5], gamma=0.1)]
    )
    assert sched.lr_at(6)[0] == pytest.approx(0.1 * (0.5 + 0.5 * 0.6) * 0.1)


def test_plateau_cuts_only_after_patience_without_improvement():
    sched, opt = _scheduler(dict(type="PlateauLR", metric="top1_err", patience=2, factor=0.1, min_lr=1e-4))
    history = []
    for it, err in zip(range(100, 1100, 100), [0.9, 0.8, 0.7, 0.71, 0.70, 0.69, 0.69, 0.69, 0.68, 0.68]):
        sched.observe_val(it, {"top1_err": err})
        history.append(sched.lr_at(it + 1)[0])
    # improvements at 0.9, 0.8, 0.7, 0.69 (iters 100-300, 600); two flat evals at 400, 500 -> cut;
    # 700, 800 flat -> cut; 0.68 at 900 improves; 1000 flat (1 of 2) -> no cut
    assert history == pytest.approx([0.1, 0.1, 0.1, 0.1, 0.01, 0.01, 0.01, 0.001, 0.001, 0.001])
    assert sched.schedules[0].cuts == [500, 800]
    state = sched.state_dict()
    fresh, _ = _scheduler(dict(type="PlateauLR", metric="top1_err", patience=2, min_lr=1e-4))
    fresh.load_state_dict(state)
    assert fresh.lr_at(0)[0] == pytest.approx(0.001)
    for it in range(5):  # min_lr floors further cuts
        fresh.observe_val(2000 + it, {"top1_err": 0.9})
    assert fresh.lr_at(3000)[0] == pytest.approx(1e-4)
    with pytest.raises(KeyError, match="top5_err"):
        sched.observe_val(0, {"top5_err": 0.1})


def test_warmup_until_threshold_switches_once_and_only_below_threshold():
    sched, _ = _scheduler(dict(type="WarmupUntilLR", warmup_lr=0.01, threshold=0.8, window=4))
    assert sched.train_metrics == ["train_err"]
    errors = [0.9, 0.85, 0.75, 0.7, 0.95, 0.9, 0.7, 0.6, 0.5, 0.6, 0.99, 0.99]
    lrs = []
    for it, err in enumerate(errors):
        lrs.append(sched.lr_at(it)[0])
        sched.observe_train(it, {"train_err": err})
    # windows: [.9,.85,.75,.7]=.80 (not below) -> [.85,.75,.7,.95]=.8125 -> [.75,.7,.95,.9]=.825
    # -> [.7,.95,.9,.7]=.8125 -> [.95,.9,.7,.6]=.7875 < .8 at iteration 7: base rate from 8 on
    assert lrs == pytest.approx([0.01] * 8 + [0.1] * 4)
    assert sched.schedules[0].switched_at == 8
    # it never switches back, and it round-trips through a checkpoint
    fresh, _ = _scheduler(dict(type="WarmupUntilLR", warmup_lr=0.01, threshold=0.8, window=4))
    fresh.load_state_dict(sched.state_dict())
    assert fresh.lr_at(9)[0] == pytest.approx(0.1) and fresh.lr_at(7)[0] == pytest.approx(0.01)
    capped, _ = _scheduler(dict(type="WarmupUntilLR", warmup_lr=0.01, window=4, max_warmup_iters=3))
    for it in range(3):
        capped.observe_train(it, {"train_err": 1.0})
    assert capped.lr_at(2)[0] == pytest.approx(0.01) and capped.lr_at(3)[0] == pytest.approx(0.1)


def test_warmup_until_ramps_linearly_after_the_switch_and_composes_with_steps():
    rules = [
        dict(type="WarmupUntilLR", warmup_lr=0.01, threshold=0.8, window=2, ramp_iters=4),
        dict(type="StepLR", milestones=[10], gamma=0.1),
    ]
    sched, _ = _scheduler(rules)
    for it, err in enumerate([0.9, 0.7, 0.7]):  # window [.9,.7] = .8 is not below; [.7,.7] at it 2 is
        sched.observe_train(it, {"train_err": err})
    assert sched.schedules[0].switched_at == 3
    # 0.01 until the switch, then 0.01 + 0.09 * k / 4 for k = 1..4, the base rate, and the step
    assert [sched.lr_at(i)[0] for i in (2, 3, 4, 5, 6, 7, 9, 10)] == pytest.approx(
        [0.01, 0.0325, 0.055, 0.0775, 0.1, 0.1, 0.1, 0.01]
    )
    with pytest.raises(ValueError, match="ramp_iters must be >= 0, got -1"):
        PARAM_SCHEDULERS.build(dict(type="WarmupUntilLR", ramp_iters=-1))


def test_no_decay_groups_and_registry_errors():
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, bias=True), torch.nn.BatchNorm2d(4))
    opt = build_optimizer(model, dict(type="SGD", lr=0.1, norm_bias_decay=False))
    decay, no_decay = opt.param_groups
    assert [p.shape for p in decay["params"]] == [torch.Size([4, 3, 3, 3])]
    assert len(no_decay["params"]) == 3 and no_decay["weight_decay"] == 0.0
    assert decay["weight_decay"] == 1e-4 and decay["momentum"] == 0.9
    with pytest.raises(ConfigError, match="'SGDX' is not a torch.optim optimizer \\(did you mean 'SGD'\\?\\)"):
        build_optimizer(model, dict(type="SGDX", lr=0.1))
    with pytest.raises(KeyError, match="StepLR"):
        PARAM_SCHEDULERS.build(dict(type="StepLr", milestones=[1]))
