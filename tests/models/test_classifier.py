"""ImageClassifier: preprocessor, train/eval calling convention, heads."""

import pytest
import torch
import torch.nn.functional as F

from resdet.models.classifiers import ClsPreprocessor, ImageClassifier
from resdet.registry import MODELS


def cifar20(**kwargs):
    return MODELS.build(
        dict(type="ImageClassifier", num_classes=10, backbone=dict(type="CifarResNet", depth=20), **kwargs)
    )


def test_eval_returns_logits_and_train_returns_losses():
    torch.manual_seed(0)
    model = cifar20()
    x = torch.randint(0, 256, (6, 3, 32, 32), dtype=torch.uint8)
    labels = torch.tensor([0, 1, 2, 3, 4, 5])
    model.train()
    with torch.no_grad():
        logits = model.head(model.extract_features(x)["layer3"])  # batch statistics, same as below
    out = model(x, {"labels": labels})
    assert set(out) == {"loss_cls", "train_err"}
    assert torch.allclose(out["loss_cls"], F.cross_entropy(logits, labels), atol=1e-5)
    assert out["train_err"].item() == pytest.approx((logits.argmax(1) != labels).float().mean().item())
    out["loss_cls"].backward()
    assert model.backbone.conv1.weight.grad is not None
    model.eval()
    with torch.no_grad():
        assert model(x).shape == (6, 10)
        assert model(x, {"labels": labels}).shape == (6, 10)


def test_train_without_targets_is_a_clear_error():
    model = cifar20().train()
    with pytest.raises(ValueError, match="targets"):
        model(torch.zeros(2, 3, 32, 32))


def test_preprocessor_per_channel_and_float_passthrough():
    pre = ClsPreprocessor(mean=(10.0, 20.0, 30.0), std=(2.0, 4.0, 5.0))
    x = torch.full((1, 3, 2, 2), 50, dtype=torch.uint8)
    y = pre(x)
    assert torch.allclose(y[0, :, 0, 0], torch.tensor([20.0, 7.5, 4.0]))
    f = torch.randn(1, 3, 4, 4)
    assert pre(f) is f


def test_preprocessor_per_pixel_mean_is_saved_and_resized():
    mean = torch.arange(3 * 4 * 4, dtype=torch.float32).view(3, 4, 4)
    pre = ClsPreprocessor(mean=mean, std=None)
    x = torch.full((2, 3, 4, 4), 100, dtype=torch.uint8)
    assert torch.allclose(pre(x), 100 - mean.unsqueeze(0))
    assert pre.state_dict()["mean"].shape == (1, 3, 4, 4)
    const = ClsPreprocessor(mean=torch.full((3, 4, 4), 7.0), std=None)
    assert torch.allclose(const(torch.full((1, 3, 8, 6), 9, dtype=torch.uint8)), torch.full((1, 3, 8, 6), 2.0))
    with pytest.raises(ValueError, match="mean"):
        ClsPreprocessor(mean=(1.0, 2.0))


def test_resnet_and_vgg_heads():
    resnet = MODELS.build(dict(type="ImageClassifier", num_classes=7, backbone=dict(type="ResNet", depth=18))).eval()
    assert resnet.head.fc.weight.shape == (7, 512)
    with torch.no_grad():
        assert resnet(torch.randn(2, 3, 64, 64)).shape == (2, 7)
    with torch.device("meta"):
        vgg = ImageClassifier(backbone=dict(type="VGG", depth=16), num_classes=5)
    assert vgg.head.fc6.weight.shape == (4096, 512 * 7 * 7) and vgg.head.fc8.weight.shape == (5, 4096)
    small = ImageClassifier(
        backbone=dict(type="VGG", depth=16), num_classes=5, head=dict(type="VGGClsHead", hidden_channels=64)
    ).eval()
    with torch.no_grad():
        assert small(torch.randn(1, 3, 32, 32)).shape == (1, 5)


def test_bad_arguments():
    with pytest.raises(ValueError, match="num_classes"):
        ImageClassifier(backbone=dict(type="CifarResNet"), num_classes=0)
    with pytest.raises(ValueError, match="layer3"):
        ImageClassifier(backbone=dict(type="CifarResNet"), feature_key="c5")
