"""The bad-data corpus: every broken or oddly dressed file generated at test time (see
conftest.py) ends in exactly one of three outcomes, asserted here:

* a clear error -- ``DataError`` / ``ImageReadError`` (or its ``FileNotFoundError`` flavour)
  whose message names the file and, where one applies, the line, field, image or annotation;
* a counted skip (``strict=False``, or a repairable box) -- the count in ``stats`` /
  ``num_skipped``, the file in the (once per file) warning;
* handled -- a valid file in odd clothing decodes to H x W x 3 uint8 RGB the right way up,
  with its annotations on the right pixels.

Cases that used to hang run under ``time_limit`` so a regression fails instead of hanging.
"""

import os
import time
import warnings

import numpy as np
import pytest
from PIL import Image, ImageOps

from resdet.data.collate import SkipCollate, det_collate
from resdet.data.datasets import CocoDataset, VOCDataset
from resdet.data.datasets.det_base import DROPPED_BOXES, SIZE_MISMATCH
from resdet.data.image_io import ImageReadError, MissingImageError, decode_image, imread_rgb
from resdet.data.loader import build_dataloader
from resdet.data.problems import DataFileNotFoundError, Skipped
from resdet.data.samplers import AspectRatioGroupedSampler, DistributedTrainSampler, InferenceSampler
from resdet.structures.mask_checks import FEW_POINTS, NO_VALID_MASK
from resdet.utils.errors import ConfigError, DataError

RED, GREEN, BLUE, GREY = (255, 0, 0), (0, 255, 0), (0, 0, 255), (128, 128, 128)


def _colour_at(img, y, x):
    """Mean colour of a 3x3 patch (JPEG blurs block edges)."""
    return img[max(0, y - 1) : y + 2, max(0, x - 1) : x + 2].reshape(-1, 3).mean(0)


def _assert_corners(img, tl, tr, bl, br, tol=40):
    h, w = img.shape[:2]
    for (y, x), want in (((3, 3), tl), ((3, w - 4), tr), ((h - 4, 3), bl), ((h - 4, w - 4), br)):
        got = _colour_at(img, y, x)
        assert np.abs(got - np.array(want)).max() <= tol, f"pixel ({y}, {x}) is {got}, expected {want}"


def _messages(record):
    return [str(w.message) for w in record]


def _coco(data, edit=None, **kwargs):
    """Build a CocoDataset over ``data.coco_data()`` changed by ``edit(dict)``."""
    content = data.coco_data()
    if edit is not None:
        edit(content)
    ann_file, img_dir = data.coco(content)
    return CocoDataset(ann_file, img_dir, **kwargs), ann_file


class _Empty:
    """A dataset with nothing in it (what an over-filtered set used to become)."""

    aspect_ratios: list = []

    def __len__(self):
        return 0

    def __repr__(self):
        return "_Empty(ann_file=nothing.json)"


# =============================================================================== images
BROKEN_IMAGES = [
    ("zero_bytes", "is empty (0 bytes)"),
    ("truncated_jpeg", "is truncated"),
    ("truncated_png", "is not a readable image"),
    ("text_as_jpg", "is not a readable image"),
    ("bomb_jpeg", "claims 15000 x 15000 pixels"),
    ("bomb_png", "claims 100000 x 100000 pixels"),
]


@pytest.mark.parametrize("kind, says", BROKEN_IMAGES, ids=[k for k, _ in BROKEN_IMAGES])
def test_broken_image_is_an_image_read_error_naming_the_file(data, kind, says):
    path = data.image(kind)
    start = time.perf_counter()
    with pytest.raises(ImageReadError) as info:
        imread_rgb(path)
    assert path in str(info.value) and says in str(info.value)
    if kind.startswith("bomb"):  # refused from the header: no 2 GB decode of grey pixels
        assert time.perf_counter() - start < 1.0
        assert "limit" in str(info.value) and "RESDET_MAX_IMAGE_PIXELS" in str(info.value)


