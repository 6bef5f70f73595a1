import numpy as np
import pycocotools.mask as mask_utils
import pytest

from resdet.evaluation.coco_api import masks_to_rles
from resdet.structures.masks import (
    PolygonMasks,
    masks_to_bitmaps,
    polygons_to_bitmaps,
    rles_to_bitmaps,
    segmentation_to_rle,
)


def test_polygon_rasterises_to_expected_area():
    square = [[2.0, 3.0, 12.0, 3.0, 12.0, 9.0, 2.0, 9.0]]  # 10 x 6 rectangle
    bitmap = polygons_to_bitmaps([square], 20, 30)
    assert bitmap.shape == (1, 20, 30) and bitmap.dtype == np.uint8
    assert bitmap[0].sum() == pytest.approx(60, abs=12)  # pycocotools rounds edges
    ys, xs = np.nonzero(bitmap[0])
    assert np.allclose([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], [2, 3, 12, 9], atol=1)


def test_rle_roundtrip_and_uncompressed_counts():
    masks = np.zeros((2, 8, 10), dtype=np.uint8)
    masks[0, 1:4, 2:7] = 1
    masks[1, 5:8, 0:3] = 1
    rles = masks_to_rles(masks)
    assert all(isinstance(r["counts"], str) for r in rles)
    back = rles_to_bitmaps([segmentation_to_rle(r, 8, 10) for r in rles], 8, 10)
    assert np.array_equal(back, masks)
    # uncompressed RLE (COCO crowd form): column-major run lengths
    flat = masks[0].flatten(order="F")
    runs, current, count = [], 0, 0
    for v in flat:
        if v != current:
            runs.append(count)
            current, count = v, 0
        count += 1
    runs.append(count)
    rle = segmentation_to_rle({"counts": runs, "size": [8, 10]}, 8, 10)
    assert np.array_equal(mask_utils.decode(rle), masks[0])


def test_polygon_masks_scale_flip_select():
    pm = PolygonMasks([[[0, 0, 4, 0, 4, 2, 0, 2]], [[1, 1, 3, 1, 3, 3]]])
    scaled = pm.scale(2.0, 3.0)
    assert np.allclose(scaled.polygons[0][0], [0, 0, 8, 0, 8, 6, 0, 6])
    flipped = pm.flip_horizontal(10)
    assert np.allclose(flipped.polygons[0][0][0::2], [10, 6, 6, 10])
    assert np.allclose(flipped.flip_horizontal(10).polygons[1][0], pm.polygons[1][0])
    assert len(pm[np.array([False, True])]) == 1
    assert masks_to_bitmaps(pm, 5, 6).shape == (2, 5, 6)


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="unsupported segmentation"):
        segmentation_to_rle(42, 4, 4)
    with pytest.raises(ValueError, match="N x H x W"):
        masks_to_rles(np.zeros((4, 4)))
