"""The graph form of the test pipeline's resize gives OpenCV's pixels and sizes exactly."""

import cv2
import numpy as np
import pytest
import torch

from resdet.data.transforms.det_transforms import get_resize_shape
from resdet.deploy.resize import resize_bilinear_uint8, resize_shape


@pytest.mark.parametrize("size", [(240, 320), (123, 171), (97, 131), (720, 960), (544, 725), (33, 47), (960, 1280)])
def test_bilinear_resize_is_opencv_bit_exact(photos, size):
    for image in photos + [np.random.default_rng(0).integers(0, 256, (37, 53, 3), dtype=np.uint8)]:
        expected = cv2.resize(image, size[::-1], interpolation=cv2.INTER_LINEAR)
        got = resize_bilinear_uint8(torch.from_numpy(image).permute(2, 0, 1), *size).permute(1, 2, 0).numpy()
        assert got.dtype == np.uint8 and got.shape == expected.shape
        assert np.array_equal(got, expected), f"{image.shape} -> {size}: {(got != expected).sum()} pixels differ"


def test_resize_shape_is_get_resize_shape():
    # includes exact half-pixel ties (846 x 288 at 600 -> 1762.5) decided by double rounding
    for short, max_size in ((480, 640), (800, 1333), (544, 800), (600, None)):
        for height in range(20, 2000, 41):
            for width in list(range(20, 2000, 53)) + [144, 288, 846, 1782]:
                assert resize_shape(height, width, short, max_size) == get_resize_shape(height, width, short, max_size)
