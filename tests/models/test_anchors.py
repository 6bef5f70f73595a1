"""Anchor generator: counts, shapes, values, torchvision's layout."""

import torch
from torchvision.models.detection.anchor_utils import AnchorGenerator as TVAnchorGenerator
from torchvision.models.detection.image_list import ImageList

from resdet.models.dense_heads import AnchorGenerator


def test_c4_anchor_counts_and_values():
    gen = AnchorGenerator(sizes=((32, 64, 128, 256, 512),), aspect_ratios=(0.5, 1.0, 2.0), strides=(16,))
    assert gen.num_anchors_per_location == [15]
    (anchors,) = gen((600, 800), [(38, 50)])
    assert anchors.shape == (38 * 50 * 15, 4)
    # first location: 15 anchors centred on (0, 0); ratio 1 size 32 is [-16, -16, 16, 16]
    first = anchors[:15]
    assert torch.equal((first[:, :2] + first[:, 2:]) / 2, torch.zeros(15, 2))
    assert [-16.0, -16.0, 16.0, 16.0] in first.tolist()
    areas = (first[:, 2] - first[:, 0]) * (first[:, 3] - first[:, 1])
    # areas close to size^2 for every ratio (rounding to whole pixels)
    expected = torch.tensor([32.0, 64, 128, 256, 512]).repeat(3) ** 2
    assert torch.allclose(areas, expected, rtol=0.03)
    # ratio 2 (height / width) anchors are tall
    tall = first[10:]
    assert ((tall[:, 3] - tall[:, 1]) > (tall[:, 2] - tall[:, 0])).all()
    # the next location is shifted by the stride
    assert torch.equal(anchors[15:30] - anchors[:15], torch.tensor([[16.0, 0, 16, 0]]).expand(15, 4))


def test_fpn_anchors_match_torchvision():
    sizes = ((32,), (64,), (128,), (256,), (512,))
    ratios = ((0.5, 1.0, 2.0),) * 5
    ours = AnchorGenerator(sizes=sizes, aspect_ratios=(0.5, 1.0, 2.0))
    theirs = TVAnchorGenerator(sizes, ratios)
    feats = [torch.zeros(1, 1, 200 // s, 320 // s) for s in (4, 8, 16, 32)] + [torch.zeros(1, 1, 4, 5)]
    images = ImageList(torch.zeros(1, 3, 224, 320), [(200, 300)])
    expected = theirs(images, feats)[0]
    got = torch.cat(ours((224, 320), [f.shape[-2:] for f in feats]))
    assert got.shape == expected.shape == (sum(f.shape[-1] * f.shape[-2] * 3 for f in feats), 4)
    assert torch.equal(got, expected)
