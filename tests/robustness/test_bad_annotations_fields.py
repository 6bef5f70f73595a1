"""One rule per annotation field (docs/CONTRACTS.md, "Annotation fields: one rule each"): a
field that breaks its rule is a ``DataError`` naming the file, the record and the field, or
(``strict=False``) a counted skip -- never a silent reinterpretation."""

import os
import re

import numpy as np
import pytest
import torch

from resdet.data.datasets import CocoDataset, VOCDataset
from resdet.data.datasets.det_base import DROPPED_BOXES, SIZE_MISMATCH
from resdet.evaluation import CocoMetric
from resdet.utils.errors import DataError

VOC = ("cat", "dog")


def _coco(data, edit, **kwargs):
    content = data.coco_data()
    edit(content)
    ann_file, img_dir = data.coco(content)
    return CocoDataset(ann_file, img_dir, **kwargs)


def _strict_and_lenient(data, edit, error, kind, **kwargs):
    """The strict error (matching ``error``) and the lenient dataset, whose ``kind`` count is 1."""
    with pytest.raises(DataError, match=error):
        _coco(data, edit, **kwargs)
    with pytest.warns(UserWarning, match=f"1 {kind}"):
        ds = _coco(data, edit, strict=False, **kwargs)
    assert ds.stats[kind] == 1
    return ds


def test_string_iscrowd_is_not_a_crowd(data):
    ds = _strict_and_lenient(
        data,
        lambda c: c["annotations"][0].update(iscrowd="0"),
        r"annotation 100 of image 10 in .*ann\.json: 'iscrowd' is '0'; it must be 0 or 1",
        "annotations with an invalid field skipped",
        filter_empty=False,
    )
    assert ds.img_ids == [10, 11, 12] and len(ds.get_ann(0)["boxes"]) == 0 and len(ds.get_ann(1)["boxes"]) == 1


@pytest.mark.parametrize("value, crowd", [(0, False), (1, True), (True, True), (None, False)])
def test_valid_iscrowd_values(data, value, crowd):
    def edit(content):
        if value is None:
            content["annotations"][0].pop("iscrowd")
        else:
            content["annotations"][0]["iscrowd"] = value

    ds = _coco(data, edit, filter_empty=False)
    assert ds.get_ann(0)["ignore"].tolist() == [crowd]


@pytest.mark.parametrize("bbox", [["5", "5", "20", "15"], "5, 5, 20, 15", [5, 5, 20, True]])
def test_string_bbox_is_dropped_counted_and_kept_out_of_evaluation(data, bbox):
    def edit(content):
        content["annotations"].append(dict(id=300, image_id=10, category_id=7, bbox=bbox, iscrowd=0, area=1.0))

    with pytest.warns(UserWarning, match=re.escape(f"1 {DROPPED_BOXES}")):
        ds = _coco(data, edit)
    np.testing.assert_allclose(ds.get_ann(0)["boxes"], [[5, 5, 25, 20]])  # the string one is gone
    metric = CocoMetric(iou_type="bbox").bind(ds)  # used to crash inside pycocotools
    preds = [
        dict(
            boxes=torch.as_tensor(ds.get_ann(i)["boxes"]),
            scores=torch.ones(1),
            labels=torch.as_tensor(ds.get_ann(i)["labels"]),
        )
        for i in range(len(ds))
    ]
    metric.process(preds, [dict(img_id=i) for i in ds.img_ids])
    assert metric.compute()["bbox_AP"] == pytest.approx(1.0)


@pytest.mark.parametrize("field, value", [("width", "50"), ("height", 40.5), ("width", True), ("file_name", 3)])
def test_image_size_and_name_must_be_numbers_and_a_string(data, field, value):
    ds = _strict_and_lenient(
        data,
        lambda c: c["images"][0].update({field: value}),
        rf"image id 10 .*ann\.json has no valid 'height'/'width'/'file_name' "
        rf"\({field}={re.escape(repr(value))}",
        "images without a valid size skipped",
    )
    assert ds.img_ids == [11, 12]


def test_whole_float_size_is_read(data):
    ds = _coco(data, lambda c: c["images"][0].update(width=50.0, height=40.0))
    assert ds.get_ann(0)["orig_size"] == (40, 50)


def test_duplicate_image_id_is_named(data):
    def edit(content):
        content["images"].append(dict(id=11, file_name="0.png", height=40, width=50))

    ds = _strict_and_lenient(
        data,
        edit,
        r"ann\.json: image id 11 appears twice in 'images' \(entries 1 and 3\)",
        "images with a duplicate id skipped",
    )
    assert ds.img_ids == [10, 11, 12] and ds.describe(1).split("/")[-1].startswith("1.png")
    assert len(ds.get_ann(1)["boxes"]) == 1  # the first entry keeps its boxes


