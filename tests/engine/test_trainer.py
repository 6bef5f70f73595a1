"""The training loop on CPU: exact resume, corrupt checkpoints, skipped samples, NaN stop, AMP."""

import json
import os

import pytest
import torch
from engine_tiny import Crash, CrashAfter, EngineTinyDataset, single_thread, tiny_config, weights  # noqa: F401 (autouse fixture)

from resdet.engine import NonFiniteLossError, Trainer
from resdet.engine.checkpoint import find_latest_valid, get_rng_state, set_rng_state
from resdet.utils.errors import ConfigError
from resdet.utils.io import CheckpointError, safe_load


def _read_jsonl(path):
    with open(path) as fh:
        return [json.loads(line) for line in fh]


@pytest.mark.parametrize("num_workers", [0, 1])
def test_resume_is_bit_exact(tmp_path, num_workers):
    # shuffled loader, random flips, dropout and a step in the lr: all must continue exactly
    kwargs = dict(max_iters=9, num_workers=num_workers, dropout=0.3)
    full = Trainer(**tiny_config(str(tmp_path / "full"), **kwargs))
    full.train()
    crashed = Trainer(**tiny_config(str(tmp_path / "cut"), **kwargs), custom_hooks=[CrashAfter(5)])
    with pytest.raises(Crash):
        crashed.train()
    assert sorted(p for p in os.listdir(tmp_path / "cut") if p.endswith(".pth")) == ["iter_3.pth"]
    resumed = Trainer(**tiny_config(str(tmp_path / "cut"), **kwargs), resume=True)
    assert resumed.iter == 3
    result = resumed.train()
    assert result["iter"] == 9 and result["checkpoint"].endswith("final.pth")
    expected, got = weights(full), weights(resumed)
    assert expected.keys() == got.keys()
    for key in expected:
        assert torch.equal(expected[key], got[key]), key
    # the metrics log holds each iteration once, as in the uninterrupted run
    logged = [(r["mode"], r["iter"]) for r in _read_jsonl(str(tmp_path / "cut" / "metrics.jsonl"))]
    assert logged == [(r["mode"], r["iter"]) for r in _read_jsonl(str(tmp_path / "full" / "metrics.jsonl"))]
    assert [i for _, i in logged] == [2, 4, 6, 8, 9]
    # a different seed gives different weights (the comparison above is not vacuous)
    other = Trainer(**tiny_config(str(tmp_path / "other"), seed=1, **kwargs))
    other.train()
    assert not torch.equal(weights(other)["fc1.weight"], expected["fc1.weight"])


