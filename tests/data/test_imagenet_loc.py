"""ILSVRC CLS-LOC layout reading, bad inputs, loc_collate, the box crop, the shapes stand-in."""

import os

import cv2
import numpy as np
import pytest
import torch

from resdet.data.collate import SkipCollate, loc_collate
from resdet.data.datasets import ImageNetLocDataset, ShapesLocDataset
from resdet.data.transforms import BoxRandomCrop
from resdet.evaluation import LocalizationError

CLIPPED = pytest.mark.filterwarnings("ignore:.*boxes clipped to the image")


def write_xml(path, objects, size=(40, 30)):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    objs = "".join(
        f"<object><name>{n}</name><bndbox><xmin>{b[0]}</xmin><ymin>{b[1]}</ymin><xmax>{b[2]}</xmax>"
        f"<ymax>{b[3]}</ymax></bndbox></object>"
        for n, b in objects
    )
    with open(path, "w") as fh:
        fh.write(f"<annotation><size><width>{size[0]}</width><height>{size[1]}</height></size>{objs}</annotation>")


def write_img(path, w=40, h=30):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    cv2.imwrite(path, np.full((h, w, 3), 90, np.uint8))


def make_ilsvrc(root, img_prefix="Data/CLS-LOC", ann_prefix="Annotations/CLS-LOC", bad_class=False):
    """Train: n01 has a boxed image (one box reaching outside) and an unboxed one; n02 one boxed
    image with two boxes. Val: two images, classes in the XMLs, one without an XML."""
    tr, an = os.path.join(root, img_prefix, "train"), os.path.join(root, ann_prefix, "train")
    write_img(f"{tr}/n01/n01_1.JPEG")
    write_xml(f"{an}/n01/n01_1.xml", [("n01", (5, 5, 60, 20))])
    write_img(f"{tr}/n01/n01_2.JPEG")
    write_img(f"{tr}/n02/n02_7.JPEG")
    write_xml(f"{an}/n02/n02_7.xml", [("n02", (1, 2, 10, 12)), ("n01" if bad_class else "n02", (20, 5, 30, 25))])
    va, van = os.path.join(root, img_prefix, "val"), os.path.join(root, ann_prefix, "val")
    write_img(f"{va}/val_0001.JPEG")
    write_xml(f"{van}/val_0001.xml", [("n02", (3, 4, 13, 14))])
    write_img(f"{va}/val_0002.JPEG")
    return root


@CLIPPED
def test_official_layout_train_and_val(tmp_path):
    root = make_ilsvrc(str(tmp_path))
    with pytest.warns(UserWarning, match="1 boxes clipped"):
        train = ImageNetLocDataset(root, "train")
    assert train.class_names == ["n01", "n02"] and len(train) == 3 and train.num_unannotated == 1
    ann = train.get_ann(train.img_ids.index("n01_1"))
    assert ann["boxes"].tolist() == [[5, 5, 40, 20]] and ann["labels"].tolist() == [0]  # clipped to w=40
    unboxed = train[train.img_ids.index("n01_2")]
    assert unboxed["label"] == 0 and unboxed["boxes"].shape == (0, 4)
    with pytest.raises(FileNotFoundError, match="val_0002.xml"):
        ImageNetLocDataset(root, "val")
    with pytest.warns(UserWarning, match="1 images without an annotation file skipped"):
        val = ImageNetLocDataset(root, "val", strict=False)
    assert val.img_ids == ["val_0001"] and val[0]["label"] == 1 and val.get_ann(0)["labels"].tolist() == [1]
    assert not ImageNetLocDataset(root, "train", with_unannotated=False, strict=False).num_unannotated


@CLIPPED
def test_unpacked_layout_and_class_file(tmp_path):
    root = make_ilsvrc(str(tmp_path), img_prefix="", ann_prefix="bbox")
    mapping = tmp_path / "LOC_synset_mapping.txt"
    mapping.write_text("n02 goldfish, Carassius auratus\nn01 tench, Tinca tinca\n")
    ds = ImageNetLocDataset(root, "train", img_prefix="", ann_prefix="bbox", classes=str(mapping), strict=False)
    assert ds.class_names == ["n02", "n01"] and ds.readable_names[0].startswith("goldfish")
    assert ds.get_ann(ds.img_ids.index("n02_7"))["labels"].tolist() == [0, 0]


