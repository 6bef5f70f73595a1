"""torchvision's ``fasterrcnn_resnet50_fpn`` COCO files (91 class slots) load, unchanged, into the
shipped ``configs/frcnn_r50_fpn_tv.py`` and give torchvision's detections, with resdet label =
index of torchvision's COCO category id among the 80 used ids; ``tools/eval.py`` writes those
detections back with COCO's category ids.

The torchvision model has random weights (fixed seed; no download) saved as a bare state_dict,
like the zoo file. Its class logits are set the way a trained COCO head behaves: the ten 'N/A'
slots never fire, and a few dozen confident, distinct detections per image. The images are
small and elongated so the model's resize (shorter side 800, longer side <= 1333) is bounded by
the longer side and CPU time stays low.
"""

import json
import os

import cv2
import numpy as np
import pytest
import torch
import torchvision
from torchvision.models.detection import FasterRCNN_ResNet50_FPN_Weights, fasterrcnn_resnet50_fpn

from resdet.apis import inference_detector, init_model
from resdet.cli.eval import main as eval_main
from resdet.models.converters import convert_checkpoint, identify_checkpoint, load_weights
from resdet.models.converters.torchvision_det import (
    COCO_CATEGORY_IDS,
    COCO_UNUSED_IDS,
    convert_fasterrcnn,
    tv_class_rows,
    tv_fpn_model_cfg,
    tv_labels_to_resdet,
)
from resdet.registry import MODELS
from resdet.structures.matching import pair_detections
from resdet.utils.config import load_config
from resdet.utils.io import safe_load

CONFIG = "configs/frcnn_r50_fpn_tv.py"
IMAGE_SIZES = ((32, 640), (28, 600))  # resized by the model to 66 x 1333 and 62 x 1333
# torchvision's own category table: index = COCO category id, 'N/A' = unused id
TV_CATEGORIES = FasterRCNN_ResNet50_FPN_Weights.COCO_V1.meta["categories"]


def randomize_frozen_bn(model: torch.nn.Module) -> None:
    """Non-trivial frozen BN statistics (random init leaves them at identity)."""
    for module in model.modules():
        if isinstance(module, torchvision.ops.FrozenBatchNorm2d):
            module.running_mean.uniform_(-0.1, 0.1)
            module.running_var.uniform_(0.5, 1.5)
            module.weight.uniform_(0.5, 1.5)
            module.bias.uniform_(-0.1, 0.1)


def set_coco_like_logits(cls_score: torch.nn.Linear, features: torch.Tensor, passing: float = 0.05) -> None:
    """Class logits that behave like a trained COCO head on these box-head ``features``
    (``R x 1024``): random class directions, centred per class and scaled so that a typical
    RoI's logits spread by 4 (which class wins depends on the RoI); a constant background logit
    that leaves a ``passing`` share of the RoIs above the score threshold 0.05; the 'N/A' slots
    at -1e4, so they never fire."""
    g = torch.Generator().manual_seed(2)
    weight = torch.randn(cls_score.out_features, features.shape[1], generator=g)
    weight[0] = 0.0
    mean = features.mean(0)
    weight *= 4.0 / ((features - mean) @ weight[1:].T).std(1).median()
    bias = -(weight @ mean)
    bias[list(COCO_UNUSED_IDS)] = -1e4
    logits = ((features @ weight.T) + bias)[:, 1:]
    best = logits.max(1).values
    # a RoI's best class scores > 0.05 while exp(background) < 20 exp(best) - sum(exp(logits))
    room = 20.0 - (logits.logsumexp(1) - best).exp()
    passes_below = torch.where(room > 0, best + room.clamp(min=1e-6).log(), torch.full_like(best, -1e4))
    bias[0] = torch.quantile(passes_below, 1.0 - passing)
    cls_score.weight.copy_(weight)
    cls_score.bias.copy_(bias)


