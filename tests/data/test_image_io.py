"""imread_rgb: every kind of image file comes out as H x W x 3 uint8 RGB; bad files raise."""

import io

import cv2
import numpy as np
import pytest
from PIL import Image

from resdet.data.image_io import ImageReadError, imread_rgb


def _check(img, h, w):
    assert img.dtype == np.uint8 and img.shape == (h, w, 3)


def test_rgb_channel_order(tmp_path):
    bgr = np.zeros((6, 8, 3), np.uint8)
    bgr[..., 2] = 200  # red in OpenCV's BGR
    cv2.imwrite(str(tmp_path / "red.png"), bgr)
    img = imread_rgb(str(tmp_path / "red.png"))
    _check(img, 6, 8)
    assert img[..., 0].min() == 200 and img[..., 1:].max() == 0


def test_grayscale(tmp_path):
    gray = np.arange(48, dtype=np.uint8).reshape(6, 8) * 5
    cv2.imwrite(str(tmp_path / "g.png"), gray)
    img = imread_rgb(str(tmp_path / "g.png"))
    _check(img, 6, 8)
    for c in range(3):
        np.testing.assert_array_equal(img[..., c], gray)


def test_alpha_is_dropped(tmp_path):
    rgba = np.zeros((5, 7, 4), np.uint8)
    rgba[..., :3] = (10, 20, 30)
    rgba[..., 3] = 255
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    img = imread_rgb(str(tmp_path / "a.png"))
    _check(img, 5, 7)
    assert tuple(img[2, 3]) == (10, 20, 30)


def test_16bit(tmp_path):
    deep = np.full((4, 4, 3), 65535, np.uint16)
    deep[0, 0] = (32768, 0, 65535)
    cv2.imwrite(str(tmp_path / "d.png"), deep)
    img = imread_rgb(str(tmp_path / "d.png"))
    _check(img, 4, 4)
    assert img[1, 1].tolist() == [255, 255, 255]
    assert img[0, 0].tolist() == [255, 0, 128]  # BGR (32768, 0, 65535) -> RGB, 16 -> 8 bit


def test_cmyk_jpeg(tmp_path):
    rgb = np.zeros((16, 16, 3), np.uint8)
    rgb[:, :8] = (220, 30, 30)
    rgb[:, 8:] = (30, 30, 220)
    Image.fromarray(rgb).convert("CMYK").save(tmp_path / "c.jpg", quality=95)
    with Image.open(tmp_path / "c.jpg") as im:
        assert im.mode == "CMYK"
    img = imread_rgb(str(tmp_path / "c.jpg"))
    _check(img, 16, 16)
    assert img[8, 2, 0] > 150 and img[8, 2, 2] < 100  # red stays red
    assert img[8, 13, 2] > 150 and img[8, 13, 0] < 100  # blue stays blue


def test_exif_rotation(tmp_path):
    rgb = np.zeros((10, 20, 3), np.uint8)  # landscape, a white block at the top-left
    rgb[:3, :3] = 255
    im = Image.fromarray(rgb)
    exif = im.getexif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to display
    im.save(tmp_path / "r.jpg", exif=exif, quality=95)
    img = imread_rgb(str(tmp_path / "r.jpg"))
    _check(img, 20, 10)  # displayed as portrait
    assert img[:3, -3:].mean() > 200  # the block moved to the top-right
    assert img[:3, :3].mean() < 60


def test_gif(tmp_path):
    pal = np.zeros((6, 6), np.uint8)
    pal[:, 3:] = 1
    im = Image.fromarray(pal, "P")
    im.putpalette([0, 255, 0, 255, 0, 255] + [0] * 762)
    im.save(tmp_path / "p.gif")
    img = imread_rgb(str(tmp_path / "p.gif"))
    _check(img, 6, 6)
    assert img[0, 0].tolist() == [0, 255, 0] and img[0, 5].tolist() == [255, 0, 255]


def test_unreadable_files_raise_naming_the_file(tmp_path):
    good = io.BytesIO()
    Image.fromarray(np.full((32, 32, 3), 90, np.uint8)).save(good, format="JPEG")
    cases = {"empty.jpg": b"", "text.jpg": b"this is not an image\n", "cut.jpg": good.getvalue()[:300]}
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(ImageReadError, match=name):
            imread_rgb(str(tmp_path / name))
    with pytest.raises(ImageReadError, match="missing.png"):
        imread_rgb(str(tmp_path / "missing.png"))


def test_float32_tiff_in_unit_range_is_scaled_by_255(tmp_path):
    """A float32 TIFF with values in [0, 1] (was decoded all black): x 255, BGR -> RGB."""
    bgr = np.zeros((3, 4, 3), np.float32)
    bgr[0, 0] = (1.0, 0.5, 0.0)
    bgr[1, 1] = (0.25, 0.25, 0.25)
    cv2.imwrite(str(tmp_path / "f.tif"), bgr)
    img = imread_rgb(str(tmp_path / "f.tif"))
    _check(img, 3, 4)
    assert img[0, 0].tolist() == [0, 128, 255] and img[1, 1].tolist() == [64, 64, 64] and img[2, 3].max() == 0
    gray = np.array([[0.0, 0.5], [1.0, 0.1]], np.float32)  # one channel, written by Pillow (mode F)
    Image.fromarray(gray, "F").save(tmp_path / "g.tif")
    img = imread_rgb(str(tmp_path / "g.tif"))
    assert img[..., 0].tolist() == [[0, 128], [255, 26]] and (img[..., 0] == img[..., 2]).all()


def test_float_tiff_value_ranges(tmp_path):
    """[0, 255] floats are 8-bit values; other ranges are stretched min..max; NaN is refused."""
    eight = np.array([[0.0, 100.4], [200.0, 255.0]], np.float32)
    cv2.imwrite(str(tmp_path / "e.tif"), eight)
    assert imread_rgb(str(tmp_path / "e.tif"))[..., 1].tolist() == [[0, 100], [200, 255]]
    wide = np.array([[-10.0, 0.0], [990.0, 490.0]], np.float32)
    cv2.imwrite(str(tmp_path / "w.tif"), wide)
    assert imread_rgb(str(tmp_path / "w.tif"))[..., 1].tolist() == [[0, 3], [255, 128]]
    bad = np.array([[0.0, np.nan], [1.0, 0.5]], np.float32)
    cv2.imwrite(str(tmp_path / "nan.tif"), bad)
    with pytest.raises(ImageReadError, match=r"nan\.tif holds NaN or infinite float32"):
        imread_rgb(str(tmp_path / "nan.tif"))


def test_16bit_tiff(tmp_path):
    deep = np.zeros((2, 3), np.uint16)
    deep[0] = (0, 32768, 65535)
    cv2.imwrite(str(tmp_path / "d.tif"), deep)
    img = imread_rgb(str(tmp_path / "d.tif"))
    _check(img, 2, 3)
    assert img[0, :, 0].tolist() == [0, 128, 255] and img[1].max() == 0