def test_corrupt_latest_checkpoint_falls_back(tmp_path):
    work = str(tmp_path / "run")
    Trainer(**tiny_config(work, max_iters=6, checkpoint_interval=2, keep_last=3)).train()
    names = sorted(p for p in os.listdir(work) if p.endswith(".pth"))
    assert names == ["final.pth", "iter_2.pth", "iter_4.pth"]
    with open(os.path.join(work, "last_checkpoint")) as fh:
        assert fh.read().strip() == "final.pth"
    final = os.path.join(work, "final.pth")
    data = open(final, "rb").read()
    with open(final, "wb") as fh:  # truncated write (e.g. a full disk outside atomic_save)
        fh.write(data[: len(data) // 2])
    with open(os.path.join(work, "iter_4.pth"), "wb") as fh:  # garbage
        fh.write(b"not a checkpoint at all")
    path, ckpt = find_latest_valid(work)
    assert os.path.basename(path) == "iter_2.pth" and ckpt["iter"] == 2
    resumed = Trainer(**tiny_config(work, max_iters=6, checkpoint_interval=2), resume=True)
    assert resumed.iter == 2
    log = open(os.path.join(work, "train.log")).read()
    assert "refusing to resume from" in log and "final.pth" in log and "truncated" in log
    assert "resuming from" in log and "iter_2.pth" in log
    # an explicitly named corrupt checkpoint is an error that names the file
    with pytest.raises(CheckpointError, match="final.pth"):
        Trainer(**tiny_config(work, max_iters=6), resume=final)


def test_skipped_samples_are_counted_and_strict_is_fatal(tmp_path):
    cfg = tiny_config(str(tmp_path / "skip"), max_iters=4, log_interval=4)
    cfg["train_dataloader"]["dataset"] = dict(type="EngineTinyDataset", num=32, bad=(1, 5, 9))
    with pytest.warns(UserWarning, match="tiny_"):
        trainer = Trainer(**cfg)
        trainer.train()
    # 4 iterations x 8 = the whole epoch: each bad index drawn exactly once
    record = _read_jsonl(str(tmp_path / "skip" / "metrics.jsonl"))[-1]
    assert record["num_skipped"] == 3
    assert "skipped 3" in open(str(tmp_path / "skip" / "train.log")).read()
    assert safe_load(str(tmp_path / "skip" / "final.pth"))["meta"]["num_skipped"] == 3
    cfg = tiny_config(str(tmp_path / "strict"), max_iters=4)
    cfg["train_dataloader"]["dataset"] = dict(type="EngineTinyDataset", num=32, bad=(1,), strict=True)
    with pytest.raises(OSError, match="tiny_1.jpg"):
        Trainer(**cfg).train()


def test_non_finite_loss_stops_with_iteration_and_checkpoint(tmp_path):
    cfg = tiny_config(str(tmp_path / "nan"), max_iters=8, checkpoint_interval=2)
    cfg["model"]["nan_at_call"] = 5
    trainer = Trainer(**cfg)
    with pytest.raises(NonFiniteLossError, match=r"iteration 5 .*iter_4\.pth"):
        trainer.train()
    assert trainer.iter == 4  # the bad step was not applied
    cfg = tiny_config(str(tmp_path / "nan0"), max_iters=8)
    cfg["model"]["nan_at_call"] = 1
    with pytest.raises(NonFiniteLossError, match="iteration 1 .*none"):
        Trainer(**cfg).train()


def test_amp_bf16_on_cpu_and_val_metrics(tmp_path, monkeypatch):
    monkeypatch.setenv("RESDET_CPU_BF16", "1")  # bf16 even on a CPU without native bf16 (tests/engine/test_amp.py)
    trainer = Trainer(**tiny_config(str(tmp_path / "amp"), max_iters=6, amp="bf16", val=True))
    before = weights(trainer)["fc1.weight"]
    result = trainer.train()
    assert trainer.model.last_dtype == torch.bfloat16  # validation ran under autocast too
    assert 0.0 <= result["top1_err"] <= 1.0 and result["count"] == 16
    assert not torch.equal(before, weights(trainer)["fc1.weight"])
    records = _read_jsonl(str(tmp_path / "amp" / "metrics.jsonl"))
    assert [r["iter"] for r in records if r["mode"] == "val"] == [3, 6]
    train = [r for r in records if r["mode"] == "train"]
    assert [r["iter"] for r in train] == [2, 4, 6]
    assert all(torch.isfinite(torch.tensor(r["loss"])) for r in train)
    assert {"lr", "loss_cls", "train_err", "epoch", "num_skipped"} <= set(train[0])
    assert os.path.isfile(tmp_path / "amp" / "best.pth") and os.path.isfile(tmp_path / "amp" / "env.json")


def test_bf16_autocast_is_active_in_training(tmp_path, monkeypatch):
    monkeypatch.setenv("RESDET_CPU_BF16", "1")
    trainer = Trainer(**tiny_config(str(tmp_path / "amp"), max_iters=1, amp="bf16"))
    trainer.train()
    assert trainer.model.last_dtype == torch.bfloat16
    with pytest.raises(ValueError, match="fp16"):
        Trainer(**tiny_config(str(tmp_path / "fp16"), max_iters=1, amp="fp16"))


def test_rng_state_round_trip_is_weights_only():
    state = get_rng_state()
    expected = (torch.rand(3), __import__("numpy").random.rand(2), __import__("random").random())
    set_rng_state(state)
    got = (torch.rand(3), __import__("numpy").random.rand(2), __import__("random").random())
    assert torch.equal(expected[0], got[0]) and (expected[1] == got[1]).all() and expected[2] == got[2]


def test_load_from_reports_unmatched_keys(tmp_path):
    work = str(tmp_path / "src")
    Trainer(**tiny_config(work, max_iters=2)).train()
    cfg = tiny_config(str(tmp_path / "ft"), max_iters=1)
    cfg["model"]["num_classes"] = 5  # fc2 changes shape
    with pytest.raises(CheckpointError, match="fc2.weight"):
        Trainer(**cfg, load_from=os.path.join(work, "final.pth"))
    trainer = Trainer(**cfg, load_from=os.path.join(work, "final.pth"), load_strict=False)
    assert sorted(trainer.load_report["mismatched"]) == [
        "fc2.bias: checkpoint (3,) vs model (5,)",
        "fc2.weight: checkpoint (3, 16) vs model (5, 16)",
    ]
    source = safe_load(os.path.join(work, "final.pth"))["model"]
    assert torch.equal(weights(trainer)["fc1.weight"], source["fc1.weight"])


def test_unknown_train_cfg_key_is_named(tmp_path):
    with pytest.raises(ConfigError, match=r"unknown train_cfg keys \['max_iter'\] \(did you mean 'max_iters'\?\)"):
        Trainer(**tiny_config(str(tmp_path / "x"), max_iter=3))
    assert len(EngineTinyDataset(num=4)) == 4


def test_threads_option_sets_and_validates_cpu_threads(tmp_path):
    Trainer(**tiny_config(str(tmp_path / "a"), threads=2))
    assert torch.get_num_threads() == 2  # the autouse fixture restores the count afterwards
    for bad in (0, 1.5, True, "2"):
        with pytest.raises(ValueError, match="train_cfg.threads"):
            Trainer(**tiny_config(str(tmp_path / "b"), threads=bad))


def test_grad_clipping_bounds_the_update_and_keep_last_prunes(tmp_path):
    cfg = tiny_config(
        str(tmp_path / "clip"),
        max_iters=9,
        checkpoint_interval=2,
        keep_last=2,
        clip_grad=dict(max_norm=1e-3),
        log_interval=1,
    )
    cfg["optimizer"] = dict(type="SGD", lr=1.0, momentum=0.0, weight_decay=0.0)
    cfg["param_scheduler"] = None
    trainer = Trainer(**cfg)
    before = weights(trainer)
    trainer.max_iters = 1
    trainer.train()
    after = weights(trainer)
    delta = torch.sqrt(sum(((after[k] - before[k]) ** 2).sum() for k in before))
    assert 0 < float(delta) <= 1e-3 * (1 + 1e-4)  # lr 1 x gradient clipped to norm 1e-3
    records = _read_jsonl(str(tmp_path / "clip" / "metrics.jsonl"))
    assert records[0]["grad_norm"] > 1e-3  # the raw norm was larger: clipping did act
    trainer = Trainer(**cfg)
    trainer.train()
    names = sorted(p for p in os.listdir(tmp_path / "clip") if p.startswith("iter_"))
    assert names == ["iter_6.pth", "iter_8.pth"]


def test_max_epochs_sets_iterations_and_epoch_bookkeeping(tmp_path):
    cfg = tiny_config(str(tmp_path / "ep"), max_iters=None, max_epochs=2, log_interval=4)
    trainer = Trainer(**cfg)
    assert trainer.iters_per_epoch == 4 and trainer.max_iters == 8  # 32 images / batch 8
    trainer.train()
    records = _read_jsonl(str(tmp_path / "ep" / "metrics.jsonl"))
    assert [(r["iter"], r["epoch"]) for r in records] == [(4, 1), (8, 2)]


def test_compile_option_trains_like_eager(tmp_path):
    """``train_cfg.compile``: the named parts run compiled (forward and backward) while training and
    eagerly under validation; the trained weights match an eager run up to float rounding."""
    eager = Trainer(**tiny_config(str(tmp_path / "eager"), max_iters=4, val_interval=4, val=True))
    start = weights(eager)
    eager_result = eager.train()
    compiled = Trainer(
        **tiny_config(str(tmp_path / "compiled"), max_iters=4, val_interval=4, val=True, compile=["fc1", "fc2"])
    )
    assert sorted(compiled.compiled_parts) == ["fc1", "fc2"]
    compiled_result = compiled.train()
    for name, part in compiled.compiled_parts.items():
        assert part.failed is None, (name, part.failed)
        assert part.first_call_s > 0
    a, b = weights(eager), weights(compiled)
    assert a.keys() == b.keys() == start.keys()
    assert not torch.allclose(a["fc1.weight"], start["fc1.weight"])  # training moved the weights
    for key in a:
        assert torch.allclose(a[key], b[key], atol=1e-5), key
    assert compiled_result["top1_err"] == pytest.approx(eager_result["top1_err"]) and compiled_result["count"] == 16
    with pytest.raises(ValueError, match=r"train_cfg.compile names \['backbone'\]"):
        Trainer(**tiny_config(str(tmp_path / "bad"), compile=["backbone"]))
    with pytest.raises(ValueError, match="train_cfg.compile"):
        Trainer(**tiny_config(str(tmp_path / "bad2"), compile="yes"))
