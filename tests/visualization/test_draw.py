"""Pictures: label placement, class colours, legend, translucent outlined masks, contact
sheets and where annotated copies are written."""

import itertools
import os

import cv2
import numpy as np
import pytest

from resdet.structures.masks import PolygonMasks
from resdet.visualization import (
    auto_font_scale,
    class_color,
    color_palette,
    contact_sheet,
    draw_detections,
    layout_labels,
    output_paths,
    save_image,
)
from resdet.visualization.layout import label_size, overlap_area, place_label


def _inside(rect, h, w):
    x0, y0, x1, y1 = rect
    return 0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h


def test_labels_stay_inside_the_image_and_avoid_each_other():
    h, w = 120, 160
    boxes = np.array(
        [
            [0, 0, 40, 30],  # at the top-left corner: no room above
            [130, 2, 160, 40],  # at the right edge: the label must move left
            [60, 60, 100, 100],
            [62, 62, 102, 102],
            [64, 64, 104, 104],
            [61, 63, 99, 101],  # a pile
            [10, 100, 50, 120],  # at the bottom edge
            [-20, -10, 200, 130],
        ],
        np.float32,
    )  # larger than the image
    sizes = [
        label_size(text, auto_font_scale(h, w))[:2]
        for text in (
            "circle 0.99",
            "triangle 0.95",
            "square 0.90",
            "star 0.88",
            "cross 0.80",
            "circle 0.70",
            "square 0.60",
            "star 0.50",
        )
    ]
    rects = layout_labels(boxes, sizes, (h, w))
    assert all(_inside(r, h, w) for r in rects), rects
    assert all(overlap_area(a, b) == 0 for a, b in itertools.combinations(rects, 2)), rects
    # above the box when there is room, inside it when not
    assert rects[0][1] == 0 and rects[0][0] == 0  # corner box: inside its top-left
    assert rects[2][3] == 60 and rects[2][0] == 60  # room above: right on top of the box
    assert rects[1][2] == w  # pushed left to stay in the image


def test_label_moves_to_avoid_an_occupied_area():
    rect = place_label([50, 50, 90, 90], (30, 10), (120, 160), occupied=[(40, 35, 100, 50)])
    assert overlap_area(rect, (40, 35, 100, 50)) == 0 and _inside(rect, 120, 160)
    assert 50 <= rect[1] < 90 or rect[3] <= 35  # inside the box or just above the legend


def test_drawn_labels_inside_a_small_image_and_text_smaller_on_small_images():
    assert auto_font_scale(64, 64) < auto_font_scale(256, 256) < auto_font_scale(600, 800)
    small_h = label_size("circle", auto_font_scale(64, 64))[1]
    big_h = label_size("circle", auto_font_scale(600, 800))[1]
    assert small_h < big_h
    img = np.zeros((40, 48, 3), np.uint8)
    out = draw_detections(img, np.array([[30, 0, 48, 20]]), np.array([2]), class_names=["a", "b", "a long name"])
    colour = np.array(class_color(2))
    hit = np.nonzero(np.abs(out.astype(int) - colour).max(axis=2) < 3)
    assert len(hit[0]) > 20  # the filled label and the box
    assert out.shape == img.shape  # nothing drawn outside: same picture size
    # a too-long label is shrunk / cut to fit the 48-px width instead of leaving the image
    row = np.abs(out[2:9].astype(int) - colour).max(axis=2) < 3
    assert row[:, 0:10].any()  # the label reaches back into the left part


def test_box_and_label_change_the_picture_where_the_box_is():
    img = np.full((100, 120, 3), 128, np.uint8)
    out = draw_detections(
        img, np.array([[20, 30, 80, 90]]), np.array([1]), np.array([0.9]), class_names=["x", "y"], score_thr=0.5
    )
    colour = np.array(class_color(1))
    assert np.abs(out[60, 20].astype(int) - colour).max() < 40  # left edge in the class colour
    assert np.abs(out[90, 50].astype(int) - colour).max() < 40  # bottom edge
    assert (out[60, 50] == 128).all()  # inside untouched (no mask)
    label = np.abs(out[18:30, 20:60].astype(int) - colour).max(axis=2) < 3
    assert label.mean() > 0.2  # the label sits above the box


def test_class_colours_are_stable_whatever_else_is_drawn():
    assert (color_palette(3) == color_palette(80)[:3]).all()
    colours = [tuple(c) for c in color_palette(20)]
    assert len(set(colours)) == 20
    img = np.zeros((60, 200, 3), np.uint8)
    few = draw_detections(img, np.array([[10, 20, 40, 50]]), np.array([2]), legend=False)
    many = draw_detections(
        img, np.array([[10, 20, 40, 50]] + [[150, 55, 151, 56]] * 9), np.array([2] + list(range(3, 12))), legend=False
    )
    assert (few[35, 10] == many[35, 10]).all() and np.abs(few[35, 10].astype(int) - color_palette(3)[2]).max() < 40


