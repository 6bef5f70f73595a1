"""Box structures, box coder, matcher and sampler."""

import math

import pytest
import torch

from resdet.models.utils import BalancedSampler, BoxCoder, Matcher
from resdet.structures import box_ioa, clip_boxes, flip_boxes, map_boxes_to_original, xywh_to_xyxy, xyxy_to_xywh


def test_xywh_round_trip_and_flip():
    boxes = torch.tensor([[10.0, 20.0, 50.0, 80.0]])
    assert torch.equal(xyxy_to_xywh(boxes), torch.tensor([[10.0, 20.0, 40.0, 60.0]]))
    assert torch.equal(xywh_to_xyxy(xyxy_to_xywh(boxes)), boxes)
    assert torch.equal(flip_boxes(boxes, 100.0), torch.tensor([[50.0, 20.0, 90.0, 80.0]]))
    assert torch.equal(flip_boxes(flip_boxes(boxes, 100.0), 100.0), boxes)
    assert torch.equal(
        clip_boxes(torch.tensor([[-5.0, 3.0, 120.0, 70.0]]), (60, 100)), torch.tensor([[0.0, 3.0, 100.0, 60.0]])
    )


def test_box_ioa():
    boxes = torch.tensor([[0.0, 0.0, 10.0, 10.0], [20.0, 20.0, 30.0, 30.0]])
    region = torch.tensor([[5.0, 0.0, 100.0, 100.0]])
    assert torch.allclose(box_ioa(boxes, region), torch.tensor([[0.5], [1.0]]))


def test_map_boxes_to_original_undoes_resize_and_flip():
    orig = torch.tensor([[10.0, 20.0, 50.0, 60.0]])
    # pipeline: resize by (2, 1.5) to img_shape (150, 200), then flip
    resized = orig * torch.tensor([2.0, 1.5, 2.0, 1.5])
    flipped = flip_boxes(resized, 200.0)
    meta = {"img_shape": (150, 200), "scale_factor": (2.0, 1.5), "flip": True, "orig_size": (100, 100)}
    assert torch.allclose(map_boxes_to_original(flipped, meta), orig)
    # clipped to the original image
    meta = {"scale_factor": (1.0, 1.0), "orig_size": (40, 40)}
    assert torch.equal(map_boxes_to_original(orig, meta), torch.tensor([[10.0, 20.0, 40.0, 40.0]]))


def test_box_coder_round_trip_and_values():
    coder = BoxCoder((10.0, 10.0, 5.0, 5.0))
    ref = torch.tensor([[0.0, 0.0, 10.0, 20.0], [5.0, 5.0, 25.0, 15.0]])
    gt = torch.tensor([[1.0, 2.0, 11.0, 22.0], [0.0, 0.0, 40.0, 20.0]])
    deltas = coder.encode(ref, gt)
    # first: centre moves by (1, 2) on a 10 x 20 box -> dx = 10 * 0.1, dy = 10 * 0.1; same size
    assert torch.allclose(deltas[0], torch.tensor([1.0, 1.0, 0.0, 0.0]), atol=1e-6)
    assert torch.allclose(deltas[1, 2], torch.tensor(5.0 * math.log(2.0)))
    assert torch.allclose(coder.decode(deltas, ref), gt, atol=1e-4)
    # k boxes per reference (class-specific): N x 4k
    multi = coder.decode(torch.cat([deltas, torch.zeros_like(deltas)], dim=1), ref)
    assert multi.shape == (2, 8)
    assert torch.allclose(multi[:, 4:], ref)
    # huge dw is clamped instead of overflowing
    assert torch.isfinite(coder.decode(torch.tensor([[0.0, 0.0, 1e4, 1e4]]), ref[:1])).all()


def test_matcher_thresholds_best_match_and_ignore():
    matcher = Matcher((0.3, 0.7), allow_low_quality_matches=True)
    # 2 objects x 5 predictions
    iou = torch.tensor([[0.8, 0.5, 0.1, 0.0, 0.2], [0.0, 0.1, 0.4, 0.0, 0.1]])
    matched, labels = matcher(iou)
    assert matched.tolist() == [0, 0, 1, 0, 0]
    # 0.8 positive, 0.5 between -> ignored, 0.4 is object 1's best -> positive, 0.0 / 0.2 negative
    assert labels.tolist() == [1, -1, 1, 0, 0]
    ignore = torch.tensor([False, False, False, True, False])
    _, labels = matcher(iou, ignore)
    assert labels.tolist() == [1, -1, 1, -1, 0]
    plain = Matcher((0.5, 0.5), negative_floor=0.1)
    _, labels = plain(iou)
    assert labels.tolist() == [1, 1, 0, -1, 0]
    _, labels = matcher(torch.zeros(0, 3))
    assert labels.tolist() == [0, 0, 0]
    with pytest.raises(ValueError, match="thresholds"):
        Matcher((0.7, 0.3))


def test_sampler_fractions():
    torch.manual_seed(0)
    sampler = BalancedSampler(batch_size_per_image=256, positive_fraction=0.5)
    labels = torch.full((3, 5000), 0, dtype=torch.int8)
    labels[0, :1000] = 1  # many positives: capped at 128
    labels[1, :20] = 1  # few positives: all taken, negatives fill to 256
    labels[2, :] = -1
    labels[2, :10] = 0  # almost everything ignored: only 10 negatives exist
    pos, neg = sampler(labels)
    assert pos.sum(1).tolist() == [128, 20, 0]
    assert neg.sum(1).tolist() == [128, 236, 10]
    assert not (pos & neg).any()
    assert (labels[pos] == 1).all() and (labels[neg] == 0).all()
    # sampling is random: different picks over calls
    pos2, _ = sampler(labels)
    assert not torch.equal(pos[0], pos2[0])
