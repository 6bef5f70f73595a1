import os

import numpy as np
import pytest

from resdet.data.collate import det_collate
from resdet.data.datasets import CocoDataset
from resdet.data.transforms import DetRandomCrop
from resdet.data.transforms.det_crop import crop_polygons
from resdet.registry import TRANSFORMS
from resdet.structures.masks import PolygonMasks, polygons_to_bitmaps


def _iou(a, b):
    a, b = a.astype(bool), b.astype(bool)
    return (a & b).sum() / max(1, (a | b).sum())


def _sample(with_polygons=True, h=80, w=120):
    """Three instances: a triangle, a concave 'L' (two pieces for instance 2) and a box."""
    img = np.arange(h * w * 3, dtype=np.int64).reshape(h, w, 3).astype(np.uint8)
    polys = [
        [[10, 10, 70, 15, 30, 60]],  # triangle
        [[60, 30, 110, 30, 110, 40, 75, 40, 75, 75, 60, 75], [5, 65, 20, 65, 20, 78, 5, 78]],  # L + square
        [[90, 2, 118, 2, 118, 20, 90, 20]],  # top-right box
    ]
    boxes = np.array([[10, 10, 70, 60], [5, 30, 110, 78], [90, 2, 118, 20]], dtype=np.float32)
    masks = PolygonMasks(polys) if with_polygons else polygons_to_bitmaps(PolygonMasks(polys).polygons, h, w)
    return dict(
        img=img,
        img_id=7,
        orig_size=(h, w),
        boxes=boxes,
        labels=np.array([0, 1, 2], dtype=np.int64),
        ignore=np.array([False, True, False]),
        masks=masks,
    )


def _known_crop(window):
    """A crop whose window is fixed (absolute size = image minus nothing random)."""
    crop = DetRandomCrop(crop_size=(window[3], window[2]), crop_type="absolute", allow_negative_crop=True)
    crop.draw_window = lambda height, width: window
    return crop


def test_known_crop_moves_boxes_polygons_and_bitmaps_consistently():
    window = (25, 12, 80, 50)  # x0, y0, w, h -> x in [25, 105], y in [12, 62]
    poly_out = _known_crop(window)(_sample(with_polygons=True))
    bit_out = _known_crop(window)(_sample(with_polygons=False))
    src = _sample()
    # image is a slice of the source
    assert poly_out["img"].shape == (50, 80, 3)
    assert np.array_equal(poly_out["img"], src["img"][12:62, 25:105])
    assert poly_out["img_shape"] == (50, 80) and poly_out["crop_offset"] == (25, 12)
    # boxes shifted by (-25, -12) and clipped to 80 x 50; the top-right box (y 2..20, x 90..118) stays
    assert np.allclose(poly_out["boxes"], [[0, 0, 45, 48], [0, 18, 80, 50], [65, 0, 80, 8]])
    assert np.array_equal(poly_out["boxes"], bit_out["boxes"])
    assert poly_out["labels"].tolist() == [0, 1, 2] and poly_out["ignore"].tolist() == [False, True, False]
    # rasterised cropped polygons == crop of the rasterised full-image polygons
    assert isinstance(poly_out["masks"], PolygonMasks) and len(poly_out["masks"]) == 3
    raster = poly_out["masks"].to_bitmap(50, 80)
    assert bit_out["masks"].shape == (3, 50, 80)
    full = polygons_to_bitmaps(src["masks"].polygons, 80, 120)[:, 12:62, 25:105]
    assert np.array_equal(bit_out["masks"], full)
    for i in range(3):
        assert bit_out["masks"][i].sum() > 50
        assert _iou(raster[i], bit_out["masks"][i]) >= 0.98, i
    # clipped polygon vertices all lie inside the window; the small square of instance 1 is gone
    for inst in poly_out["masks"].polygons:
        for p in inst:
            pts = p.reshape(-1, 2)
            assert pts.min() >= 0 and (pts[:, 0] <= 80).all() and (pts[:, 1] <= 50).all()
    assert len(poly_out["masks"].polygons[1]) == 1


def test_polygon_clipping_is_exact_for_a_corner_cut():
    # square 0..10 cut by the window x>=4, y>=6 (shift by (4, 6), 100 x 100 window): 6 x 4 left
    out = crop_polygons(PolygonMasks([[[0, 0, 10, 0, 10, 10, 0, 10]]]), 4, 6, 100, 100)
    pts = out.polygons[0][0].reshape(-1, 2)
    x, y = pts[:, 0], pts[:, 1]
    area = 0.5 * abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))
    assert area == pytest.approx(24.0)
    # a polygon entirely outside the window loses all its pieces
    assert crop_polygons(PolygonMasks([[[0, 0, 3, 0, 3, 3]]]), 10, 10, 5, 5).polygons == [[]]


