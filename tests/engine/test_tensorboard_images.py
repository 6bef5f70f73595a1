"""``train_cfg.tensorboard=True``: scalars and, after each validation, the first validation
images with the model's predictions drawn, read back from the event files."""

import os

import numpy as np
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # the [test] extra has it

from resdet.cli import train_cls, train_det
from resdet.engine.tensorboard import (
    TensorBoardImagesHook,
    draw_classification_chw,
    draw_detections_chw,
    tensorboard_hooks,
)


def _events(work):
    acc = EventAccumulator(str(work / "tensorboard"), size_guidance={"images": 0, "scalars": 0})
    acc.Reload()
    return acc


def _decoded(event):
    import cv2

    return cv2.imdecode(np.frombuffer(event.encoded_image_string, np.uint8), cv2.IMREAD_COLOR)[..., ::-1]


def test_detector_box_is_drawn_where_the_prediction_is():
    img = torch.zeros(3, 300, 400, dtype=torch.uint8)
    output = {
        "boxes": torch.tensor([[20.0, 40.0, 120.0, 140.0], [0.0, 0.0, 5.0, 5.0]]),
        "scores": torch.tensor([0.9, 0.1]),
        "labels": torch.tensor([1, 0]),
    }
    # the pipeline halved the image: original-image boxes are drawn at half their coordinates
    drawn = draw_detections_chw(img, output, {"scale_factor": (0.5, 0.5), "flip": False}, ["a", "b"], 0.3)
    assert drawn.shape == (3, 300, 400) and drawn.dtype == torch.uint8
    yellow = (drawn[0] > 200) & (drawn[1] > 200) & (drawn[2] < 50)
    assert yellow[20:70, 10].all() and yellow[20, 10:60].all()  # left and top edges of (10, 20, 60, 70)
    assert not yellow[100:, 100:].any() and not yellow[0:2, 0:2].any()  # nothing else; 0.1 < threshold


def test_classification_frame_is_green_when_right_and_red_when_wrong():
    img = torch.zeros(3, 32, 32, dtype=torch.uint8)
    right = draw_classification_chw(img, torch.tensor([0.1, 3.0]), 1, ["cat", "dog"])
    wrong = draw_classification_chw(img, torch.tensor([0.1, 3.0]), 0, ["cat", "dog"])
    assert right.shape == (3, 256, 256)  # enlarged so the label is legible
    assert right[1, 128, 1] > 200 and right[0, 128, 1] < 50  # lime frame
    assert wrong[0, 128, 1] > 200 and wrong[1, 128, 1] < 50  # red frame


def test_a_custom_images_hook_replaces_the_default():
    assert tensorboard_hooks(False, None) == []
    assert isinstance(tensorboard_hooks(True, None)[0], TensorBoardImagesHook)
    assert tensorboard_hooks(True, [dict(type="TensorBoardImagesHook", num_images=8)]) == []


def _cls_options(root):
    return [
        f"train_dataloader.dataset.data_root={root}",
        f"val_dataloader.dataset.data_root={root}",
        "train_dataloader.dataset.num_images=4",
        "val_dataloader.dataset.num_images=3",
        "train_dataloader.num_workers=0",
        "val_dataloader.num_workers=0",
        "train_dataloader.batch_size=2",
        "train_cfg.max_iters=2",
        "train_cfg.val_interval=1",
        "train_cfg.log_interval=1",
        "train_cfg.amp=None",
        "param_scheduler.0.warmup_iters=1",
        "train_cfg.tensorboard=True",
    ]


def test_classifier_run_writes_scalars_and_validation_images(tmp_path):
    work = tmp_path / "work"
    assert (
        train_cls.main(["shapes_cls", "--work-dir", str(work), "--cfg-options", *_cls_options(str(tmp_path / "data"))])
        == 0
    )
    acc = _events(work)
    assert sorted(acc.Tags()["images"]) == ["val_images/0", "val_images/1", "val_images/2"]
    steps = [e.step for e in acc.Images("val_images/0")]
    assert steps == [1, 2]  # one picture per validation
    picture = _decoded(acc.Images("val_images/0")[-1])
    assert picture.shape == (256, 256, 3)
    scalars = acc.Tags()["scalars"]
    assert "train/loss" in scalars and any(t.startswith("val/") for t in scalars), scalars


def test_detector_run_draws_its_detections(tmp_path):
    root, work = str(tmp_path / "shapes"), tmp_path / "work"
    rc = train_det.main(
        [
            "shapes_frcnn",
            "--work-dir",
            str(work),
            "--cfg-options",
            "pretrain=None",
            "model.init_cfg=None",
            f"train_dataloader.dataset.data_root={root}",
            f"val_dataloader.dataset.data_root={root}",
            "train_dataloader.dataset.num_images=2",
            "val_dataloader.dataset.num_images=2",
            "train_dataloader.dataset.image_size=128",
            "val_dataloader.dataset.image_size=128",
            "train_dataloader.num_workers=0",
            "val_dataloader.num_workers=0",
            "train_dataloader.batch_size=2",
            "train_cfg.max_iters=1",
            "train_cfg.val_interval=1",
            "train_cfg.amp=None",
            "param_scheduler.0.warmup_iters=1",
            "demo=None",
            "train_cfg.tensorboard=True",
            "custom_hooks=[dict(type='TensorBoardImagesHook', num_images=1, score_thr=0.0)]",
        ]
    )
    assert rc == 0
    acc = _events(work)
    assert acc.Tags()["images"] == ["val_images/0"]  # the custom hook's settings, not the default
    picture = _decoded(acc.Images("val_images/0")[0])
    assert picture.shape == (256, 256, 3)
    yellow = (picture[..., 0] > 200) & (picture[..., 1] > 200) & (picture[..., 2] < 80)
    assert yellow.sum() > 50  # an untrained detector still proposes boxes at score_thr 0
    assert os.path.isfile(work / "final.pth")
