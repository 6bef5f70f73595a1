"""torchvision's ``fasterrcnn_resnet50_fpn`` weights, converted, give torchvision's detections."""
import pytest
import torch
import torchvision
from torchvision.models.detection import fasterrcnn_resnet50_fpn

from resdet.models.converters import convert_checkpoint, identify_checkpoint, load_weights
from resdet.models.converters.torchvision_det import tv_fpn_model_cfg
from resdet.registry import MODELS
from resdet.utils.config import load_config
from resdet.utils.io import atomic_save, safe_load


@pytest.fixture(scope="module")
def tv_model():
    torch.manual_seed(0)
    model = fasterrcnn_resnet50_fpn(weights=None, weights_backbone=None, min_size=160, max_size=256,
                                    box_score_thresh=0.01)
    with torch.no_grad():
        # random weights: give the frozen BN non-trivial statistics and sharpen the class logits
        # so there are confident, distinct detections to compare
        for module in model.modules():
            if isinstance(module, torchvision.ops.FrozenBatchNorm2d):
                module.running_mean.uniform_(-0.1, 0.1)
                module.running_var.uniform_(0.5, 1.5)
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.1, 0.1)
        model.roi_heads.box_predictor.cls_score.weight.mul_(3.0)
    return model.eval()


def test_converted_weights_give_torchvision_detections(tv_model):
    state = tv_model.state_dict()
    assert identify_checkpoint(state) == ("torchvision", "fasterrcnn_resnet50_fpn")
    model = MODELS.build(tv_fpn_model_cfg(num_classes=90, min_size=160, max_size=256))
    model.roi_heads.score_thresh = 0.01
    report = load_weights(model, state)
    assert report["missing"] == [] and report["unexpected"] == [] and report["mismatched"] == []
    model.eval()
    g = torch.Generator().manual_seed(1)
    images = [torch.randint(0, 256, (3, 200, 300), generator=g, dtype=torch.uint8),
              torch.randint(0, 256, (3, 240, 180), generator=g, dtype=torch.uint8)]
    with torch.no_grad():
        expected = tv_model([image.float() / 255 for image in images])
        got = model(images)
    for theirs, ours in zip(expected, got):
        assert len(theirs["boxes"]) >= 10
        assert len(ours["boxes"]) == len(theirs["boxes"])
        assert torch.equal(ours["labels"], theirs["labels"] - 1)
        assert (ours["boxes"] - theirs["boxes"]).abs().max() < 0.01
        assert (ours["scores"] - theirs["scores"]).abs().max() < 1e-4
    # the detections are not all saturated: scores spread out
    assert torch.cat([e["scores"] for e in expected]).std() > 0.01


def test_convert_checkpoint_file_and_tv_config(tv_model, tmp_path, repo_root):
    src = str(tmp_path / "tv_frcnn.pth")
    out = str(tmp_path / "resdet_frcnn.pth")
    atomic_save(tv_model.state_dict(), src)
    summary = convert_checkpoint("torchvision", None, src, out)
    assert summary["arch"] == "fasterrcnn_resnet50_fpn"
    converted = safe_load(out)
    assert converted["model"]["roi_heads.box_predictor.cls_score.weight"].shape == (91, 1024)
    assert converted["model"]["roi_heads.box_predictor.bbox_pred.weight"].shape == (360, 1024)
    # background moved last: resdet row 0 is torchvision's class 1
    assert torch.equal(converted["model"]["roi_heads.box_predictor.cls_score.weight"][0],
                       tv_model.roi_heads.box_predictor.cls_score.weight[1])
    # configs/frcnn_r50_fpn_tv.py builds exactly the converter's model (80 COCO classes)
    cfg = load_config(f"{repo_root}/configs/frcnn_r50_fpn_tv.py").model.to_dict()
    assert cfg.pop("num_classes") == 80
    expected = tv_fpn_model_cfg(num_classes=80)
    for key in ("preprocessor", "backbone", "neck", "rpn"):
        assert cfg[key] == expected[key], key
    cfg["roi_heads"]["num_classes"] = 80
    assert cfg["roi_heads"] == expected["roi_heads"]
