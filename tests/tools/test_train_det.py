import importlib.util
import json
import os

import pytest


def _load_tool(repo_root, rel):
    spec = importlib.util.spec_from_file_location(rel.replace("/", "_")[:-3], os.path.join(repo_root, rel))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_train_det_end_to_end_tiny_shapes(repo_root, tmp_path, capsys):
    tool = _load_tool(repo_root, "tools/train_det.py")
    root = str(tmp_path / "shapes")
    work = str(tmp_path / "work")
    rc = tool.main(
        [
            "configs/shapes_frcnn.py",
            "--work-dir",
            work,
            "--cfg-options",
            "pretrain=None",
            "model.init_cfg=None",
            f"train_dataloader.dataset.data_root={root}",
            f"val_dataloader.dataset.data_root={root}",
            "train_dataloader.dataset.num_images=6",
            "val_dataloader.dataset.num_images=3",
            "train_dataloader.dataset.image_size=96",
            "val_dataloader.dataset.image_size=96",
            "train_dataloader.num_workers=0",
            "val_dataloader.num_workers=0",
            "train_cfg.max_iters=3",
            "train_cfg.val_interval=3",
            "train_cfg.log_interval=1",
            "param_scheduler.0.warmup_iters=1",
            "demo.num_images=2",
        ]
    )
    assert rc == 0
    out = capsys.readouterr().out
    assert "final validation: mAP@[.5:.95]" in out and "mAP@0.5" in out
    assert os.path.isfile(os.path.join(work, "final.pth"))
    records = [json.loads(line) for line in open(os.path.join(work, "metrics.jsonl")) if line.strip()]
    val = [r for r in records if r.get("mode") == "val"]
    assert val and 0.0 <= val[-1]["bbox_AP"] <= 1.0 and "bbox_AP50" in val[-1]
    assert len(os.listdir(os.path.join(work, "demo"))) == 2
    # compare_runs reads the same records
    from resdet.cli import compare_runs as compare

    header, rows = compare.build_table([work, work])
    assert header[:4] == ["run", "iter", "mAP@0.5", "mAP@[.5:.95]"] and rows[0][1] == "3"
    with pytest.raises(FileNotFoundError, match="metrics.jsonl"):
        compare.last_val_record(str(tmp_path))


def test_missing_init_checkpoint_fails_before_training(repo_root, tmp_path, capsys):
    tool = _load_tool(repo_root, "tools/train_det.py")
    work = str(tmp_path / "work")
    missing = str(tmp_path / "nowhere" / "r50.pth")
    rc = tool.main(
        [
            "configs/frcnn_r50_c4_bccd_imagenet.py",
            "--work-dir",
            work,
            "--cfg-options",
            f"model.init_cfg.checkpoint={missing}",
        ]
    )
    err = capsys.readouterr().err
    assert rc == 2 and f"model.init_cfg.checkpoint: checkpoint {missing} does not exist" in err
    assert "model.init_cfg=None" in err and not os.path.exists(os.path.join(work, "final.pth"))