def test_missing_image_is_a_file_not_found_image_read_error(data):
    path = os.path.join(data.root, "nowhere.jpg")
    with pytest.raises(MissingImageError, match="nowhere.jpg does not exist") as info:
        imread_rgb(path)
    assert isinstance(info.value, FileNotFoundError) and isinstance(info.value, ImageReadError)


def test_pixel_limit_follows_env_var_and_argument(data, monkeypatch):
    path = data.image("rgb_jpeg")  # 40 x 60 = 2400 pixels
    monkeypatch.setenv("RESDET_MAX_IMAGE_PIXELS", "1000")
    with pytest.raises(ImageReadError, match=r"claims 60 x 40 pixels .*limit of 1000 pixels"):
        imread_rgb(path)
    assert imread_rgb(path, max_pixels=2400).shape == (40, 60, 3)  # the argument wins


def test_decoder_error_becomes_image_read_error_naming_the_file(data, monkeypatch):
    path = data.image("bomb_png")
    monkeypatch.setenv("RESDET_MAX_IMAGE_PIXELS", str(10**12))  # past our check: OpenCV's own refusal
    with pytest.raises(ImageReadError, match=r"bomb_png\.png cannot be decoded"):
        imread_rgb(path)


ODD_BUT_VALID = ["rgb_jpeg", "rgba", "png16", "cmyk", "png_as_jpg", "jpeg_trailing"]


@pytest.mark.parametrize("kind", ODD_BUT_VALID)
def test_valid_file_in_odd_clothing_decodes_to_rgb(data, kind):
    img = imread_rgb(data.image(kind))
    assert img.dtype == np.uint8 and img.shape == (40, 60, 3) and img.flags["C_CONTIGUOUS"]
    _assert_corners(img, RED, GREEN, BLUE, GREY, tol=8 if kind in ("rgba", "png16", "png_as_jpg") else 45)


def test_grayscale_decodes_to_three_equal_channels(data):
    img = imread_rgb(data.image("grayscale"))  # the red channel of the pattern
    assert img.dtype == np.uint8 and img.shape == (40, 60, 3)
    assert (img[..., 0] == img[..., 1]).all() and (img[..., 1] == img[..., 2]).all()
    _assert_corners(img, (255,) * 3, (0,) * 3, (0,) * 3, (128,) * 3, tol=0)


# displayed corners (top-left, top-right, bottom-left, bottom-right) of the stored pattern
# (red, green / blue, grey) for EXIF 3 (180 degrees), 6 (90 clockwise), 8 (90 counter-clockwise)
EXIF_JPEG = {
    3: ((40, 60), (GREY, BLUE, GREEN, RED)),
    6: ((60, 40), (BLUE, RED, GREY, GREEN)),
    8: ((60, 40), (GREEN, GREY, RED, BLUE)),
}


@pytest.mark.parametrize("orientation", sorted(EXIF_JPEG))
def test_exif_oriented_jpeg_decodes_the_right_way_up(data, orientation):
    path = data.image(f"exif{orientation}")
    decoded = decode_image(path)
    shape, corners = EXIF_JPEG[orientation]
    assert decoded.img.shape == shape + (3,) and decoded.orientation == orientation
    assert decoded.stored_size == (40, 60)
    _assert_corners(decoded.img, *corners)
    with Image.open(path) as im:  # Pillow's reading of the same file agrees
        reference = np.asarray(ImageOps.exif_transpose(im).convert("RGB"), dtype=np.float64)
    assert np.abs(decoded.img.astype(np.float64) - reference).mean() < 3


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_exif_orientation_matches_pillow_exactly(data, orientation):
    path = data.image(f"exif{orientation}_png")
    with Image.open(path) as im:
        reference = np.asarray(ImageOps.exif_transpose(im).convert("RGB"))
    np.testing.assert_array_equal(imread_rgb(path), reference)


