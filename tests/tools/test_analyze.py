"""`resdet analyze` end to end: a generated COCO ground truth + results pair, a VOC test set named
by a config, and a checkpoint run on a config's COCO test set first."""

import csv
import json
import os

import cv2
import numpy as np
import pytest
import torch

from resdet.cli.analyze import main

CATS = [{"id": 3, "name": "cat"}, {"id": 7, "name": "dog"}]


def _pair(tmp_path):
    """4 pictures, 2 objects each (sparse category ids 3 and 7); detections: a duplicate and a class
    error on image 1, a perfect image 2, a poor box and a missed object on image 3, background, a
    miss and a class + box error (scoring 0.3) on image 4."""
    images, anns = [], []
    boxes = {
        1: [(3, [4, 4, 20, 20]), (7, [36, 30, 22, 26])],
        2: [(3, [8, 8, 24, 24]), (7, [40, 10, 18, 40])],
        3: [(7, [5, 30, 25, 25]), (3, [40, 5, 20, 20])],
        4: [(3, [10, 40, 16, 16]), (7, [38, 38, 20, 20])],
    }
    for image_id, objects in boxes.items():
        name = f"img{image_id}.png"
        img = np.full((64, 64, 3), 60 * image_id % 255, np.uint8)
        assert cv2.imwrite(str(tmp_path / name), img)
        images.append({"id": image_id, "file_name": name, "width": 64, "height": 64})
        for cat, box in objects:
            anns.append(
                {
                    "id": len(anns) + 1,
                    "image_id": image_id,
                    "category_id": cat,
                    "bbox": box,
                    "area": box[2] * box[3],
                    "iscrowd": 0,
                }
            )
    ann_file = tmp_path / "instances.json"
    ann_file.write_text(json.dumps({"images": images, "annotations": anns, "categories": CATS}))

    def det(image_id, cat, box, score):
        return {"image_id": image_id, "category_id": cat, "bbox": box, "score": score}

    dets = [
        det(1, 3, [4, 4, 20, 20], 0.95),
        det(1, 3, [5, 5, 20, 20], 0.9),  # TP + duplicate
        det(1, 3, [36, 30, 22, 26], 0.85),  # cat on the dog: cls
        det(2, 3, [8, 8, 24, 24], 0.9),
        det(2, 7, [40, 10, 18, 40], 0.8),  # perfect
        det(3, 7, [15, 38, 25, 25], 0.7),  # poor box: loc
        det(4, 7, [0, 0, 6, 6], 0.6),
        det(4, 3, [10, 40, 16, 16], 0.55),  # background + TP
        det(4, 3, [45, 45, 20, 20], 0.3),
    ]  # both, under 0.5
    results = tmp_path / "dets.json"
    results.write_text(json.dumps(dets))
    return str(ann_file), str(results)


def test_analyze_a_results_file_against_a_coco_json(tmp_path, capsys):
    ann, results = _pair(tmp_path)
    out = tmp_path / "analysis"
    assert main(["--results", results, "--ann", ann, "--out", str(out), "--top", "3"]) == 0
    printed = capsys.readouterr().out
    assert "duplicate (dupe)" in printed and "9 detections on 4 images (8 objects)" in printed
    report = json.loads((out / "analysis.json").read_text())
    errors = report["errors"]
    assert errors["counts"] == {"cls": 1, "loc": 1, "both": 1, "dupe": 1, "bkg": 1, "miss": 2}
    assert all(value >= -1e-9 for value in errors["dAP"].values()) and errors["dAP"]["cls"] > 0
    assert 0 < errors["ap50"] < 1 and errors["fg_iou"] == 0.5 and errors["bg_iou"] == 0.1
    assert set(report["pr_curves"]) == {"cat", "dog"} and report["pr_curves"]["dog"]["num_gt"] == 4
    # confusion matrix at IoU 0.5, score 0.5: rows ground truth, columns predictions, background last
    with open(out / "confusion_matrix.csv", newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["ground truth \\ predicted", "cat", "dog", "background"]
    assert rows[1:] == [
        ["cat", "3", "0", "1"],  # 3 found, the one on image 3 missed
        ["dog", "1", "1", "2"],  # taken for a cat once; 2 missed (loc + image 4)
        ["background", "1", "2", "0"],
    ]  # the duplicate cat; the loc and bkg dogs
    assert report["confusion"]["matrix"] == [[int(v) for v in r[1:]] for r in rows[1:]]
    assert [w["image_id"] for w in report["worst_images"]] == [1, 3, 4]
    for name in ("pr_curves.png", "confusion_matrix.png", "errors.png", "gallery.png"):
        assert open(out / name, "rb").read(4) == b"\x89PNG", name
    assert sorted(os.listdir(out / "gallery")) == ["01_1.png", "02_3.png", "03_4.png"]
    drawn = cv2.imread(str(out / "gallery" / "01_1.png"))
    assert drawn.shape == (480, 480, 3) and (drawn != 60).any()  # small pictures enlarged to draw on


def test_without_matplotlib_the_numbers_and_gallery_are_still_written(tmp_path, monkeypatch, capsys):
    import resdet.apis.analyze as api

    monkeypatch.setattr(api, "matplotlib_available", lambda: False)
    ann, results = _pair(tmp_path)
    out = tmp_path / "analysis"
    assert main(["--results", results, "--ann", ann, "--out", str(out), "--top", "1"]) == 0
    assert "pip install 'resdet[plots]'" in capsys.readouterr().out
    assert sorted(os.listdir(out)) == ["analysis.json", "confusion_matrix.csv", "gallery", "gallery.png"]


def test_usage_errors_and_bad_inputs_are_one_line(tmp_path, capsys):
    ann, results = _pair(tmp_path)
    with pytest.raises(SystemExit) as stop:
        main(["--results", results, "--out", str(tmp_path / "o")])
    assert stop.value.code == 2 and "--ann FILE.json or a CONFIG" in capsys.readouterr().err
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"image_id": 99, "category_id": 3, "bbox": [0, 0, 1, 1], "score": 0.5}]))
    assert main(["--results", str(bad), "--ann", ann, "--out", str(tmp_path / "o")]) == 2
    assert "image_id(s) not in the ground truth: 99" in capsys.readouterr().err


