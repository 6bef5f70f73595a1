"""Bad configs, command lines and results files, run through the real entry points: each ends
in one line on stderr naming the key, file or value, and exit code 2 — no traceback."""

import json
import os
import subprocess
import sys

import pytest
import torch

from resdet.cli import eval as eval_cli
from resdet.cli import print_config, train_cls, train_det
from resdet.cli._errors import command
from resdet.utils.config import parse_option_value
from resdet.utils.errors import ConfigError

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _tiny_cls_options(root):
    return [
        f"train_dataloader.dataset.data_root={root}",
        f"val_dataloader.dataset.data_root={root}",
        "train_dataloader.dataset.num_images=4",
        "val_dataloader.dataset.num_images=2",
        "train_dataloader.num_workers=0",
        "val_dataloader.num_workers=0",
        "train_cfg.max_iters=1",
    ]


def _one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


# (option, text that the one error line must contain)
TRAIN_CASES = [
    ("train_cfg.max_iters=abc", "train_cfg.max_iters = 'abc' (str) is not valid: expected an integer >= 1"),
    ("train_dataloader.batch_size=0", "train_dataloader.batch_size = 0 (int) is not valid"),
    ("train_dataloader.batchsize=2", "unknown train_dataloader keys ['batchsize'] (did you mean 'batch_size'?)"),
    ("train_cfg.max_iter=3", "unknown train_cfg keys ['max_iter'] (did you mean 'max_iters'?)"),
    ("train_cfg.amp=fp8", "train_cfg.amp = 'fp8' (str) is not valid: expected one of None, 'bf16', 'fp16'"),
    ("train_cfg.clip_grad=-1", "train_cfg.clip_grad = -1"),
    ("train_cfg.seed=1.5", "train_cfg.seed = 1.5 (float) is not valid"),
    ("optimizer.lr=-1", "optimizer.lr = -1 (int) is not valid: expected a finite number > 0"),
    ("optimizer.type=SGDD", "optimizer.type 'SGDD' is not a torch.optim optimizer (did you mean 'SGD'?)"),
    ("model.backbone.deph=3", "ResNet (the 'model' registry) has no argument 'deph' (did you mean 'depth'?)"),
    (
        "model.backbone.type=ResNett",
        "'ResNett' is not registered in the resdet 'model' registry; did you mean 'ResNet'",
    ),
    ("train_dataloader.dataset.type=ShapesClsDatset", "'ShapesClsDatset' is not registered in the resdet 'dataset'"),
    ("train_dataloader=[1", "train_dataloader must be a dict, got str '[1'"),
    ("model.num_classes=3", "model.num_classes = 3 but the training set (ShapesClsDataset) has 5 classes"),
    ("train_cfg.max_iters.deep=1", "--cfg-options train_cfg.max_iters.deep=1 does not fit the config"),
    ("noequals", "--cfg-options takes KEY=VALUE pairs; got 'noequals'"),
]


@pytest.mark.parametrize("option,expected", TRAIN_CASES, ids=[c[0] for c in TRAIN_CASES])
def test_bad_training_option_is_one_line_and_exit_2(option, expected, tmp_path, capsys):
    work = tmp_path / "work"
    rc = train_cls.main(
        ["shapes_cls", "--work-dir", str(work), "--cfg-options", *_tiny_cls_options(str(tmp_path / "data")), option]
    )
    line = _one_error_line(capsys.readouterr().err)
    assert rc == 2
    assert line.startswith("resdet train-cls: error: ") and expected in line, line
    assert not (work / "final.pth").exists()


def test_scheduler_list_of_dicts_parses_instead_of_recursing():
    value = parse_option_value("param_scheduler", "[dict(type='StepLR', milestones=[1, 2]), dict(type='CosineLR')]")
    assert value == [{"type": "StepLR", "milestones": [1, 2]}, {"type": "CosineLR"}]
    assert parse_option_value("x", "dict(a=(1, 2), b=None)") == {"a": (1, 2), "b": None}
    assert parse_option_value("x", "0.01") == 0.01 and parse_option_value("x", "None") is None
    assert parse_option_value("x", "bf16") == "bf16" and parse_option_value("x", "a,b") == ["a", "b"]
    assert parse_option_value("x", "work_dirs/run1") == "work_dirs/run1"
    assert parse_option_value("x", "[1,2]") == [1, 2]
    # calls other than dict(...) are never run: the text stays text
    assert all(isinstance(v, str) for v in parse_option_value("x", "[__import__('os').getcwd()]"))


def test_syntax_error_in_a_config_file_names_file_and_line(tmp_path, capsys):
    bad = tmp_path / "bad.py"
    bad.write_text("model = dict(type='ResNet',\n       depth=50\nx = 1\n")
    rc = print_config.main([str(bad)])
    line = _one_error_line(capsys.readouterr().err)
    assert rc == 2 and f"config {bad}, line" in line


def test_unknown_config_name_lists_the_closest(capsys):
    rc = train_det.main(["shapes_frnn"])
    line = _one_error_line(capsys.readouterr().err)
    assert rc == 2 and "config 'shapes_frnn' not found" in line and "shapes_frcnn" in line


def test_config_without_model_key(tmp_path, capsys):
    path = tmp_path / "nomodel.py"
    path.write_text("x = 1\n")
    rc = eval_cli.main([str(path), str(tmp_path / "c.pth"), "--metric", "top1"])
    assert rc == 2 and "has no 'model' key" in _one_error_line(capsys.readouterr().err)


