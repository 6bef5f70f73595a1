import os
import shutil

import numpy as np
import pytest

from resdet.data.datasets import ConcatDataset, VOCDataset
from resdet.registry import DATASETS

BCCD_CLASSES = ("RBC", "WBC", "Platelets")


@pytest.fixture(scope="module")
def bccd_trainval(bccd_root):
    with pytest.warns(UserWarning, match="2 invalid boxes dropped"):
        return VOCDataset(root=bccd_root, split="trainval", classes=BCCD_CLASSES, filter_empty=False)


def test_bccd_zero_area_boxes_dropped_and_counted(bccd_trainval):
    ds = bccd_trainval
    assert len(ds) == 7
    assert ds.stats["invalid boxes dropped (zero-area, inverted, NaN or outside)"] == 2
    total = sum(len(ds.get_ann(i)["boxes"]) for i in range(len(ds)))
    assert total == 113 - 2  # 113 objects in the 7 xml files, two of them points
    for stem, objects in (("BloodImage_00338", 14), ("BloodImage_00343", 12)):  # one point each
        boxes = ds.get_ann(ds.img_ids.index(stem))["boxes"]
        assert len(boxes) == objects - 1
        assert ((boxes[:, 2] - boxes[:, 0]) > 0).all() and ((boxes[:, 3] - boxes[:, 1]) > 0).all()


def test_bccd_one_based_conversion_and_interface(bccd_trainval):
    ds = bccd_trainval
    ann = ds.get_ann(ds.img_ids.index("BloodImage_00000"))
    # first object of BloodImage_00000.xml: WBC xmin 260 ymin 177 xmax 491 ymax 376
    assert np.allclose(ann["boxes"][0], [259, 176, 491, 376])
    assert ds.class_names[ann["labels"][0]] == "WBC"
    assert ann["orig_size"] == (480, 640)
    assert ds.label_to_cat_id == list(BCCD_CLASSES)
    assert ds.aspect_ratios[0] == pytest.approx(640 / 480)
    sample = ds[0]
    assert sample["img"].shape == (480, 640, 3) and sample["img"].dtype == np.uint8
    assert sample["orig_size"] == (480, 640)


def test_splits_and_val_contains_one_zero_area_box(bccd_root):
    with pytest.warns(UserWarning, match="1 invalid boxes dropped"):
        val = DATASETS.build(dict(type="VOCDataset", root=bccd_root, split="val", classes=BCCD_CLASSES))
    assert len(val) == 4 and "BloodImage_00338" in val.img_ids
    with pytest.warns(UserWarning, match="1 invalid boxes dropped"):
        train = VOCDataset(root=bccd_root, split="train", classes=BCCD_CLASSES)
    assert train.img_ids == ["BloodImage_00001", "BloodImage_00003", "BloodImage_00343"]
    with pytest.raises(FileNotFoundError, match=r"test\.txt.*splits there: train, trainval, val"):
        VOCDataset(root=bccd_root, split="test", classes=BCCD_CLASSES)


def test_bccd_full_set_counts(shared_data):
    """Optional larger check on all 292 BCCD photos."""
    root = os.path.join(shared_data, "bccd_voc")
    with pytest.warns(UserWarning, match="2 invalid boxes dropped"):
        ds = VOCDataset(root=root, split="trainval", classes=BCCD_CLASSES, filter_empty=False)
    assert len(ds) == 292
    assert sum(len(ds.get_ann(i)["boxes"]) for i in range(len(ds))) == 3943 - 2  # two points
    with pytest.warns(UserWarning, match="1 invalid boxes dropped"):
        assert len(VOCDataset(root=root, split="val", classes=BCCD_CLASSES)) == 87
    with pytest.warns(UserWarning):
        union = ConcatDataset(
            [dict(type="VOCDataset", root=root, split=s, classes=BCCD_CLASSES) for s in ("train", "val")]
        )
    assert len(union) == 292 and set(union.img_ids) == set(ds.img_ids)


def _copy_subset(src, tmp_path, ids):
    for sub in ("Annotations", "JPEGImages", "ImageSets/Main"):
        os.makedirs(tmp_path / sub, exist_ok=True)
    for i in ids:
        shutil.copy(os.path.join(src, "Annotations", f"{i}.xml"), tmp_path / "Annotations")
        shutil.copy(os.path.join(src, "JPEGImages", f"{i}.jpg"), tmp_path / "JPEGImages")
    (tmp_path / "ImageSets/Main/trainval.txt").write_text("\n".join(ids) + "\n")
    return str(tmp_path)


def test_difficult_unknown_class_and_missing_image(bccd_root, tmp_path):
    ids = ["BloodImage_00000", "BloodImage_00001", "BloodImage_00002"]
    root = _copy_subset(bccd_root, tmp_path, ids)
    xml = tmp_path / "Annotations/BloodImage_00001.xml"
    text = xml.read_text()
    text = text.replace("<difficult>0</difficult>", "<difficult>1</difficult>", 1)
    text = text.replace("<name>RBC</name>", "<name>Neutrophil</name>", 1)
    xml.write_text(text)
    os.remove(tmp_path / "JPEGImages/BloodImage_00002.jpg")
    with pytest.raises(ValueError, match=r"BloodImage_00001\.xml.*'Neutrophil'"):
        VOCDataset(root=root, classes=BCCD_CLASSES)
    with pytest.warns(UserWarning, match="1 missing image files skipped, 1 objects of unknown classes skipped"):
        ds = VOCDataset(root=root, classes=BCCD_CLASSES, strict=False)
    assert ds.img_ids == ids[:2]
    ann = ds.get_ann(1)
    assert ann["ignore"].sum() == 1  # the difficult object is kept as an ignore box
    with pytest.warns(UserWarning, match="1 missing image files skipped"):
        no_difficult = VOCDataset(root=root, classes=BCCD_CLASSES, strict=False, keep_difficult=False)
    assert len(no_difficult.get_ann(1)["boxes"]) == len(ann["boxes"]) - 1
    xml.write_text(text.replace("<name>Neutrophil</name>", "<name>RBC</name>"))
    with pytest.raises(FileNotFoundError, match="BloodImage_00002.jpg"):
        VOCDataset(root=root, classes=BCCD_CLASSES)


def test_voc0712_style_union(bccd_root):
    root = bccd_root
    with pytest.warns(UserWarning):
        union = ConcatDataset(
            [dict(type="VOCDataset", root=root, split=s, classes=BCCD_CLASSES) for s in ("train", "val")]
        )
    assert len(union) == 7  # train (3) then val (4)
    assert union.img_ids[:3] == ["BloodImage_00001", "BloodImage_00003", "BloodImage_00343"]
    assert set(union.img_ids) == {line.strip() for line in open(os.path.join(root, "ImageSets/Main/trainval.txt"))}