def test_ground_truth_from_a_voc_config_maps_image_ids(repo_root, tmp_path):
    from resdet.apis.analyze import analyze_results, ground_truth_from_config

    root = os.path.join(repo_root, "tests", "fixtures", "bccd_voc")
    options = {"val_dataloader.dataset.root": root}  # the config has no test_dataloader: val is used
    gt = ground_truth_from_config(os.path.join(repo_root, "configs", "frcnn_r50_c4_bccd.py"), options)
    stems = {v: k for k, v in gt.id_map.items()}
    perfect = [
        {"image_id": stems[a["image_id"]], "category_id": a["category_id"], "bbox": a["bbox"], "score": 0.9}
        for a in gt.coco.dataset["annotations"]
        if not a["iscrowd"]
    ]
    results = tmp_path / "voc.json"
    results.write_text(json.dumps(perfect))
    report = analyze_results(gt, str(results), str(tmp_path / "out"), top_images=2)
    assert report["errors"]["ap50"] == pytest.approx(1.0) and sum(report["errors"]["counts"].values()) == 0
    assert report["confusion"]["labels"] == ["RBC", "WBC", "Platelets", "background"]
    assert not report["worst_images"]


def test_analyze_a_checkpoint_runs_it_on_the_test_set_first(repo_root, fruits_root, tmp_path, capsys):
    from resdet.registry import MODELS
    from resdet.utils.config import load_config
    from resdet.utils.io import atomic_save

    torch.set_num_threads(2)
    cfg = load_config("shapes_frcnn")
    cfg.model.num_classes = 3
    cfg.test_dataloader = dict(
        batch_size=2,
        num_workers=0,
        sampler=dict(type="InferenceSampler"),
        collate="det_collate",
        dataset=dict(
            type="CocoDataset",
            ann_file=os.path.join(fruits_root, "annotations.json"),
            img_dir=os.path.join(fruits_root, "images"),
            filter_empty=False,
            pipeline=[dict(type="ResizeShortestEdge", short_edge_length=160, max_size=200)],
        ),
    )
    config = str(tmp_path / "fruits_frcnn.py")
    cfg.dump(config)
    torch.manual_seed(0)
    ckpt = str(tmp_path / "det.pth")
    atomic_save({"model": MODELS.build(cfg.model.to_dict()).state_dict()}, ckpt)
    out = tmp_path / "out"
    assert main([config, ckpt, "--out", str(out), "--device", "cpu", "--score-thr", "0.05", "--top", "2"]) == 0
    assert f"written to {out / 'results.json'}" in capsys.readouterr().out
    report = json.loads((out / "analysis.json").read_text())
    dets = json.loads((out / "results.json").read_text())
    assert report["num_images"] == 5 and report["num_detections"] == len(dets) > 0
    assert {d["category_id"] for d in dets} <= {1, 2, 3}
    assert [c["name"] for c in report["categories"]] == ["date", "fig", "hazelnut"]
    assert len(report["worst_images"]) == 2 and len(os.listdir(out / "gallery")) == 2
    assert cv2.imread(str(out / "gallery" / os.listdir(out / "gallery")[0])).shape == (600, 800, 3)
