"""The user's path, tested the way a user takes it: a built wheel installed elsewhere and run
from an empty folder, the ``resdet`` command, a trained detector loaded with no ``work_dirs/``
anywhere, and the checks that stop a wrong config before training."""

import ast
import json
import os
import subprocess
import sys
import textwrap

import pytest
import torch

from resdet.cli import SUBCOMMANDS

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _run(args, cwd, pythonpath=None, timeout=300):
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def installed_wheel(tmp_path_factory):
    """``pip wheel .`` then ``pip install --target SITE`` of the wheel: ``(site, wheel path)``."""
    base = tmp_path_factory.mktemp("wheel")
    wheel_dir, site = base / "dist", base / "site"
    build = _run(
        [sys.executable, "-m", "pip", "wheel", REPO, "--no-deps", "--no-build-isolation", "-q", "-w", str(wheel_dir)],
        cwd=str(base),
    )
    assert build.returncode == 0, build.stderr[-2000:]
    wheels = list(wheel_dir.glob("resdet-*.whl"))
    assert len(wheels) == 1
    install = _run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site), str(wheels[0])],
        cwd=str(base),
    )
    assert install.returncode == 0, install.stderr[-2000:]
    return str(site), str(wheels[0])


def test_wheel_prints_a_shipped_config_from_an_empty_folder(installed_wheel, tmp_path):
    site, _ = installed_wheel
    empty = tmp_path / "empty"
    empty.mkdir()
    result = _run(
        [sys.executable, "-m", "resdet", "print-config", "frcnn_r101_coco", "--cfg-options", "train_cfg.max_iters=7"],
        cwd=str(empty),
        pythonpath=site,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    text = result.stdout
    assert text.splitlines()[0].startswith(f"# {os.path.join(site, 'resdet', 'configs')}")
    tree = ast.parse(text)  # valid Python
    assigned = {t.id for node in tree.body if isinstance(node, ast.Assign) for t in node.targets}
    assert {"model", "train_dataloader", "val_dataloader", "optimizer", "train_cfg"} <= assigned
    assert "depth=101" in text and "max_iters=7" in text and "_base_" not in text
    # the same name given as configs/NAME.py, and a path that is neither
    same = _run(
        [sys.executable, "-m", "resdet", "print-config", "configs/frcnn_r101_coco.py"], cwd=str(empty), pythonpath=site
    )
    assert same.returncode == 0 and "depth=101" in same.stdout
    wrong = _run([sys.executable, "-m", "resdet", "print-config", "frcnn_r101_cocoo"], cwd=str(empty), pythonpath=site)
    assert wrong.returncode == 2 and "frcnn_r101_coco" in wrong.stderr and "Traceback" not in wrong.stderr
    assert os.listdir(empty) == []


def test_every_subcommand_answers_help_from_the_wheel(installed_wheel, tmp_path):
    site, _ = installed_wheel
    script = textwrap.dedent("""
        import contextlib, io, json, sys
        import resdet
        from resdet.cli import SUBCOMMANDS, main
        codes = {}
        for name in SUBCOMMANDS:
            out = io.StringIO()
            try:
                with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
                    code = main([name, "--help"])
            except SystemExit as stop:
                code = stop.code
            codes[name] = [code, "usage" in out.getvalue().lower()]
        print(json.dumps({"file": resdet.__file__, "codes": codes}))
    """)
    result = _run([sys.executable, "-c", script], cwd=str(tmp_path), pythonpath=site)
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["file"].startswith(site)  # the installed copy, not the clone
    assert (
        set(report["codes"])
        == set(SUBCOMMANDS)
        >= {
            "train-cls",
            "train-det",
            "eval",
            "demo",
            "export",
            "benchmark",
            "convert-weights",
            "complexity",
            "print-config",
            "browse-dataset",
            "publish",
        }
    )
    assert all(code in (0, None) and has_usage for code, has_usage in report["codes"].values()), report
    # the console script the wheel declares
    script_path = os.path.join(site, "bin", "resdet")
    top = _run([script_path, "--help"], cwd=str(tmp_path), pythonpath=site)
    assert top.returncode == 0 and "train-det" in top.stdout and "print-config" in top.stdout
    bad = _run([script_path, "train-dt"], cwd=str(tmp_path), pythonpath=site)
    assert bad.returncode == 2 and "did you mean 'train-det'" in bad.stderr


def test_trained_detector_loads_from_an_empty_folder(tmp_path):
    """``init_model('shapes_frcnn', trained.pth)`` never reads the config's ``init_cfg``
    classification checkpoint (``work_dirs/shapes_cls/final.pth``), so it works anywhere."""
    from resdet.apis import inference_detector, init_model
    from resdet.registry import MODELS
    from resdet.utils.config import load_config
    from resdet.utils.io import atomic_save

    cfg = load_config("shapes_frcnn")
    assert cfg.model.init_cfg.checkpoint == "work_dirs/shapes_cls/final.pth"
    torch.manual_seed(0)
    model = MODELS.build(cfg.model.to_dict()).eval()
    model.roi_heads.score_thresh = 0.0
    ckpt = str(tmp_path / "trained.pth")
    atomic_save({"model": model.state_dict(), "meta": {"classes": list(cfg.classes)}}, ckpt)
    image = torch.randint(0, 256, (3, 96, 128), generator=torch.Generator().manual_seed(1), dtype=torch.uint8)
    torch.save(image, str(tmp_path / "image.pt"))
    reference = init_model("shapes_frcnn", ckpt)  # here, in the clone
    reference.roi_heads.score_thresh = 0.0
    expected = inference_detector(reference, image)
    assert len(expected["boxes"]) > 0

    empty = tmp_path / "empty"
    empty.mkdir()
    script = textwrap.dedent(f"""
        import os, torch
        torch.set_num_threads({torch.get_num_threads()})
        from resdet.apis import inference_detector, init_model
        model = init_model("shapes_frcnn", {ckpt!r})
        model.roi_heads.score_thresh = 0.0
        out = inference_detector(model, torch.load({str(tmp_path / "image.pt")!r}))
        torch.save({{k: v for k, v in out.items() if torch.is_tensor(v)}}, "out.pt")
        print(sorted(os.listdir(".")))
    """)
    result = _run([sys.executable, "-c", script], cwd=str(empty), pythonpath=REPO)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == "['out.pt']"  # nothing else written or needed there
    got = torch.load(str(empty / "out.pt"), weights_only=True)
    assert torch.equal(got["labels"], expected["labels"])
    assert torch.allclose(got["boxes"], expected["boxes"]) and torch.allclose(got["scores"], expected["scores"])
    # in-process too: the missing init_cfg file is not touched by init_model
    again = init_model(
        "configs/shapes_frcnn.py", ckpt, cfg_options={"model.init_cfg.checkpoint": str(tmp_path / "no" / "such.pth")}
    )
    assert torch.equal(again.backbone.conv1.weight, model.backbone.conv1.weight)


def _tiny_shapes_options(root: str) -> list[str]:
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


def test_num_classes_mismatch_stops_before_training(tmp_path, capsys):
    from resdet.cli import train_det

    work = str(tmp_path / "work")
    rc = train_det.main(
        [
            "configs/shapes_frcnn.py",
            "--work-dir",
            work,
            "--cfg-options",
            "pretrain=None",
            "model.init_cfg=None",
            "model.num_classes=3",
            "train_cfg.max_iters=1",
            *_tiny_shapes_options(str(tmp_path / "shapes")),
        ]
    )
    err = capsys.readouterr().err
    assert rc == 2
    assert "model.num_classes = 3" in err and "has 5 classes" in err and "circle" in err
    assert not os.path.exists(os.path.join(work, "final.pth")) and not os.path.exists(os.path.join(work, "iter_1.pth"))


def test_pretrain_cfg_options_reach_the_pretraining_stage(tmp_path, capsys):
    from resdet.cli import train_det

    cls_ckpt = str(tmp_path / "cls" / "final.pth")
    work = str(tmp_path / "det")
    shapes_cls = str(tmp_path / "shapes_cls")
    rc = train_det.main(
        [
            "shapes_frcnn",
            "--work-dir",
            work,
            "--cfg-options",
            f"pretrain.checkpoint={cls_ckpt}",
            f"model.init_cfg.checkpoint={cls_ckpt}",
            "train_cfg.max_iters=1",
            "train_cfg.val_interval=100",
            "demo=None",
            *_tiny_shapes_options(str(tmp_path / "shapes_det")),
            "--pretrain-cfg-options",
            "train_cfg.max_iters=2",
            "train_cfg.val_interval=2",
            "train_cfg.log_interval=1",
            *[o.replace("image_size=64", "image_size=32") for o in _tiny_shapes_options(shapes_cls)],
        ]
    )
    out = capsys.readouterr().out
    assert rc == 0, out
    assert os.path.isfile(cls_ckpt) and "pretraining stage done" in out
    records = [json.loads(line) for line in open(os.path.join(os.path.dirname(cls_ckpt), "metrics.jsonl"))]
    assert max(r["iter"] for r in records) == 2  # the stage ran the overridden 2 iterations, not 500
    assert len(os.listdir(os.path.join(shapes_cls, "train"))) > 0  # and on the overridden data root
    cls_state = torch.load(cls_ckpt, weights_only=True)["model"]
    det_state = torch.load(os.path.join(work, "final.pth"), weights_only=True)["model"]
    # the detector started from that checkpoint: the frozen stem is the classifier's
    assert torch.equal(det_state["backbone.conv1.weight"], cls_state["backbone.conv1.weight"])


def test_pretrain_cfg_options_need_a_pretrain_stage(tmp_path, capsys):
    from resdet.cli import train_det

    rc = train_det.main(
        [
            "shapes_frcnn",
            "--work-dir",
            str(tmp_path / "w"),
            "--cfg-options",
            "pretrain=None",
            "--pretrain-cfg-options",
            "train_cfg.max_iters=2",
        ]
    )
    assert rc == 2 and "no 'pretrain' stage" in capsys.readouterr().err


def test_a_users_config_elsewhere_inherits_shipped_bases(tmp_path):
    """``_base_ = ["resdet::..."]`` names a shipped config from any folder, installed or not."""
    from resdet.utils.config import load_config
    from resdet.utils.errors import ConfigError

    (tmp_path / "local.py").write_text("optimizer = dict(lr=0.5)\n")
    (tmp_path / "mine.py").write_text(
        '_base_ = ["resdet::_base_/models/frcnn_r50_fpn.py", "resdet::_base_/datasets/bccd", "./local.py"]\n'
        "model = dict(num_classes=3)\n"
    )
    cfg = load_config(str(tmp_path / "mine.py"))
    assert cfg.model.type == "FasterRCNN" and cfg.model.num_classes == 3 and cfg.classes == ["RBC", "WBC", "Platelets"]
    assert cfg.optimizer.lr == 0.5  # relative bases keep mmengine's meaning
    (tmp_path / "bad.py").write_text('_base_ = ["resdet::_base_/models/frcnn_r5_fpn.py"]\n')
    with pytest.raises(ConfigError, match="is not a shipped config"):
        load_config(str(tmp_path / "bad.py"))
