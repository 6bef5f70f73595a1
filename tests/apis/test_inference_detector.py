import numpy as np
import pytest
import torch

from resdet.apis import inference_detector
from resdet.registry import MODELS
from resdet.utils.config import load_config


@pytest.fixture(scope="module")
def detector():
    cfg = load_config("shapes_frcnn")
    model_cfg = cfg.model.to_dict()  # its init_cfg checkpoint is only read by init_weights()
    torch.manual_seed(0)
    model = MODELS.build(model_cfg).eval()
    model.roi_heads.score_thresh = 0.0  # an untrained model: keep every detection
    model.cfg = cfg
    return model


def test_inputs_agree_and_boxes_are_in_original_pixels(detector):
    rng = np.random.default_rng(0)
    img = rng.integers(0, 255, (120, 200, 3), dtype=np.uint8)
    from_array = inference_detector(detector, img)
    from_tensor = inference_detector(detector, torch.from_numpy(img).permute(2, 0, 1))
    from_float = inference_detector(detector, torch.from_numpy(img).permute(2, 0, 1).float() / 255.0)
    assert set(from_array) >= {"boxes", "scores", "labels"}
    assert len(from_array["boxes"]) > 0
    assert torch.allclose(from_array["boxes"], from_tensor["boxes"])
    assert torch.allclose(from_array["scores"], from_float["scores"], atol=1e-4)
    # the test pipeline resizes to 256 px; boxes come back in the 120 x 200 original
    assert from_array["boxes"][:, 2].max() <= 200 + 1e-3 and from_array["boxes"][:, 3].max() <= 120 + 1e-3
    batch = inference_detector(detector, [img, img[:, ::-1].copy()])
    assert isinstance(batch, list) and len(batch) == 2


def test_bad_input_is_named(detector):
    with pytest.raises(ValueError, match="image 0"):
        inference_detector(detector, [np.zeros((5, 5), dtype=np.uint8)])


def test_results_carry_the_class_name_of_each_label(detector):
    img = np.random.default_rng(1).integers(0, 255, (64, 96, 3), dtype=np.uint8)
    result = inference_detector(detector, img)
    shapes = ["circle", "square", "triangle", "star", "cross"]  # the config's `classes`
    labels = result["labels"].tolist()
    assert len(labels) > 0 and set(result) >= {"boxes", "scores", "labels", "class_names"}
    assert result["class_names"] == [shapes[label] for label in labels]
    # explicit names win over the config's; a label without a name keeps its number
    renamed = inference_detector(detector, [img], class_names=["a", "b"])[0]
    assert renamed["class_names"] == [["a", "b"][label] if label < 2 else str(label) for label in labels]
    assert torch.equal(renamed["labels"], result["labels"])  # the other keys are unchanged


def test_class_names_from_the_val_dataset_or_the_model(detector):
    from mmengine.config import Config

    from resdet.apis.detect import class_names_of

    cfg = Config(
        dict(
            val_dataloader=dict(
                dataset=dict(
                    type="ConcatDataset", datasets=[dict(type="VOCDataset", classes=["RBC", "WBC", "Platelets"])]
                )
            )
        )
    )
    assert class_names_of(cfg) == ["RBC", "WBC", "Platelets"]
    assert class_names_of(Config(dict(classes="data/imagenet/synsets.txt"))) is None  # a file, not names
    detector.class_names = ["x", "y", "z", "u", "v"]  # e.g. a checkpoint's meta['classes']
    try:
        result = inference_detector(detector, np.zeros((48, 64, 3), np.uint8))
        assert result["class_names"] == [["x", "y", "z", "u", "v"][label] for label in result["labels"].tolist()]
    finally:
        del detector.class_names


def _runs_the_fast_path(model: torch.nn.Module) -> bool:
    from torchvision.ops import FrozenBatchNorm2d

    from resdet.models.detectors import is_inference_optimized

    return (
        is_inference_optimized(model)
        and model.channels_last
        and model.backbone.conv1.weight.is_contiguous(memory_format=torch.channels_last)
        and not any(isinstance(m, FrozenBatchNorm2d) for m in model.modules())
    )


def test_inference_runs_the_fast_path_on_a_copy(detector, monkeypatch):
    """inference_detector and the demo's predictor run the folded, channels_last
    model (the same detections as ``optimize_for_inference``'s); the caller's model keeps its
    checkpoint's layout."""
    from resdet.apis import detect, optimize_for_inference
    from resdet.apis.predictors import make_predictor

    ran = []
    real = detect.fast_path
    monkeypatch.setattr(detect, "fast_path", lambda model, **kw: ran.append(real(model, **kw)) or ran[-1])
    img = np.random.default_rng(2).integers(0, 255, (72, 90, 3), dtype=np.uint8)
    result = inference_detector(detector, img)
    assert len(ran) == 1 and ran[0] is not detector and _runs_the_fast_path(ran[0])
    assert not detector.channels_last and not hasattr(detector, "inference_optimized")
    reference = inference_detector(optimize_for_inference(detector), img)
    assert torch.equal(result["boxes"], reference["boxes"]) and torch.equal(result["scores"], reference["scores"])
    predictor = make_predictor(detector)
    assert _runs_the_fast_path(predictor.model) and predictor.model is not detector
    assert torch.equal(predictor.predict([img])[0]["boxes"], result["boxes"])


def test_the_fast_copy_is_made_once_and_again_when_the_model_changes(detector):
    """Called in a loop, inference_detector folds the model once; a change of a weight or of a
    setting (the score threshold) is seen by the next call."""
    from resdet.apis import model as model_api

    img = np.random.default_rng(3).integers(0, 255, (64, 80, 3), dtype=np.uint8)
    first = inference_detector(detector, img)
    copy_ = model_api._FAST_COPIES[detector][1]
    again = inference_detector(detector, img)
    assert model_api._FAST_COPIES[detector][1] is copy_ and torch.equal(first["scores"], again["scores"])
    old = detector.roi_heads.score_thresh
    try:
        detector.roi_heads.score_thresh = 0.5
        higher = inference_detector(detector, img)
        assert model_api._FAST_COPIES[detector][1] is not copy_
        assert len(higher["scores"]) < len(first["scores"]) and bool((higher["scores"] > 0.5).all())
    finally:
        detector.roi_heads.score_thresh = old
    weight = detector.roi_heads.box_predictor.cls_score.bias
    saved = weight.detach().clone()
    try:
        with torch.no_grad():
            weight.add_(1.0)
        shifted = inference_detector(detector, img)
        assert not torch.equal(shifted["scores"], first["scores"])
    finally:
        with torch.no_grad():
            weight.copy_(saved)
    assert torch.equal(inference_detector(detector, img)["scores"], first["scores"])
