"""``resdet complexity`` of whole detectors and localizers: per-part counts that add up to the
totals, the RoI heads at exactly the configured number of proposals, and the backbone against
the paper's ResNet-50 figure."""

import glob
import json
import os

import pytest

from resdet.cli import main as cli_main
from resdet.utils.config import CONFIG_DIR, load_config

DETECTOR_CONFIGS = sorted(
    os.path.basename(p)[:-3]
    for p in glob.glob(os.path.join(CONFIG_DIR, "*.py"))
    if load_config(p).model.type in ("FasterRCNN", "MaskRCNN", "Localizer")
)
CLASSIFIER_CONFIGS = ["resnet50_imagenet", "resnet56_cifar10", "shapes_cls"]  # the per-model path


def run(capsys, *argv) -> dict:
    assert cli_main(["complexity", *argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_every_detector_config_is_found():
    assert {"frcnn_r50_fpn_tv", "maskrcnn_r101_c4_coco", "frcnn_vgg16_coco", "loc_r101_imagenet"} <= set(
        DETECTOR_CONFIGS
    )


@pytest.mark.parametrize("name", DETECTOR_CONFIGS)
def test_whole_detector_parts_add_up(name, capsys):
    result = run(capsys, name, "--size", "64", "96")
    parts = {p["part"]: p for p in result["parts"]}
    assert {"backbone", "rpn"} <= set(parts) and result["unit"] == "multiply-adds"
    assert sum(p["flops"] for p in result["parts"]) == result["flops"] > 0
    assert sum(p["params"] for p in result["parts"]) == result["params"]
    assert "other" not in parts  # every parameter belongs to a named part
    assert all(p["flops"] > 0 for p in result["parts"])


@pytest.mark.parametrize("name", CLASSIFIER_CONFIGS)
def test_classifier_configs_still_counted_whole(name, capsys):
    result = run(capsys, name)
    assert result["flops"] > 0 and result["params"] > 0 and "parts" not in result


def test_backbone_matches_the_paper_resnet50(capsys):
    """The paper's ResNet-50 is 3.8 x 10^9 multiply-adds at 224 x 224 (4.1 in the v1.5 layout of
    torchvision's weights, configs/*_tv.py); an FPN backbone has no pooling / fc (2048 x 1000)."""
    msra = {p["part"]: p for p in run(capsys, "frcnn_r50_fpn_coco", "--size", "224", "224")["parts"]}
    assert msra["backbone"]["flops"] == 3_857_973_248 - 2048 * 1000
    v15 = {p["part"]: p for p in run(capsys, "frcnn_r50_fpn_tv", "--size", "224", "224")["parts"]}
    assert 4.05e9 < v15["backbone"]["flops"] + 2048 * 1000 < 4.15e9


def test_roi_heads_at_the_configured_proposals(capsys):
    """FPN box head: fc6 (256*7*7 -> 1024), fc7, cls (81) and box (320) per RoI, times exactly
    post_nms_top_n_test RoIs; the mask head: 4 convs 3x3, the 2x2 deconv and the 1x1 predictor
    at 14x14 / 28x28 per detection, times detections_per_img."""
    per_roi = 256 * 7 * 7 * 1024 + 1024 * 1024 + 1024 * 81 + 1024 * 320
    default = {p["part"]: p for p in run(capsys, "maskrcnn_r50_fpn_tv", "--size", "64", "64")["parts"]}
    assert default["roi_heads"]["flops"] == 1000 * per_roi
    per_det = 14 * 14 * (4 * 256 * 256 * 9 + 256 * 256 * 4) + 28 * 28 * 256 * 80
    assert default["mask_head"]["flops"] == 100 * per_det
    fewer = run(
        capsys,
        "maskrcnn_r50_fpn_tv",
        "--size",
        "64",
        "64",
        "--cfg-options",
        "model.rpn.post_nms_top_n_test=300",
        "model.roi_heads.detections_per_img=50",
    )
    parts = {p["part"]: p for p in fewer["parts"]}
    assert parts["roi_heads"]["flops"] == 300 * per_roi and parts["mask_head"]["flops"] == 50 * per_det
    assert parts["backbone"] == default["backbone"] and fewer["rois"] == 300


def test_default_size_is_the_test_resize_and_text_names_the_unit(capsys):
    assert cli_main(["complexity", "frcnn_r50_fpn_tv"]) == 0
    text = capsys.readouterr().out
    assert "input 3x800x1344 (800x1333 padded)" in text and "multiply-adds" in text
    assert "roi_heads" in text and "1000 RoIs" in text and "total" in text
    loc = run(capsys, "loc_r101_imagenet", "--size", "64", "64")
    assert loc["rois"] == 5 * 200 and loc["parts"][0]["part"] == "classifier"
