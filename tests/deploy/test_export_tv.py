"""The torchvision-compatible configs (``configs/*_tv.py``), whose preprocessor resizes inside
the model, export with that resize in the graph: one program of the tiny Mask R-CNN, as ONNX
and ``.pt2``, gives ``inference_detector``'s detections and masks on two photos of other sizes
than the one it was traced with."""

import pytest
import torch
from deploy_helpers import assert_same_detections, build_tiny

from resdet.apis import inference_detector
from resdet.apis.model import get_config
from resdet.deploy import OnnxModel, check_exportable, export_onnx, export_program, save_program
from resdet.deploy.resize import preprocessor_resize_shape
from resdet.models.detectors.preprocessor import DetPreprocessor
from resdet.registry import MODELS

ort = pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (pip install 'resdet[export]')")


@pytest.mark.parametrize("size", [(480, 640), (600, 800), (333, 1000), (1001, 1999), (64, 64), (427, 640)])
def test_resize_shape_is_the_preprocessors(size):
    """The graph's sizes are those of ``F.interpolate(scale_factor, recompute_scale_factor=True)``."""
    pre = DetPreprocessor(min_size=800, max_size=1333)
    image = torch.zeros(3, *size)
    expected = tuple(pre.resize(image, 800, 1333).shape[-2:])
    assert preprocessor_resize_shape(*size, 800, 1333) == expected


def test_tv_configs_pass_the_export_check():
    for name in ("frcnn_r50_fpn_tv", "maskrcnn_r50_fpn_tv"):
        cfg = get_config(name)
        with torch.device("meta"):
            model = MODELS.build(cfg.model.to_dict())
        assert check_exportable(model.eval(), cfg) == "detector"


def test_tv_mask_rcnn_exports_with_its_resize(repo_root, photos, tmp_path):
    model = build_tiny(repo_root, "mask_tv")
    assert model.preprocessor.min_size == 150 and not model.cfg.test_pipeline
    program = export_program(model)
    save_program(program[0], str(tmp_path / "tv.pt2"))
    export_onnx(model, str(tmp_path / "tv.onnx"), class_names=["a", "b", "c"], program=program)
    assert model.preprocessor.min_size == 150  # the graph's copy resizes; the model is untouched
    runner = OnnxModel(str(tmp_path / "tv.onnx"))
    loaded = torch.export.load(str(tmp_path / "tv.pt2")).module()
    for image in photos:
        ref = inference_detector(model, image)
        assert ref["masks"].shape[-2:] == image.shape[:2]
        assert_same_detections(ref, runner.detect(image))
        with torch.no_grad():
            boxes, scores, labels, masks = loaded(torch.from_numpy(image).permute(2, 0, 1).contiguous())
        assert_same_detections(ref, {"boxes": boxes, "scores": scores, "labels": labels, "masks": masks})