# =============================================================================== COCO json
BAD_BOXES = [
    ("nan", [float("nan"), 5, 10, 10], DROPPED_BOXES),
    ("null_box", None, DROPPED_BOXES),
    ("null_coordinate", [None, 5, 10, 10], DROPPED_BOXES),
    ("non_numeric", ["left", 5, 10, 10], DROPPED_BOXES),
    ("three_numbers", [1, 2, 3], DROPPED_BOXES),
    ("negative_size", [10, 10, -5, 8], DROPPED_BOXES),
    ("outside_image", [70, 5, 10, 10], DROPPED_BOXES),
    ("negative_origin", [-10, -4, 20, 14], "boxes clipped to the image"),
]


@pytest.mark.parametrize("case, bbox, kind", BAD_BOXES, ids=[c for c, _, _ in BAD_BOXES])
def test_bad_coco_box_is_dropped_or_clipped_and_counted(data, case, bbox, kind):
    def edit(content):
        content["annotations"].append(dict(id=200, image_id=10, category_id=9, bbox=bbox, iscrowd=0))

    with pytest.warns(UserWarning) as record:
        ds, ann_file = _coco(data, edit)
    assert ds.stats[kind] == 1
    summary = [m for m in _messages(record) if ann_file in m]
    assert summary and f"1 {kind}" in summary[0]
    boxes = ds.get_ann(0)["boxes"]
    if kind == DROPPED_BOXES:
        assert "image id 10" in summary[0]  # the first case is named
        np.testing.assert_allclose(boxes, [[5, 5, 25, 20]])
    else:
        np.testing.assert_allclose(boxes, [[5, 5, 25, 20], [0, 0, 10, 10]])


def test_unknown_category_is_a_data_error_or_a_counted_skip(data):
    def edit(content):
        content["annotations"].append(dict(id=201, image_id=11, category_id=99, bbox=[1, 1, 5, 5], iscrowd=0))

    with pytest.raises(DataError, match=r"annotation 201 of image 11 in .*ann\.json has category_id 99"):
        _coco(data, edit)
    with pytest.warns(UserWarning, match="1 annotations with unknown category ids skipped"):
        ds, _ = _coco(data, edit, strict=False)
    assert ds.stats["annotations with unknown category ids skipped"] == 1 and len(ds) == 3


def test_two_point_polygon_is_dropped_and_counted(data):
    def edit(content):
        content["annotations"][0]["segmentation"] = [[1, 1, 10, 10]]

    with pytest.warns(UserWarning, match="1 instances without a valid mask dropped"):
        ds, _ = _coco(data, edit, with_masks=True, filter_empty=False)
    assert ds.stats[FEW_POINTS] == 1 and ds.stats[NO_VALID_MASK] == 1
    assert len(ds.get_ann(0)["boxes"]) == 0 and ds[1]["masks"].shape == (1, 40, 50)


def test_wrong_size_rle_is_a_data_error_or_a_counted_skip(data):
    def edit(content):
        content["annotations"][0]["segmentation"] = {"size": [10, 10], "counts": [100]}

    with pytest.raises(
        DataError,
        match=r"annotation id 100 of image id 10 in .*ann\.json: RLE size \[10, 10\] "
        r"disagrees with the image size \[40, 50\]",
    ):
        _coco(data, edit, with_masks=True)
    with pytest.warns(UserWarning, match="1 annotations with inconsistent masks skipped"):
        ds, _ = _coco(data, edit, with_masks=True, strict=False)
    assert ds.img_ids == [11, 12]


def test_missing_image_file_is_named_or_skipped(data):
    def edit(content):
        content["images"].append(dict(id=13, file_name="gone.png", height=40, width=50))
        content["annotations"].append(dict(id=203, image_id=13, category_id=7, bbox=[1, 1, 5, 5]))

    with pytest.raises(
        MissingImageError, match=r"gone\.png \(image id 13\) listed in .*ann\.json does not exist"
    ) as info:
        _coco(data, edit)
    assert isinstance(info.value, FileNotFoundError)
    with pytest.warns(UserWarning, match="1 missing image files skipped"):
        ds, _ = _coco(data, edit, strict=False)
    assert ds.img_ids == [10, 11, 12] and ds.stats["missing image files skipped"] == 1