@pytest.mark.parametrize("with_polygons", [True, False])
def test_dropped_instances_drop_from_every_field(with_polygons):
    window = (0, 30, 60, 50)  # x 0..60, y 30..80: misses the top-right box (instance 2) entirely
    out = _known_crop(window)(_sample(with_polygons=with_polygons))
    assert out["labels"].tolist() == [0, 1]
    assert out["ignore"].tolist() == [False, True]
    assert out["boxes"].shape == (2, 4) and len(out["masks"]) == 2
    assert np.allclose(out["boxes"], [[10, 0, 60, 30], [5, 0, 60, 48]])
    assert out["img_shape"] == (50, 60)
    bm = out["masks"].to_bitmap(50, 60) if with_polygons else out["masks"]
    assert bm.shape == (2, 50, 60)
    # the triangle's part below y=30 (its apex region) is what is left of instance 0
    assert bm[0, :, :].sum() > 100 and bm[0, 35:, :].sum() == 0


def test_drop_center_outside():
    # window x 25..105, y 5..65: every centre ((40, 35), (57.5, 54), (104, 11)) is inside
    crop = DetRandomCrop(crop_size=(60, 80), crop_type="absolute", allow_negative_crop=True, drop_center_outside=True)
    crop.draw_window = lambda height, width: (25, 5, 80, 60)
    assert crop(_sample())["labels"].tolist() == [0, 1, 2]
    # window x 25..95: instance 2 (x 90..118) still overlaps, but its centre x 104 is outside
    crop.draw_window = lambda height, width: (25, 5, 70, 60)
    out = crop(_sample())
    assert out["labels"].tolist() == [0, 1] and len(out["masks"]) == 2
    assert out["boxes"].shape == (2, 4) and out["ignore"].tolist() == [False, True]
    assert _known_crop((25, 5, 70, 60))(_sample())["labels"].tolist() == [0, 1, 2]  # default keeps it


def test_retry_keeps_an_object_and_is_deterministic():
    h, w = 200, 200
    img = np.zeros((h, w, 3), np.uint8)
    base = dict(
        img=img,
        boxes=np.array([[180, 180, 195, 195]], np.float32),
        labels=np.array([3]),
        ignore=np.array([False]),
        masks=PolygonMasks([[[180, 180, 195, 180, 195, 195, 180, 195]]]),
    )

    def fresh():
        return {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in base.items()}

    strict = DetRandomCrop(crop_size=(40, 40), crop_type="absolute", allow_negative_crop=False, max_tries=200)
    loose = DetRandomCrop(crop_size=(40, 40), crop_type="absolute", allow_negative_crop=True)
    np.random.seed(0)
    lost = sum(len(loose(fresh())["labels"]) == 0 for _ in range(50))
    assert lost >= 40  # a 40 x 40 window rarely contains a corner object
    np.random.seed(0)
    for _ in range(20):
        out = strict(fresh())
        assert out["labels"].tolist() == [3] and out["img"].shape == (40, 40, 3)
        x0, y0 = out["crop_offset"]
        assert np.allclose(out["boxes"][0], np.clip([180 - x0, 180 - y0, 195 - x0, 195 - y0], 0, 40))
    # too few tries: every try fails -> the sample comes back uncropped with its object
    np.random.seed(1)
    out = DetRandomCrop(crop_size=(5, 5), crop_type="absolute", max_tries=1)(fresh())
    assert out["img"].shape == (200, 200, 3) and out["img_shape"] == (200, 200)
    assert out["crop_offset"] == (0, 0) and out["labels"].tolist() == [3]
    assert np.array_equal(out["boxes"], base["boxes"]) and len(out["masks"]) == 1
    # same global seed -> same windows
    np.random.seed(5)
    a = [strict(fresh())["crop_offset"] for _ in range(5)]
    np.random.seed(5)
    b = [strict(fresh())["crop_offset"] for _ in range(5)]
    assert a == b and len(set(a)) > 1