def test_legend_when_more_than_eight_classes():
    h, w = 300, 400
    img = np.zeros((h, w, 3), np.uint8)
    labels = np.arange(10)
    boxes = np.array([[10 + 10 * i, 200, 30 + 10 * i, 290] for i in labels], np.float32)  # bottom-left
    names = [f"class{i}" for i in labels]
    with_legend = draw_detections(img, boxes, labels, class_names=names)
    without = draw_detections(img, boxes, labels, class_names=names, legend=False)
    changed = np.abs(with_legend.astype(int) - without.astype(int)).max(axis=2) > 0
    ys, xs = np.nonzero(changed)
    assert ys.min() < 10 and xs.max() > w - 10 and xs.min() > w / 2 and ys.max() < 190  # free top-right corner
    panel = with_legend[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1].reshape(-1, 3).astype(int)
    for label in labels:  # one swatch per class
        assert (np.abs(panel - np.array(class_color(label))).max(axis=1) == 0).sum() >= 9, label
    assert (panel.min(axis=1) > 200).sum() > 30  # white names
    three = draw_detections(img, boxes[:3], labels[:3], class_names=names)
    assert (three == draw_detections(img, boxes[:3], labels[:3], class_names=names, legend=False)).all()


def test_masks_translucent_with_contour_outlines():
    img = np.full((60, 80, 3), 100, np.uint8)
    masks = np.zeros((1, 60, 80), np.uint8)
    masks[0, 20:40, 30:60] = 1
    masks[0, 28:32, 40:44] = 0  # a hole
    out = draw_detections(img, np.array([[25, 15, 65, 45]]), np.array([0]), masks=masks, mask_alpha=0.5)
    colour = np.array(class_color(0)).astype(float)
    expected_fill = np.round(100 * 0.5 + colour * 0.5)
    assert np.abs(out[35, 50].astype(float) - expected_fill).max() <= 1  # translucent inside
    assert (out[30, 42] == 100).all()  # the hole is not filled
    assert np.abs(out[20, 45].astype(float) - colour).max() <= 1  # contour on the top edge
    assert np.abs(out[39, 45].astype(float) - colour).max() <= 1  # ... and the bottom edge
    assert np.abs(out[30, 30].astype(float) - colour).max() <= 1  # ... and the left edge
    assert np.abs(out[27, 41].astype(float) - colour).max() <= 1  # the hole's outline too
    assert (out[10, 10] == 100).all()  # outside untouched
    # polygons (a sample before rasterising) draw the same
    poly = PolygonMasks([[np.array([30, 20, 60, 20, 60, 40, 30, 40], np.float32)]])
    from_poly = draw_detections(img, np.array([[25, 15, 65, 45]]), np.array([0]), masks=poly, mask_alpha=0.5)
    assert np.abs(from_poly[35, 50].astype(float) - expected_fill).max() <= 1


def test_ignored_ground_truth_is_dashed():
    img = np.zeros((60, 100, 3), np.uint8)
    out = draw_detections(
        img, np.array([[10, 20, 90, 50]]), np.array([0]), ignore=np.array([True]), class_names=["crowd"], thickness=1
    )
    edge = out[50, 10:91].max(axis=1) > 0
    assert 0.3 < edge.mean() < 0.8  # dashes, not a solid line


def test_contact_sheet_grid_and_title():
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 255, (32, 32, 3), dtype=np.uint8) for _ in range(5)]
    sheet = contact_sheet(images, "ants (label 0)", tile=64, gap=4)
    assert sheet.dtype == np.uint8 and sheet.shape[1] >= 3 * 68 + 4
    bar = sheet[:14]
    assert (bar.max(axis=2) > 200).any()  # white title text
    # the first tile holds the first image, enlarged 2x with nearest neighbours
    top = sheet.shape[0] - 2 * 68 - 4 + 4
    assert (sheet[top : top + 64 : 2, 4:68:2] == images[0]).all()


def test_output_paths_keep_the_input_format(tmp_path):
    out = str(tmp_path / "out")
    assert output_paths(["a/x.png", "b/y.jpg", "c/z.gif", "d/x.png"], out) == [
        os.path.join(out, n) for n in ("x.png", "y.jpg", "z.png", "x_1.png")
    ]  # same name: suffixed
    assert output_paths(["x.png", "y.jpg"], out, ext="jpg") == [os.path.join(out, n) for n in ("x.jpg", "y.jpg")]
    assert output_paths(["x.jpg"], str(tmp_path / "result.png")) == [str(tmp_path / "result.png")]
    with pytest.raises(ValueError, match="result.png"):
        output_paths(["x.jpg", "y.jpg"], str(tmp_path / "result.png"))
    image = np.zeros((6, 7, 3), np.uint8)
    image[..., 2] = 255
    save_image(image, str(tmp_path / "blue.png"))
    assert open(tmp_path / "blue.png", "rb").read(4) == b"\x89PNG"
    assert cv2.imread(str(tmp_path / "blue.png"))[0, 0].tolist() == [255, 0, 0]  # BGR on disk
