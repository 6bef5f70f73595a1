"""``resdet browse-dataset``: the ground truth of a config's dataset drawn after (or before) its
pipeline; contact sheets per class for classification sets."""

import json
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest

from resdet.apis.browse import draw_ground_truth
from resdet.cli.browse_dataset import main
from resdet.data.image_io import imread_rgb
from resdet.visualization import class_color

FRUITS = ["date", "fig", "hazelnut"]


def _fruits_options(fruits_root, split="train"):
    key = f"{split}_dataloader.dataset"
    return [
        "--cfg-options",
        f"{key}.ann_file={os.path.join(fruits_root, 'annotations.json')}",
        f"{key}.img_dir={os.path.join(fruits_root, 'images')}",
    ]


def _pictures(folder):
    return sorted(f for f in os.listdir(folder) if f.endswith((".png", ".jpg")))


def test_installed_command_writes_exactly_max_pictures(fruits_root, tmp_path):
    """The acceptance check, run as a user would: the installed command from another folder."""
    out = tmp_path / "D"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "resdet",
            "browse-dataset",
            "configs/maskrcnn_r50_fpn_fruits.py",
            "--out",
            str(out),
            "--max",
            "3",
            *_fruits_options(fruits_root),
        ],
        cwd=str(tmp_path),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert len(_pictures(out)) == 3 and len(os.listdir(out)) == 3
    assert "wrote 3 picture(s)" in result.stdout and "after its pipeline" in result.stdout
    for name in _pictures(out):  # the training resize: short side one of 480..608, long side <= 800
        h, w = imread_rgb(str(out / name)).shape[:2]
        assert min(h, w) in (480, 512, 544, 576, 600, 608) and max(h, w) <= 800, (name, h, w)