def test_xml_class_disagreeing_with_its_folder(tmp_path):
    root = make_ilsvrc(str(tmp_path), bad_class=True)
    with pytest.raises(ValueError, match=r"n02_7.xml has an object of class 'n01'.*folder of class 'n02'"):
        ImageNetLocDataset(root, "train")
    with pytest.warns(UserWarning, match="1 objects whose class disagrees with their folder skipped"):
        ds = ImageNetLocDataset(root, "train", strict=False)
    assert ds.get_ann(ds.img_ids.index("n02_7"))["boxes"].tolist() == [[1, 2, 10, 12]]


@CLIPPED
def test_loc_collate_and_metric_binding(tmp_path):
    root = make_ilsvrc(str(tmp_path))
    ds = ImageNetLocDataset(root, "train", strict=False)
    batch = SkipCollate(loc_collate)([ds[i] for i in range(len(ds))] + [None])
    assert batch["num_skipped"] == 1
    assert [t["image_labels"].tolist() for t in batch["targets"]] == [[0], [0], [1]]
    metric = LocalizationError(topk=2).bind(ds)
    preds = [
        {
            "labels": torch.tensor([1, 0]),
            "scores": torch.tensor([0.9, 0.1]),
            "boxes": torch.tensor([[0.0, 0, 1, 1], [5, 5, 40, 20]]),
        },  # right at top-2
        {"labels": torch.tensor([0, 1]), "scores": torch.tensor([0.6, 0.4]), "boxes": torch.zeros(2, 4)},
        {
            "labels": torch.tensor([1, 0]),
            "scores": torch.tensor([0.8, 0.2]),
            "boxes": torch.tensor([[20.0, 5, 30, 25], [0, 0, 1, 1]]),
        },
    ]  # right at top-1
    metric.process(preds, batch["targets"])
    out = metric.compute()
    assert out["loc_top1_err"] == pytest.approx(2 / 3) and out["loc_top5_err"] == pytest.approx(1 / 3)


def test_box_random_crop_shifts_clips_and_ignores():
    np.random.seed(0)
    y0, x0 = np.random.randint(0, 41), np.random.randint(0, 41)  # the crop's draws, same order
    np.random.seed(0)
    boxes = np.array([[10, 10, 90, 90], [0, 0, 12, 12], [95, 95, 99, 99]], np.float32)
    sample = dict(
        img=np.zeros((100, 100, 3), np.uint8), boxes=boxes, labels=np.array([3, 3, 3]), ignore=np.zeros(3, bool)
    )
    out = BoxRandomCrop(size=60, min_visible=0.3)(sample)
    assert out["img"].shape == (60, 60, 3) and out["img_shape"] == (60, 60)
    expected = (boxes - [x0, y0, x0, y0]).clip(0, 60)
    visible = (expected[:, 2] > expected[:, 0]) & (expected[:, 3] > expected[:, 1])
    np.testing.assert_allclose(out["boxes"], expected[visible])
    area = (expected[:, 2] - expected[:, 0]) * (expected[:, 3] - expected[:, 1])
    assert out["ignore"].tolist() == (area < 0.3 * np.array([6400, 144, 16]))[visible].tolist()
    assert out["labels"].tolist() == [3] * int(visible.sum())
    small = BoxRandomCrop(size=64)(
        dict(img=np.zeros((20, 30, 3), np.uint8), labels=np.array([0]), boxes=np.array([[0, 0, 30, 20]], np.float32))
    )
    assert small["img"].shape == (64, 64, 3) and small["boxes"].tolist() == [[0, 0, 30, 20]]