def torchvision_coco_model_and_outputs(builder, images: list[torch.Tensor]):
    """A torchvision COCO detector (91 slots, random weights, config defaults: shorter side 800,
    longer <= 1333, score threshold 0.05) and its detections of ``images`` (float, 0..1).

    The steps are ``GeneralizedRCNN.forward`` in eval mode; the class logits are set from the
    box-head features of these very images before the RoI heads run (``set_coco_like_logits``)."""
    torch.manual_seed(0)
    model = builder(weights=None, weights_backbone=None, num_classes=91, box_score_thresh=0.05)
    model.eval()
    with torch.no_grad():
        randomize_frozen_bn(model)
        original_sizes = [tuple(image.shape[-2:]) for image in images]
        batch, _ = model.transform(images)
        features = model.backbone(batch.tensors)
        proposals, _ = model.rpn(batch, features)
        heads = model.roi_heads
        box_features = heads.box_head(heads.box_roi_pool(features, proposals, batch.image_sizes))
        set_coco_like_logits(heads.box_predictor.cls_score, box_features)
        detections, _ = heads(features, proposals, batch.image_sizes)
        detections = model.transform.postprocess(detections, batch.image_sizes, original_sizes)
    return model, detections


def make_image(height: int, width: int, seed: int) -> np.ndarray:
    """An ``H x W x 3`` uint8 RGB image: smooth blobs plus noise (PNG-exact)."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (max(height // 8, 2), max(width // 8, 2), 3), dtype=np.uint8)
    image = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_LINEAR).astype(np.int16)
    return np.clip(image + rng.integers(-20, 21, image.shape), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    """(zoo file path, images H x W x 3 uint8, torchvision's detections, torchvision model)."""
    images = [make_image(h, w, seed) for seed, (h, w) in enumerate(IMAGE_SIZES)]
    tensors = [torch.from_numpy(image).permute(2, 0, 1).float() / 255 for image in images]
    model, expected = torchvision_coco_model_and_outputs(fasterrcnn_resnet50_fpn, tensors)
    path = str(tmp_path_factory.mktemp("zoo") / "fasterrcnn_resnet50_fpn_coco.pth")
    torch.save(model.state_dict(), path)  # a bare state_dict, as torchvision's zoo file
    return path, images, expected, model


@pytest.fixture(scope="module")
def ours(zoo):
    """``init_model`` of the shipped config and the zoo file, both unchanged: the checkpoint's
    own layout (BN not folded, NCHW), torchvision's arithmetic."""
    return init_model(CONFIG, zoo[0])


# inference_detector's fast path (BN folded into the convolutions, channels_last) changes the
# float rounding of every conv: torchvision's own model in channels_last differs from itself in
# NCHW by ~0.015 px / 1.5e-4 in score. The checkpoint's layout reproduces torchvision to ~1e-7
# (checked tightly below).
FAST_PATH_TOLERANCE = dict(box=0.05, score=5e-4)
EXACT_TOLERANCE = dict(box=1e-3, score=1e-5)


def assert_matches_torchvision(
    ours: dict, theirs: dict, box: float = FAST_PATH_TOLERANCE["box"], score: float = FAST_PATH_TOLERANCE["score"]
) -> None:
    """Same detections up to the order of near-equal scores (init_model's fast path folds BN)."""
    assert len(theirs["boxes"]) >= 10
    assert len(ours["boxes"]) == len(theirs["boxes"])
    pairs = pair_detections(dict(theirs, labels=tv_labels_to_resdet(theirs["labels"])), ours)
    assert pairs["unpaired"] == 0
    assert sorted(pairs["order"]) == list(range(len(ours["boxes"])))
    paired = ours["labels"][pairs["order"]]
    assert torch.equal(torch.tensor(COCO_CATEGORY_IDS)[paired], theirs["labels"])
    assert pairs["max_box_diff"] < box
    assert pairs["max_score_diff"] < score


def test_checkpoint_layout_reproduces_torchvision_exactly(zoo, ours):
    _, images, expected, _ = zoo
    with torch.no_grad():  # the model as init_model returns it (it resizes and maps back itself)
        results = ours([torch.from_numpy(image).permute(2, 0, 1) for image in images])
    for got, theirs in zip(results, expected):
        assert_matches_torchvision(got, theirs, **EXACT_TOLERANCE)


def test_zoo_file_in_shipped_config_gives_torchvision_detections(zoo, ours):
    path, images, expected, _ = zoo
    assert identify_checkpoint(safe_load(path)) == ("torchvision", "fasterrcnn_resnet50_fpn")
    report = ours.checkpoint_report
    assert report["missing"] == [] and report["unexpected"] == [] and report["mismatched"] == []
    got = inference_detector(ours, images)  # the config's test pipeline: the model resizes
    for mine, theirs in zip(got, expected):
        assert_matches_torchvision(mine, theirs)
    # the fast path ran on a copy: the model keeps its checkpoint's layout
    assert not ours.channels_last and ours.backbone.bn1.running_var.shape == (64,)
    labels = torch.cat([e["labels"] for e in expected])
    assert labels.unique().numel() >= 4 and (labels > 12).any()  # ids past the first 'N/A' slot
    assert not torch.isin(labels, torch.tensor(COCO_UNUSED_IDS)).any()
    assert torch.cat([e["scores"] for e in expected]).std() > 0.05  # not saturated
    names = [load_config(CONFIG).classes[int(label)] for label in got[0]["labels"]]
    assert names == [TV_CATEGORIES[int(label)] for label in expected[0]["labels"]]


def test_eval_writes_coco_category_ids(zoo, tmp_path):
    """tools/eval.py on a tiny COCO-format set whose file lists COCO's 80 categories (real ids
    and names, shuffled): the results carry torchvision's labels, i.e. COCO's category ids."""
    path, images, expected, _ = zoo
    categories = [
        {"id": cat_id, "name": name, "supercategory": "thing"}
        for cat_id, name in enumerate(TV_CATEGORIES)
        if name not in ("__background__", "N/A")
    ]
    assert len(categories) == 80
    np.random.default_rng(0).shuffle(categories)
    os.makedirs(tmp_path / "images")
    records, annotations = [], []
    for index, image in enumerate(images):
        name = f"{index:03d}.png"
        cv2.imwrite(str(tmp_path / "images" / name), image[:, :, ::-1])  # PNG: the pixels survive
        records.append({"id": 1000 + index, "file_name": name, "height": image.shape[0], "width": image.shape[1]})
        annotations.append(
            {
                "id": index + 1,
                "image_id": 1000 + index,
                "category_id": 90,
                "bbox": [2, 2, 60, 20],
                "area": 1200,
                "iscrowd": 0,
            }
        )
    ann_file = tmp_path / "instances.json"
    ann_file.write_text(json.dumps({"images": records, "annotations": annotations, "categories": categories}))
    out = tmp_path / "results.json"
    rc = eval_main(
        [
            CONFIG,
            path,
            "--metric",
            "mAP@[.5:.95]",
            "--out",
            str(out),
            "--device",
            "cpu",
            "--backend",
            "pycocotools",
            "--cfg-options",
            f"val_dataloader.dataset.ann_file={ann_file}",
            f"val_dataloader.dataset.img_dir={tmp_path / 'images'}",
            "val_dataloader.num_workers=0",
            "val_dataloader.batch_size=2",
        ]
    )
    assert rc == 0
    results = json.loads(out.read_text())
    assert len(results) == sum(len(e["boxes"]) for e in expected)
    for index, theirs in enumerate(expected):
        mine = sorted((r for r in results if r["image_id"] == 1000 + index), key=lambda r: -r["score"])
        assert [r["category_id"] for r in mine] == theirs["labels"].tolist()
        boxes = torch.tensor([r["bbox"] for r in mine])
        xywh = torch.cat([theirs["boxes"][:, :2], theirs["boxes"][:, 2:] - theirs["boxes"][:, :2]], 1)
        assert (boxes - xywh).abs().max() < FAST_PATH_TOLERANCE["box"]
        assert (torch.tensor([r["score"] for r in mine]) - theirs["scores"]).abs().max() < FAST_PATH_TOLERANCE["score"]


def test_convert_checkpoint_file_and_tv_config(zoo, ours, tmp_path, repo_root):
    path, _, _, tv_model = zoo
    out = str(tmp_path / "resdet_frcnn.pth")
    summary = convert_checkpoint("torchvision", None, path, out)
    assert summary["arch"] == "fasterrcnn_resnet50_fpn" and summary["model"]["roi_heads"]["num_classes"] == 80
    converted = safe_load(out)["model"]
    cls_weight = converted["roi_heads.box_predictor.cls_score.weight"]
    bbox_weight = converted["roi_heads.box_predictor.bbox_pred.weight"]
    assert cls_weight.shape == (81, 1024) and bbox_weight.shape == (320, 1024)
    predictor = tv_model.roi_heads.box_predictor
    # resdet class k is COCO id COCO_CATEGORY_IDS[k]; the background moves last
    assert torch.equal(cls_weight[11], predictor.cls_score.weight[13])  # 'stop sign', after 'N/A' 12
    assert torch.equal(cls_weight[79], predictor.cls_score.weight[90])  # 'toothbrush'
    assert torch.equal(cls_weight[80], predictor.cls_score.weight[0])
    assert torch.equal(bbox_weight[4 * 79 :], predictor.bbox_pred.weight[4 * 90 :])
    # the converted file and the zoo file load into the shipped config alike
    direct = ours.state_dict()
    via_file = init_model(CONFIG, out).state_dict()
    assert direct.keys() == via_file.keys() and all(torch.equal(direct[k], via_file[k]) for k in direct)
    # configs/frcnn_r50_fpn_tv.py sets what the converter's model sets (the converter's config may
    # also spell out what the detector derives, e.g. channel counts; the strict loads above
    # show the parameters agree)
    cfg = load_config(f"{repo_root}/{CONFIG}").model.to_dict()
    assert cfg.pop("num_classes") == 80
    cfg["roi_heads"]["num_classes"] = 80
    assert_sets_the_same(cfg, tv_fpn_model_cfg())


def assert_sets_the_same(cfg: dict, reference: dict, where: str = "model") -> None:
    """Every key ``cfg`` sets has ``reference``'s value (nested dicts compared key by key)."""
    for key, value in cfg.items():
        assert key in reference, f"{where}.{key}"
        if isinstance(value, dict) and isinstance(reference[key], dict):
            assert_sets_the_same(value, reference[key], f"{where}.{key}")
        else:
            assert value == reference[key], f"{where}.{key}: {value!r} != {reference[key]!r}"


def test_class_layouts():
    """91 slots: COCO's 80 used ids, whatever the tensors; any other count: label - 1."""
    assert len(COCO_CATEGORY_IDS) == 80 and tv_class_rows(91) == list(COCO_CATEGORY_IDS)
    assert [i for i, name in enumerate(TV_CATEGORIES) if name not in ("__background__", "N/A")] == list(
        COCO_CATEGORY_IDS
    )
    assert tv_class_rows(5) == [1, 2, 3, 4]
    assert tv_labels_to_resdet(torch.tensor([1, 13, 90, 12, 0])).tolist() == [0, 11, 79, -1, -1]
    for slots in (91, 5):
        state = {
            "roi_heads.box_predictor.cls_score.weight": torch.arange(slots, dtype=torch.float32)[:, None],
            "roi_heads.box_predictor.cls_score.bias": torch.arange(slots, dtype=torch.float32),
            "roi_heads.box_predictor.bbox_pred.weight": torch.arange(4 * slots, dtype=torch.float32)[:, None],
            "roi_heads.box_predictor.bbox_pred.bias": torch.arange(4 * slots, dtype=torch.float32),
        }
        out = convert_fasterrcnn(state)
        rows = tv_class_rows(slots)
        assert out["roi_heads.box_predictor.cls_score.bias"].tolist() == rows + [0]
        assert out["roi_heads.box_predictor.bbox_pred.bias"].tolist() == [4 * r + i for r in rows for i in range(4)]


def test_fine_tuned_head_keeps_label_minus_one():
    """A torchvision model fine-tuned on N classes (N + 1 slots) loads into N classes."""
    torch.manual_seed(0)
    tv = fasterrcnn_resnet50_fpn(weights=None, weights_backbone=None, num_classes=4)
    model = MODELS.build(tv_fpn_model_cfg(num_classes=3))
    report = load_weights(model, tv.state_dict())
    assert report["missing"] == [] and report["unexpected"] == [] and report["mismatched"] == []
    assert torch.equal(
        model.roi_heads.box_predictor.cls_score.weight, tv.roi_heads.box_predictor.cls_score.weight[[1, 2, 3, 0]]
    )
    assert torch.equal(model.roi_heads.box_predictor.bbox_pred.bias, tv.roi_heads.box_predictor.bbox_pred.bias[4:])
