import importlib.util
import os
import re

import cv2
import numpy as np
import pytest
import torch

from resdet.registry import MODELS
from resdet.utils.config import load_config
from resdet.utils.io import atomic_save


def test_demo_writes_annotated_images(repo_root, fruits_root, tmp_path, capsys):
    ckpt = _tiny_detector_checkpoint(tmp_path)
    images = [os.path.join(fruits_root, "images", f"{i}.jpg") for i in (0, 1)]
    spec = importlib.util.spec_from_file_location("demo_tool", os.path.join(repo_root, "tools/demo.py"))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    out = str(tmp_path / "out")
    assert tool.main(["configs/shapes_frcnn.py", ckpt, *images, "--out", out, "--score-thr", "0.0"]) == 0
    written = sorted(os.listdir(out))
    assert written == ["0.jpg", "1.jpg"]
    drawn = cv2.imread(os.path.join(out, "0.jpg"))
    assert drawn.shape == (600, 800, 3)
    printed = capsys.readouterr().out
    assert "drew detections on 2 image(s)" in printed
    # each drawn line names classes from the checkpoint's meta['classes'], not label numbers
    lines = [ln for ln in printed.splitlines() if ln.startswith(os.path.join(out, "0.jpg") + ":")]
    assert len(lines) == 1 and ": 0 drawn" not in lines[0]
    names = set(re.findall(r"(\w+) [0-9.]+ \[", lines[0]))
    assert names and names <= {"a", "b", "c", "d", "e"}


def _tiny_detector_checkpoint(tmp_path, classes=("a", "b", "c", "d", "e")):
    cfg = load_config("shapes_frcnn")
    model_cfg = cfg.model.to_dict()  # its init_cfg file is never read: only init_weights() would
    torch.manual_seed(0)
    model = MODELS.build(model_cfg)
    ckpt = str(tmp_path / "det.pth")
    atomic_save({"model": model.state_dict(), "meta": {"classes": list(classes)}}, ckpt)
    return ckpt


def _grey_image(path, h=96, w=128):
    img = np.full((h, w, 3), 128, dtype=np.uint8)
    cv2.circle(img, (w // 2, h // 2), 25, (40, 160, 220), -1)
    assert cv2.imwrite(str(path), img)
    return str(path)


def test_demo_keeps_the_input_format_and_writes_a_single_file(tmp_path, capsys):
    from resdet.cli.demo import main

    ckpt = _tiny_detector_checkpoint(tmp_path)
    png = _grey_image(tmp_path / "shape.png")
    jpg = _grey_image(tmp_path / "photo.jpg")
    out = tmp_path / "out"
    args = ["configs/shapes_frcnn.py", ckpt, "--score-thr", "0.0"]
    assert main([*args[:2], png, jpg, "--out", str(out), *args[2:]]) == 0
    assert sorted(os.listdir(out)) == ["photo.jpg", "shape.png"]  # each keeps its format
    assert open(out / "shape.png", "rb").read(4) == b"\x89PNG"
    assert open(out / "photo.jpg", "rb").read(2) == b"\xff\xd8"
    drawn, src = cv2.imread(str(out / "shape.png")), cv2.imread(png)
    assert drawn.shape == src.shape and (drawn != src).any(1).mean() > 0.01  # boxes and labels drawn
    # --ext jpg turns every copy into a JPEG
    assert main([*args[:2], png, "--out", str(tmp_path / "as_jpg"), "--ext", "jpg", *args[2:]]) == 0
    assert os.listdir(tmp_path / "as_jpg") == ["shape.jpg"]
    # a single image may go to a file
    result = tmp_path / "single" / "result.png"
    assert main([*args[:2], jpg, "--out", str(result), *args[2:]]) == 0
    assert os.listdir(tmp_path / "single") == ["result.png"] and open(result, "rb").read(4) == b"\x89PNG"
    assert f"in {result}" in capsys.readouterr().out
    # ... but several images need a folder: a usage error before any model is built
    with pytest.raises(SystemExit) as stop:
        main([*args[:2], png, jpg, "--out", str(tmp_path / "two.png")])
    assert stop.value.code == 2 and "pass a folder" in capsys.readouterr().err
    # a missing image is one line and exit code 2
    assert main([*args[:2], str(tmp_path / "nope.jpg"), "--out", str(out)]) == 2
    assert "nope.jpg" in capsys.readouterr().err


def test_draw_detections_boxes_and_masks():
    from resdet.visualization import draw_detections

    img = np.zeros((50, 60, 3), dtype=np.uint8)
    masks = np.zeros((2, 50, 60), dtype=np.uint8)
    masks[0, 10:20, 10:20] = 1
    out = draw_detections(
        img,
        np.array([[5, 5, 30, 30], [35, 10, 55, 40]]),
        np.array([0, 1]),
        np.array([0.9, 0.2]),
        masks=masks,
        class_names=["x", "y"],
        score_thr=0.5,
    )
    assert out.shape == img.shape and img.sum() == 0  # a copy is drawn on
    assert out[15, 15].sum() > 0  # translucent mask of the kept detection
    assert out[25, 45].sum() == 0  # the low-score detection is not drawn


def test_pictures_are_written_atomically_and_bad_extensions_are_named(tmp_path):
    from resdet.utils.io import atomic_save_figure
    from resdet.visualization import save_image

    image = np.zeros((8, 10, 3), np.uint8)
    image[..., 0] = 255  # pure red, RGB
    save_image(image, str(tmp_path / "sub" / "red.png"))
    back = cv2.imread(str(tmp_path / "sub" / "red.png"))
    assert back.shape == (8, 10, 3) and back[0, 0].tolist() == [0, 0, 255]  # BGR on disk
    with pytest.raises(OSError, match="bad.xyz"):
        save_image(image, str(tmp_path / "bad.xyz"))
    assert sorted(os.listdir(tmp_path)) == ["sub"]  # no temporary or partial files left
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    atomic_save_figure(fig, str(tmp_path / "curve.png"))
    plt.close(fig)
    assert open(tmp_path / "curve.png", "rb").read(8) == b"\x89PNG\r\n\x1a\n"
