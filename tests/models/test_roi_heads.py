"""RoI heads: sampling, losses that train, post-processing, poolers; the typed hand-offs."""

import pytest
import torch

from resdet.models.roi_heads import RoIPooler, StandardRoIHeads
from resdet.structures.instances import Detections, Proposals, SampledRoIs, positive_rows


def _heads(**kwargs):
    cfg = dict(
        box_pooler=dict(type="RoIPooler", featmap_names=("c4",), output_size=4, spatial_scale=1 / 8),
        box_head=dict(type="FCBoxHead", in_channels=8, pooled_size=4, num_fcs=2, fc_dim=32),
        box_predictor=dict(type="BoxPredictor"),
        num_classes=3,
        batch_size_per_image=64,
    )
    cfg.update(kwargs)
    return StandardRoIHeads(**cfg)


def _targets():
    return [
        {
            "boxes": torch.tensor([[8.0, 8.0, 40.0, 40.0], [30.0, 10.0, 60.0, 50.0]]),
            "labels": torch.tensor([2, 1]),
            "ignore": torch.tensor([False, False]),
        },
        {
            "boxes": torch.tensor([[16.0, 16.0, 48.0, 48.0], [0.0, 0.0, 10.0, 10.0]]),
            "labels": torch.tensor([0, 1]),
            "ignore": torch.tensor([False, True]),
        },
    ]


def _proposals(n=200, seed=0):
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(n, 2, generator=g) * 48
    wh = torch.rand(n, 2, generator=g) * 30 + 4
    return torch.cat([xy, xy + wh], dim=1)


def test_sampling_fractions_labels_and_matches():
    torch.manual_seed(0)
    heads = _heads(batch_size_per_image=64, positive_fraction=0.25).train()
    samples = heads.sample_proposals([_proposals(), _proposals(seed=1)], _targets())
    for sample, target in zip(samples, _targets()):
        assert isinstance(sample, SampledRoIs)
        assert len(sample.boxes) == 64
        num_pos = sample.num_pos
        assert 1 <= num_pos <= 16
        labels = sample.labels
        assert (labels[:num_pos] < 3).all() and (labels[num_pos:] == 3).all()
        assert torch.equal(sample.positive_labels, labels[:num_pos])  # positives first
        # positives carry their object's class and index (what a mask head needs)
        idx = sample.positive_matched_idxs
        assert torch.equal(labels[:num_pos], target["labels"][idx])
        assert not target["ignore"][idx].any()
    # ground truth was added as proposals: an exact GT box is among the positives with zero delta
    assert (samples[0].reg_targets[: samples[0].num_pos].abs().sum(1) < 1e-5).any()


def test_roi_losses_finite_and_decreasing():
    torch.manual_seed(0)
    heads = _heads().train()
    features = {"c4": torch.randn(2, 8, 8, 8)}
    proposals = [Proposals(boxes, torch.ones(len(boxes))) for boxes in (_proposals(), _proposals(seed=1))]
    optimizer = torch.optim.SGD(heads.parameters(), lr=0.1, momentum=0.9)
    history, first_cls = [], None
    for _ in range(15):
        _, losses = heads(features, proposals, [(64, 64), (64, 64)], _targets())
        assert set(losses) == {"loss_cls", "loss_bbox", "roi_acc"}
        total = losses["loss_cls"] + losses["loss_bbox"]
        assert torch.isfinite(total)
        first_cls = losses["loss_cls"].item() if first_cls is None else first_cls
        history.append(total.item())
        optimizer.zero_grad()
        total.backward()
        optimizer.step()
    assert abs(first_cls - torch.log(torch.tensor(4.0)).item()) < 0.1  # 4-way softmax at init
    assert sum(history[-3:]) / 3 < 0.6 * history[0]


