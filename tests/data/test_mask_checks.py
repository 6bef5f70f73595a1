"""Bad instance masks in COCO files are dropped with counted warnings, or raise errors that
name the image and the annotation -- never a crash inside pycocotools or a wrong target."""

import json
import warnings

import cv2
import numpy as np
import pycocotools.mask as mask_utils
import pytest

from resdet.data.datasets.coco import CocoDataset
from resdet.structures.mask_checks import (
    EMPTY_AFTER_TRANSFORM,
    FEW_POINTS,
    NO_VALID_MASK,
    OUTSIDE,
    SELF_INTERSECTING,
    check_segmentation,
    drop_empty_masks,
    polygon_self_intersects,
    rle_string_counts,
)

GOOD = [[10.0, 10.0, 50.0, 10.0, 50.0, 40.0, 10.0, 40.0]]


def _write(tmp_path, annotations, height=60, width=80):
    img_dir = tmp_path / "images"
    img_dir.mkdir(exist_ok=True)
    cv2.imwrite(str(img_dir / "a.png"), np.full((height, width, 3), 127, np.uint8))
    data = {
        "images": [{"id": 7, "file_name": "a.png", "height": height, "width": width}],
        "categories": [{"id": 1, "name": "thing"}],
        "annotations": [
            dict(id=i + 100, image_id=7, category_id=1, iscrowd=0, bbox=[10, 10, 40, 30], area=1200.0, **a)
            for i, a in enumerate(annotations)
        ],
    }
    path = tmp_path / "ann.json"
    path.write_text(json.dumps(data))
    return str(path), str(img_dir)


def test_polygon_problems_are_dropped_and_counted(tmp_path):
    bowtie = [[10.0, 10.0, 50.0, 40.0, 50.0, 10.0, 10.0, 40.0]]
    anns = [
        dict(segmentation=GOOD),
        dict(segmentation=[[10.0, 10.0, 20.0, 20.0]]),  # 2 points
        dict(segmentation=bowtie),  # self-intersecting
        dict(segmentation=[[200.0, 200.0, 260.0, 200.0, 260.0, 250.0]]),  # outside the image
        dict(segmentation=GOOD + [[1.0, 1.0, 2.0, 2.0]]),
    ]  # one bad part of two
    ann_file, img_dir = _write(tmp_path, anns)
    with pytest.warns(UserWarning) as record:
        dataset = CocoDataset(ann_file, img_dir, with_masks=True)
    text = " ".join(str(w.message) for w in record)
    assert "3 instances without a valid mask dropped" in text
    assert dataset.stats[FEW_POINTS] == 2 and dataset.stats[SELF_INTERSECTING] == 1
    assert dataset.stats[OUTSIDE] == 1 and dataset.stats[NO_VALID_MASK] == 3
    sample = dataset[0]
    assert len(sample["boxes"]) == 2 and sample["masks"].shape == (2, 60, 80)
    assert sample["masks"][0].sum() == sample["masks"][1].sum() > 1000  # the repaired one kept its good part
    assert polygon_self_intersects(np.array(bowtie[0]).reshape(-1, 2))
    assert not polygon_self_intersects(np.array(GOOD[0]).reshape(-1, 2))


def test_inconsistent_rle_raises_naming_image_and_annotation(tmp_path):
    wrong_size = mask_utils.encode(np.asfortranarray(np.ones((30, 40), np.uint8)))
    wrong_size["counts"] = wrong_size["counts"].decode("ascii")
    ann_file, img_dir = _write(tmp_path, [dict(segmentation=GOOD), dict(segmentation=wrong_size)])
    with pytest.raises(
        ValueError,
        match=r"annotation id 101 of image id 7 .*RLE size \[30, 40\] disagrees "
        r"with the image size \[60, 80\]",
    ):
        CocoDataset(ann_file, img_dir, with_masks=True)
    with pytest.warns(UserWarning, match="1 annotations with inconsistent masks skipped"):
        dataset = CocoDataset(ann_file, img_dir, with_masks=True, strict=False)
    assert len(dataset.get_ann(0)["boxes"]) == 1
    # counts that do not cover the image, malformed strings, empty RLEs
    short = {"size": [60, 80], "counts": [10, 20]}
    assert "add up to 30 pixels" in check_segmentation(short, 60, 80, "here").error
    assert "malformed" in check_segmentation({"size": [60, 80], "counts": "\x01\x02"}, 60, 80, "here").error
    empty = mask_utils.encode(np.asfortranarray(np.zeros((60, 80), np.uint8)))
    check = check_segmentation(empty, 60, 80, "here")
    assert check.segmentation is None and check.error is None and sum(check.counts.values()) == 1
    assert "unsupported segmentation" in check_segmentation("polygon", 60, 80, "here").error


def test_rle_strings_decode_like_pycocotools():
    rng = np.random.default_rng(0)
    for _ in range(5):
        mask = (rng.random((37, 53)) > 0.6).astype(np.uint8)
        rle = mask_utils.encode(np.asfortranarray(mask))
        runs = rle_string_counts(rle["counts"])
        assert sum(runs) == 37 * 53 and sum(runs[1::2]) == mask.sum() == mask_utils.area(rle)


def test_instance_empty_after_resizing_is_dropped(tmp_path):
    thin = [[5.0, 5.0, 70.0, 5.0, 70.0, 5.6, 5.0, 5.6]]  # 0.6 px tall: nothing left at 1/4 scale
    ann_file, img_dir = _write(tmp_path, [dict(segmentation=GOOD), dict(segmentation=thin)])
    dataset = CocoDataset(
        ann_file,
        img_dir,
        with_masks=True,
        pipeline=[dict(type="ResizeShortestEdge", short_edge_length=15, max_size=None)],
    )
    with pytest.warns(UserWarning, match=r"image 7: 1 instance\(s\) dropped because their mask is empty"):
        sample = dataset[0]
    assert len(sample["boxes"]) == len(sample["labels"]) == len(sample["masks"]) == 1
    assert sample["masks"][0].sum() > 0
    # ignored (crowd) instances keep their place even when empty
    crowd = dict(
        img_id=1,
        boxes=np.zeros((1, 4), np.float32),
        labels=np.zeros(1, np.int64),
        ignore=np.ones(1, bool),
        masks=np.zeros((1, 8, 8), np.uint8),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(drop_empty_masks(crowd)["boxes"]) == 1
    assert EMPTY_AFTER_TRANSFORM.startswith("instances whose mask is empty")
