"""tools/train_cls.py end to end on an ImageFolder set (ImageNet recipe, then the 10-crop test),
unreadable images during a run, every classification config, CIFAR batches with the
per-pixel mean, inference_classifier and the analysis plots."""

import importlib.util
import json
import os
import pickle

import numpy as np
import pytest
import torch

from resdet.apis import inference_classifier, init_model
from resdet.utils.config import load_config


def _load_tool(repo_root, rel):
    spec = importlib.util.spec_from_file_location(rel.replace("/", "_")[:-3], os.path.join(repo_root, rel))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _records(work_dir):
    with open(os.path.join(work_dir, "metrics.jsonl")) as fh:
        return [json.loads(line) for line in fh]


def test_imagenet_recipe_on_imagefolder_then_ten_crop(imagefolder_root, repo_root, tmp_path, capsys):
    root = imagefolder_root  # train 7 ants + 5 bees, val 5 + 4, sizes 60-120 x 64-150 (a GIF among them)
    cfg_path = tmp_path / "imagefolder_r18.py"
    # the paper's transform classes at a small scale (shorter side 40-64, 32 x 32 crops)
    cfg_path.write_text(f"""
_base_ = [{os.path.join(repo_root, "configs", "resnet18_imagenet.py")!r}]
model = dict(num_classes=2)
train_dataloader = dict(batch_size=8, num_workers=0, dataset=dict(data_root={root + "/train"!r}, pipeline=[
    dict(type="ResizeShortestEdge", short_edge_length=(40, 64), sample_mode="range", max_size=None),
    dict(type="RandomCrop", size=32), dict(type="RandomHorizontalFlip", prob=0.5),
    dict(type="PCALighting", std=0.1)]))
val_dataloader = dict(batch_size=64, num_workers=0, dataset=dict(data_root={root + "/val"!r}, pipeline=[
    dict(type="ResizeShortestEdge", short_edge_length=40, max_size=None), dict(type="CenterCrop", size=32)]))
val_evaluator = dict(type="TopKError", topk=(1,))
pixel_mean = dict(size=16, resize=40, crop=32, max_images=16)
train_cfg = dict(max_iters=2, val_interval=0, log_interval=1, compile=["head"])  # compiling the head is quick
classes = ["ants", "bees"]
""")
    work_dir = str(tmp_path / "work")
    train_cls = _load_tool(repo_root, "tools/train_cls.py")
    assert train_cls.main([str(cfg_path), "--work-dir", work_dir]) == 0
    out = capsys.readouterr().out
    final = os.path.join(work_dir, "final.pth")
    assert f"checkpoint: {final}" in out and os.path.isfile(final)
    records = _records(work_dir)
    val = [r for r in records if r["mode"] == "val"][-1]
    assert val["topk_num_samples"] == 9 and 0.0 <= val["top1_err"] <= 1.0
    assert [r["iter"] for r in records if r["mode"] == "train"] == [1, 2]
    log = open(os.path.join(work_dir, "train.log")).read()
    assert "train_cfg.compile: head compiled for training" in log and "torch.compile of" not in log  # no fallback
    # the per-pixel mean of the training crops went into the model (and the checkpoint)
    mean = torch.load(os.path.join(work_dir, "pixel_mean.pth"), weights_only=True)["pixel_mean"]
    assert mean.shape == (3, 16, 16) and 60 < float(mean.mean()) < 200 and float(mean.std()) > 0.5
    model = init_model(str(cfg_path), final)
    torch.testing.assert_close(model.preprocessor.mean[0], mean)

    # the standard 10-crop test on val: shorter side 40, centre 40 x 40, ten 32 x 32 crops
    from resdet.data.loader import build_dataloader
    from resdet.engine.inference import run_inference
    from resdet.evaluation.classification import TopKError
    from resdet.models.classifiers import TenCropClassifier

    loader = build_dataloader(
        dict(
            batch_size=3,
            num_workers=0,
            collate="cls_collate",
            dataset=dict(
                type="ImageFolder",
                data_root=root + "/val",
                pipeline=[
                    dict(type="ResizeShortestEdge", short_edge_length=40, max_size=None),
                    dict(type="CenterCrop", size=40),
                ],
            ),
        ),
        training=False,
    )
    seen = []
    wrapped = TenCropClassifier(model, crop_size=32).eval()
    original = model.forward
    model.forward = lambda x, targets=None: (seen.append(tuple(x.shape)), original(x))[1]
    results = run_inference(wrapped, loader, [TopKError(topk=(1,))])
    assert results["topk_num_samples"] == 9 and 0.0 <= results["top1_err"] <= 1.0
    assert seen == [(30, 3, 32, 32)] * 3  # 3 images x 10 crops per batch

    # inference_classifier: a path, an array and a tensor give the same top-k
    path = os.path.join(root, "val", "bees", sorted(os.listdir(os.path.join(root, "val", "bees")))[0])
    from resdet.data.image_io import imread_rgb

    img = imread_rgb(path)
    by_path = inference_classifier(model, path, topk=2)
    by_array, by_tensor = inference_classifier(model, [img, torch.from_numpy(img).permute(2, 0, 1)], topk=2)
    assert sorted(by_path["labels"]) == [0, 1] and by_path["class_names"][0] in ("ants", "bees")
    assert by_path["scores"][0] >= by_path["scores"][1] and abs(sum(by_path["scores"]) - 1) < 1e-4
    assert by_array["labels"] == by_path["labels"] == by_tensor["labels"]
    np.testing.assert_allclose(by_array["scores"], by_path["scores"], rtol=1e-5)

    # training / test error curves of the run
    from resdet.visualization import curves as plot_curves

    png = str(tmp_path / "curves.png")
    counts = plot_curves.plot_curves([work_dir], png)
    assert counts == {"work": {"train": 2, "val": 1}} and os.path.getsize(png) > 5000