def test_json_syntax_error_names_file_and_line(data):
    ann_file, img_dir = data.coco(text='{\n "images": [],\n "annotations": [,],\n "categories": []\n}\n')
    with pytest.raises(DataError, match=r"ann\.json is not valid JSON: line 3, column 18"):
        CocoDataset(ann_file, img_dir)


def test_json_that_is_not_an_instances_file(data):
    ann_file, img_dir = data.coco(text="[1, 2, 3]")
    with pytest.raises(DataError, match=r"ann\.json is not an instances file"):
        CocoDataset(ann_file, img_dir)


EMPTY_COCO = [
    ("no_images_key", lambda c: c.pop("images"), r"ann\.json yields 0 images: .*no 'images' key"),
    ("empty_images", lambda c: c.update(images=[]), r"ann\.json yields 0 images: .*'images' is empty"),
    (
        "no_annotations_key",
        lambda c: c.pop("annotations"),
        r"ann\.json yields 0 images after filtering: 3 images read, 3 filtered because they have no .*object"
        r".*no 'annotations' key",
    ),
    (
        "only_crowds",
        lambda c: [a.update(iscrowd=1) for a in c["annotations"]],
        r"ann\.json yields 0 images after filtering: 3 images read, 3 filtered",
    ),
]


@pytest.mark.parametrize("case, edit, says", EMPTY_COCO, ids=[c for c, _, _ in EMPTY_COCO])
def test_coco_file_without_usable_images_is_a_data_error(data, time_limit, case, edit, says):
    with time_limit(30), pytest.raises(DataError, match=says):
        _coco(data, edit)


def test_every_image_missing_is_a_data_error_not_an_empty_dataset(data):
    content = data.coco_data()
    for image in content["images"]:
        image["file_name"] = "missing_" + image["file_name"]
    ann_file, img_dir = data.coco(content)
    with pytest.raises(DataError, match=r"3 images read, 3 skipped because their file does not exist"):
        CocoDataset(ann_file, img_dir, strict=False)


def _mismatch_set(data, recorded, boxes):
    """One 120 x 160 image whose json records ``recorded`` (h, w) and holds ``boxes`` (xywh)."""
    img = np.full((120, 160, 3), 90, np.uint8)
    data.picture(img, "big.png")
    content = dict(
        images=[dict(id=1, file_name="big.png", height=recorded[0], width=recorded[1])],
        annotations=[dict(id=i, image_id=1, category_id=7, bbox=b, iscrowd=0) for i, b in enumerate(boxes)],
        categories=[dict(c) for c in [dict(id=7, name="a")]],
    )
    return data.coco(content)


def test_size_mismatch_keeps_every_instance_in_pixel_coordinates(data):
    # twelve boxes over the whole 160 x 120 image; the json says 80 x 60 (a wrong size)
    boxes = [[x, y, 20, 15] for y in (5, 45, 95) for x in (5, 45, 85, 125)]
    ann_file, img_dir = _mismatch_set(data, (60, 80), boxes)
    with pytest.warns(UserWarning):  # load: boxes reaching past the recorded size
        ds = CocoDataset(ann_file, img_dir)
    with pytest.warns(
        UserWarning,
        match=r"big\.png \(image id 1\) is 160x120 but its annotation says 80x60; "
        r"boxes taken as pixel coordinates",
    ):
        sample = ds[0]
    expected = np.array([[x, y, x + w, y + h] for x, y, w, h in boxes], np.float32)
    np.testing.assert_allclose(sample["boxes"], expected)  # 12 instances, not 5
    assert ds.stats[SIZE_MISMATCH] == 1


