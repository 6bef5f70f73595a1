"""A real fruits run through ``resdet train-det`` (the shipped Mask R-CNN config, tiny sizes):
every train.log line stays readable (<= 300 characters), validation prints as aligned tables
(the COCO 12-stat block and per-category AP), and every number goes to metrics.jsonl."""

import json
import os

from resdet.cli import train_det


def test_fruits_run_writes_short_lines_and_validation_tables(fruits_root, tmp_path, capsys):
    ann, img_dir = os.path.join(fruits_root, "annotations.json"), os.path.join(fruits_root, "images")
    work = tmp_path / "work"
    options = [
        f"{split}.dataset.{key}={value}"
        for split in ("train_dataloader", "val_dataloader")
        for key, value in (("ann_file", ann), ("img_dir", img_dir))
    ]
    options += [
        "train_dataloader.num_workers=0",
        "val_dataloader.num_workers=0",
        "val_dataloader.batch_size=5",
        "train_dataloader.dataset.pipeline.0.short_edge_length=96",
        "train_dataloader.dataset.pipeline.0.max_size=128",
        "val_dataloader.dataset.pipeline.0.short_edge_length=96",
        "val_dataloader.dataset.pipeline.0.max_size=128",
        "model.backbone.depth=18",
        "model.neck.out_channels=32",
        "model.roi_heads.box_head.fc_dim=64",
        "model.roi_heads.mask_head.conv_dim=16",
        "model.roi_heads.mask_head.num_convs=1",
        "model.rpn.post_nms_top_n_train=64",
        "model.roi_heads.batch_size_per_image=32",
        "train_cfg.max_iters=2",
        "train_cfg.val_interval=2",
        "train_cfg.log_interval=1",
    ]
    assert (
        train_det.main(["configs/maskrcnn_r50_fpn_fruits.py", "--work-dir", str(work), "--cfg-options", *options]) == 0
    )
    log = (work / "train.log").read_text().splitlines()
    assert max(len(line) for line in log) <= 300, max(log, key=len)
    text = "\n".join(log)
    assert "validation at iter 2 (bbox_AP" in text
    assert "Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ]" in text
    assert "per-category bbox AP@[.5:.95]" in text and "per-category segm AP@[.5:.95]" in text
    for name in ("date", "fig", "hazelnut"):
        assert name in text
    records = [json.loads(line) for line in open(work / "metrics.jsonl")]
    val = [r for r in records if r["mode"] == "val"][-1]
    assert {"bbox_AP", "segm_AP", "bbox_AP/date", "segm_AP/hazelnut"} <= set(val)
