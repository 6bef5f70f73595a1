"""``resdet export`` writes a validated file with the checkpoint's class names; what cannot be
exported is one error line and no file; ``resdet demo --backend onnxruntime`` draws from the
exported file alone."""

import json
import os

import cv2
import numpy as np
import pytest
import torch

from resdet.apis import init_model
from resdet.cli.demo import main as demo_main
from resdet.cli.export import main as export_main
from resdet.utils.io import atomic_save

ort = pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (pip install 'resdet[export]')")


def test_export_classifier_with_checkpoint_class_names(tmp_path):
    torch.manual_seed(0)
    model = init_model("resnet20_cifar")
    names = [f"c{i}" for i in range(10)]
    ckpt = str(tmp_path / "cls.pth")
    atomic_save({"model": model.state_dict(), "meta": {"classes": names}}, ckpt)
    out = str(tmp_path / "cls.onnx")
    assert export_main(["resnet20_cifar", ckpt, "--format", "onnx", "--out", out]) == 0
    import onnx

    proto = onnx.load(out)
    onnx.checker.check_model(proto)
    assert proto.opset_import[0].version >= 17
    props = {p.key: p.value for p in proto.metadata_props}
    assert json.loads(props["class_names"]) == names and props["kind"] == "classifier"
    session = ort.InferenceSession(out, providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["images"]
    generator = torch.Generator().manual_seed(1)
    for shape in ((2, 3, 32, 32), (3, 3, 40, 48)):  # one file, two batch sizes and image sizes
        images = torch.randint(0, 256, shape, dtype=torch.uint8, generator=generator)
        with torch.no_grad():
            expected = model(images).numpy()
        np.testing.assert_allclose(session.run(None, {"images": images.numpy()})[0], expected, atol=1e-4)


def test_unsupported_model_is_one_error_line_and_no_file(tmp_path, capsys):
    model = init_model("loc_shapes")
    ckpt = str(tmp_path / "loc.pth")
    atomic_save({"model": model.state_dict(), "meta": {}}, ckpt)
    out = tmp_path / "loc.onnx"
    assert export_main(["loc_shapes", ckpt, "--format", "onnx", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Localizer" in err[0] and "cannot be exported" in err[0]
    assert not out.exists() and os.listdir(tmp_path) == ["loc.pth"]  # no temporary file left either
    code = export_main(["loc_shapes", ckpt, "--format", "torch-export", "--out", str(tmp_path / "loc.pt2")])
    assert code == 2 and not (tmp_path / "loc.pt2").exists()


def test_demo_draws_with_the_onnx_file_alone(c4_export, photos, tmp_path, capsys):
    image_path = str(tmp_path / "photo.png")
    cv2.imwrite(image_path, cv2.cvtColor(photos[0], cv2.COLOR_RGB2BGR))
    out = str(tmp_path / "drawn.png")
    assert (
        demo_main(["--backend", "onnxruntime", c4_export["onnx"], image_path, "--out", out, "--score-thr", "0.3"]) == 0
    )
    printed = capsys.readouterr().out
    assert "drawn" in printed and ("a " in printed or "b " in printed or "c " in printed)  # metadata names
    drawn = cv2.imread(out)
    assert drawn.shape == photos[0].shape and (drawn != cv2.imread(image_path)).any()


def test_export_traces_the_fast_path_unless_told_not_to(tmp_path, monkeypatch):
    """``resdet export`` builds the model and hands its inference fast path (BN folded,
    channels_last) to the tracer; ``--no-fold-bn`` hands the checkpoint's layout."""
    from resdet import deploy
    from resdet.deploy import ExportError
    from resdet.models.detectors import is_inference_optimized

    torch.manual_seed(0)
    ckpt = str(tmp_path / "det.pth")
    atomic_save({"model": init_model("shapes_frcnn").state_dict(), "meta": {}}, ckpt)
    traced = []

    def stop(model, cfg=None, fold_bn=True):  # record what would be traced, skip the tracing
        traced.append((model, fold_bn))
        raise ExportError("stopped by the test")

    monkeypatch.setattr(deploy, "export_program", stop)
    out = str(tmp_path / "det.onnx")
    assert export_main(["shapes_frcnn", ckpt, "--out", out]) == 2
    assert export_main(["shapes_frcnn", ckpt, "--out", out, "--no-fold-bn"]) == 2
    (fast, fold), (plain, no_fold) = traced
    assert fold and is_inference_optimized(fast) and fast.channels_last
    assert not any(type(m).__name__ == "FrozenBatchNorm2d" for m in fast.modules())
    assert not no_fold and not is_inference_optimized(plain) and not plain.channels_last