@pytest.fixture(scope="module")
def classifier_checkpoint(tmp_path_factory):
    from resdet.registry import MODELS
    from resdet.utils.config import load_config
    from resdet.utils.io import atomic_save

    path = tmp_path_factory.mktemp("cls") / "cls.pth"
    torch.manual_seed(0)
    model = MODELS.build(load_config("shapes_cls").model.to_dict())
    atomic_save({"model": model.state_dict(), "meta": {}}, str(path))
    return str(path)


def test_box_metric_on_a_classifier_is_a_clear_error(classifier_checkpoint, tmp_path, capsys):
    rc = eval_cli.main(
        [
            "shapes_cls",
            classifier_checkpoint,
            "--metric",
            "mAP@0.5",
            "--cfg-options",
            f"val_dataloader.dataset.data_root={tmp_path}",
            "val_dataloader.dataset.num_images=2",
            "val_dataloader.num_workers=0",
        ]
    )
    line = _one_error_line(capsys.readouterr().err)
    assert rc == 2 and "ShapesClsDataset is a classification dataset" in line and "top1" in line


def test_unknown_metric_string(classifier_checkpoint, capsys):
    rc = eval_cli.main(["shapes_cls", classifier_checkpoint, "--metric", "top3"])
    line = _one_error_line(capsys.readouterr().err)
    assert rc == 2 and "unknown metric 'top3'" in line and "top1" in line


@pytest.fixture()
def coco_gt(tmp_path):
    gt = {
        "images": [{"id": 1, "width": 20, "height": 10, "file_name": "a.jpg"}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 3, "bbox": [1, 1, 5, 5], "area": 25, "iscrowd": 0}],
        "categories": [{"id": 3, "name": "cat"}],
    }
    path = tmp_path / "gt.json"
    path.write_text(json.dumps(gt))
    return str(path)


RESULTS_CASES = [
    ("syntax", '[{"image_id": 1,\n "category_id": 3 "bbox": [1, 1, 5, 5], "score": 0.9}]', "line 2"),
    ("not a list", '{"image_id": 1}', "results"),
    ("unknown image", '[{"image_id": 7, "category_id": 3, "bbox": [1, 1, 5, 5], "score": 0.9}]', "7"),
    ("unknown category", '[{"image_id": 1, "category_id": 99, "bbox": [1, 1, 5, 5], "score": 0.9}]', "99"),
    ("nan box", '[{"image_id": 1, "category_id": 3, "bbox": [1, NaN, 5, 5], "score": 0.9}]', "bbox"),
    ("no score", '[{"image_id": 1, "category_id": 3, "bbox": [1, 1, 5, 5]}]', "score"),
]


@pytest.mark.parametrize("case,text,named", RESULTS_CASES, ids=[c[0] for c in RESULTS_CASES])
def test_bad_results_file_is_named(case, text, named, coco_gt, tmp_path, capsys):
    results = tmp_path / "results.json"
    results.write_text(text)
    rc = eval_cli.main(["--ann", coco_gt, "--results", str(results), "--metric", "mAP@[.5:.95]"])
    line = _one_error_line(capsys.readouterr().err)
    assert rc == 2 and str(results) in line and named in line, line


def test_missing_results_file(coco_gt, tmp_path, capsys):
    missing = tmp_path / "nope.json"
    rc = eval_cli.main(["--ann", coco_gt, "--results", str(missing), "--metric", "mAP@[.5:.95]"])
    line = _one_error_line(capsys.readouterr().err)
    assert rc == 2 and str(missing) in line


def test_debug_shows_the_traceback_and_bugs_keep_theirs(monkeypatch):
    @command("probe")
    def failing(argv):
        raise ConfigError("bad key x")

    assert failing([]) == 2
    with pytest.raises(ConfigError):
        failing(["--debug"])
    monkeypatch.setenv("RESDET_DEBUG", "1")
    with pytest.raises(ConfigError):
        failing([])
    monkeypatch.delenv("RESDET_DEBUG")

    @command("probe")
    def buggy(argv):
        raise ZeroDivisionError("a bug")

    with pytest.raises(ZeroDivisionError):  # not one of resdet's own errors: the traceback stays
        buggy([])


def test_installed_command_prints_one_line_from_another_folder(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "resdet", "train-cls", "shapes_cls", "--cfg-options", "train_cfg.max_iters=abc"],
        cwd=str(tmp_path),
        capture_output=True,
        text=True,
        env=dict(os.environ, PYTHONPATH=REPO),
        timeout=300,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "resdet train-cls: error: train_cfg.max_iters = 'abc' (str) is not valid: expected an integer >= 1 or None"
    )
    assert os.listdir(tmp_path) == []  # failed before creating the work dir or generating data


def test_bad_compile_setting_of_a_shipped_config_is_one_line(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "resdet", "train-cls", "shapes_cls", "--cfg-options", "train_cfg.compile=yes"],
        cwd=str(tmp_path),
        capture_output=True,
        text=True,
        env=dict(os.environ, PYTHONPATH=REPO),
        timeout=300,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "resdet train-cls: error: train_cfg.compile = 'yes' (str) is not valid: "
        "expected True, False, or a list of submodule names (e.g. ['backbone', 'neck'])"
    )
    assert os.listdir(tmp_path) == []
