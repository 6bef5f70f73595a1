"""Traps a new user walked into, each closed: the command either does what was meant or stops
with one line on stderr and exit code 2 saying what to pass instead.

  * ``resdet eval CONFIG`` with the checkpoint forgotten (it used to evaluate an untrained
    model, print AP 0.000 and exit 0);
  * a work dir given where a checkpoint file goes (it used to be called "does not exist");
  * a short pretraining run whose checkpoint every later ``train-det`` reused without a word;
  * ``print-config --cfg-options`` with a key no component takes (it used to be accepted);
  * ``--help`` examples that said ``python tools/X.py``, which a wheel user does not have.
"""

import importlib
import os
import subprocess
import sys

import pytest
import torch

from resdet.apis.pretrain import check_pretrained, config_values, stale_path
from resdet.cli import SUBCOMMANDS, print_config, train_det
from resdet.cli import eval as eval_cli
from resdet.registry import MODELS
from resdet.utils.config import load_config
from resdet.utils.io import atomic_save, safe_load


def _one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def _cls_data(root):
    return [
        f"train_dataloader.dataset.data_root={root}",
        f"val_dataloader.dataset.data_root={root}",
        "train_dataloader.dataset.num_images=4",
        "val_dataloader.dataset.num_images=2",
        "train_dataloader.num_workers=0",
        "val_dataloader.num_workers=0",
        "train_dataloader.batch_size=2",
    ]


