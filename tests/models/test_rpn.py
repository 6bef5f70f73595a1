"""RPN: proposal selection, anchor labelling with ignore regions, losses that train."""

import torch

from resdet.models.dense_heads import RPN


def _rpn(**kwargs):
    cfg = dict(
        anchor_generator=dict(
            type="AnchorGenerator", sizes=((16, 32, 64),), aspect_ratios=(0.5, 1.0, 2.0), strides=(8,)
        ),
        head=dict(type="RPNHead", in_channels=8, num_anchors=9),
        in_features=("c4",),
        pre_nms_top_n_train=300,
        post_nms_top_n_train=50,
        pre_nms_top_n_test=200,
        post_nms_top_n_test=30,
        batch_size_per_image=64,
    )
    cfg.update(kwargs)
    return RPN(**cfg)


def _targets():
    return [
        {
            "boxes": torch.tensor([[8.0, 8.0, 40.0, 40.0], [30.0, 10.0, 60.0, 50.0]]),
            "labels": torch.tensor([0, 1]),
            "ignore": torch.tensor([False, False]),
        },
        {
            "boxes": torch.tensor([[-64.0, -64.0, 128.0, 128.0], [16.0, 16.0, 48.0, 48.0]]),
            "labels": torch.tensor([0, 0]),
            "ignore": torch.tensor([True, False]),
        },
    ]


def test_rpn_proposals_shapes_and_limits():
    torch.manual_seed(0)
    rpn = _rpn().eval()
    features = {"c4": torch.randn(2, 8, 8, 8)}
    proposals, losses = rpn(features, [(64, 64), (50, 60)], (64, 64))
    assert losses == {}
    assert [p.boxes.shape[1] for p in proposals] == [4, 4]
    assert all(0 < len(p) <= 30 and len(p.scores) == len(p.boxes) for p in proposals)
    # clipped to each image's own size, sorted by score, probabilities
    assert proposals[1].boxes[:, 2].max() <= 60 and proposals[1].boxes[:, 3].max() <= 50
    scores = [p.scores for p in proposals]
    assert all((s[:-1] >= s[1:]).all() and s.min() >= 0 and s.max() <= 1 for s in scores)


def test_rpn_anchor_labels_best_match_and_ignore():
    torch.manual_seed(0)
    rpn = _rpn().train()
    anchors = torch.cat(rpn.anchor_generator((64, 64), [(8, 8)]))
    labels, matched = rpn.label_anchors(anchors, _targets(), [(64, 64), (64, 64)])
    assert labels.shape == (2, 8 * 8 * 9) and matched.shape == (2, 8 * 8 * 9, 4)
    # every real object has at least one positive anchor (best-match rule)
    assert (labels[0] == 1).sum() >= 2
    # image 1: a crowd box covers every anchor: nothing is negative there
    assert (labels[1] == 0).sum() == 0
    assert (labels[1] == 1).sum() >= 1
    assert torch.equal(
        matched[1][labels[1] == 1], torch.tensor([[16.0, 16.0, 48.0, 48.0]]).expand(int((labels[1] == 1).sum()), 4)
    )
    # anchors outside the image are ignored with allowed_border=0
    rpn_border = _rpn(allowed_border=0.0).train()
    labels_b, _ = rpn_border.label_anchors(anchors, _targets(), [(64, 64), (64, 64)])
    outside = (anchors[:, 0] < 0) | (anchors[:, 1] < 0) | (anchors[:, 2] > 64) | (anchors[:, 3] > 64)
    assert (labels_b[0][outside] == -1).all() and outside.any()


def test_rpn_losses_finite_and_decreasing():
    torch.manual_seed(0)
    rpn = _rpn().train()
    features = {"c4": torch.randn(2, 8, 8, 8)}
    optimizer = torch.optim.SGD(rpn.parameters(), lr=1.0, momentum=0.9)
    history = []
    for _ in range(15):
        _, losses = rpn(features, [(64, 64), (64, 64)], (64, 64), _targets())
        total = losses["loss_rpn_cls"] + losses["loss_rpn_bbox"]
        assert torch.isfinite(total)
        history.append(total.item())
        optimizer.zero_grad()
        total.backward()
        optimizer.step()
    assert sum(history[-3:]) / 3 < 0.7 * history[0]
    # the untrained objectness loss is about log 2 (probability 0.5 everywhere)
    assert abs(history[0] - 0.693) < 0.1
