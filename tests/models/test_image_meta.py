"""``ImageMeta``: the one typed per-image meta, read from dicts in one place, and the one
``postprocess`` path of the detectors (eager, ``DetectorTTA``)."""

import dataclasses

import pytest
import torch
from test_faster_rcnn import images_and_targets, tiny_cfg  # noqa: E402 (tests/models on sys.path)

from resdet.models.detectors import DetectorTTA
from resdet.registry import MODELS
from resdet.structures import ImageMeta, flip_boxes, image_metas, map_boxes_to_original
from resdet.structures.image_meta import unscale_boxes


def test_from_dict_fills_missing_keys_and_reads_tensors():
    meta = ImageMeta.from_dict(
        {
            "orig_size": torch.tensor([48, 64]),
            "scale_factor": torch.tensor([2.0, 2.0]),
            "flip": torch.tensor(True),
            "img_id": 7,
        },
        image_shape=(96, 128),
    )
    assert meta == ImageMeta(orig_size=(48, 64), img_shape=(96, 128), scale_factor=(2.0, 2.0), flip=True)
    # one number is both factors; a missing size follows from the other and the scale
    assert ImageMeta.from_dict({"img_shape": (30, 50), "scale_factor": 0.5}).orig_size == (60, 100)
    assert ImageMeta.from_dict({"orig_size": (60, 100), "scale_factor": (0.5, 0.5)}).img_shape == (30, 50)
    with pytest.raises(KeyError, match="img_shape"):
        ImageMeta.from_dict({"flip": True, "orig_size": (4, 4)})
    with pytest.raises(ValueError, match="scale_factor"):
        ImageMeta.from_dict({"orig_size": (4, 4), "scale_factor": (1.0, 2.0, 3.0)})
    with pytest.raises(dataclasses.FrozenInstanceError):
        meta.flip = False


def test_image_metas_is_the_one_conversion():
    images = [torch.zeros(3, 20, 30), torch.zeros(3, 10, 12), torch.zeros(3, 8, 8)]
    typed = ImageMeta(orig_size=(5, 6), img_shape=(10, 12), scale_factor=(2.0, 2.0))
    metas = image_metas(images, [{"boxes": torch.zeros(0, 4)}, typed, None])
    assert metas[0] == ImageMeta.identity(20, 30)  # a dict without meta keys: the image as given
    assert metas[1] is typed and metas[2] == ImageMeta.identity(8, 8)
    assert image_metas(images) == [ImageMeta.identity(20, 30), ImageMeta.identity(10, 12), ImageMeta.identity(8, 8)]
    with pytest.raises(ValueError, match="2 meta entries"):
        image_metas(images, [None, None])


def test_boxes_back_to_original_and_tensor_factors_give_the_same_bits():
    orig = torch.tensor([[10.0, 20.0, 50.0, 60.0], [0.0, 0.0, 99.0, 99.0]])
    meta = ImageMeta(orig_size=(100, 100), img_shape=(150, 200), scale_factor=(2.0, 1.5), flip=True)
    shown = flip_boxes(orig * torch.tensor([2.0, 1.5, 2.0, 1.5]), 200.0)
    assert torch.allclose(meta.boxes_to_original(shown), orig)
    assert torch.equal(map_boxes_to_original(shown, dataclasses.asdict(meta)), meta.boxes_to_original(shown))
    # the export graph's factors (float64 tensors from sizes) round exactly like Python floats
    boxes = torch.rand(50, 4) * 700
    for new, old in ((600, 427), (1000, 333), (800, 641)):
        ratio = torch.tensor(float(new), dtype=torch.float64) / torch.tensor(float(old), dtype=torch.float64)
        assert torch.equal(unscale_boxes(boxes, (ratio, ratio)), unscale_boxes(boxes, (new / old, new / old)))
    # clipped to the original image
    assert torch.equal(ImageMeta.identity(40, 40).boxes_to_original(orig[:1]), torch.tensor([[10.0, 20.0, 40.0, 40.0]]))


def test_detector_takes_dict_or_typed_meta_and_tta_wrapper_postprocesses(repo_root):
    torch.manual_seed(0)
    model = MODELS.build(tiny_cfg("frcnn_r50_fpn", repo_root)).eval()
    model.roi_heads.score_thresh = 0.0
    images, _ = images_and_targets()
    dicts = [
        {"img_shape": (128, 128), "scale_factor": (2.0, 2.0), "flip": True, "orig_size": (64, 64)},
        {"img_shape": (96, 112), "scale_factor": (0.5, 0.5), "flip": False, "orig_size": (192, 224)},
    ]
    with torch.no_grad():
        from_dicts = model(images, dicts)
        typed = model(images, [ImageMeta.from_dict(d) for d in dicts])
        for a, b in zip(from_dicts, typed):
            assert len(a["boxes"]) > 0 and torch.equal(a["boxes"], b["boxes"]) and torch.equal(a["scores"], b["scores"])
        assert from_dicts[0]["boxes"].max() <= 64 and from_dicts[1]["boxes"].max() > 128  # mapped back
        # test-time augmentation as a wrapper == the detector's own test_cfg, both through postprocess
        wrapped = DetectorTTA(model, flip=True)
        assert not wrapped.training
        by_wrapper = wrapped(images, dicts)
        model.test_cfg = dict(flip=True)
        by_cfg = model(images, dicts)
    for a, b in zip(by_wrapper, by_cfg):
        assert torch.equal(a["boxes"], b["boxes"]) and torch.equal(a["labels"], b["labels"])
    assert by_wrapper[0]["boxes"].max() <= 64