# ---------------------------------------------------------------- eval without a checkpoint
def test_eval_without_checkpoint_is_one_line_and_exit_2(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no work_dirs/ here
    rc = eval_cli.main(["shapes_cls", "--cfg-options", *_cls_data(str(tmp_path / "d"))])
    line = _one_error_line(capsys.readouterr().err)
    assert rc == 2
    assert line.startswith("resdet eval: error: no checkpoint given") and "--random-weights" in line
    assert "resdet eval shapes_cls work_dirs/shapes_cls/final.pth (training writes it into its work dir)" in line
    assert not (tmp_path / "d").exists()  # stopped before building anything


def test_eval_without_checkpoint_names_the_trained_one_when_it_exists(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "work_dirs" / "shapes_frcnn").mkdir(parents=True)
    (tmp_path / "work_dirs" / "shapes_frcnn" / "final.pth").write_bytes(b"x")
    assert eval_cli.main(["shapes_frcnn"]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert "resdet eval shapes_frcnn work_dirs/shapes_frcnn/final.pth (it is there)" in line


def test_random_weights_evaluates_on_purpose_and_excludes_a_checkpoint(tmp_path, capsys):
    rc = eval_cli.main(
        ["shapes_cls", "--random-weights", "--metric", "top1", "--cfg-options", *_cls_data(str(tmp_path / "d"))]
    )
    assert rc == 0
    assert "top-1 error" in capsys.readouterr().out
    with pytest.raises(SystemExit) as stop:
        eval_cli.main(["shapes_cls", "x.pth", "--random-weights"])
    assert stop.value.code == 2
    assert "either CHECKPOINT or --random-weights" in capsys.readouterr().err


# ---------------------------------------------------------------- a folder given as the checkpoint
@pytest.fixture()
def work_dir(tmp_path):
    folder = tmp_path / "work_dirs" / "run"
    folder.mkdir(parents=True)
    for name in ("final.pth", "best_accuracy_top1_iter_20.pth", "iter_10.pth", "iter_20.pth", "config.py"):
        (folder / name).write_bytes(b"x")
    return folder


def test_folder_as_checkpoint_names_the_files_inside(work_dir, capsys):
    rc = eval_cli.main(["shapes_cls", str(work_dir)])
    line = _one_error_line(capsys.readouterr().err)
    assert rc == 2
    assert f"checkpoint {work_dir} is a folder, not a checkpoint file" in line
    assert "does not exist" not in line
    ordered = [
        line.index(os.path.join(str(work_dir), name))
        for name in ("final.pth", "best_accuracy_top1_iter_20.pth", "iter_20.pth")
    ]
    assert ordered == sorted(ordered)  # most likely first: final, best, the latest iteration
    assert "iter_10.pth" not in line and "config.py" not in line


def test_folder_without_checkpoints_says_so(tmp_path):
    from resdet.utils.errors import CheckpointError

    with pytest.raises(CheckpointError, match="is a folder, not a checkpoint file, and holds no checkpoint"):
        safe_load(str(tmp_path))


# ---------------------------------------------------------------- a stale pretraining checkpoint
def _stage_options(root):
    return [
        "train_cfg.max_iters=1",
        "train_cfg.val_interval=100",
        "train_cfg.log_interval=1",
        "train_cfg.amp=None",
        "param_scheduler.0.warmup_iters=1",
        *_cls_data(root),
    ]


def _detector_argv(tmp_path, ckpt, *extra):
    det = str(tmp_path / "det")
    return [
        "shapes_frcnn",
        "--work-dir",
        str(tmp_path / "work"),
        "--cfg-options",
        f"pretrain.checkpoint={ckpt}",
        f"model.init_cfg.checkpoint={ckpt}",
        "train_cfg.max_iters=1",
        "train_cfg.val_interval=100",
        "param_scheduler.0.warmup_iters=1",
        "demo=None",
        "train_cfg.amp=None",
        f"train_dataloader.dataset.data_root={det}",
        f"val_dataloader.dataset.data_root={det}",
        "train_dataloader.dataset.num_images=2",
        "val_dataloader.dataset.num_images=1",
        "train_dataloader.dataset.image_size=64",
        "val_dataloader.dataset.image_size=64",
        "train_dataloader.num_workers=0",
        "val_dataloader.num_workers=0",
        "train_dataloader.batch_size=2",
        "--pretrain-cfg-options",
        *_stage_options(str(tmp_path / "cls")),
        *extra,
    ]


def _classifier_checkpoint(path, config_text):
    torch.manual_seed(0)
    model = MODELS.build(load_config("shapes_cls").model.to_dict())
    atomic_save({"model": model.state_dict(), "meta": {"config": config_text}}, str(path))


def _stage_text(root, **changes):
    options = dict(o.split("=", 1) for o in _stage_options(root))
    options.update(changes)
    from resdet.utils.config import parse_option_value

    return load_config("shapes_cls", {k: parse_option_value(k, v) for k, v in options.items()}).pretty_text


def test_stale_pretraining_checkpoint_is_trained_again(tmp_path, capsys):
    ckpt = tmp_path / "stage" / "final.pth"
    ckpt.parent.mkdir()
    _classifier_checkpoint(ckpt, _stage_text(str(tmp_path / "cls"), **{"train_cfg.max_iters": "7"}))
    assert train_det.main(_detector_argv(tmp_path, ckpt)) == 0
    out = capsys.readouterr().out
    assert f"{ckpt} was trained with another config" in out and "train_cfg.max_iters: 7 -> 1" in out
    assert "--reuse-pretrained" in out and "pretraining stage done" in out
    assert os.path.isfile(stale_path(str(ckpt)))  # the old file is kept, not deleted
    recorded = config_values(safe_load(str(ckpt))["meta"]["config"])
    assert recorded["train_cfg"]["max_iters"] == 1  # the new checkpoint records its own config
    # ... which the next run finds equal to the stage's config, so it is reused
    from resdet.utils.config import parse_option_value

    stage = {k: parse_option_value(k, v) for k, v in (o.split("=", 1) for o in _stage_options(str(tmp_path / "cls")))}
    cfg = load_config("shapes_frcnn", {"pretrain.checkpoint": str(ckpt)})
    cfg.pretrain.cfg_options = stage
    assert "trained with the same config" in check_pretrained(cfg)


def test_matching_pretraining_checkpoint_is_reused_with_a_log_line(tmp_path, capsys):
    ckpt = tmp_path / "stage" / "final.pth"
    ckpt.parent.mkdir()
    # only keys that cannot change the weights differ (logging interval, loader workers)
    _classifier_checkpoint(
        ckpt,
        _stage_text(str(tmp_path / "cls"), **{"train_cfg.log_interval": "50", "train_dataloader.num_workers": "2"}),
    )
    before = os.path.getmtime(ckpt)
    assert train_det.main(_detector_argv(tmp_path, ckpt)) == 0
    out = capsys.readouterr().out
    assert f"pretraining stage: reusing {ckpt}, trained with the same config" in out
    assert "pretraining stage done" not in out and os.path.getmtime(ckpt) == before
    assert not os.path.exists(stale_path(str(ckpt)))


def test_reuse_pretrained_keeps_a_different_checkpoint(tmp_path, capsys):
    ckpt = tmp_path / "final.pth"
    _classifier_checkpoint(ckpt, _stage_text(str(tmp_path / "cls"), **{"optimizer.lr": "0.5"}))
    cfg = load_config("shapes_frcnn", {"pretrain.checkpoint": str(ckpt)})
    line = check_pretrained(cfg, reuse=True)
    assert "reusing" in line and "as asked (--reuse-pretrained)" in line and "optimizer.lr: 0.5 -> 0.001" in line
    assert os.path.isfile(ckpt)
    # a checkpoint that records no config (e.g. converted weights) is reused, and says so
    atomic_save({"model": {}, "meta": {}}, str(ckpt))
    assert "records no config" in check_pretrained(cfg)


def test_recorded_config_is_read_without_running_code():
    assert config_values("a = dict(b=[1, (2, 3)], c=None)\nd = 'x'") == {"a": {"b": [1, (2, 3)], "c": None}, "d": "x"}
    assert config_values("import os\na = 1") is None
    assert config_values("a = __import__('os').system('false')") is None


# ---------------------------------------------------------------- print-config checks keys
PRINT_CASES = [
    ("model.roi_head.x=1", "FasterRCNN (the 'model' registry) has no argument 'roi_head' (did you mean 'roi_heads'?)"),
    (
        "model.roi_heads.box_head.fcdim=3",
        "FCBoxHead (the 'model' registry) has no argument 'fcdim' (did you mean 'fc_dim'?)",
    ),
    ("train_cfg.max_iter=3", "unknown train_cfg keys ['max_iter'] (did you mean 'max_iters'?)"),
    ("train_dataloader.batchsize=2", "unknown train_dataloader keys ['batchsize'] (did you mean 'batch_size'?)"),
    ("train_dataloader.dataset.num_image=3", "ShapesCocoDataset (the 'dataset' registry) has no argument 'num_image'"),
    ("optimizer.lr=-1", "optimizer.lr = -1 (int) is not valid"),
    ("model.backbone.depth=19", "unsupported ResNet depth 19"),
]


@pytest.mark.parametrize("option,expected", PRINT_CASES, ids=[c[0] for c in PRINT_CASES])
def test_print_config_checks_keys_like_training(option, expected, capsys):
    rc = print_config.main(["shapes_frcnn", "--cfg-options", option])
    captured = capsys.readouterr()
    line = _one_error_line(captured.err)
    assert rc == 2 and captured.out == ""
    assert line.startswith("resdet print-config: error: ") and expected in line, line


def test_print_config_no_check_prints_anyway(capsys):
    assert print_config.main(["shapes_frcnn", "--no-check", "--cfg-options", "model.roi_head.x=1"]) == 0
    assert "roi_head=dict(x=1)" in capsys.readouterr().out.replace(" ", "")


@pytest.mark.parametrize(
    "name",
    [
        "shapes_frcnn",
        "frcnn_r50_fpn_coco",
        "maskrcnn_r50_fpn_fruits",
        "frcnn_vgg16_voc0712",
        "loc_shapes",
        "resnet20_cifar10",
        "resnet34a_imagenet",
    ],
)
def test_shipped_configs_pass_the_check(name):
    print_config.check_config(load_config(name))  # detectors, masks, concatenated sets, classifiers


# ---------------------------------------------------------------- --help speaks of `resdet X`
@pytest.mark.parametrize("name", sorted(SUBCOMMANDS))
def test_help_examples_use_the_resdet_command(name, capsys, monkeypatch):
    monkeypatch.setattr(sys, "argv", [f"resdet {name}"])
    module = importlib.import_module(f"resdet.cli.{SUBCOMMANDS[name][0]}")
    try:
        rc = module.main(["--help"])
    except SystemExit as stop:  # argparse's --help
        rc = stop.code
    text = capsys.readouterr().out
    assert rc == 0 and text
    assert "tools/" not in text, text
    examples = [line for line in text.splitlines() if line.startswith("    ") and "python" in line]
    assert not examples, examples


def test_top_level_help_says_the_tools_are_the_same_programs():
    result = subprocess.run([sys.executable, "-m", "resdet", "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "python tools/X.py runs the same programs" in result.stdout
