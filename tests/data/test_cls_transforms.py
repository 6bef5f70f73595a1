"""Geometry and statistics of the paper's classification transforms."""

import numpy as np
import pytest

from resdet.data.transforms import CenterCrop, PCALighting, RandomCrop, RandomHorizontalFlip, Resize
from resdet.data.transforms.cls_transforms import IMAGENET_EIGVAL, IMAGENET_EIGVEC
from resdet.registry import TRANSFORMS


def _sample(h, w, seed=0):
    img = np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)
    return dict(img=img, label=3)


def test_cifar_pad_and_crop_matches_padded_image():
    np.random.seed(0)
    crop = RandomCrop(32, padding=4)
    offsets = set()
    for seed in range(200):
        sample = _sample(32, 32, seed)
        padded = np.pad(sample["img"], ((4, 4), (4, 4), (0, 0)))
        out = crop(dict(sample))
        x0, y0, x1, y1 = out["crop"]
        assert out["img"].shape == (32, 32, 3) and out["img_shape"] == (32, 32)
        assert (x1 - x0, y1 - y0) == (32, 32) and 0 <= x0 <= 8 and 0 <= y0 <= 8
        np.testing.assert_array_equal(out["img"], padded[y0:y1, x0:x1])
        offsets.add((x0, y0))
    assert len(offsets) > 40  # positions are spread over the 9 x 9 possibilities


def test_imagenet_scale_augmentation_and_crop():
    np.random.seed(1)
    resize = TRANSFORMS.build(
        dict(type="ResizeShortestEdge", short_edge_length=(256, 480), sample_mode="range", max_size=None)
    )
    crop = RandomCrop(224)
    shorter = []
    for _ in range(30):
        s = resize(_sample(300, 400))
        h, w = s["img"].shape[:2]
        assert abs(w / h - 4 / 3) < 0.01
        shorter.append(h)
        s = crop(s)
        assert s["img"].shape == (224, 224, 3)
    assert 256 <= min(shorter) and max(shorter) <= 480 and max(shorter) - min(shorter) > 100


def test_center_crop_location_and_padding():
    s = CenterCrop(224)(_sample(256, 300))
    assert s["crop"] == (38, 16, 262, 240) and s["img"].shape == (224, 224, 3)
    small = _sample(20, 30)
    out = CenterCrop(32)(dict(small))
    assert out["img"].shape == (32, 32, 3)
    np.testing.assert_array_equal(out["img"][6:26, 1:31], small["img"])
    assert out["img"][:6].max() == 0


def test_flip_is_a_mirror_and_toggles():
    s = _sample(5, 7)
    original = s["img"].copy()
    out = RandomHorizontalFlip(prob=1.0)(dict(s))
    np.testing.assert_array_equal(out["img"], original[:, ::-1])
    assert out["flip"] is True
    back = RandomHorizontalFlip(prob=1.0)(out)
    np.testing.assert_array_equal(back["img"], original)
    assert back["flip"] is False
    np.random.seed(3)
    flips = sum(RandomHorizontalFlip(0.5)(_sample(2, 2))["flip"] for _ in range(400))
    assert 160 < flips < 240
    with pytest.raises(ValueError, match="prob"):
        RandomHorizontalFlip(1.5)


def test_pca_lighting_statistics():
    np.random.seed(0)
    lighting = PCALighting(std=0.1)
    offsets = []
    for _ in range(3000):
        out = lighting(dict(img=np.full((2, 2, 3), 128, np.uint8)))
        rgb = np.asarray(out["lighting"])
        np.testing.assert_array_equal(out["img"][0, 0], np.clip(np.rint(128 + rgb), 0, 255))
        offsets.append(rgb)
    offsets = np.stack(offsets)
    vec = np.asarray(IMAGENET_EIGVEC)
    val = np.asarray(IMAGENET_EIGVAL)
    along = offsets @ vec  # coordinates along each principal component (orthonormal columns)
    expected = 0.1 * val * 255  # 5.55, 0.48, 0.11 grey levels
    np.testing.assert_allclose(along.std(0), expected, rtol=0.08)
    assert np.abs(along.mean(0)).max() < 0.3
    assert np.abs(np.corrcoef(along[:, 0], along[:, 1])[0, 1]) < 0.08
    assert PCALighting(std=0.0)(dict(img=np.full((1, 1, 3), 7, np.uint8)))["img"][0, 0, 0] == 7


def test_resize_records_scale():
    out = Resize((32, 64))(_sample(16, 16))
    assert out["img"].shape == (32, 64, 3) and out["scale_factor"] == (4.0, 2.0)