def test_size_mismatch_rescales_annotations_made_at_the_recorded_size(data):
    ann_file, img_dir = _mismatch_set(data, (60, 80), [[10, 10, 20, 15], [60, 40, 20, 20]])
    ds = CocoDataset(ann_file, img_dir)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        samples = [ds[0] for _ in range(3)]
    np.testing.assert_allclose(samples[-1]["boxes"], [[20, 20, 60, 50], [120, 80, 160, 120]])
    assert ds.stats[SIZE_MISMATCH] == 3  # counted every time
    assert sum("big.png" in m for m in _messages(record)) == 1  # warned once


# ------------------------------------------------------------------ EXIF-oriented images in datasets
def _exif_set(data, orientation, recorded, **kwargs):
    """A stored 60 x 100 JPEG with EXIF ``orientation`` holding a red block at stored
    x 10..30, y 5..25 annotated there (a box and a polygon); the json records ``recorded``."""
    stored = np.full((60, 100, 3), 128, np.uint8)
    stored[5:25, 10:30] = RED
    data.picture(stored, "photo.jpg", exif_orientation=orientation)
    content = dict(
        images=[dict(id=1, file_name="photo.jpg", height=recorded[0], width=recorded[1])],
        annotations=[
            dict(
                id=1,
                image_id=1,
                category_id=7,
                bbox=[10, 5, 20, 20],
                iscrowd=0,
                segmentation=[[10, 5, 30, 5, 30, 25, 10, 25]],
            )
        ],
        categories=[dict(id=7, name="a")],
    )
    ann_file, img_dir = data.coco(content)
    return CocoDataset(ann_file, img_dir, **kwargs)


# (orientation, recorded size, exif_annotations) -> the box on the displayed image
EXIF_DATASET = [
    (6, (60, 100), "auto", [35, 10, 55, 30]),  # json has the stored size: rotated with the pixels
    (8, (60, 100), "auto", [5, 70, 25, 90]),
    (6, (100, 60), "auto", [10, 5, 30, 25]),  # json has the displayed size: drawn on it, kept
    (3, (60, 100), "auto", [10, 5, 30, 25]),  # 180 degrees: sizes agree, COCO convention (displayed)
    (3, (60, 100), "stored", [70, 35, 90, 55]),  # ... unless the tool annotated the stored pixels
]


@pytest.mark.parametrize(
    "orientation, recorded, mode, box", EXIF_DATASET, ids=[f"exif{o}-{r[1]}x{r[0]}-{m}" for o, r, m, _ in EXIF_DATASET]
)
def test_exif_rotated_image_keeps_its_boxes_on_the_object(data, orientation, recorded, mode, box):
    ds = _exif_set(data, orientation, recorded, exif_annotations=mode, with_masks=True)
    sample = ds[0]
    assert sample["img"].shape[:2] == ((100, 60) if orientation in (6, 8) else (60, 100))
    np.testing.assert_allclose(sample["boxes"], [box], atol=1e-4)
    x1, y1, x2, y2 = (int(v) for v in box)
    if mode == "stored" or recorded == (60, 100) and orientation in (6, 8):  # the box covers the red block
        assert np.abs(sample["img"][y1 + 2 : y2 - 2, x1 + 2 : x2 - 2].reshape(-1, 3).mean(0) - RED).max() < 30
        mask = sample["masks"][0].astype(bool)  # the polygon moved with it
        assert mask[y1 + 1 : y2 - 1, x1 + 1 : x2 - 1].all() and mask.sum() <= (x2 - x1 + 1) * (y2 - y1 + 1)
    assert ds.stats[SIZE_MISMATCH] == 0


# =============================================================================== VOC XML
def test_malformed_xml_is_a_data_error_or_a_counted_skip(data):
    root = data.voc(xml_text={"img_1": "<annotation><size><width>80</width></size"})
    with pytest.raises(DataError, match=r"img_1\.xml is not valid XML: .*line 1"):
        VOCDataset(root, split="train", classes=("cat", "dog"))
    with pytest.warns(UserWarning, match="1 unparsable annotation files skipped"):
        ds = VOCDataset(root, split="train", classes=("cat", "dog"), strict=False)
    assert ds.img_ids == ["img_0"]


