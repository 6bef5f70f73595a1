"""The synthetic shapes generator: deterministic bytes, valid COCO json (pycocotools),
visible-region masks consistent with boxes and areas, the localization flavour."""

import hashlib
import json
import os

import numpy as np
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from resdet.data.synthetic.shapes import SHAPE_CLASSES, generate_shapes_cls, generate_shapes_det, render_det_image


def _digest(root):
    h = hashlib.sha256()
    for dirpath, _, files in sorted(os.walk(root)):
        for name in sorted(files):
            h.update(name.encode())
            with open(os.path.join(dirpath, name), "rb") as fh:
                h.update(fh.read())
    return h.hexdigest()


def test_same_seed_same_bytes(tmp_path):
    for run in ("a", "b"):
        generate_shapes_det(str(tmp_path / run / "det"), num_images=6, image_size=96, seed=5)
        generate_shapes_cls(str(tmp_path / run / "cls"), num_images=10, image_size=32, seed=5)
    assert _digest(tmp_path / "a" / "det") == _digest(tmp_path / "b" / "det")
    assert _digest(tmp_path / "a" / "cls") == _digest(tmp_path / "b" / "cls")
    generate_shapes_det(str(tmp_path / "c"), num_images=6, image_size=96, seed=6)
    assert _digest(tmp_path / "a" / "det") != _digest(tmp_path / "c")
    # a larger set starts with the images of a smaller one
    generate_shapes_det(str(tmp_path / "d"), num_images=8, image_size=96, seed=5)
    for name in ("000000.jpg", "000005.jpg"):
        assert (tmp_path / "d" / "images" / name).read_bytes() == (
            tmp_path / "a" / "det" / "images" / name
        ).read_bytes()


def test_det_json_is_valid_coco(tmp_path):
    ann_file = generate_shapes_det(str(tmp_path), num_images=40, image_size=128, seed=0)
    coco = COCO(ann_file)
    assert len(coco.imgs) == 40 and [c["name"] for c in coco.loadCats(coco.getCatIds())] == list(SHAPE_CLASSES)
    per_image = [len(coco.getAnnIds(imgIds=i)) for i in coco.getImgIds()]
    assert min(per_image) >= 1 and max(per_image) <= 4 and np.mean(per_image) > 1.8
    assert len({a["category_id"] for a in coco.anns.values()}) >= 3
    kinds = {"polygon": 0, "rle": 0}
    for ann in coco.anns.values():
        m = coco.annToMask(ann)
        assert m.shape == (128, 128) and m.sum() > 0
        kinds["rle" if isinstance(ann["segmentation"], dict) else "polygon"] += 1
        x, y, w, h = ann["bbox"]
        ys, xs = np.nonzero(m)
        assert abs(xs.min() - x) <= 1.5 and abs(xs.max() + 1 - (x + w)) <= 1.5
        assert abs(ys.min() - y) <= 1.5 and abs(ys.max() + 1 - (y + h)) <= 1.5
        assert abs(m.sum() - ann["area"]) <= 0.1 * ann["area"] + 20
        assert ann["iscrowd"] == 0
    assert kinds["polygon"] > 0 and kinds["rle"] > 0  # occluded shapes keep their visible part
    rle = next(a for a in coco.anns.values() if isinstance(a["segmentation"], dict))
    assert float(mask_utils.area(rle["segmentation"])) == rle["area"]
    # results in the COCO results format evaluate against it (a perfect detector scores 1.0)
    from pycocotools.cocoeval import COCOeval

    dets = [
        dict(image_id=a["image_id"], category_id=a["category_id"], bbox=a["bbox"], score=1.0)
        for a in coco.anns.values()
    ]
    evaluator = COCOeval(coco, coco.loadRes(dets), "bbox")
    evaluator.evaluate()
    evaluator.accumulate()
    evaluator.summarize()
    assert evaluator.stats[0] > 0.99


def test_visible_masks_do_not_overlap_and_match_pixels():
    img, instances, dominant = render_det_image(seed=3, index=7, image_size=160)
    assert img.shape == (160, 160, 3) and img.dtype == np.uint8
    total = sum(inst["visible"].astype(int) for inst in instances)
    assert total.max() == 1  # each pixel belongs to at most one visible region
    for inst in instances:
        assert inst["visible"].sum() >= 0.5 * inst["full_area"]
    assert sum(inst["dominant"] for inst in instances) == 1


def test_localization_flavour(tmp_path):
    ann_file = generate_shapes_det(str(tmp_path), num_images=20, image_size=128, seed=1, flavour="loc")
    with open(ann_file) as fh:
        data = json.load(fh)
    by_image = {}
    for ann in data["annotations"]:
        by_image.setdefault(ann["image_id"], []).append(ann)
    for image in data["images"]:
        anns = by_image[image["id"]]
        dominant = [a for a in anns if a["dominant"]]
        assert len(dominant) == 1 and dominant[0]["category_id"] == image["category_id"]
        others = [a for a in anns if not a["dominant"]]
        assert 1 <= len(anns) <= 4
        assert all(a["area"] < 0.5 * dominant[0]["area"] for a in others)
        assert all(a["category_id"] != image["category_id"] for a in others)


def test_cli_and_coco_dataset_read_the_det_set(tmp_path, repo_root):
    import subprocess
    import sys

    out = subprocess.run(
        [
            sys.executable,
            os.path.join(repo_root, "datasets", "generate_shapes.py"),
            "det",
            "--out",
            str(tmp_path),
            "--num-train",
            "4",
            "--num-val",
            "2",
            "--image-size",
            "64",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "generated 4 + 2 det images" in out.stdout
    from resdet.data.datasets import CocoDataset

    ds = CocoDataset(str(tmp_path / "train" / "annotations.json"), str(tmp_path / "train" / "images"), with_masks=True)
    sample = ds[0]
    assert len(ds) == 4 and sample["img"].shape == (64, 64, 3)
    assert sample["masks"].shape[0] == len(sample["boxes"]) >= 1
    # the dataset a config builds with the same settings adopts the files instead of regenerating
    from resdet.data.datasets import ShapesCocoDataset

    ann = tmp_path / "val" / "annotations.json"
    stamp = os.path.getmtime(ann)
    val = ShapesCocoDataset(str(tmp_path), "val", num_images=2, image_size=64, seed=0)  # val: seed + 1
    assert len(val) <= 2 and os.path.getmtime(ann) == stamp


def test_shapes_coco_dataset_regenerates_when_settings_change(tmp_path):
    from resdet.data.datasets import ShapesCocoDataset

    root = str(tmp_path)
    first = ShapesCocoDataset(root, "train", num_images=3, image_size=64, seed=0)
    ann = os.path.join(root, "train", "annotations.json")
    stamp = os.path.getmtime(ann)
    again = ShapesCocoDataset(root, "train", num_images=3, image_size=64, seed=0)
    assert os.path.getmtime(ann) == stamp and len(again) == len(first)  # reused
    bigger = ShapesCocoDataset(root, "train", num_images=3, image_size=96, seed=0)  # same count, other size
    assert tuple(bigger.get_ann(0)["orig_size"]) == (96, 96) and bigger[0]["img"].shape[:2] == (96, 96)
    other = ShapesCocoDataset(
        root, "train", num_images=3, image_size=96, seed=0, generator_kwargs=dict(max_instances=1)
    )
    assert all(len(other.get_ann(i)["boxes"]) <= 1 for i in range(len(other)))
    assert len(os.listdir(os.path.join(root, "train", "images"))) == 3