def test_unreadable_images_are_counted_and_the_run_continues(imagefolder_root, repo_root, tmp_path, capsys):
    import shutil

    data = tmp_path / "data"
    src = os.path.join(imagefolder_root, "val")
    for cls in ("ants", "bees"):
        (data / cls).mkdir(parents=True)
        for name in sorted(os.listdir(os.path.join(src, cls)))[:3]:
            shutil.copy(os.path.join(src, cls, name), data / cls / name)
    (data / "ants" / "empty.jpg").write_bytes(b"")
    (data / "bees" / "text.jpg").write_bytes(b"hello")
    good = (data / "bees" / sorted(os.listdir(data / "bees"))[0]).read_bytes()
    (data / "bees" / "cut.jpg").write_bytes(good[: len(good) // 4])
    cfg_path = tmp_path / "tiny.py"
    cfg_path.write_text(f"""
_base_ = [{os.path.join(repo_root, "configs", "resnet20_cifar10.py")!r}]
model = dict(num_classes=2, backbone=dict(depth=8))
train_dataloader = dict(batch_size=9, num_workers=0, dataset=dict(
    _delete_=True, type="ImageFolder", data_root={str(data)!r}, pipeline=[dict(type="Resize", size=32)]))
val_dataloader = None
pixel_mean = None
train_cfg = dict(max_iters=2, log_interval=1)
""")
    train_cls = _load_tool(repo_root, "tools/train_cls.py")
    with pytest.warns(UserWarning, match="empty.jpg"):
        assert train_cls.main([str(cfg_path), "--work-dir", str(tmp_path / "w")]) == 0
    records = [r for r in _records(str(tmp_path / "w")) if r["mode"] == "train"]
    assert [r["num_skipped"] for r in records] == [3, 6]  # every batch holds the whole set
    assert os.path.isfile(tmp_path / "w" / "final.pth")
    capsys.readouterr()
    rc = train_cls.main(
        [str(cfg_path), "--work-dir", str(tmp_path / "s"), "--cfg-options", "train_dataloader.dataset.strict=True"]
    )
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("resdet train-cls: error: ") and "Traceback" not in err
    assert any(name in err for name in ("empty.jpg", "text.jpg", "cut.jpg"))  # names the unreadable file


PAPER_CONFIGS = {
    **{f"resnet{d}_imagenet": ("ResNet", d, "A" if d == 18 else "B", False) for d in (18, 34, 50, 101, 152)},
    "plain18_imagenet": ("ResNet", 18, None, True),
    "plain34_imagenet": ("ResNet", 34, None, True),
    "resnet34a_imagenet": ("ResNet", 34, "A", False),
    "resnet34b_imagenet": ("ResNet", 34, "B", False),
    "resnet34c_imagenet": ("ResNet", 34, "C", False),
    **{f"resnet{d}_cifar10": ("CifarResNet", d, "A", False) for d in (20, 32, 44, 56, 110, 1202)},
    **{f"plain{d}_cifar10": ("CifarResNet", d, None, True) for d in (20, 32, 44, 56, 110)},
    "shapes_cls": ("ResNet", 18, "B", False),
}
CIFAR_PARAMS_M = {20: 0.27, 32: 0.46, 44: 0.66, 56: 0.85, 110: 1.7, 1202: 19.4}  # Table 6


def test_every_classification_config_builds_with_the_paper_recipe():
    for name, (backbone, depth, shortcut, plain) in PAPER_CONFIGS.items():
        cfg = load_config(name)
        model = init_model(cfg, device="meta")
        assert type(model.backbone).__name__ == backbone and model.backbone.depth == depth, name
        assert model.backbone.plain == plain and (plain or model.backbone.shortcut == shortcut), name
        if name == "shapes_cls":
            continue
        assert cfg.optimizer.lr == 0.1 and cfg.optimizer.momentum == 0.9 and cfg.optimizer.weight_decay == 1e-4
        if backbone == "ResNet":
            assert cfg.train_dataloader.batch_size == 256 and cfg.train_cfg.max_iters == 600000
            assert cfg.param_scheduler.type == "PlateauLR" and model.preprocessor.mean.shape == (1, 3, 16, 16)
            assert [t["type"] for t in cfg.train_dataloader.dataset.pipeline] == [
                "ResizeShortestEdge",
                "RandomCrop",
                "RandomHorizontalFlip",
                "PCALighting",
            ]
            assert cfg.train_dataloader.dataset.pipeline[0].short_edge_length == (256, 480)
        else:
            assert cfg.train_dataloader.batch_size == 128 and cfg.train_cfg.max_iters == 64000
            schedules = cfg.param_scheduler if isinstance(cfg.param_scheduler, list) else [cfg.param_scheduler]
            assert schedules[0].milestones == [32000, 48000]
            assert (len(schedules) == 2 and schedules[1].warmup_lr == 0.01) == (depth >= 110), name
            assert model.preprocessor.mean.shape == (1, 3, 32, 32)
            if not plain:
                params = sum(p.numel() for p in model.parameters()) / 1e6
                assert abs(params - CIFAR_PARAMS_M[depth]) / CIFAR_PARAMS_M[depth] < 0.06, (name, params)


def _fake_cifar(root, per_batch=8, test=10):
    rng = np.random.default_rng(0)
    os.makedirs(root, exist_ok=True)
    for name, count in [(f"data_batch_{i}", per_batch) for i in range(1, 6)] + [("test_batch", test)]:
        with open(os.path.join(root, name), "wb") as fh:
            pickle.dump(
                {
                    b"labels": rng.integers(0, 10, count).tolist(),
                    b"data": rng.integers(0, 256, (count, 3072), dtype=np.uint8),
                },
                fh,
            )


def test_cifar_config_one_iteration_and_layer_responses(repo_root, tmp_path, capsys):
    data = str(tmp_path / "cifar")
    _fake_cifar(data)
    work_dir = str(tmp_path / "w")
    options = [
        f"train_dataloader.dataset.data_root={data}",
        f"val_dataloader.dataset.data_root={data}",
        "train_cfg.max_iters=1",
        "train_dataloader.batch_size=8",
        "train_dataloader.num_workers=0",
        "val_dataloader.batch_size=10",
        "val_dataloader.num_workers=0",
    ]
    train_cls = _load_tool(repo_root, "tools/train_cls.py")
    assert train_cls.main(["resnet20_cifar10", "--work-dir", work_dir, "--cfg-options", *options]) == 0
    assert "final validation: top1_err" in capsys.readouterr().out
    from resdet.data.datasets import CIFAR10

    expected = CIFAR10(data).images.mean(0).transpose(2, 0, 1)
    ckpt = torch.load(os.path.join(work_dir, "final.pth"), weights_only=True)
    np.testing.assert_allclose(ckpt["model"]["preprocessor.mean"][0].numpy(), expected, rtol=1e-5)

    layer_response = _load_tool(repo_root, "tools/analysis/layer_response.py")
    png, js = str(tmp_path / "fig7.png"), str(tmp_path / "fig7.json")
    final = os.path.join(work_dir, "final.pth")
    assert (
        layer_response.main(
            [
                "resnet20_cifar10",
                final,
                final,
                "--labels",
                "a",
                "b",
                "--out",
                png,
                "--json",
                js,
                "--max-images",
                "10",
                "--cfg-options",
                f"val_dataloader.dataset.data_root={data}",
            ]
        )
        == 0
    )
    with open(js) as fh:
        curves = json.load(fh)
    assert len(curves["a"]) == 19 and curves["a"] == curves["b"]  # stem + 2 x 9 blocks' 3x3 layers
    assert all(s > 0 for s in curves["a"]) and os.path.getsize(png) > 5000
    # the hooked std equals a direct measurement of one layer
    model = init_model("resnet20_cifar10", final)
    outputs = []
    # clone: the block's ReLU then runs in place on the BN output
    handle = model.backbone.layer2[0].bn1.register_forward_hook(lambda m, i, o: outputs.append(o.clone()))
    with torch.no_grad():
        model(torch.from_numpy(CIFAR10(data, split="test").images).permute(0, 3, 1, 2).contiguous())
    handle.remove()
    assert abs(float(outputs[0].double().std(unbiased=False)) - curves["a"][7]) < 1e-4
