"""Mask R-CNN end to end on real photos: the fruits config (COCO polygons) trains a few
iterations through the engine, then tools/eval.py reports box and mask AP in one run; the
inference API and the demo drawing get masks in the original image size."""

import importlib.util
import json
import os

import numpy as np
import torch

from resdet.engine import Trainer
from resdet.utils.config import load_config


def _tiny_fruits_cfg(repo_root, fruits_root, tmp_path):
    cfg = load_config(os.path.join(repo_root, "configs", "maskrcnn_r50_fpn_fruits.py"))
    data_root = fruits_root
    dataset = dict(ann_file=os.path.join(data_root, "annotations.json"), img_dir=os.path.join(data_root, "images"))
    cfg.merge_from_dict(
        {
            "model.backbone.depth": 18,
            "model.neck.in_channels": (64, 128, 256, 512),
            "model.neck.out_channels": 32,
            "model.rpn.head.in_channels": 32,
            "model.roi_heads.box_head.in_channels": 32,
            "model.roi_heads.box_head.fc_dim": 64,
            "model.roi_heads.mask_head.in_channels": 32,
            "model.rpn.pre_nms_top_n_train": 300,
            "model.rpn.post_nms_top_n_train": 64,
            "model.rpn.pre_nms_top_n_test": 200,
            "model.rpn.post_nms_top_n_test": 32,
            "model.roi_heads.batch_size_per_image": 32,
            "model.roi_heads.detections_per_img": 10,
            "model.roi_heads.mask_head.num_convs": 1,
            "model.roi_heads.mask_head.conv_dim": 16,
            "train_dataloader": dict(
                batch_size=2,
                num_workers=0,
                dataset=dict(
                    **dataset,
                    pipeline=[
                        dict(type="ResizeShortestEdge", short_edge_length=96, max_size=128),
                        dict(type="DetRandomFlip", prob=0.5),
                    ],
                ),
            ),
            "val_dataloader": dict(
                batch_size=9,
                num_workers=0,
                dataset=dict(**dataset, pipeline=[dict(type="ResizeShortestEdge", short_edge_length=96, max_size=128)]),
            ),
            "train_cfg": dict(max_iters=2, val_interval=2, checkpoint_interval=2, log_interval=1),
            "work_dir": str(tmp_path / "work"),
        }
    )
    return cfg


def test_fruits_trains_and_evaluates_box_and_segm(repo_root, fruits_root, tmp_path, capsys):
    torch.manual_seed(0)
    cfg = _tiny_fruits_cfg(repo_root, fruits_root, tmp_path)
    trainer = Trainer.from_config(cfg, val_dataloader=None, val_evaluator=None)  # tools/eval.py evaluates
    results = trainer.train()
    checkpoint = results["checkpoint"]
    assert os.path.isfile(checkpoint)
    config_path = str(tmp_path / "fruits_tiny.py")
    cfg.dump(config_path)
    spec = importlib.util.spec_from_file_location("eval_tool", os.path.join(repo_root, "tools", "eval.py"))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    out_json = str(tmp_path / "metrics.json")
    results_file = str(tmp_path / "dets.json")
    rc = tool.main(
        [
            config_path,
            checkpoint,
            "--metric",
            "mAP@[.5:.95]",
            "--metric",
            "segm-mAP@[.5:.95]",
            "--json",
            out_json,
            "--out",
            results_file,
            "--cfg-options",
            "model.roi_heads.score_thresh=0.0",
        ]
    )
    assert rc == 0, capsys.readouterr().err
    numbers = json.load(open(out_json))
    for key in ("bbox_AP", "segm_AP", "bbox_AP50", "segm_AP50"):
        assert 0.0 <= numbers[key] <= 1.0, key
    assert numbers["num_images"] == 5  # the fixture's 5 photos (image ids 0, 1, 2, 12, 15)
    detections = json.load(open(results_file))
    assert len(detections) > 0 and all("segmentation" in d and "size" in d["segmentation"] for d in detections)
    # 10 detections per photo (score_thresh 0), under the file's image ids, not dataset indices
    assert len(detections) == 50 and {d["image_id"] for d in detections} == {0, 1, 2, 12, 15}
    # masks pasted in the original image size (800 x 600 photos), not the 128-pixel inputs
    assert {tuple(d["segmentation"]["size"]) for d in detections} <= {(600, 800), (800, 600)}
    # the inference API and the demo drawing: masks in the original image size, drawn translucent
    from resdet.apis.detect import draw_and_save, inference_detector
    from resdet.apis.model import init_model
    from resdet.data.image_io import imread_rgb

    model = init_model(config_path, checkpoint, device="cpu")
    model.roi_heads.score_thresh = 0.0
    photo = os.path.join(fruits_root, "images", "0.jpg")
    result = inference_detector(model, photo)
    assert result["masks"].dtype == torch.bool and result["masks"].shape == (len(result["boxes"]), 600, 800)
    assert result["masks"].any()
    written = draw_and_save(model, [photo], str(tmp_path / "demo"), score_thr=0.0)
    drawn = imread_rgb(written[0])
    assert drawn.shape == (600, 800, 3) and np.abs(drawn.astype(int) - imread_rgb(photo).astype(int)).mean() > 1