def test_annotation_of_an_unknown_image_is_counted(data):
    def edit(content):
        content["annotations"].append(dict(id=301, image_id=99, category_id=7, bbox=[1, 1, 5, 5], iscrowd=0))

    ds = _strict_and_lenient(
        data,
        edit,
        r"annotation 301 \(annotations\[3\]\) in .*ann\.json has image_id 99, "
        r"which is not the id of an entry of 'images'",
        "annotations of images not in 'images' skipped",
    )
    assert len(ds) == 3


def test_impossible_image_size_is_an_error_not_lost_masks(data):
    ds = _strict_and_lenient(
        data,
        lambda c: c["images"][0].update(width=50000, height=50000),
        r"image id 10 .*height x width = 50000 x 50000 is more pixels than any decodable image",
        "images without a valid size skipped",
        with_masks=True,
    )
    assert ds.img_ids == [11, 12]


def test_wrong_recorded_size_keeps_the_masks(data):
    """A plausible wrong size is repaired (annotations rescaled with the image): the mask
    moves with its box instead of vanishing."""
    with pytest.warns(UserWarning, match="is 50x40 but its annotation says 100x80"):
        ds = _coco(data, lambda c: c["images"][0].update(width=100, height=80), with_masks=True)
        sample = ds[0]
    assert ds.stats[SIZE_MISMATCH] == 1
    np.testing.assert_allclose(sample["boxes"], [[2.5, 2.5, 12.5, 10]])
    assert sample["masks"].shape == (1, 40, 50) and 60 <= sample["masks"].sum() <= 80  # ~10 x 7.5 pixels


@pytest.mark.parametrize("value", ["yes", "true", "2", "-1"])
def test_voc_difficult_must_be_0_or_1(data, value):
    root = data.voc()
    xml = os.path.join(root, "Annotations", "img_0.xml")
    with open(xml) as fh:
        text = fh.read().replace("<difficult>0</difficult>", f"<difficult>{value}</difficult>")
    with open(xml, "w") as fh:
        fh.write(text)
    with pytest.raises(
        DataError,
        match=rf"img_0\.xml, object 1 \('cat'\): <difficult> is '{value}'; "
        "it must be 0 or 1",
    ):
        VOCDataset(root, split="train", classes=VOC)
    with pytest.warns(UserWarning, match="1 objects with an invalid <difficult> skipped"):
        ds = VOCDataset(root, split="train", classes=VOC, strict=False, filter_empty=False)
    assert len(ds.get_ann(0)["boxes"]) == 0 and len(ds.get_ann(1)["boxes"]) == 1


def test_voc_difficult_1_is_ignored_and_absent_is_0(data):
    root = data.voc(ids=("img_0",))
    xml = os.path.join(root, "Annotations", "img_0.xml")
    with open(xml) as fh:
        text = fh.read()
    for tag, ignored in (("<difficult>1</difficult>", True), ("", False)):
        with open(xml, "w") as fh:
            fh.write(text.replace("<difficult>0</difficult>", tag))
        ds = VOCDataset(root, split="train", classes=VOC, filter_empty=False)
        assert ds.get_ann(0)["ignore"].tolist() == [ignored]


def test_voc_id_listed_twice_is_read_once(data):
    root = data.voc(split_text="img_0\nimg_1\nimg_0\n")
    with pytest.raises(DataError, match=r"train\.txt: image id 'img_0' on line 3 is listed already on line 1"):
        VOCDataset(root, split="train", classes=VOC)
    with pytest.warns(UserWarning, match="1 ids listed twice in the image list skipped"):
        ds = VOCDataset(root, split="train", classes=VOC, strict=False)
    assert ds.img_ids == ["img_0", "img_1"]


def test_voc_size_must_be_a_whole_number(data):
    root = data.voc(ids=("img_0",))
    xml = os.path.join(root, "Annotations", "img_0.xml")
    with open(xml) as fh:
        text = fh.read()
    with open(xml, "w") as fh:
        fh.write(text.replace("<width>80</width>", "<width>eighty</width>"))
    with pytest.raises(DataError, match=r"img_0\.xml: <size> has <width> 'eighty'"):
        VOCDataset(root, split="train", classes=VOC)
    with open(xml, "w") as fh:
        fh.write(text.replace("<width>80</width>", ""))  # absent: read from the image
    assert VOCDataset(root, split="train", classes=VOC).get_ann(0)["orig_size"] == (60, 80)