def test_unknown_voc_class_is_a_data_error_or_a_counted_skip(data):
    root = data.voc(objects=[("cat", (5, 6, 30, 40)), ("zebra", (1, 1, 9, 9))])
    with pytest.raises(DataError, match=r"img_0\.xml has an object of class 'zebra'"):
        VOCDataset(root, split="train", classes=("cat", "dog"))
    with pytest.warns(UserWarning, match="2 objects of unknown classes skipped"):
        ds = VOCDataset(root, split="train", classes=("cat", "dog"), strict=False)
    assert len(ds.get_ann(0)["boxes"]) == 1


def test_non_numeric_voc_coordinate_names_file_object_and_field(data):
    root = data.voc(objects=[("cat", (5, 6, 30, 40)), ("dog", (4, "n/a", 20, 20))])
    with pytest.raises(DataError, match=r"img_0\.xml, object 2 \('dog'\): <bndbox><ymin> is 'n/a', not a number"):
        VOCDataset(root, split="train", classes=("cat", "dog"))
    with pytest.warns(UserWarning, match="2 objects with non-numeric coordinates skipped"):
        ds = VOCDataset(root, split="train", classes=("cat", "dog"), strict=False)
    np.testing.assert_allclose(ds.get_ann(0)["boxes"], [[4, 5, 30, 40]])  # VOC's 1-based xmin/ymin


def test_missing_voc_files_are_named(data):
    root = data.voc()
    os.remove(os.path.join(root, "Annotations", "img_0.xml"))
    with pytest.raises(
        DataFileNotFoundError, match=r"img_0\.xml \(image id 'img_0' of train\.txt\) does not exist"
    ) as info:
        VOCDataset(root, split="train", classes=("cat", "dog"))
    assert isinstance(info.value, FileNotFoundError)
    root = data.voc(ids=("img_2", "img_3"))
    os.remove(os.path.join(root, "JPEGImages", "img_3.jpg"))
    with pytest.raises(MissingImageError, match=r"img_3\.jpg \(image id 'img_3'\) listed in .*train\.txt"):
        VOCDataset(root, split="train", classes=("cat", "dog"))


def test_empty_voc_split_file_is_a_data_error(data, time_limit):
    root = data.voc(split_text="\n\n")
    with time_limit(30), pytest.raises(DataError, match=r"train\.txt yields 0 images: .*image list is empty"):
        VOCDataset(root, split="train", classes=("cat", "dog"))


# =============================================================================== samplers and loaders
@pytest.mark.parametrize(
    "sampler",
    [
        lambda ds: AspectRatioGroupedSampler(ds, batch_size=2, rank=0, world_size=1),
        lambda ds: DistributedTrainSampler(ds, rank=0, world_size=1),
        lambda ds: InferenceSampler(ds, rank=0, world_size=1),
    ],
    ids=["AspectRatioGrouped", "DistributedTrain", "Inference"],
)
def test_sampler_refuses_an_empty_dataset(time_limit, sampler):
    with time_limit(20), pytest.raises(DataError, match=r"empty dataset \(_Empty\(ann_file=nothing\.json\)"):
        next(iter(sampler(_Empty())))


@pytest.mark.parametrize("training", [True, False])
def test_loader_refuses_an_empty_dataset(time_limit, training):
    cfg = dict(
        batch_size=2,
        dataset=_Empty(),
        collate="det_collate",
        sampler=dict(type="AspectRatioGroupedSampler" if training else "InferenceSampler"),
    )
    with time_limit(20), pytest.raises(DataError, match=r"has 0 samples"):
        next(iter(build_dataloader(cfg, training=training, rank=0, world_size=1)))