def test_before_the_pipeline_boxes_and_outlined_masks_are_drawn_on_the_raw_photo(fruits_root, tmp_path, capsys):
    out = tmp_path / "raw"
    assert (
        main(
            ["maskrcnn_r50_fpn_fruits", "--out", str(out), "--max", "1", "--no-pipeline", *_fruits_options(fruits_root)]
        )
        == 0
    )
    assert "before its pipeline" in capsys.readouterr().out
    assert _pictures(out) == ["0000_0.png"]
    drawn = imread_rgb(str(out / "0000_0.png"))
    raw = imread_rgb(os.path.join(fruits_root, "images", "0.jpg"))
    assert drawn.shape == raw.shape == (600, 800, 3)
    coco = json.load(open(os.path.join(fruits_root, "annotations.json")))
    anns = [a for a in coco["annotations"] if a["image_id"] == 0 and not a.get("iscrowd")]
    names = {c["id"]: c["name"] for c in coco["categories"]}
    changed = np.abs(drawn.astype(int) - raw.astype(int)).max(axis=2) > 30
    for ann in anns:
        x, y, w, h = (int(round(v)) for v in ann["bbox"])
        left_edge = changed[y + h // 4 : y + 3 * h // 4, max(x - 1, 0) : x + 2]
        assert left_edge.any(axis=1).mean() > 0.8, ann["id"]  # its box is drawn where it is
    # masks: every class's outline is drawn in exactly its colour (contours are not anti-aliased)
    for cat_id in {a["category_id"] for a in anns}:
        label = sorted(names).index(cat_id)
        exact = (drawn == np.array(class_color(label), np.uint8)).all(axis=2)
        assert exact.sum() > 200 and (raw == np.array(class_color(label), np.uint8)).all(axis=2).sum() < 5
    # ... and their inside is tinted, not painted over: the photo still shows through
    first = anns[0]
    xs, ys = np.asarray(first["segmentation"][0][0::2]), np.asarray(first["segmentation"][0][1::2])
    cx, cy = int(xs.mean()), int(ys.mean())
    assert 5 < np.abs(drawn[cy, cx].astype(int) - raw[cy, cx].astype(int)).max() < 200


def test_synthetic_detection_and_localization_sets(tmp_path, capsys):
    det = tmp_path / "det"
    assert (
        main(
            [
                "shapes_maskrcnn",
                "--split",
                "val",
                "--out",
                str(det),
                "--max",
                "5",
                "--cfg-options",
                f"val_dataloader.dataset.data_root={tmp_path / 'shapes_det'}",
                "val_dataloader.dataset.num_images=3",
                "val_dataloader.dataset.image_size=96",
            ]
        )
        == 0
    )
    assert len(_pictures(det)) == 3  # the whole (3-image) set, under --max
    assert "val_dataloader.dataset" in capsys.readouterr().out
    loc = tmp_path / "loc"
    assert (
        main(
            [
                "loc_shapes",
                "--out",
                str(loc),
                "--max",
                "2",
                "--cfg-options",
                f"train_dataloader.dataset.data_root={tmp_path / 'shapes_loc'}",
                "train_dataloader.dataset.num_images=5",
                "train_dataloader.dataset.image_size=64",
            ]
        )
        == 0
    )
    assert len(_pictures(loc)) == 2
    assert imread_rgb(str(loc / _pictures(loc)[0])).shape == (64, 64, 3)


def test_a_localization_sample_shows_its_image_class():
    img = np.full((80, 120, 3), 150, np.uint8)
    sample = dict(
        img=img, boxes=np.array([[10, 30, 50, 70]], np.float32), labels=np.array([3]), ignore=np.array([False])
    )
    plain = draw_ground_truth(sample, ["circle", "square", "triangle", "star", "cross"])
    captioned = draw_ground_truth(dict(sample, label=3), ["circle", "square", "triangle", "star", "cross"])
    extra = np.abs(captioned.astype(int) - plain.astype(int)).max(axis=2) > 0
    ys, xs = np.nonzero(extra)
    assert len(ys) > 50 and xs.max() > 110 and ys.min() < 5 and ys.max() < 30  # a caption panel, top-right
    assert not extra[30:71, 10:51].any()  # clear of the box
    assert (captioned[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1] == np.array(class_color(3))).all(axis=2).any()


def _write_classification_config(tmp_path, root):
    path = tmp_path / "folder_cls.py"
    path.write_text(
        f"train_dataloader = dict(batch_size=2, dataset=dict(type='ImageFolder', data_root={str(root)!r} + '/train',\n"
        "    pipeline=[dict(type='Resize', size=48), dict(type='RandomHorizontalFlip', prob=0.5)]))\n"
        f"val_dataloader = dict(batch_size=2, dataset=dict(type='ImageFolder', data_root={str(root)!r} + '/val'))\n"
    )
    return str(path)


def test_image_folder_gives_one_contact_sheet_per_class(imagefolder_root, tmp_path, capsys):
    config = _write_classification_config(tmp_path, imagefolder_root)
    out = tmp_path / "sheets"
    assert main([config, "--out", str(out), "--max", "3"]) == 0
    assert _pictures(out) == ["class_000_ants.png", "class_001_bees.png"]
    assert "wrote 2 class contact sheet(s)" in capsys.readouterr().out
    sheet = imread_rgb(str(out / "class_000_ants.png"))
    tile, gap = 128, 4
    assert sheet.shape[1] >= 2 * (tile + gap) + gap  # 3 images: a 2 x 2 grid
    grid_top = sheet.shape[0] - 2 * (tile + gap)
    tiles = [
        sheet[
            grid_top + r * (tile + gap) : grid_top + r * (tile + gap) + tile,
            gap + c * (tile + gap) : gap + c * (tile + gap) + tile,
        ]
        for r in range(2)
        for c in range(2)
    ]
    assert [t.std() > 5 for t in tiles] == [True, True, True, False]  # 3 pictures, one empty cell
    assert (sheet[:grid_top].min(axis=2) > 200).sum() > 30  # the white class-name title
    val = tmp_path / "val_sheets"
    assert main([config, "--split", "val", "--out", str(val), "--no-pipeline"]) == 0
    assert _pictures(val) == ["class_000_ants.png", "class_001_bees.png"]


def _write_cifar(root, per_batch=3):
    """Fake CIFAR-10 python batches; returns the labels of the training images."""
    rng = np.random.default_rng(0)
    os.makedirs(root)
    train_labels = []
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        data = rng.integers(0, 255, (per_batch, 3072), dtype=np.uint8)
        labels = [int(v) for v in rng.integers(0, 10, per_batch)]
        with open(os.path.join(root, name), "wb") as fh:
            pickle.dump({b"data": data, b"labels": labels}, fh)
        train_labels += labels if name != "test_batch" else []
    return train_labels


@pytest.mark.parametrize("config", ["resnet20_cifar10", "shapes_cls"])
def test_cifar_and_synthetic_classification_sets(config, tmp_path, capsys):
    if config == "resnet20_cifar10":
        present = sorted(set(_write_cifar(str(tmp_path / "cifar"))))  # 15 random labels: some classes empty
        names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
        options = [f"train_dataloader.dataset.data_root={tmp_path / 'cifar'}"]
    else:
        present, names = list(range(5)), ["circle", "square", "triangle", "star", "cross"]
        options = [
            f"train_dataloader.dataset.data_root={tmp_path / 'shapes_cls'}",
            "train_dataloader.dataset.num_images=10",
            "train_dataloader.dataset.image_size=32",
        ]
    out = tmp_path / "all"
    assert main([config, "--out", str(out), "--max", "2", "--cfg-options", *options]) == 0
    assert _pictures(out) == [f"class_{k:03d}_{names[k]}.png" for k in present]
    printed = capsys.readouterr().out
    assert (len(present) < len(names)) == ("class(es) without a readable image: " in printed)
    few = tmp_path / "few"
    assert main([config, "--out", str(few), "--max-classes", "3", "--cfg-options", *options]) == 0
    assert _pictures(few) == [f"class_{k:03d}_{names[k]}.png" for k in present if k < 3]


def test_errors_are_one_line(tmp_path, capsys):
    config = tmp_path / "train_only.py"
    config.write_text("train_dataloader = dict(dataset=dict(type='ImageFolder', data_root='/nonexistent/x'))\n")
    assert main([str(config), "--split", "val", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "val_dataloader.dataset or test_dataloader.dataset" in err and len(err.strip().splitlines()) == 1
    assert main([str(config), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "train_dataloader.dataset" in err and "/nonexistent/x" in err and len(err.strip().splitlines()) == 1
    assert not os.path.exists(tmp_path / "o")
    with pytest.raises(SystemExit) as stop:
        main(["--help"])
    assert stop.value.code == 0 and "usage" in capsys.readouterr().out.lower()
