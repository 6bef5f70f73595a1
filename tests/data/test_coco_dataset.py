import json
import os

import cv2
import numpy as np
import pytest

from resdet.data.datasets import CocoDataset, ConcatDataset
from resdet.data.image_io import ImageReadError
from resdet.data.problems import Skipped
from resdet.registry import DATASETS


def _fruits(root, **kwargs):
    return CocoDataset(ann_file=os.path.join(root, "annotations.json"), img_dir=os.path.join(root, "images"), **kwargs)


def test_fruits_interface_and_category_mapping(fruits_root):
    ds = _fruits(fruits_root, filter_empty=False)
    with open(os.path.join(fruits_root, "annotations.json")) as fh:
        raw = json.load(fh)
    assert len(ds) == 5 and ds.img_ids == [0, 1, 2, 12, 15]  # image ids start at 0 and are kept as is
    assert ds.coco.imgs[2]["file_name"] == "10.jpg"  # ids are not the file names
    assert [len(ds.get_ann(i)["boxes"]) for i in range(5)] == [12, 9, 6, 8, 8]
    assert ds.class_names == ["date", "fig", "hazelnut"]
    assert ds.label_to_cat_id == [1, 2, 3]
    assert ds.aspect_ratios[0] == pytest.approx(800 / 600)
    assert ds.coco.getImgIds() == sorted(ds.img_ids)
    ann = ds.get_ann(0)
    raw_anns = [a for a in raw["annotations"] if a["image_id"] == 0]
    assert len(ann["boxes"]) == len(raw_anns)
    x, y, w, h = raw_anns[0]["bbox"]
    assert np.allclose(ann["boxes"][0], [x, y, x + w, y + h])
    # label -> category id maps back to the file's ids
    assert [ds.label_to_cat_id[lab] for lab in ann["labels"]] == [a["category_id"] for a in raw_anns]
    assert ann["boxes"].dtype == np.float32 and ann["labels"].dtype == np.int64
    assert not ann["ignore"].any()


def test_fruits_full_set(shared_data):
    """Optional larger check on all 18 fruits photos."""
    ds = _fruits(os.path.join(shared_data, "fruits_coco"), filter_empty=False)
    assert len(ds) == 18 and ds.img_ids == list(range(18)) and ds.class_names == ["date", "fig", "hazelnut"]
    assert sum(len(ds.get_ann(i)["boxes"]) for i in range(18)) == 165


def test_fruits_masks_from_polygons(fruits_root):
    ds = _fruits(
        fruits_root, with_masks=True, pipeline=[dict(type="ResizeShortestEdge", short_edge_length=150, max_size=400)]
    )
    sample = ds[0]
    n = len(sample["boxes"])
    assert sample["img"].shape == (150, 200, 3) and sample["img_shape"] == (150, 200)
    assert sample["masks"].shape == (n, 150, 200) and sample["masks"].dtype == np.uint8
    # each mask lies inside its box (polygons were scaled with the image) and fills most of it
    for box, mask in zip(sample["boxes"], sample["masks"]):
        ys, xs = np.nonzero(mask)
        assert xs.min() >= box[0] - 1.5 and xs.max() <= box[2] + 1.5
        assert ys.min() >= box[1] - 1.5 and ys.max() <= box[3] + 1.5
        assert mask.sum() > 0.4 * (box[2] - box[0]) * (box[3] - box[1])
    gt = ds.get_ann(0)
    assert gt["masks"].shape == (n, 600, 800)


def _write_bad_set(tmp_path, missing_file=False, corrupt_file=False, unknown_cat=False):
    img_dir = tmp_path / "images"
    img_dir.mkdir()
    images = []
    for i in range(3):
        cv2.imwrite(str(img_dir / f"{i}.png"), np.full((40, 50, 3), 30 * i, dtype=np.uint8))
        images.append(dict(id=10 + i, file_name=f"{i}.png", height=40, width=50))
    anns = [
        dict(id=1, image_id=10, category_id=7, bbox=[5, 5, 10, 10], iscrowd=0),  # good
        dict(id=2, image_id=10, category_id=7, bbox=[5, 5, 0, 10], iscrowd=0),  # zero width
        dict(id=3, image_id=10, category_id=9, bbox=[40, 30, 20, 20], iscrowd=0),  # clipped
        dict(id=4, image_id=11, category_id=9, bbox=[60, 5, 5, 5], iscrowd=0),  # outside
        dict(id=5, image_id=11, category_id=9, bbox=[None, 5, 5, 5], iscrowd=0),  # NaN
        dict(id=6, image_id=12, category_id=9, bbox=[1, 1, 20, 20], iscrowd=1),  # crowd
        dict(id=7, image_id=12, category_id=9, bbox=[2, 2, 8, -4], iscrowd=0),  # inverted
    ]
    if unknown_cat:
        anns.append(dict(id=8, image_id=12, category_id=99, bbox=[1, 1, 5, 5], iscrowd=0))
    if missing_file:
        images.append(dict(id=13, file_name="missing.png", height=40, width=50))
        anns.append(dict(id=9, image_id=13, category_id=7, bbox=[1, 1, 5, 5], iscrowd=0))
    if corrupt_file:
        (img_dir / "corrupt.png").write_bytes(b"not an image at all")
        images.append(dict(id=14, file_name="corrupt.png", height=40, width=50))
        anns.append(dict(id=10, image_id=14, category_id=7, bbox=[1, 1, 5, 5], iscrowd=0))
    cats = [dict(id=7, name="a"), dict(id=9, name="b")]
    ann_file = tmp_path / "ann.json"
    ann_file.write_text(json.dumps(dict(images=images, annotations=anns, categories=cats)))
    return str(ann_file), str(img_dir)