def test_relative_range_sizes_and_config_errors():
    crop = TRANSFORMS.build(
        dict(type="DetRandomCrop", crop_size=(0.5, 0.25), crop_type="relative_range", allow_negative_crop=True)
    )
    np.random.seed(0)
    shapes = [crop(_sample())["img_shape"] for _ in range(30)]
    hs, ws = np.array([s[0] for s in shapes]), np.array([s[1] for s in shapes])
    assert hs.min() >= 40 and hs.max() <= 80 and ws.min() >= 30 and ws.max() <= 120
    assert hs.std() > 3 and ws.std() > 5
    rel = DetRandomCrop(crop_size=0.5, crop_type="relative", allow_negative_crop=True)
    assert rel(_sample())["img_shape"] == (40, 60)
    # an absolute window larger than the image is clamped to it
    assert DetRandomCrop(crop_size=(500, 500), crop_type="absolute")(_sample())["img_shape"] == (80, 120)
    with pytest.raises(ValueError, match="crop_type"):
        DetRandomCrop(crop_type="ratio")
    with pytest.raises(ValueError, match="fractions"):
        DetRandomCrop(crop_size=(0.5, 1.5), crop_type="relative_range")
    assert DetRandomCrop.training_only is True


def test_training_pipeline_through_coco_dataset(fruits_root):
    root = fruits_root
    pipeline = [
        dict(type="ResizeShortestEdge", short_edge_length=300, max_size=500),
        dict(type="DetRandomCrop", crop_size=(0.5, 0.5), crop_type="relative_range"),
        dict(type="DetRandomFlip", prob=0.5),
    ]
    ds = CocoDataset(
        ann_file=os.path.join(root, "annotations.json"),
        img_dir=os.path.join(root, "images"),
        pipeline=pipeline,
        with_masks=True,
    )
    plain = CocoDataset(
        ann_file=os.path.join(root, "annotations.json"),
        img_dir=os.path.join(root, "images"),
        pipeline=pipeline[:1],
        with_masks=True,
    )
    np.random.seed(0)
    samples = [ds[i % len(ds)] for i in range(6)]  # 5 photos: the first is cropped twice, differently
    cropped = 0
    for i, s in enumerate(samples):
        h, w = s["img"].shape[:2]
        assert s["img_shape"] == (h, w)
        assert s["masks"].shape == (len(s["boxes"]), h, w) and s["masks"].dtype == np.uint8
        assert len(s["labels"]) == len(s["boxes"]) == len(s["ignore"]) >= 1
        assert (s["boxes"][:, 0::2] >= 0).all() and (s["boxes"][:, 0::2] <= w).all()
        assert (s["boxes"][:, 1::2] >= 0).all() and (s["boxes"][:, 1::2] <= h).all()
        full = plain[i % len(ds)]
        cropped += (h, w) != full["img"].shape[:2]
        if not s["flip"]:  # the crop is a window of the resized image
            x0, y0 = s["crop_offset"]
            assert np.array_equal(s["img"], full["img"][y0 : y0 + h, x0 : x0 + w])
        # each mask's tight box lies inside its (clipped) gt box, with a rasterisation margin
        for box, m in zip(s["boxes"], s["masks"]):
            ys, xs = np.nonzero(m)
            assert xs.min() >= box[0] - 2 and xs.max() + 1 <= box[2] + 2
            assert ys.min() >= box[1] - 2 and ys.max() + 1 <= box[3] + 2
    assert cropped >= 4
    first, again = samples[0], samples[5]  # the same photo twice: two different windows
    assert (first["crop_offset"], first["img_shape"]) != (again["crop_offset"], again["img_shape"])
    batch = det_collate(samples)
    assert len(batch["inputs"]) == 6 and "num_skipped" not in batch  # counting skips is SkipCollate's job
    assert tuple(batch["targets"][0]["masks"].shape[-2:]) == tuple(batch["inputs"][0].shape[-2:])


def test_training_only_crop_rejected_in_an_evaluation_loader(fruits_root):
    from resdet.data.loader import build_dataloader

    root = fruits_root
    ds = dict(
        type="CocoDataset",
        ann_file=os.path.join(root, "annotations.json"),
        img_dir=os.path.join(root, "images"),
        pipeline=[
            dict(type="ResizeShortestEdge", short_edge_length=64, max_size=96),
            dict(type="DetRandomCrop", crop_size=(0.5, 0.5), crop_type="relative"),
        ],
    )
    cfg = dict(batch_size=2, dataset=ds, collate="det_collate")
    with pytest.raises(ValueError, match="training-only transforms \\['DetRandomCrop'\\]"):
        build_dataloader(cfg, training=False, rank=0, world_size=1)
    concat = dict(cfg, dataset=dict(type="ConcatDataset", datasets=[ds]))
    with pytest.raises(ValueError, match="DetRandomCrop"):
        build_dataloader(concat, training=False, rank=0, world_size=1)
    loader = build_dataloader(cfg, training=True, rank=0, world_size=1)  # fine for training
    batch = next(iter(loader))
    assert len(batch["inputs"]) == 2
    assert all(max(t["img_shape"]) <= 48 for t in batch["targets"])  # half of a <= 64 x 96 image
