"""tools/demo.py on a localization model: every top-k class guess is drawn with its box."""

import importlib.util
import os
import re

import cv2
import numpy as np
import torch

from resdet.registry import MODELS
from resdet.utils.config import load_config
from resdet.utils.io import atomic_save
from resdet.visualization import color_palette, draw_detections

CLASSES = ["circle", "square", "triangle", "star", "cross"]


def _demo_tool(repo_root):
    spec = importlib.util.spec_from_file_location("demo_tool_loc", os.path.join(repo_root, "tools/demo.py"))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    return tool


def _tiny_loc_config(repo_root, tmp_path) -> str:
    """configs/loc_shapes.py with a CIFAR ResNet-8 classifier and a narrow RPN conv, dumped to tmp_path."""
    cfg = load_config(os.path.join(repo_root, "configs", "loc_shapes.py"))
    cfg.model.classifier = dict(type="ImageClassifier", num_classes=5, backbone=dict(type="CifarResNet", depth=8))
    cfg.merge_from_dict(
        {"model.cls_input_size": 32, "model.rpn.head.conv_channels": 32}
    )  # init_cfg stays: the demo never reads it
    path = str(tmp_path / "loc_tiny.py")
    cfg.dump(path)
    return path


def test_demo_draws_the_top5_guesses_of_a_localizer(repo_root, tmp_path, capsys):
    torch.set_num_threads(2)
    config = _tiny_loc_config(repo_root, tmp_path)
    model_cfg = load_config(config).model.to_dict()
    torch.manual_seed(0)
    model = MODELS.build(model_cfg)
    ckpt = str(tmp_path / "loc.pth")
    atomic_save({"model": model.state_dict(), "meta": {"classes": CLASSES}}, ckpt)
    images = []
    for i, (h, w) in enumerate([(96, 128), (128, 112)]):
        img = np.full((h, w, 3), 128, dtype=np.uint8)  # flat grey: JPEG keeps it, drawn colours stand out
        cv2.circle(img, (w // 2, h // 2), 20 + 5 * i, (90, 90, 90), -1)
        images.append(str(tmp_path / f"img{i}.png"))
        cv2.imwrite(images[-1], img)
    out = str(tmp_path / "out")
    # the default --score-thr 0.5 is kept: an untrained 5-class softmax puts ~0.2 on each guess
    assert _demo_tool(repo_root).main([config, ckpt, *images, "--out", out]) == 0
    printed = capsys.readouterr().out
    assert "drew detections on 2 image(s)" in printed
    palette = color_palette(len(CLASSES))
    for i, path in enumerate(images):
        written = os.path.join(out, f"img{i}.png")  # the input's format is kept
        src, drawn = cv2.imread(path), cv2.imread(written)
        assert drawn is not None and drawn.shape == src.shape
        line = next(ln for ln in printed.splitlines() if ln.startswith(written + ":"))
        guesses = re.findall(r"(\w+) ([0-9.]+) \[([0-9, ]+)\]", line)
        assert ": 5 drawn:" in line and len(guesses) == 5
        names = [g[0] for g in guesses]
        scores = [float(g[1]) for g in guesses]
        assert sorted(names) == sorted(CLASSES)  # five distinct class guesses
        assert scores == sorted(scores, reverse=True) and max(scores) < 0.5  # all under --score-thr
        changed = np.abs(drawn.astype(int) - src.astype(int)).max(axis=2) > 40
        assert 0.02 < changed.mean() < 0.9  # boxes and labels drawn, not a repaint
        # the top-1 guess's box outline is drawn in its class colour (RGB palette, BGR file)
        x1, y1, x2, y2 = (int(v) for v in guesses[0][2].split(","))
        colour = palette[CLASSES.index(names[0])][::-1].astype(int)
        x1, x2 = np.clip([x1, x2], 0, src.shape[1] - 1)
        y1, y2 = np.clip([y1, y2], 0, src.shape[0] - 1)
        edge = np.concatenate([drawn[(y1 + y2) // 2, [x1, x2]], drawn[[y1, y2], (x1 + x2) // 2]])
        assert (np.abs(edge.astype(int) - colour).max(axis=1) < 60).any()


def test_top_k_draws_the_best_k_whatever_the_threshold_with_distinct_colours():
    img = np.zeros((40, 200, 3), dtype=np.uint8)
    boxes = np.array([[5 + 40 * i, 20, 35 + 40 * i, 38] for i in range(5)], dtype=np.float32)
    labels, scores = np.arange(5), np.array([0.1, 0.3, 0.05, 0.2, 0.01])
    palette = color_palette(5)
    out = draw_detections(img, boxes, labels, scores, score_thr=0.5, top_k=3, thickness=1, font_scale=0.3)
    drawn = out[38, [20 + 40 * i for i in range(5)]].astype(int)  # bottom edge of each box (anti-aliased)
    for i in (1, 3, 0):  # the 3 best: its own colour
        assert np.abs(drawn[i] - palette[i]).max() < 40 and drawn[i].sum() > 200
    assert not drawn[2].any() and not drawn[4].any()  # 4th and 5th best not drawn
    assert len({tuple(palette[i]) for i in range(5)}) == 5
    assert not draw_detections(img, boxes, labels, scores, score_thr=0.5).any()  # threshold alone: nothing