def _unreadable_set(data, bad, total=3):
    """A non-strict COCO set of ``total`` images whose first ``bad`` files are not images."""
    content = data.coco_data(num_images=total)
    for image in content["images"][:bad]:
        data.write(os.path.join("images", image["file_name"]), b"this is not an image")
    ann_file, img_dir = data.coco(content)
    return CocoDataset(ann_file, img_dir, strict=False)


@pytest.mark.parametrize("num_workers", [0, 2])
def test_training_on_unreadable_images_stops_with_a_data_error(data, time_limit, num_workers):
    ds = _unreadable_set(data, bad=3)
    cfg = dict(
        batch_size=2,
        num_workers=num_workers,
        dataset=ds,
        collate="det_collate",
        sampler=dict(type="AspectRatioGroupedSampler"),
    )
    with time_limit(60), pytest.raises(DataError) as info, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        next(iter(build_dataloader(cfg, training=True, rank=0, world_size=1)))
    text = str(info.value)
    assert "training stopped: 2 of the last 2 training samples could not be read (every sample so far)" in text
    assert "max_skipped_fraction=0.5" in text and ".png (image id 1" in text


def test_a_few_unreadable_images_are_counted_every_epoch_and_warned_once(data, time_limit):
    ds = _unreadable_set(data, bad=1, total=4)
    cfg = dict(batch_size=2, num_workers=0, dataset=ds, collate="det_collate")
    loader = iter(build_dataloader(cfg, training=True, rank=0, world_size=1))
    with time_limit(60), warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        batches = [next(loader) for _ in range(6)]  # three epochs
    assert sum(b["num_skipped"] for b in batches) == 3  # one per epoch
    assert sum(b.get("skipped", []) == [ds.describe(0)] for b in batches) == 3
    assert all(len(b["inputs"]) == 2 for b in batches)  # each skip replaced
    assert sum("0.png" in m for m in _messages(record)) == 1


def test_skip_collate_keeps_the_none_contract_and_the_fraction_is_checked():
    batch = SkipCollate(det_collate)([None, None])
    assert batch["inputs"] == [] and batch["num_skipped"] == 2
    cfg = dict(batch_size=1, dataset=list(range(3)), max_skipped_fraction=1.5)
    with pytest.raises(
        ConfigError,
        match=r"max_skipped_fraction = 1.5 \(float\) is not valid: expected a number "
        r"in \[0, 1\]",
    ):
        build_dataloader(cfg, training=True, rank=0, world_size=1)


def test_unreadable_and_bomb_images_in_a_dataset(data):
    content = data.coco_data()
    data.image("bomb_jpeg", name="1.png")  # a JPEG named .png, claiming 15000 x 15000
    ann_file, img_dir = data.coco(content)
    with pytest.raises(ImageReadError, match=r"1\.png claims 15000 x 15000 pixels.*\(image id 11; pass strict"):
        CocoDataset(ann_file, img_dir)[1]
    lenient = CocoDataset(ann_file, img_dir, strict=False)
    with pytest.warns(UserWarning, match=r"skipping image id 11: image file .*1\.png claims 15000 x 15000"):
        skipped = lenient[1]
    assert isinstance(skipped, Skipped) and skipped.index == 1 and skipped.img_id == 11
    assert skipped.file.endswith("1.png") and "claims 15000 x 15000" in skipped.reason
    assert str(skipped) == lenient.describe(1)
    assert isinstance(lenient[1], Skipped) and lenient.stats["unreadable images skipped"] == 2


