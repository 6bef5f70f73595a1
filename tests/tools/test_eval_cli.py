"""tools/eval.py in results-file mode (COCO fixture, BCCD VOC photos) and its error messages."""

import importlib.util
import json
import os
import warnings

import numpy as np
import pytest

from resdet.evaluation.coco_api import faster_available
from resdet.evaluation.voc import load_voc_gt

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="module")
def eval_tool(repo_root):
    spec = importlib.util.spec_from_file_location("eval_tool", os.path.join(repo_root, "tools", "eval.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def coco_dir(coco_eval_root):
    return coco_eval_root


@pytest.fixture(scope="module")
def voc_root(bccd_root):
    return bccd_root


def _run(tool, argv, capsys):
    rc = tool.main(argv)
    out = capsys.readouterr()
    return rc, out.out, out.err


@pytest.mark.parametrize("backend", ["pycocotools"] + (["faster"] if faster_available() else []))
def test_coco_fixture_bbox_and_segm(eval_tool, coco_dir, tmp_path, capsys, backend):
    expected = json.load(open(os.path.join(coco_dir, "expected_stats.json")))
    gt = os.path.join(coco_dir, "instances_val2014_100.json")
    for iou_type, metric in (("bbox", "mAP@[.5:.95]"), ("segm", "segm-mAP@[.5:.95]")):
        out_json = tmp_path / f"{iou_type}.json"
        rc, out, _ = _run(
            eval_tool,
            [
                "--ann",
                gt,
                "--results",
                os.path.join(coco_dir, f"instances_val2014_fake{iou_type}100_results.json"),
                "--metric",
                metric,
                "--json",
                str(out_json),
                "--backend",
                backend,
            ],
            capsys,
        )
        assert rc == 0
        assert (
            "Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ] = "
            f"{expected[iou_type][0]:.3f}" in out
        )
        numbers = json.loads(out_json.read_text())
        got = [numbers[f"{iou_type}_{k}"] for k in expected["keys"]]
        np.testing.assert_allclose(got, expected[iou_type], atol=1e-6)
        assert numbers[f"{iou_type}_AP/fire hydrant"] is None  # no GT: nan -> null


def _voc_results(gt, rng, jitter=0.0, drop=0.0):
    results = []
    for stem, boxes, labels in zip(gt.img_ids, gt.boxes, gt.labels):
        for box, label in zip(boxes, labels):
            if rng.random() < drop:
                continue
            box = box + rng.normal(0, jitter, 4) if jitter else box
            results.append(
                dict(
                    image_id=stem,
                    category_id=gt.class_names[label],
                    bbox=[
                        float(box[0]),
                        float(box[1]),
                        max(float(box[2] - box[0]), 0.0),
                        max(float(box[3] - box[1]), 0.0),
                    ],
                    score=float(rng.random()),
                )
            )
    return results


def _check_voc_results(eval_tool, voc_root, tmp_path, capsys, num_images, num_gts):
    gt = load_voc_gt(voc_root, "val")
    assert gt.class_names == ["Platelets", "RBC", "WBC"] and len(gt.img_ids) == num_images
    rng = np.random.default_rng(0)
    perfect = tmp_path / "perfect.json"
    perfect.write_text(json.dumps(_voc_results(gt, rng)))
    out_json = tmp_path / "m.json"
    rc, out, _ = _run(
        eval_tool,
        [
            "--ann",
            voc_root,
            "--split",
            "val",
            "--results",
            str(perfect),
            "--metric",
            "mAP@0.5",
            "--json",
            str(out_json),
        ],
        capsys,
    )
    assert rc == 0 and "mAP@0.50 = 100.00" in out
    numbers = json.loads(out_json.read_text())
    assert [numbers[f"voc_AP50/{c}"] for c in gt.class_names] == [1.0, 1.0, 1.0]
    assert [numbers[f"voc_num_gts/{c}"] for c in gt.class_names] == num_gts
    # perturbed: 20% of the boxes missing, the rest jittered -> recall <= ~0.8, AP well below 1
    perturbed = tmp_path / "perturbed.json"
    kept = _voc_results(gt, rng, jitter=4.0, drop=0.2)
    perturbed.write_text(json.dumps(kept))
    for method in ("area", "11point"):
        rc, out, _ = _run(
            eval_tool,
            [
                "--ann",
                voc_root,
                "--split",
                "val",
                "--results",
                str(perturbed),
                "--metric",
                "mAP@0.5",
                "--voc-ap",
                method,
                "--json",
                str(out_json),
            ],
            capsys,
        )
        assert rc == 0
        numbers = json.loads(out_json.read_text())
        for c, count in zip(gt.class_names, num_gts):
            assert 0.5 < numbers[f"voc_AP50/{c}"] < 0.86
            assert numbers[f"voc_recall50/{c}"] < 0.9
            # a ground truth is found by at most one kept detection
            assert numbers[f"voc_recall50/{c}"] <= sum(r["category_id"] == c for r in kept) / count


def test_voc_results_perfect_and_perturbed(eval_tool, voc_root, tmp_path, capsys):
    # 4 val photos: 4 Platelets, 57 RBC (one of them a zero-area point), 4 WBC
    _check_voc_results(eval_tool, voc_root, tmp_path, capsys, num_images=4, num_gts=[4, 57, 4])


def test_voc_results_on_the_full_bccd_val(eval_tool, shared_data, tmp_path, capsys):
    """Optional larger check: all 87 BCCD val photos."""
    _check_voc_results(
        eval_tool, os.path.join(shared_data, "bccd_voc"), tmp_path, capsys, num_images=87, num_gts=[83, 968, 87]
    )


def _bad(tmp_path, name, content):
    path = tmp_path / name
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return str(path)


def test_bad_inputs_give_clear_messages(eval_tool, coco_dir, voc_root, tmp_path, capsys):
    gt = os.path.join(coco_dir, "instances_val2014_100.json")
    good = json.load(open(os.path.join(coco_dir, "instances_val2014_fakebbox100_results.json")))[:3]
    cases = [
        (dict(good[0], image_id=123456789), "image_id(s) not in the ground truth: 123456789"),
        (dict(good[0], category_id=999), "category_id(s) not in the ground truth: 999"),
        (dict(good[0], bbox=[1, 2, -3, 4]), "entry 0: 'bbox' has a negative width or height"),
        (dict(good[0], bbox=[1, 2, float("nan"), 4]), "entry 0: 'bbox' is not finite"),
        ({k: v for k, v in good[0].items() if k != "score"}, "entry 0: missing field(s) ['score']"),
        (dict(good[0], bbox=[1, 2, 3]), "'bbox' must be a list of 4 numbers"),
    ]
    for i, (entry, message) in enumerate(cases):
        path = _bad(tmp_path, f"bad{i}.json", [entry] + good[1:])
        rc, _, err = _run(eval_tool, ["--ann", gt, "--results", path, "--metric", "mAP@[.5:.95]"], capsys)
        assert rc == 2 and message in err and path in err, (message, err)

    truncated = _bad(tmp_path, "trunc.json", json.dumps(good)[:-40])
    rc, _, err = _run(eval_tool, ["--ann", gt, "--results", truncated, "--metric", "mAP@[.5:.95]"], capsys)
    assert rc == 2 and f"results file {truncated} is not valid json" in err and "truncated" in err
    malformed = _bad(tmp_path, "malformed.json", "[{'image_id': 1}]")
    rc, _, err = _run(eval_tool, ["--ann", gt, "--results", malformed, "--metric", "mAP@[.5:.95]"], capsys)
    assert rc == 2 and "not valid json" in err and "line 1, column 3" in err

    not_coco = _bad(tmp_path, "notcoco.json", {"images": [], "labels": []})
    rc, _, err = _run(eval_tool, ["--ann", not_coco, "--results", truncated, "--metric", "mAP@[.5:.95]"], capsys)
    assert rc == 2 and "not valid json" in err  # the results file is read first
    ok_results = _bad(tmp_path, "ok.json", good)
    rc, _, err = _run(eval_tool, ["--ann", not_coco, "--results", ok_results, "--metric", "mAP@[.5:.95]"], capsys)
    assert rc == 2 and f"ground truth {not_coco} is not a COCO instances file" in err
    assert "['annotations', 'categories']" in err

    rc, _, err = _run(eval_tool, ["--ann", voc_root, "--results", ok_results, "--metric", "mAP@0.5"], capsys)
    assert rc == 2 and "ImageSets/Main/test.txt" in err and "['train', 'trainval', 'val']" in err
    rc, _, err = _run(
        eval_tool, ["--ann", voc_root, "--split", "val", "--results", ok_results, "--metric", "mAP@0.5"], capsys
    )
    assert rc == 2 and "image_id(s) not in the ground truth" in err

    with pytest.raises(SystemExit):  # argparse: --out has no meaning for a results file
        eval_tool.main(["--ann", gt, "--results", ok_results, "--metric", "mAP@0.5", "--out", "x.json"])
    capsys.readouterr()


def test_empty_results_are_all_zero_with_warning(eval_tool, coco_dir, tmp_path, capsys):
    gt = os.path.join(coco_dir, "instances_val2014_100.json")
    empty = _bad(tmp_path, "empty.json", [])
    out_json = tmp_path / "m.json"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rc, out, _ = _run(
            eval_tool,
            [
                "--ann",
                gt,
                "--results",
                empty,
                "--metric",
                "mAP@[.5:.95]",
                "--json",
                str(out_json),
                "--backend",
                "pycocotools",
            ],
            capsys,
        )
    assert rc == 0
    assert any("holds no detections" in str(w.message) for w in caught)
    numbers = json.loads(out_json.read_text())
    assert all(
        numbers[f"bbox_{k}"] == 0.0
        for k in ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl")
    )


# ----------------------------------------------------------------------------- model mode
def _write_config(tmp_path, text):
    path = tmp_path / "cfg.py"
    path.write_text(text)
    return str(path)


def test_model_mode_classifier_top1_top5(eval_tool, tmp_path, capsys):
    import torch

    from resdet.apis.model import init_model
    from resdet.data.loader import build_dataloader
    from resdet.utils.config import load_config
    from resdet.utils.io import atomic_save

    cfg_path = _write_config(
        tmp_path,
        f"""
model = dict(type='ImageClassifier', num_classes=5, mean=(128., 128., 128.), std=(64., 64., 64.),
             backbone=dict(type='CifarResNet', depth=8, shortcut='A'), head=dict(type='LinearClsHead'))
val_dataloader = dict(batch_size=8, num_workers=0, collate='cls_collate',  # no test_dataloader: falls back
                      dataset=dict(type='ShapesClsDataset', data_root={str(tmp_path / "shapes")!r},
                                   split='val', num_images=20, image_size=32))
val_evaluator = dict(type='TopKError', topk=(1, 5))
""",
    )
    torch.manual_seed(0)
    model = init_model(cfg_path)
    ckpt = str(tmp_path / "model.pth")
    atomic_save({"model": model.state_dict()}, ckpt)
    out_json = tmp_path / "m.json"
    rc, out, err = _run(
        eval_tool,
        [cfg_path, ckpt, "--metric", "top1", "--metric", "top5", "--json", str(out_json), "--device", "cpu"],
        capsys,
    )
    assert rc == 0, err
    numbers = json.loads(out_json.read_text())
    # the same numbers computed by hand from the model's logits
    loader = build_dataloader(dict(load_config(cfg_path).val_dataloader), training=False)
    ranks, count = [], 0
    with torch.no_grad():
        for batch in loader:
            logits = model(batch["inputs"])
            true = logits.gather(1, batch["targets"]["labels"][:, None])
            ranks.append((logits > true).sum(1))
            count += len(logits)
    ranks = torch.cat(ranks)
    assert numbers["topk_num_samples"] == count == 20
    assert numbers["top1_err"] == pytest.approx((ranks >= 1).float().mean().item())
    assert numbers["top5_err"] == pytest.approx((ranks >= 5).float().mean().item()) == 0.0
    assert "top-1 error" in out
    # without --metric: the config's val_evaluator, same numbers
    rc, _, err = _run(eval_tool, [cfg_path, ckpt, "--json", str(out_json), "--device", "cpu"], capsys)
    assert rc == 0, err
    assert json.loads(out_json.read_text())["top1_err"] == numbers["top1_err"]


def test_model_mode_detector_out_file_round_trip(eval_tool, tmp_path, capsys, monkeypatch):
    import torch

    from resdet.apis.model import init_model
    from resdet.utils.io import atomic_save

    data_root = str(tmp_path / "shapes_det")
    cfg_path = _write_config(
        tmp_path,
        f"""
_base_ = [{os.path.join(REPO_ROOT, "configs", "_base_", "models", "frcnn_r50_fpn.py")!r}]
model = dict(preprocessor=dict(min_size=64, max_size=64),
             backbone=dict(depth=18, norm='BN', frozen_stages=-1),
             neck=dict(in_channels=(64, 128, 256, 512), out_channels=32),
             rpn=dict(head=dict(in_channels=32), pre_nms_top_n_test=50, post_nms_top_n_test=20),
             roi_heads=dict(num_classes=5, box_head=dict(in_channels=32, fc_dim=32), score_thresh=0.0,
                            detections_per_img=10))
test_dataloader = dict(batch_size=2, num_workers=0, collate='det_collate',
                       dataset=dict(type='ShapesCocoDataset', data_root={data_root!r}, split='val',
                                    num_images=3, image_size=64, filter_empty=False))
""",
    )
    torch.manual_seed(0)
    model = init_model(cfg_path)
    ckpt = str(tmp_path / "det.pth")
    atomic_save({"model": model.state_dict()}, ckpt)
    from resdet.apis import evaluate
    from resdet.models.detectors import is_inference_optimized

    ran = []
    real = evaluate.run_inference
    monkeypatch.setattr(evaluate, "run_inference", lambda model, *a, **kw: ran.append(model) or real(model, *a, **kw))
    out_file, out_json = tmp_path / "dets.json", tmp_path / "m.json"
    rc, out, err = _run(
        eval_tool,
        [
            cfg_path,
            ckpt,
            "--metric",
            "mAP@[.5:.95]",
            "--out",
            str(out_file),
            "--json",
            str(out_json),
            "--device",
            "cpu",
            "--backend",
            "pycocotools",
        ],
        capsys,
    )
    assert rc == 0, err
    # resdet eval runs the fast path: BN (plain, here) folded, channels_last
    assert len(ran) == 1 and is_inference_optimized(ran[0]) and ran[0].channels_last
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in ran[0].modules())
    model_numbers = json.loads(out_json.read_text())
    dets = json.loads(out_file.read_text())
    ann_file = os.path.join(data_root, "val", "annotations.json")
    gt = json.load(open(ann_file))
    assert len(dets) == 3 * 10 and {d["image_id"] for d in dets} == {im["id"] for im in gt["images"]}
    assert {d["category_id"] for d in dets} <= {c["id"] for c in gt["categories"]}
    # scoring the written file gives the model-mode numbers
    rc, _, err = _run(
        eval_tool,
        [
            "--ann",
            ann_file,
            "--results",
            str(out_file),
            "--metric",
            "mAP@[.5:.95]",
            "--json",
            str(out_json),
            "--backend",
            "pycocotools",
        ],
        capsys,
    )
    assert rc == 0, err
    file_numbers = json.loads(out_json.read_text())
    for key in ("bbox_AP", "bbox_AP50", "bbox_AR100"):
        assert file_numbers[key] == pytest.approx(model_numbers[key], abs=1e-9)


def test_model_mode_classifier_ten_crop(eval_tool, tmp_path, capsys):
    """--test-mode wraps the classifier (10 crops + mirrors, softmax averaged) and the scores
    equal the average computed by hand from the plain model's views."""
    import torch

    from resdet.apis.model import init_model
    from resdet.data.loader import build_dataloader
    from resdet.models.classifiers.tta import ten_crop_views
    from resdet.utils.config import load_config
    from resdet.utils.io import atomic_save

    cfg_path = _write_config(
        tmp_path,
        f"""
model = dict(type='ImageClassifier', num_classes=5, mean=(128., 128., 128.), std=(64., 64., 64.),
             backbone=dict(type='CifarResNet', depth=8, shortcut='A'), head=dict(type='LinearClsHead'))
val_dataloader = dict(batch_size=8, num_workers=0, collate='cls_collate',
                      dataset=dict(type='ShapesClsDataset', data_root={str(tmp_path / "shapes")!r},
                                   split='val', num_images=12, image_size=32))
val_evaluator = dict(type='TopKError', topk=(1, 5))
test_mode = dict(type='TenCropClassifier', crop_size=24)
""",
    )
    torch.manual_seed(0)
    model = init_model(cfg_path)
    ckpt = str(tmp_path / "model.pth")
    atomic_save({"model": model.state_dict()}, ckpt)
    out_json = tmp_path / "m.json"
    rc, _, err = _run(
        eval_tool, [cfg_path, ckpt, "--metric", "top1", "--json", str(out_json), "--device", "cpu"], capsys
    )
    assert rc == 0, err
    numbers = json.loads(out_json.read_text())
    loader = build_dataloader(dict(load_config(cfg_path).val_dataloader), training=False)
    wrong = 0
    with torch.no_grad():
        for batch in loader:
            views = ten_crop_views(batch["inputs"], 24, True)  # N x 10 x 3 x 24 x 24
            n = views.shape[0]
            probs = model(views.flatten(0, 1)).softmax(-1).view(n, 10, -1).mean(1)
            wrong += (probs.argmax(1) != batch["targets"]["labels"]).sum().item()
    assert numbers["topk_num_samples"] == 12
    assert numbers["top1_err"] == pytest.approx(wrong / 12)