def test_bad_annotations_are_dropped_clipped_and_counted(tmp_path):
    ann_file, img_dir = _write_bad_set(tmp_path)
    with pytest.warns(UserWarning, match="1 boxes clipped to the image, .*4 invalid boxes dropped"):
        ds = CocoDataset(ann_file=ann_file, img_dir=img_dir, filter_empty=True)
    assert ds.stats["invalid boxes dropped (zero-area, inverted, NaN or outside)"] == 4
    assert ds.stats["boxes clipped to the image"] == 1
    # image 11 lost all its boxes; image 12 only has a crowd (ignored) box: both filtered
    assert ds.img_ids == [10]
    assert ds.stats["images without objects filtered"] == 2
    ann = ds.get_ann(0)
    assert np.allclose(ann["boxes"], [[5, 5, 15, 15], [40, 30, 50, 40]])
    assert ann["labels"].tolist() == [0, 1]
    with pytest.warns(UserWarning, match="4 invalid boxes dropped"):
        kept = CocoDataset(ann_file=ann_file, img_dir=img_dir, filter_empty=False)
    assert kept.img_ids == [10, 11, 12]
    assert kept.get_ann(2)["ignore"].tolist() == [True]  # iscrowd -> ignore
    sample = kept[1]
    assert sample["boxes"].shape == (0, 4) and sample["img"].shape == (40, 50, 3)


def test_unknown_category_raises_or_is_counted(tmp_path):
    ann_file, img_dir = _write_bad_set(tmp_path, unknown_cat=True)
    with pytest.raises(ValueError, match=r"category_id 99.*ann\.json|ann\.json.*category_id 99"):
        CocoDataset(ann_file=ann_file, img_dir=img_dir)
    with pytest.warns(UserWarning, match="1 annotations with unknown category ids skipped"):
        ds = CocoDataset(ann_file=ann_file, img_dir=img_dir, strict=False, filter_empty=False)
    assert ds.stats["annotations with unknown category ids skipped"] == 1


def test_missing_image_file_named_or_skipped(tmp_path):
    ann_file, img_dir = _write_bad_set(tmp_path, missing_file=True)
    with pytest.raises(FileNotFoundError, match="missing.png"):
        CocoDataset(ann_file=ann_file, img_dir=img_dir)
    with pytest.warns(UserWarning, match="1 missing image files skipped"):
        ds = CocoDataset(ann_file=ann_file, img_dir=img_dir, strict=False, filter_empty=False)
    assert 13 not in ds.img_ids and len(ds) == 3


def test_corrupt_image_raises_or_is_skipped(tmp_path):
    ann_file, img_dir = _write_bad_set(tmp_path, corrupt_file=True)
    with pytest.warns(UserWarning, match="4 invalid boxes dropped"):
        ds = CocoDataset(ann_file=ann_file, img_dir=img_dir, filter_empty=False)
    index = ds.img_ids.index(14)
    with pytest.raises(ImageReadError, match="corrupt.png"):
        ds[index]
    with pytest.warns(UserWarning, match="4 invalid boxes dropped"):
        lenient = CocoDataset(ann_file=ann_file, img_dir=img_dir, filter_empty=False, strict=False)
    with pytest.warns(UserWarning, match="corrupt.png"):
        skipped = lenient[index]
    assert isinstance(skipped, Skipped) and skipped.index == index and skipped.img_id == 14
    assert skipped.file.endswith("corrupt.png") and skipped.reason.startswith("unreadable image")
    assert lenient.stats["unreadable images skipped"] == 1
    both = ConcatDataset([lenient, lenient])
    assert both[len(lenient) + index].index == len(lenient) + index  # its index in the concatenation


def test_concat_and_registry(fruits_root, tmp_path):
    cfg = dict(
        type="CocoDataset",
        ann_file=os.path.join(fruits_root, "annotations.json"),
        img_dir=os.path.join(fruits_root, "images"),
    )
    both = DATASETS.build(dict(type="ConcatDataset", datasets=[cfg, cfg]))
    assert len(both) == 10 and len(both.img_ids) == 10 and len(both.aspect_ratios) == 10
    assert both.class_names == ["date", "fig", "hazelnut"]
    assert np.array_equal(both.get_ann(7)["boxes"], both.datasets[1].get_ann(2)["boxes"])
    assert not np.array_equal(both.get_ann(7)["boxes"], both.datasets[0].get_ann(1)["boxes"])
    ann_file, img_dir = _write_bad_set(tmp_path)
    with pytest.warns(UserWarning):
        other = CocoDataset(ann_file=ann_file, img_dir=img_dir)
    with pytest.raises(ValueError, match="classes"):
        ConcatDataset([both.datasets[0], other])


def test_labels_follow_the_order_of_the_given_classes(fruits_root):
    """A config that lists its classes out of category-id order gets labels in its own order,
    so the names it stores for the demo and the labels agree."""
    from resdet.data.datasets import CocoDataset

    ds = CocoDataset(
        os.path.join(fruits_root, "annotations.json"), os.path.join(fruits_root, "images"), classes=("hazelnut", "date")
    )
    by_id = {c["id"]: c["name"] for c in ds.coco.cats.values()}
    assert ds.class_names == ["hazelnut", "date"]
    assert [by_id[i] for i in ds.label_to_cat_id] == ["hazelnut", "date"]
    for idx in range(len(ds)):
        ann = ds.get_ann(idx)
        assert set(np.asarray(ann["labels"]).tolist()) <= {0, 1}
