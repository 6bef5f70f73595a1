"""`resdet demo` on folders, globs, list files, videos, a (fake) webcam and a classifier."""

import json
import os

import cv2
import numpy as np
import pytest
import torch

from resdet.apis.inputs import collect_inputs, output_names
from resdet.registry import MODELS
from resdet.utils.config import load_config
from resdet.utils.errors import DataError
from resdet.utils.io import atomic_save

CLASSES = ["a", "b", "c", "d", "e"]
# a small test-time size and few proposals / detections: random weights, a few seconds per test
FAST = [
    "--cfg-options",
    "test_pipeline=[dict(type='ResizeShortestEdge', short_edge_length=64, max_size=96)]",
    "model.rpn.post_nms_top_n_test=100",
    "model.roi_heads.detections_per_img=10",
]


def _checkpoint(tmp_path, config, name):
    torch.manual_seed(0)
    model = MODELS.build(load_config(config).model.to_dict())  # random weights: init_cfg never read
    path = str(tmp_path / name)
    atomic_save({"model": model.state_dict(), "meta": {"classes": CLASSES}}, path)
    return path


def _image(path, h=64, w=80, seed=0):
    img = np.random.default_rng(seed).integers(0, 255, (h, w, 3), dtype=np.uint8)
    cv2.rectangle(img, (10, 10), (50, 40), (40, 160, 220), -1)
    os.makedirs(os.path.dirname(str(path)), exist_ok=True)
    assert cv2.imwrite(str(path), img)
    return str(path)


def _video(path, frames=5, fps=12.0, size=(80, 64)):
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    assert writer.isOpened()
    for i in range(frames):
        img = np.full((size[1], size[0], 3), 30 * i, np.uint8)
        cv2.circle(img, (20 + 8 * i, 32), 12, (0, 200, 255), -1)
        writer.write(img)
    writer.release()
    return str(path)


def _tree(tmp_path):
    """photos/{x.jpg, sub/y.png, sub/deeper/x.jpg, notes.txt, .hidden.jpg} and extra/z.png."""
    root = tmp_path / "photos"
    _image(root / "x.jpg")
    _image(root / "sub" / "y.png", seed=1)
    _image(root / "sub" / "deeper" / "x.jpg", seed=2)
    (root / "notes.txt").write_text("not an image")
    _image(root / ".hidden.jpg")
    _image(tmp_path / "extra" / "z.png", seed=3)
    return root


def test_collect_inputs_folders_globs_lists_and_names(tmp_path, monkeypatch):
    root = _tree(tmp_path)
    video = _video(tmp_path / "clip.mp4")
    items = collect_inputs([str(root)])
    assert [i.name for i in items] == ["sub/deeper/x.jpg", "sub/y.png", "x.jpg"]  # recursive, sorted,
    assert {i.kind for i in items} == {"image"}  # no .txt, no hidden
    assert [i.name for i in collect_inputs([str(root)], input_exts="png")] == ["sub/y.png"]
    globbed = collect_inputs([str(root / "**" / "*.jpg")])
    assert sorted(i.name for i in globbed) == ["sub/deeper/x.jpg", "x.jpg"]
    listing = tmp_path / "lists" / "inputs.txt"
    listing.parent.mkdir()
    listing.write_text(f"# my inputs\n../extra/z.png\n\n{video}\n../photos/sub\n")
    listed = collect_inputs([f"@{listing}"])
    assert [(os.path.basename(i.path), i.kind) for i in listed] == [
        ("z.png", "image"),
        ("clip.mp4", "video"),
        ("x.jpg", "image"),
        ("y.png", "image"),
    ]
    assert collect_inputs([], input_list=str(listing)) == listed
    assert output_names(listed, ext="jpg") == ["z.jpg", "clip.mp4", "deeper/x.jpg", "y.jpg"]
    # one name twice: suffixes instead of overwriting
    twice = collect_inputs([str(root / "x.jpg"), str(root / "sub" / "deeper" / "x.jpg")])
    assert output_names(twice) == ["x.jpg", "x_1.jpg"]
    # every failure names what was given
    for spec, words in (
        (str(tmp_path / "nope"), "not found"),
        (str(tmp_path / "*.gif"), "matches no file"),
        (f"@{tmp_path / 'missing.txt'}", "list file"),
        (str(tmp_path / "lists"), "holds no file"),
    ):
        with pytest.raises(DataError, match=words):
            collect_inputs([spec])


