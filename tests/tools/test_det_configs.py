"""Every detection config builds and trains 2 iterations on tiny real inputs (64 px images,
ResNet-18 in place of deeper ResNets, few RoIs) with its own pipeline, sampler and model layout."""

import os

import pytest
import torch

from resdet.engine import Trainer
from resdet.utils.config import load_config

CONFIGS = [
    "frcnn_r101_coco",
    "frcnn_vgg16_coco",
    "frcnn_r101_voc0712",
    "frcnn_vgg16_voc0712",
    "frcnn_r50_fpn_coco",
    "frcnn_r50_c4_bccd",
    "frcnn_r50_c4_bccd_imagenet",
    "shapes_frcnn",
    "maskrcnn_r101_c4_coco",
    "maskrcnn_r50_fpn_coco",
]
BCCD = ("RBC", "WBC", "Platelets")


def _shrink_model(model):
    model["init_cfg"] = None
    backbone = model["backbone"]
    if backbone["type"] == "ResNet":
        backbone["depth"] = 18
        if model.get("neck"):
            model["neck"]["in_channels"] = (64, 128, 256, 512)
        else:
            model["rpn"]["head"]["in_channels"] = 256
            box_head = model["roi_heads"]["box_head"]
            if box_head["type"] == "Res5BoxHead":
                box_head.update(depth=18, in_channels=256)
                if model["roi_heads"].get("mask_head"):  # the C4 mask head reads res5's output
                    model["roi_heads"]["mask_head"]["in_channels"] = 512
    model["roi_heads"]["batch_size_per_image"] = 16
    model["rpn"].update(pre_nms_top_n_train=200, post_nms_top_n_train=50)


def _tiny_pipeline(pipeline):
    out = []
    for t in pipeline:
        t = dict(t)
        if t["type"] == "ResizeShortestEdge":
            sizes = t["short_edge_length"]
            t.update(short_edge_length=64 if isinstance(sizes, int) else (56, 64), max_size=96)
        out.append(t)
    return out


def _tiny_dataset(ds, fixtures):
    if ds["type"] == "ConcatDataset":
        ds["datasets"] = [_tiny_dataset(d, fixtures) for d in ds["datasets"]]
        return ds
    ds["pipeline"] = _tiny_pipeline(ds["pipeline"])
    if ds["type"] == "CocoDataset":
        ds.update(
            ann_file=os.path.join(fixtures["fruits"], "annotations.json"),
            img_dir=os.path.join(fixtures["fruits"], "images"),
        )
    elif ds["type"] == "VOCDataset":  # its val split holds a zero-area box: a warning
        ds.update(root=fixtures["bccd"], split="val", classes=BCCD)
    return ds


@pytest.mark.parametrize("name", CONFIGS)
def test_config_builds_and_trains_two_iterations(name, bccd_root, fruits_root, tmp_path):
    cfg = load_config(name)
    assert cfg.train_cfg.max_iters > 2 and cfg.train_dataloader.batch_size >= 1
    cfg = cfg.to_dict()
    _shrink_model(cfg["model"])
    loader = cfg["train_dataloader"]
    loader.update(batch_size=2, num_workers=0)
    if loader["dataset"]["type"] == "ShapesCocoDataset":
        loader["dataset"].update(data_root=str(tmp_path / "shapes"), num_images=4, image_size=64)
        loader["dataset"]["pipeline"] = _tiny_pipeline(loader["dataset"]["pipeline"])
    else:
        _tiny_dataset(loader["dataset"], dict(bccd=bccd_root, fruits=fruits_root))
        cfg["model"]["num_classes"] = len(BCCD)  # both stand-ins (fruits, BCCD cells) have 3 classes
    cfg.update(val_dataloader=None, val_evaluator=None, load_from=None)
    cfg["train_cfg"].update(max_iters=2, log_interval=1, checkpoint_interval=2, amp=None)
    cfg["param_scheduler"] = None
    torch.manual_seed(0)
    with pytest.warns(UserWarning) if "bccd" in name or "voc" in name else _nothing():
        trainer = Trainer.from_config(cfg, work_dir=str(tmp_path / "work"))
    results = trainer.train()
    assert results["iter"] == 2
    assert os.path.isfile(results["checkpoint"])


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_paper_settings_are_in_the_configs():
    r101 = load_config("frcnn_r101_coco")
    assert r101.model.backbone.depth == 101 and r101.model.backbone.num_stages == 3
    assert r101.train_dataloader.dataset.pipeline[0]["short_edge_length"] == 600
    assert r101.optimizer.lr == 0.001 and r101.train_cfg.max_iters == 320000
    assert r101.param_scheduler["milestones"] == [240000] and r101.train_dataloader.batch_size == 8
    fpn = load_config("frcnn_r50_fpn_coco")
    assert fpn.train_cfg.max_iters == 90000 and fpn.train_dataloader.batch_size == 16
    assert fpn.optimizer.lr == 0.02 and fpn.param_scheduler[1]["milestones"] == [60000, 80000]
    assert min(fpn.train_dataloader.dataset.pipeline[0]["short_edge_length"]) == 640
    voc = load_config("frcnn_vgg16_voc0712")
    assert [d["split"] for d in voc.train_dataloader.dataset.datasets] == ["trainval", "trainval"]
    assert voc.val_dataloader.dataset.split == "test" and voc.val_evaluator.ap_method == "11point"


def test_bccd_configs_scratch_and_imagenet_variants():
    scratch = load_config("frcnn_r50_c4_bccd")
    assert scratch.model.init_cfg is None and scratch.model.backbone.norm == "BN"
    assert scratch.model.backbone.frozen_stages == -1 and scratch.model.roi_heads.box_head.norm == "BN"
    assert scratch.train_dataloader.dataset.split == "train" and scratch.val_dataloader.dataset.split == "val"
    imagenet = load_config("frcnn_r50_c4_bccd_imagenet")
    assert imagenet.model.init_cfg == dict(checkpoint="work_dirs/resnet50_imagenet/final.pth", src="resdet_cls")
    assert imagenet.model.backbone.norm == "FrozenBN" and imagenet.model.backbone.frozen_stages == 1
    assert imagenet.model.roi_heads.box_head.norm == "FrozenBN" and imagenet.optimizer.lr < scratch.optimizer.lr
