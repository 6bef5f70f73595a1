"""ONNX files and .pt2 programs give the detections of ``inference_detector``: each layout
exported once, two real photos of different sizes through the same file (fp32; see
``assert_same_detections`` for the tolerances)."""

import json

import numpy as np
import pytest
import torch
from deploy_helpers import assert_same_detections, build_tiny

from resdet.apis import inference_detector, init_model
from resdet.deploy import OnnxModel, export_onnx, export_program, save_program

ort = pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (pip install 'resdet[export]')")


@pytest.mark.parametrize("kind", ["c4", "vgg", "fpn", "mask_c4", "mask_fpn"])
def test_onnx_file_matches_inference_detector(kind, repo_root, photos, tmp_path, c4_export):
    if kind == "c4":  # the session's C4 export (also used by the .pt2 and demo tests)
        model, path, props = c4_export["model"], c4_export["onnx"], c4_export["props"]
    else:
        model = build_tiny(repo_root, kind)
        path = str(tmp_path / f"{kind}.onnx")
        props = export_onnx(model, path, class_names=["a", "b", "c"])
    runner = OnnxModel(path)
    assert runner.class_names == ["a", "b", "c"] and json.loads(props["class_names"]) == ["a", "b", "c"]
    assert runner.metadata["config"].endswith(".py") and runner.metadata["resdet_version"]
    expected_outputs = ["boxes", "scores", "labels"] + (["masks"] if kind.startswith("mask") else [])
    assert runner.output_names == expected_outputs
    for image in photos:
        ref = inference_detector(model, image)
        got = runner.detect(image)
        assert got["boxes"].dtype == np.float32 and got["labels"].dtype == np.int64
        if "masks" in got:
            assert got["masks"].shape == (len(got["scores"]), *image.shape[:2])
        assert_same_detections(ref, got)


def test_pt2_program_reloads_and_matches(photos, c4_export):
    model = c4_export["model"]
    loaded = torch.export.load(c4_export["pt2"]).module()
    for image in photos:
        ref = inference_detector(model, image)
        with torch.no_grad():
            boxes, scores, labels = loaded(torch.from_numpy(image).permute(2, 0, 1).contiguous())
        assert_same_detections(ref, {"boxes": boxes, "scores": scores, "labels": labels})


def test_classifier_pt2_matches_eager_at_other_sizes(tmp_path):
    """(Its ONNX file: tests/deploy/test_cli.py, exported with ``resdet export``.)"""
    torch.manual_seed(0)
    model = init_model("resnet20_cifar")
    program, kind, _ = export_program(model)
    assert kind == "classifier"
    save_program(program, str(tmp_path / "cls.pt2"))
    loaded = torch.export.load(str(tmp_path / "cls.pt2")).module()
    generator = torch.Generator().manual_seed(1)
    for shape in ((3, 3, 40, 48), (1, 3, 32, 32)):  # batch, height and width differ from the example's
        images = torch.randint(0, 256, shape, dtype=torch.uint8, generator=generator)
        with torch.no_grad():
            torch.testing.assert_close(loaded(images), model(images), atol=1e-4, rtol=1e-4)


def test_benchmark_onnxruntime_row_times_the_same_detections(c4_export, photos):
    """``resdet benchmark det --onnxruntime``'s row: exported, timed, and its detections are
    those of the PyTorch model (the benchmark pairs them with torchvision's)."""
    from resdet.benchmarks._onnx_row import onnxruntime_row

    model = c4_export["model"]
    row = onnxruntime_row(model, None, photos[:1], iters=1, warmup=0)
    assert row["ms_per_image"] > 0 and row["export_s"] > 0 and row["onnx_bytes"] > 1e5
    assert_same_detections(inference_detector(model, photos[0]), row["detections"][0])
