"""A run built from a config (CONTRACTS.md schema) with the real classifier, metric and
warm-up rule; progress display; run_inference on its own."""

import io
import json

import torch
from engine_tiny import EngineTinyDataset, single_thread  # noqa: F401 (autouse fixture)
from mmengine.config import Config

from resdet.data.loader import build_dataloader
from resdet.engine import Trainer, run_inference
from resdet.engine.logger import setup_logger
from resdet.evaluation import build_metrics


def _config(work_dir):
    data = dict(type="EngineTinyDataset", num=16, size=8, num_classes=10)
    return Config(
        dict(
            model=dict(type="ImageClassifier", num_classes=10, backbone=dict(type="CifarResNet", depth=8)),
            train_dataloader=dict(batch_size=4, num_workers=0, dataset=data, collate="cls_collate"),
            val_dataloader=dict(
                batch_size=8, num_workers=0, collate="cls_collate", dataset=dict(data, augment=False, seed=1)
            ),
            val_evaluator=dict(type="TopKError", topk=(1, 5)),
            optimizer=dict(type="SGD", lr=0.1, momentum=0.9, weight_decay=1e-4, norm_bias_decay=False),
            param_scheduler=[dict(type="WarmupUntilLR", warmup_lr=0.01, threshold=0.8, window=2)],
            train_cfg=dict(max_iters=4, val_interval=2, checkpoint_interval=2, log_interval=1, seed=0),
            work_dir=work_dir,
        )
    )


def test_from_config_trains_validates_and_saves_config(tmp_path):
    cfg = _config(str(tmp_path / "run"))
    result = Trainer.from_config(cfg).train()
    assert set(result) >= {"top1_err", "top5_err", "checkpoint", "iter"} and result["iter"] == 4
    assert 0.0 <= result["top1_err"] <= 1.0 and result["top5_err"] <= result["top1_err"]
    work = tmp_path / "run"
    assert "CifarResNet" in (work / "config.py").read_text()
    env = json.loads((work / "env.json").read_text())
    assert env["torch"] == torch.__version__ and env["device"] == "cpu"
    records = [json.loads(line) for line in (work / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in records if r["mode"] == "train"]
    assert [r["iter"] for r in train] == [1, 2, 3, 4]
    # random 10-class labels: training error stays above 0.8, so the warm-up rate stays on
    assert all(r["lr"] == 0.01 for r in train if r["train_err"] > 0.8)
    val = [r for r in records if r["mode"] == "val"]
    assert [r["iter"] for r in val] == [2, 4] and "top1_err" in val[0]
    # best.pth chosen by the metric's primary key (top1_err, lower is better)
    best = torch.load(work / "best.pth", weights_only=True)
    assert best["meta"]["best_score"] == min(r["top1_err"] for r in val)


def test_run_inference_matches_manual_evaluation(tmp_path):
    cfg = _config(str(tmp_path / "run"))
    torch.manual_seed(0)
    from resdet.registry import MODELS

    model = MODELS.build(cfg.model.to_dict()).eval()
    loader = build_dataloader(cfg.val_dataloader.to_dict(), training=False, rank=0, world_size=1)
    metrics = build_metrics(cfg.val_evaluator.to_dict(), loader.raw_dataset)
    results = run_inference(model, loader, metrics, "cpu")
    data = EngineTinyDataset(num=16, size=8, num_classes=10, augment=False, seed=1)
    images = torch.from_numpy(data.images).permute(0, 3, 1, 2)
    with torch.no_grad():
        predicted = model(images).argmax(1)
    expected = float((predicted != torch.from_numpy(data.labels)).float().mean())
    assert abs(results["top1_err"] - expected) < 1e-9 and results["num_images"] == 16
    assert model.training is False


def _run_tiny(tmp_path, name, stdout, monkeypatch):
    import warnings

    from engine_tiny import tiny_config

    from resdet.engine.hooks import Hook

    class Noisy(Hook):  # the same warning every iteration, and one that differs each time
        def after_iter(self, trainer, log_vars):
            warnings.warn("a repeated thing", UserWarning, stacklevel=2)
            warnings.warn(f"a different thing {trainer.iter}", UserWarning, stacklevel=2)

    monkeypatch.setattr("sys.stdout", stdout)
    setup_logger(None)
    trainer = Trainer(**tiny_config(str(tmp_path / name), max_iters=4, val=True), custom_hooks=[Noisy()])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer.train()
    return stdout.getvalue(), [str(w.message) for w in caught], open(tmp_path / name / "train.log").read()


def test_progress_bar_on_a_terminal_plain_lines_otherwise(tmp_path, monkeypatch):
    class Tty(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.delenv("RESDET_NO_PROGRESS", raising=False)
    shown, _, _ = _run_tiny(tmp_path, "tty", Tty(), monkeypatch)
    assert "train" in shown and "4/4" in shown and "lr" in shown  # the bar, with loss and lr
    assert "validation" in shown  # the validation loop's own bar line
    plain, messages, log = _run_tiny(tmp_path, "plain", io.StringIO(), monkeypatch)
    assert "\x1b" not in plain and "\r" not in plain  # no terminal control codes in a file
    assert "iter 4/4 epoch" in plain and "iter 4/4 epoch" in log
    # repeated warnings: shown once, counted at the end; distinct texts each shown once
    assert messages.count("a repeated thing") == 1
    assert sorted(m for m in messages if m.startswith("a different")) == [f"a different thing {i}" for i in range(1, 5)]
    assert "UserWarning repeated 4 times: a repeated thing" in log
    # validation: a headline plus the metric's table, each line short
    assert "validation at iter 3" in log
    assert max(len(line) for line in log.splitlines()) <= 300


def test_logging_after_the_run_folder_is_deleted_does_not_raise(tmp_path, capsys):
    """The ``resdet`` logger outlives its run: a line logged after the run's folder was removed
    (a run refused before its first line, a cleaned-up temporary work dir) must not raise
    ``FileNotFoundError`` out of the log call; the run's file handler leaves the logger."""
    import logging
    import shutil

    from resdet.engine.logger import LOGGER_NAME, RunFileHandler

    work = tmp_path / "refused"
    logger = setup_logger(str(work))
    assert any(isinstance(h, RunFileHandler) for h in logger.handlers)
    shutil.rmtree(work)  # nothing was logged yet: train.log was never opened
    logger.warning("a dataset warning after the run")
    logger.warning("and another")
    assert not any(isinstance(h, RunFileHandler) for h in logging.getLogger(LOGGER_NAME).handlers)
    assert not work.exists()
    assert capsys.readouterr().out.count("after the run") == 1  # the console still has it
    # a run opened afterwards logs to its own file as before
    logger = setup_logger(str(tmp_path / "next"))
    logger.info("next run")
    for handler in logger.handlers:
        handler.flush()
    assert "next run" in (tmp_path / "next" / "train.log").read_text()
    setup_logger(None)