def test_shapes_stand_in_is_deterministic_and_one_box_per_image(tmp_path):
    a = ShapesLocDataset(str(tmp_path / "a"), "val", num_images=6, image_size=64)
    b = ShapesLocDataset(str(tmp_path / "b"), "val", num_images=6, image_size=64)
    assert a.img_ids == b.img_ids and len(a) == 6
    for i in range(6):
        ann = a.get_ann(i)
        assert len(ann["boxes"]) == 1 and ann["labels"][0] == a[i]["label"]
        w, h = ann["boxes"][0, 2:] - ann["boxes"][0, :2]
        assert 64 * 0.25 < max(w, h) <= 64  # the dominant shape
        assert np.array_equal(a[i]["img"], b[i]["img"])
    train = ShapesLocDataset(str(tmp_path / "a"), "train", num_images=5, image_size=64)
    assert sorted(os.listdir(tmp_path / "a" / "Data" / "CLS-LOC" / "train")) == sorted(
        {train.class_names[r["label"]] for r in train.records}
    )


@CLIPPED
def test_results_file_round_trip(tmp_path):
    import json

    from resdet.evaluation.localization import evaluate_loc_results_file, predictions_to_loc_results
    from resdet.evaluation.results import ResultsError

    root = make_ilsvrc(str(tmp_path))
    write_xml(str(tmp_path / "Annotations/CLS-LOC/val/val_0002.xml"), [("n01", (0, 0, 20, 20))])
    preds = [
        {
            "labels": torch.tensor([1, 0]),
            "scores": torch.tensor([0.7, 0.3]),
            "boxes": torch.tensor([[3.0, 4, 13, 14], [0, 0, 5, 5]]),
        },  # val_0001 (n02): right at top-1
        {
            "labels": torch.tensor([1, 0]),
            "scores": torch.tensor([0.6, 0.4]),
            "boxes": torch.tensor([[0.0, 0, 20, 20], [30, 20, 40, 30]]),
        },
    ]  # val_0002 (n01): box of n01 wrong
    rows = predictions_to_loc_results(preds, ["val_0001", "val_0002"], ["n01", "n02"])
    assert rows[0] == {"image_id": "val_0001", "category_id": "n02", "score": 0.7, "bbox": [3.0, 4.0, 10.0, 10.0]}
    path = tmp_path / "loc.json"
    path.write_text(json.dumps(rows))
    out = evaluate_loc_results_file(root, str(path), split="val")
    assert out["loc_num_samples"] == 2 and out["loc_top1_err"] == 0.5 and out["loc_top5_err"] == 0.5
    assert out["cls_top5_err"] == 0.0 and "top-5 loc error 50.00%" in out["table"]
    out = evaluate_loc_results_file(root, rows[:1], split="val")  # val_0002 missing: wrong
    assert out["loc_top5_err"] == 0.5
    with pytest.raises(ResultsError, match="val_0009"):
        evaluate_loc_results_file(root, [dict(rows[0], image_id="val_0009")], split="val")


@CLIPPED
def test_records_are_cached_and_rebuilt_when_an_xml_changes(tmp_path):
    root, cache = make_ilsvrc(str(tmp_path / "data")), str(tmp_path / "cache")
    first = ImageNetLocDataset(root, "train", cache_dir=cache)
    second = ImageNetLocDataset(root, "train", cache_dir=cache)
    assert second._store.path == first._store.path and second.num_unannotated == first.num_unannotated == 1
    assert second.image_labels.tolist() == [0, 0, 1] and second.image_labels.dtype == np.int64
    xml = os.path.join(root, "Annotations/CLS-LOC/train/n02/n02_7.xml")
    write_xml(xml, [("n02", (1, 2, 10, 12))])
    os.utime(xml, ns=(1, 1))  # a different mtime whatever the clock's resolution
    with pytest.warns(UserWarning, match="stale"):
        third = ImageNetLocDataset(root, "train", cache_dir=cache)
    assert third.get_ann(third.img_ids.index("n02_7"))["boxes"].tolist() == [[1, 2, 10, 12]]
