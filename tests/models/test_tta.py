"""Test-time wrappers: 10-crop views, multi-scale averaging, ensembles, apply_test_mode."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from resdet.models.classifiers import EnsembleClassifier, MultiScaleClassifier, TenCropClassifier, apply_test_mode
from resdet.models.classifiers.tta import resize_shorter_side, ten_crop_views
from resdet.registry import MODELS


def _tiny(seed=0, num_classes=4):
    torch.manual_seed(seed)
    model = MODELS.build(
        dict(
            type="ImageClassifier",
            num_classes=num_classes,
            mean=(120.0, 110.0, 100.0),
            std=(60.0, 60.0, 60.0),
            backbone=dict(type="CifarResNet", depth=8),
        )
    )
    with torch.no_grad():  # non-trivial BN statistics so scores differ between views
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 2.0)
    return model.eval()


def test_ten_crop_views_are_the_standard_crops():
    images = torch.arange(2 * 3 * 12 * 14, dtype=torch.float32).view(2, 3, 12, 14)
    views = ten_crop_views(images, 8)
    assert views.shape == (2, 10, 3, 8, 8)
    corners = [
        images[..., :8, :8],
        images[..., :8, 6:],
        images[..., 4:, :8],
        images[..., 4:, 6:],
        images[..., 2:10, 3:11],
    ]
    for i, crop in enumerate(corners):
        torch.testing.assert_close(views[:, i], crop)
        torch.testing.assert_close(views[:, 5 + i], crop.flip(-1) if i == 4 else views[:, 5 + i])
    flipped = images.flip(-1)
    torch.testing.assert_close(views[:, 5], flipped[..., :8, :8])  # top-left of the mirror
    torch.testing.assert_close(views[:, 6], flipped[..., :8, 6:])
    assert ten_crop_views(images, 8, flip=False).shape == (2, 5, 3, 8, 8)
    with pytest.raises(ValueError, match="at least"):
        ten_crop_views(images, 13)


def test_ten_crop_classifier_averages_softmax_of_the_views():
    model = _tiny()
    images = torch.randint(0, 256, (3, 3, 40, 40), dtype=torch.uint8)
    wrapped = TenCropClassifier(model, crop_size=32).eval()
    with torch.no_grad():
        out = wrapped(images)
        views = ten_crop_views(images, 32)
        expected = torch.stack([F.softmax(model(views[:, v]), 1) for v in range(10)]).mean(0)
        listed = wrapped([images[0], images[1, :, :36, :]])  # differently sized images
    assert out.shape == (3, 4)
    torch.testing.assert_close(out.softmax(1), expected, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(listed[0], out[0], rtol=1e-5, atol=1e-6)
    assert not torch.allclose(expected, F.softmax(model(views[:, 4]), 1), atol=1e-4)


def test_multi_scale_equals_mean_of_per_scale_softmax():
    model = _tiny(1)
    images = torch.randint(0, 256, (2, 3, 32, 48), dtype=torch.uint8)
    scales = (16, 24, 40)
    wrapped = MultiScaleClassifier(model, scales=scales, flip=True).eval()
    with torch.no_grad():
        out = wrapped(images)
        x = model.preprocessor(images)
        per_scale = []
        for s in scales:
            r = resize_shorter_side(x, s)
            assert min(r.shape[-2:]) == s and abs(r.shape[-1] / r.shape[-2] - 1.5) < 0.05
            per_scale += [F.softmax(model(r), 1), F.softmax(model(r.flip(-1)), 1)]
        expected = torch.stack(per_scale).mean(0)
        per_image = wrapped([images[0], images[1]])
    torch.testing.assert_close(out.softmax(1), expected, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(per_image, out, rtol=1e-4, atol=1e-5)
    spread = torch.stack(per_scale).std(0).max()
    assert spread > 1e-4  # the scales really give different scores


def test_ensemble_and_apply_test_mode(tmp_path):
    a, b = _tiny(2), _tiny(3)
    torch.save({"model": b.state_dict()}, tmp_path / "b.pth")
    cfg_b = dict(
        type="ImageClassifier",
        num_classes=4,
        mean=(120.0, 110.0, 100.0),
        std=(60.0, 60.0, 60.0),
        backbone=dict(type="CifarResNet", depth=8),
    )
    ensemble = EnsembleClassifier([a, cfg_b], checkpoints=[None, str(tmp_path / "b.pth")], weights=[1, 3]).eval()
    images = torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8)
    with torch.no_grad():
        expected = 0.25 * F.softmax(a(images), 1) + 0.75 * F.softmax(b(images), 1)
        torch.testing.assert_close(ensemble(images).softmax(1), expected, rtol=1e-5, atol=1e-6)
    with pytest.raises(RuntimeError, match="evaluation"):
        ensemble.train()(images)
    model = _tiny()
    assert apply_test_mode(model, None) is model and apply_test_mode(model, "center") is model
    ten = apply_test_mode(model, "ten_crop")
    assert isinstance(ten, TenCropClassifier) and ten.crop_size == 224 and not ten.training
    multi = apply_test_mode(model, dict(type="MultiScaleClassifier", scales=(24, 32)))
    assert isinstance(multi, MultiScaleClassifier) and multi.scales == (24, 32)
    assert MultiScaleClassifier(model).scales == (224, 256, 384, 480, 640)
    with pytest.raises(ValueError, match="allowed"):
        apply_test_mode(model, "five_crop")
    from resdet.models.classifiers.tta import build_tta
    from resdet.utils.config import load_config

    cfg = load_config("resnet50_imagenet")
    assert build_tta(model, cfg) == (model, None)  # test_mode None: unchanged
    wrapped, loader = build_tta(model, cfg, "ten_crop")
    assert isinstance(wrapped, TenCropClassifier)
    assert loader["dataset"]["pipeline"][1] == dict(type="CenterCrop", size=256)
    cfg.test_mode = dict(type="MultiScaleClassifier", scales=(32, 48))
    wrapped, loader = build_tta(model, cfg)
    assert wrapped.scales == (32, 48) and loader["batch_size"] == 1 and loader["dataset"]["pipeline"] == []
    # train mode forwards to the classifier (losses)
    ten.train()
    losses = ten(images, {"labels": torch.tensor([0, 1])})
    assert set(losses) == {"loss_cls", "train_err"} and np.isfinite(losses["loss_cls"].item())