# =============================================================================== warnings
def test_masks_raise_no_numpy_copy_deprecation_warning(data):
    import pycocotools.mask as mask_utils

    rle = mask_utils.encode(np.asfortranarray(np.pad(np.ones((10, 10), np.uint8), ((5, 25), (5, 35)))))
    rle["counts"] = rle["counts"].decode("ascii")

    def edit(content):
        content["annotations"][1].update(segmentation=rle, iscrowd=1)

    ds, _ = _coco(data, edit, with_masks=True, filter_empty=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # NumPy 2: "__array__ implementation doesn't accept a copy keyword"
        masks = [ds[i]["masks"] for i in range(3)] + [ds.get_ann(1)["masks"]]
    assert masks[1].shape == (1, 40, 50) and masks[1][0, 5:15, 5:15].all() and masks[1].sum() == 100
    assert masks[0][0, 6:19, 6:24].all() and masks[0].sum() <= 21 * 16


# =============================================================================== end to end
def _fruits_argv(work, ann_file, img_dir, *extra):
    return [
        "configs/maskrcnn_r50_fpn_fruits.py",
        "--work-dir",
        work,
        "--cfg-options",
        f"train_dataloader.dataset.ann_file={ann_file}",
        f"train_dataloader.dataset.img_dir={img_dir}",
        f"val_dataloader.dataset.ann_file={ann_file}",
        f"val_dataloader.dataset.img_dir={img_dir}",
        "train_dataloader.num_workers=0",
        "val_dataloader.num_workers=0",
        "train_cfg.max_iters=2",
        "train_cfg.val_interval=2",
        "train_cfg.log_interval=1",
        "model.num_classes=2",
        *extra,
    ]


def _train_det_error(argv, capsys, time_limit):
    """Run ``resdet train-det`` in-process; the ``DataError`` message (raised, or printed as one
    line with exit code 2 by the command's error handler)."""
    from resdet.cli import train_det

    with time_limit(300), warnings.catch_warnings(record=True):  # the skip warnings: asserted elsewhere
        try:
            rc = train_det.main(argv)
        except DataError as err:
            return str(err)
    err = capsys.readouterr().err
    assert rc == 2, err[-2000:]
    return err


def test_train_det_on_a_json_without_annotations_stops_with_a_data_error(
    data, tmp_path, capsys, repo_root, time_limit, monkeypatch
):
    monkeypatch.chdir(repo_root)
    content = data.coco_data()
    content.pop("annotations")
    ann_file, img_dir = data.coco(content)
    work = str(tmp_path / "work")
    message = _train_det_error(_fruits_argv(work, ann_file, img_dir), capsys, time_limit)
    assert f"{ann_file} yields 0 images after filtering: 3 images read, 3 filtered" in message
    assert not os.path.exists(os.path.join(work, "final.pth"))


def test_train_det_on_unreadable_images_stops_with_a_data_error(
    data, tmp_path, capsys, repo_root, time_limit, monkeypatch
):
    monkeypatch.chdir(repo_root)
    ds = _unreadable_set(data, bad=3)
    work = str(tmp_path / "work")
    message = _train_det_error(
        _fruits_argv(work, ds.ann_file, ds.img_dir, "train_dataloader.dataset.strict=False"), capsys, time_limit
    )
    assert "training stopped: 2 of the last 2 training samples could not be read" in message
    assert "0.png" in message or "1.png" in message or "2.png" in message
    assert not any(os.path.exists(os.path.join(work, f)) for f in ("final.pth", "best.pth", "iter_2.pth"))


def test_a_missing_relative_data_path_names_the_working_directory(tmp_path, monkeypatch):
    """Config paths are read from the working directory: the error says which one."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DataFileNotFoundError) as info:
        CocoDataset("data/coco/ann.json", "data/coco/images")
    assert str(info.value) == (
        "COCO annotation file data/coco/ann.json does not exist (relative paths are read "
        f"from the working directory, {tmp_path})"
    )
    with pytest.raises(DataFileNotFoundError, match=f"from the working directory, {tmp_path}"):
        VOCDataset("voc", split="train", classes=("a",))
    with pytest.raises(DataFileNotFoundError) as absolute:  # an absolute path needs no such note
        CocoDataset(str(tmp_path / "ann.json"), str(tmp_path))
    assert "working directory" not in str(absolute.value)