def test_demo_runs_on_a_folder_a_glob_a_list_and_a_video(tmp_path, capsys):
    from resdet.cli.demo import main

    torch.set_num_threads(2)
    ckpt = _checkpoint(tmp_path, "shapes_frcnn", "det.pth")
    root = _tree(tmp_path)
    video = _video(tmp_path / "clip.mp4", frames=5, fps=12.0)
    listing = tmp_path / "list.txt"
    listing.write_text("extra/z.png\n")
    out, results = tmp_path / "out", tmp_path / "dets.json"
    assert (
        main(
            [
                "shapes_frcnn",
                ckpt,
                str(root / "sub"),
                str(tmp_path / "photos" / "x.*"),
                f"@{listing}",
                video,
                "--out",
                str(out),
                "--out-json",
                str(results),
                "--batch-size",
                "2",
                "--score-thr",
                "0.0",
                *FAST,
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "drew detections on 4 image(s) and 5 video frame(s)" in printed
    assert "category ids from label + 1 (--categories FILE.json" in printed
    written = sorted(os.path.relpath(os.path.join(d, f), out) for d, _, fs in os.walk(out) for f in fs)
    assert written == ["clip.json", "clip.mp4", "deeper/x.jpg", "x.jpg", "y.png", "z.png"]
    # the annotated video: same frame count, rate and size as the input
    capture = cv2.VideoCapture(str(out / "clip.mp4"))
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == 5
    assert capture.get(cv2.CAP_PROP_FPS) == pytest.approx(12.0)
    assert (capture.get(cv2.CAP_PROP_FRAME_WIDTH), capture.get(cv2.CAP_PROP_FRAME_HEIGHT)) == (80, 64)
    capture.release()
    per_frame = json.loads((out / "clip.json").read_text())
    assert (per_frame["num_frames"], per_frame["fps"], per_frame["width"]) == (5, 12.0, 80)
    assert [f["frame"] for f in per_frame["frames"]] == [0, 1, 2, 3, 4]
    drawn = [d for f in per_frame["frames"] for d in f["detections"]]
    assert drawn and all(d["class_name"] in CLASSES and d["category_id"] == d["label"] + 1 for d in drawn)
    # the COCO results file: every detection, ids mapped to the images table
    dets = json.loads(results.read_text())
    table = json.loads((tmp_path / "dets.images.json").read_text())
    assert [(c["id"], c["name"]) for c in table["categories"]] == list(enumerate(CLASSES, 1))
    assert len(table["images"]) == 9 and [im["id"] for im in table["images"]] == list(range(1, 10))
    frames = [im for im in table["images"] if im["file_name"] == video]
    assert [im["frame"] for im in frames] == [0, 1, 2, 3, 4] and frames[0]["width"] == 80
    assert {os.path.basename(im["file_name"]) for im in table["images"] if "frame" not in im} == {
        "y.png",
        "x.jpg",
        "z.png",
    }
    assert dets and {d["image_id"] for d in dets} <= set(range(1, 10))
    assert all(
        1 <= d["category_id"] <= 5 and len(d["bbox"]) == 4 and min(d["bbox"][2:]) >= 0 and 0.0 <= d["score"] <= 1.0
        for d in dets
    )
    frame_dets = [d for d in dets if d["image_id"] == frames[0]["id"]]
    assert len(frame_dets) >= len(per_frame["frames"][0]["detections"])  # json: no score cut


class _FakeCamera:
    """cv2.VideoCapture(0) of a machine with a camera: 7 grey frames at 25 fps, 96 x 72."""

    def __init__(self, index):
        assert index == 0
        self.left = 7

    def isOpened(self):
        return True

    def get(self, prop):
        return {
            cv2.CAP_PROP_FPS: 25.0,
            cv2.CAP_PROP_FRAME_WIDTH: 96,
            cv2.CAP_PROP_FRAME_HEIGHT: 72,
            cv2.CAP_PROP_FRAME_COUNT: -1,
        }.get(prop, 0.0)

    def read(self):
        self.left -= 1
        return (True, np.full((72, 96, 3), 100, np.uint8)) if self.left >= 0 else (False, None)

    def release(self):
        pass


def test_webcam_without_a_display_writes_annotated_frames(tmp_path, monkeypatch, capsys):
    import resdet.apis.inputs as inputs
    from resdet.cli.demo import main

    torch.set_num_threads(2)
    ckpt = _checkpoint(tmp_path, "shapes_frcnn", "det.pth")
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setattr(inputs.cv2, "VideoCapture", _FakeCamera)
    assert not inputs.has_display()
    out = tmp_path / "cam"
    assert (
        main(
            ["shapes_frcnn", ckpt, "--webcam", "0", "--out", str(out), "--max-frames", "4", "--batch-size", "3", *FAST]
        )
        == 0
    )
    assert "drew detections on 0 image(s) and 4 video frame(s)" in capsys.readouterr().out
    assert sorted(os.listdir(out)) == ["webcam0.json", "webcam0.mp4"]
    from resdet.apis.inference_inputs import inference_inputs

    with pytest.raises(DataError, match="needs --out DIR"):  # nowhere to show or write the frames
        inference_inputs(None, [inputs.InputItem("0", "webcam", "webcam0")], None, out_json=str(tmp_path / "d.json"))
    monkeypatch.undo()
    capture = cv2.VideoCapture(str(out / "webcam0.mp4"))
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == 4 and capture.get(cv2.CAP_PROP_FPS) == pytest.approx(25.0)
    assert (capture.get(cv2.CAP_PROP_FRAME_WIDTH), capture.get(cv2.CAP_PROP_FRAME_HEIGHT)) == (96, 72)


def test_demo_with_a_classifier_prints_and_draws_the_top_classes(tmp_path, capsys):
    from resdet.cli.demo import main

    torch.set_num_threads(2)
    ckpt = _checkpoint(tmp_path, "shapes_cls", "cls.pth")
    images = tmp_path / "imgs"
    src = _image(images / "one.png")
    _image(images / "two.jpg", seed=5)
    out = tmp_path / "out"
    assert (
        main(
            [
                "shapes_cls",
                ckpt,
                str(images),
                "--out",
                str(out),
                "--top-k",
                "3",
                "--out-json",
                str(tmp_path / "cls.json"),
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    line = next(ln for ln in printed.splitlines() if ln.startswith(str(out / "one.png")))
    guesses = line.split("top-3: ")[1].split("; ")
    assert len(guesses) == 3 and all(g.split()[1] in CLASSES for g in guesses)
    scores = [float(g.split()[2]) for g in guesses]
    assert scores == sorted(scores, reverse=True) and 0 < sum(scores) <= 1.0 + 1e-6
    assert "classified 2 image(s)" in printed
    drawn, original = cv2.imread(str(out / "one.png")), cv2.imread(src)
    assert drawn.shape == original.shape and (drawn != original).any()  # the caption is drawn
    entries = json.loads((tmp_path / "cls.json").read_text())
    assert [len(e["labels"]) for e in entries] == [3, 3] and entries[0]["class_names"][0] in CLASSES
    # the library call behind the command: a model and input arguments
    from resdet.apis import inference_inputs, init_model

    summary = inference_inputs(
        init_model("shapes_cls", ckpt), [str(images / "*.jpg"), src], None, out_json=str(tmp_path / "api.json"), top_k=3
    )
    assert (summary.images, summary.frames, len(summary.results)) == (2, 0, 2)
    assert [im["file_name"] for im in summary.image_table] == [str(images / "two.jpg"), src]
    assert summary.results[1]["labels"] == entries[0]["labels"]  # same image, same top classes


def test_category_ids_come_from_a_coco_json_in_label_order(tmp_path):
    from resdet.apis.predictors import categories_of_json

    path = tmp_path / "instances.json"
    path.write_text(
        json.dumps({"categories": [{"id": 18, "name": "dog"}, {"id": 3, "name": "car"}, {"id": 17, "name": "cat"}]})
    )
    assert [c["id"] for c in categories_of_json(str(path))] == [3, 17, 18]  # CocoDataset's order
    assert [c["id"] for c in categories_of_json(str(path), ["cat", "dog"])] == [17, 18]
    (tmp_path / "none.json").write_text("{}")
    with pytest.raises(DataError, match="none.json has no 'categories'"):
        categories_of_json(str(tmp_path / "none.json"))


def test_masks_go_to_the_results_file_as_rle_with_mapped_category_ids():
    from pycocotools import mask as mask_utils
    from torch import nn

    from resdet.apis.predictors import DetectorPredictor

    predictor = DetectorPredictor(nn.Identity(), class_names=["cat", "dog"], cat_ids=[17, 18])
    masks = np.zeros((1, 20, 30), np.float32)
    masks[0, 5:10, 4:12] = 0.9
    result = {
        "boxes": torch.tensor([[4.0, 5.0, 12.0, 10.0]]),
        "scores": torch.tensor([0.7]),
        "labels": torch.tensor([1]),
        "masks": torch.from_numpy(masks),
        "class_names": ["dog"],
    }
    (entry,) = predictor.coco_entries(3, result)
    assert entry["image_id"] == 3 and entry["category_id"] == 18 and entry["bbox"] == [4.0, 5.0, 8.0, 5.0]
    assert int(mask_utils.area(entry["segmentation"])) == 40 and entry["segmentation"]["size"] == [20, 30]
    assert predictor.categories() == [{"id": 17, "name": "cat"}, {"id": 18, "name": "dog"}]


def test_demo_runs_the_fast_path(tmp_path, monkeypatch, capsys):
    """``resdet demo`` builds the detector and runs it folded and channels_last."""
    from resdet.apis import predictors
    from resdet.cli.demo import main
    from resdet.models.detectors import is_inference_optimized

    made = []
    real = predictors.make_predictor
    monkeypatch.setattr(predictors, "make_predictor", lambda model, **kw: made.append(real(model, **kw)) or made[-1])
    ckpt = _checkpoint(tmp_path, "shapes_frcnn", "det.pth")
    image = _image(tmp_path / "in" / "x.jpg")
    assert main(["shapes_frcnn", ckpt, image, "--out", str(tmp_path / "out"), *FAST]) == 0
    assert "drew detections on 1 image(s)" in capsys.readouterr().out
    model = made[0].model
    assert is_inference_optimized(model) and model.channels_last
    assert not any(type(m).__name__ == "FrozenBatchNorm2d" for m in model.modules())
