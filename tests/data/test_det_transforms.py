import numpy as np
import pytest

from resdet.data.transforms.det_transforms import (
    DetRandomFlip,
    PhotometricDistortion,
    RasterizeMasks,
    ResizeShortestEdge,
    build_pipeline,
    get_resize_shape,
)
from resdet.registry import TRANSFORMS
from resdet.structures.masks import PolygonMasks


def _sample(h=60, w=100):
    rng = np.random.default_rng(0)
    img = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
    boxes = np.array([[10, 5, 40, 30], [50, 20, 99, 59]], dtype=np.float32)
    masks = np.zeros((2, h, w), dtype=np.uint8)
    masks[0, 5:30, 10:40] = 1
    masks[1, 20:59, 50:99] = 1
    return dict(
        img=img,
        img_id=1,
        orig_size=(h, w),
        boxes=boxes,
        labels=np.array([0, 1]),
        ignore=np.zeros(2, dtype=bool),
        masks=masks,
    )


def test_resize_shape_rule():
    assert get_resize_shape(480, 640, 600, 1000) == (600, 800)
    assert get_resize_shape(300, 1000, 600, 1000) == (300, 1000)  # capped by the longer side
    assert get_resize_shape(100, 50, 25, None) == (50, 25)


def test_resize_moves_boxes_masks_and_records_scale():
    s = ResizeShortestEdge(short_edge_length=30, max_size=1000)(_sample())
    assert s["img"].shape == (30, 50, 3)
    assert s["img_shape"] == (30, 50)
    assert s["scale_factor"] == pytest.approx((0.5, 0.5))
    assert np.allclose(s["boxes"], [[5, 2.5, 20, 15], [25, 10, 49.5, 29.5]])
    assert s["masks"].shape == (2, 30, 50)
    assert s["masks"][0].sum() == pytest.approx(15 * 12.5, rel=0.1)
    # composing resizes multiplies the factors (relative to the original image)
    s = ResizeShortestEdge(short_edge_length=60, max_size=None)(s)
    assert s["scale_factor"] == pytest.approx((1.0, 1.0))


def test_flip_twice_is_identity_and_flip_boxes():
    original = _sample()
    flip = DetRandomFlip(prob=1.0)
    once = flip({k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in original.items()})
    assert once["flip"] is True
    assert np.allclose(once["boxes"][0], [60, 5, 90, 30])
    assert np.array_equal(once["img"][:, 0], original["img"][:, -1])
    assert once["masks"][0, 5:30, 60:90].all()
    twice = flip(once)
    assert twice["flip"] is False
    for key in ("img", "boxes", "masks"):
        assert np.array_equal(twice[key], original[key])
    untouched = DetRandomFlip(prob=0.0)(_sample())
    assert untouched["flip"] is False


def test_polygons_follow_resize_and_flip_then_rasterise():
    s = _sample()
    s["masks"] = PolygonMasks([[[10, 5, 40, 5, 40, 30, 10, 30]], [[50, 20, 99, 20, 99, 59, 50, 59]]])
    pipeline = build_pipeline(
        [
            dict(type="ResizeShortestEdge", short_edge_length=120, max_size=None),
            dict(type="DetRandomFlip", prob=1.0),
            dict(type="RasterizeMasks"),
        ]
    )
    out = pipeline(s)
    assert out["masks"].shape == (2, 120, 200)
    ys, xs = np.nonzero(out["masks"][0])
    # box [10, 5, 40, 30] -> x2 scaled [20, 10, 80, 60] -> flipped x in [120, 180]
    assert xs.min() == pytest.approx(120, abs=1) and xs.max() == pytest.approx(179, abs=1)
    assert ys.min() == pytest.approx(10, abs=1) and ys.max() == pytest.approx(59, abs=1)
    assert np.allclose(out["boxes"][0], [120, 10, 180, 60])


def test_multiscale_choice_and_range():
    np.random.seed(0)
    t = ResizeShortestEdge(short_edge_length=(20, 40), max_size=None)
    seen = {t(_sample())["img"].shape[0] for _ in range(20)}
    assert seen == {20, 40}
    t = ResizeShortestEdge(short_edge_length=(20, 40), max_size=None, sample_mode="range")
    sizes = {t(_sample())["img"].shape[0] for _ in range(30)}
    assert len(sizes) > 3 and min(sizes) >= 20 and max(sizes) <= 40


def test_photometric_keeps_geometry_and_changes_pixels():
    np.random.seed(1)
    s = _sample()
    before = s["img"].copy()
    out = PhotometricDistortion(prob=1.0)(s)
    assert out["img"].shape == before.shape and out["img"].dtype == np.uint8
    assert np.abs(out["img"].astype(int) - before).mean() > 2
    assert np.array_equal(out["boxes"], _sample()["boxes"])


def test_registry_and_errors():
    assert isinstance(TRANSFORMS.build(dict(type="RasterizeMasks")), RasterizeMasks)
    with pytest.raises(ValueError, match="sample_mode"):
        ResizeShortestEdge(sample_mode="bogus")
    with pytest.raises(ValueError, match="prob"):
        DetRandomFlip(prob=2)