def test_postprocess_and_predict_shapes():
    torch.manual_seed(0)
    heads = _heads(score_thresh=0.2, detections_per_img=5).eval()
    features = {"c4": torch.randn(2, 8, 8, 8)}
    proposals = [_proposals(50), _proposals(30, seed=1)]
    probs, boxes = heads.predict(features, proposals, [(64, 64), (40, 50)])
    assert probs.shape == (80, 4) and boxes.shape == (80, 3, 4)
    assert torch.allclose(probs.sum(1), torch.ones(80))
    assert boxes[50:, :, 2].max() <= 50 and boxes[50:, :, 3].max() <= 40
    # hand-made probabilities: two overlapping class-0 boxes -> NMS keeps the better one
    probs = torch.tensor([[0.9, 0.0, 0.0, 0.1], [0.8, 0.0, 0.1, 0.1], [0.1, 0.1, 0.1, 0.7]])
    boxes = torch.tensor([[0.0, 0, 10, 10], [1, 1, 10, 10], [20, 20, 30, 30]])[:, None].repeat(1, 3, 1)
    det = heads.postprocess(probs, boxes)
    assert isinstance(det, Detections) and det.mask_probs is None
    assert det.labels.tolist() == [0]
    assert torch.allclose(det.scores, torch.tensor([0.9]))
    heads.score_thresh = 0.05
    det = heads.postprocess(probs, boxes)
    # class 0: 0.8 suppressed by 0.9 (IoU 0.81); boxes of other classes do not suppress each other
    assert sorted(det.labels.tolist()) == [0, 0, 1, 2, 2]
    assert torch.allclose(det.scores, torch.tensor([0.9, 0.1, 0.1, 0.1, 0.1]))
    assert det.labels[0] == 0 and torch.equal(det.boxes[0], boxes[0, 0])
    assert set(det.to_dict()) == {"boxes", "scores", "labels"}


def test_pooler_single_and_multi_level():
    feature = torch.arange(64.0).view(1, 1, 8, 8)
    pool = RoIPooler(featmap_names=("c4",), output_size=2, pool_type="pool", spatial_scale=1.0)
    out = pool({"c4": feature}, [torch.tensor([[0.0, 0.0, 3.0, 3.0]])], [(8, 8)])
    assert out.shape == (1, 1, 2, 2)
    assert out.flatten().tolist() == [9.0, 11.0, 25.0, 27.0]  # max of each 2x2 quadrant
    multi = RoIPooler(featmap_names=("p2", "p3"), output_size=3, sampling_ratio=2, aligned=False)
    feats = {"p2": torch.randn(2, 4, 16, 16), "p3": torch.randn(2, 4, 8, 8)}
    out = multi(
        feats,
        [torch.tensor([[0.0, 0, 10, 10]]), torch.tensor([[0.0, 0, 60, 60], [5, 5, 20, 20]])],
        [(64, 64), (64, 64)],
    )
    assert out.shape == (3, 4, 3, 3)


def test_typed_handoffs_check_sizes_and_keep_positives_first():
    boxes = torch.tensor([[0.0, 0, 10, 10], [5, 5, 20, 20], [1, 1, 4, 4]])
    sample = SampledRoIs(
        boxes=boxes,
        labels=torch.tensor([2, 0, 3]),
        matched_idxs=torch.tensor([1, 0, 0]),
        reg_targets=torch.zeros(3, 4),
        num_pos=2,
    )
    assert torch.equal(sample.positive_boxes, boxes[:2]) and sample.positive_labels.tolist() == [2, 0]
    assert sample.positive_matched_idxs.tolist() == [1, 0]
    other = SampledRoIs(
        boxes=boxes[:2],
        labels=torch.tensor([1, 3]),
        matched_idxs=torch.zeros(2, dtype=torch.int64),
        reg_targets=torch.zeros(2, 4),
        num_pos=1,
    )
    # rows of the positives among all sampled RoIs concatenated (image 0's 3, then image 1's 2)
    assert positive_rows([sample, other], "cpu").tolist() == [0, 1, 3]
    with pytest.raises(ValueError, match="num_pos=4"):
        SampledRoIs(
            boxes=boxes, labels=torch.zeros(3), matched_idxs=torch.zeros(3), reg_targets=torch.zeros(3, 4), num_pos=4
        )
    with pytest.raises(ValueError, match="scores has 2 rows for 3 boxes"):
        Proposals(boxes=boxes, scores=torch.ones(2))
    det = Detections(
        boxes=boxes,
        scores=torch.ones(3),
        labels=torch.zeros(3, dtype=torch.int64),
        masks=torch.zeros(3, 8, 8, dtype=torch.bool),
    )
    assert list(det.to_dict()) == ["boxes", "scores", "labels", "masks"]
