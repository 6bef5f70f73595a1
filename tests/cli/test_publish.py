"""``resdet publish``: a smaller weights-only file, named by its sha256, that init_model, eval
and demo load with identical outputs; damage is detected."""

import hashlib
import json
import os

import pytest
import torch

from resdet.apis import inference_detector, init_model
from resdet.cli import demo, publish, train_det
from resdet.cli import eval as eval_cli
from resdet.utils.errors import CheckpointError
from resdet.utils.io import safe_load


def _data_options(root):
    return [
        f"train_dataloader.dataset.data_root={root}",
        f"val_dataloader.dataset.data_root={root}",
        "train_dataloader.dataset.num_images=4",
        "val_dataloader.dataset.num_images=2",
        "train_dataloader.dataset.image_size=64",
        "val_dataloader.dataset.image_size=64",
        "train_dataloader.num_workers=0",
        "val_dataloader.num_workers=0",
        "train_dataloader.batch_size=2",
    ]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    base = tmp_path_factory.mktemp("publish")
    work = base / "work"
    options = [
        "pretrain=None",
        "model.init_cfg=None",
        "train_cfg.max_iters=2",
        "train_cfg.val_interval=100",
        "demo=None",
        *_data_options(str(base / "shapes")),
    ]
    assert train_det.main(["shapes_frcnn", "--work-dir", str(work), "--cfg-options", *options]) == 0
    return base, str(work / "final.pth"), options


@pytest.mark.parametrize("fmt", ["safetensors", "pth"])
def test_published_file_is_smaller_named_by_hash_and_loads_identically(trained, fmt, capsys):
    base, final, options = trained
    out = str(base / f"pub_{fmt}" / "shapes_frcnn")
    assert publish.main([final, out, "--format", fmt]) == 0
    printed = capsys.readouterr().out
    folder = os.path.dirname(out)
    (name,) = os.listdir(folder)
    path = os.path.join(folder, name)
    digest = hashlib.sha256(open(path, "rb").read()).hexdigest()
    assert name == f"shapes_frcnn-{digest[:8]}.{fmt}" and f"sha256 {digest}" in printed
    assert os.path.getsize(path) < 0.6 * os.path.getsize(final)  # no optimizer state (momentum) or RNG
    published = safe_load(path)
    assert set(published) == {"model", "meta"}
    assert published["meta"]["classes"] == ["circle", "square", "triangle", "star", "cross"]
    assert "shapes_frcnn" in published["meta"]["config"] or "ShapesCocoDataset" in published["meta"]["config"]
    assert published["meta"]["published_from"] == "final.pth" and published["meta"]["checksum"].startswith("sha256:")
    if fmt == "pth":
        assert set(torch.load(path, weights_only=True)) == {"model", "meta"}
    image = torch.randint(0, 256, (3, 64, 80), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    reference = init_model("shapes_frcnn", final)
    ours = init_model("shapes_frcnn", path)
    for model in (reference, ours):
        model.roi_heads.score_thresh = 0.0
    expected, got = inference_detector(reference, image), inference_detector(ours, image)
    assert len(expected["boxes"]) > 0
    assert torch.equal(expected["boxes"], got["boxes"]) and torch.equal(expected["scores"], got["scores"])


def test_eval_and_demo_take_the_published_file(trained, tmp_path, capsys):
    base, final, options = trained
    out = str(tmp_path / "pub" / "model.safetensors")
    assert publish.main([final, out]) == 0
    (path,) = [os.path.join(tmp_path / "pub", n) for n in os.listdir(tmp_path / "pub")]
    assert path.endswith(".safetensors")
    data = [o for o in options if o.startswith("val_dataloader")]
    numbers = []
    for ckpt in (final, path):
        json_path = str(tmp_path / f"m{len(numbers)}.json")
        assert eval_cli.main(["shapes_frcnn", ckpt, "--json", json_path, "--cfg-options", *data]) == 0
        numbers.append(json.load(open(json_path)))
    assert numbers[0]["bbox_AP"] == numbers[1]["bbox_AP"] and numbers[0]["num_images"] == 2
    images = sorted(
        os.path.join(base, "shapes", "val", "images", n)
        for n in os.listdir(os.path.join(base, "shapes", "val", "images"))
    )
    assert demo.main(["shapes_frcnn", path, images[0], "--out", str(tmp_path / "demo"), "--score-thr", "0"]) == 0
    assert len(os.listdir(tmp_path / "demo")) == 1


def test_damaged_published_file_is_refused(trained, tmp_path):
    _, final, _ = trained
    assert publish.main([final, str(tmp_path / "m")]) == 0
    (name,) = os.listdir(tmp_path)
    path = str(tmp_path / name)
    data = bytearray(open(path, "rb").read())
    data[len(data) // 2] ^= 0xFF  # inside the tensor data: the file still parses
    with open(path, "wb") as fh:
        fh.write(bytes(data))
    with pytest.raises(CheckpointError, match=f"{path} is damaged"):
        init_model("shapes_frcnn", path)
