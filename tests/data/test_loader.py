"""Samplers, collate functions and build_dataloader (order, sharding, resume, skipped samples)."""

import itertools

import numpy as np
import pytest
import torch
from torch.utils.data import Dataset

from resdet.data.collate import SkipCollate, cls_collate, det_collate
from resdet.data.loader import build_dataloader
from resdet.data.problems import Skipped
from resdet.data.samplers import AspectRatioGroupedSampler, DistributedTrainSampler, InferenceSampler
from resdet.registry import COLLATE_FUNCTIONS, DATA_SAMPLERS
from resdet.utils.errors import ConfigError


@pytest.fixture(autouse=True)
def single_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


class RandomFlipSet(Dataset):
    """Sample ``i``: a 2x2 image holding ``i`` and a random number drawn in ``__getitem__``."""

    def __init__(self, num=10, bad=()):
        self.num, self.bad = num, set(bad)
        self.aspect_ratios = [0.5 if i % 3 == 0 else 1.5 for i in range(num)]

    def __len__(self):
        return self.num

    def __getitem__(self, index):
        if index in self.bad:
            return None
        img = np.full((2, 2, 3), index, dtype=np.uint8)
        img[0, 0, 0] = np.random.randint(0, 256)  # "augmentation"
        return {"img": img, "label": index, "img_id": index}


def _take(iterator, count):
    return list(itertools.islice(iterator, count))


def test_distributed_train_sampler_shards_and_resumes():
    single = _take(iter(DistributedTrainSampler(range(10), seed=3, rank=0, world_size=1)), 30)
    assert sorted(single[:10]) == list(range(10)) and sorted(single[10:20]) == list(range(10))
    assert single[:10] != single[10:20]  # a new permutation each epoch
    ranks = [_take(iter(DistributedTrainSampler(range(10), seed=3, rank=r, world_size=2)), 15) for r in (0, 1)]
    interleaved = [x for pair in zip(*ranks) for x in pair]
    assert interleaved == single  # round-robin shards of the same epoch permutations
    resumed = _take(iter(DistributedTrainSampler(range(10), seed=3, rank=1, world_size=2, start_index=7)), 8)
    assert resumed == ranks[1][7:15]
    padded = _take(iter(DistributedTrainSampler(range(5), seed=0, rank=1, world_size=2)), 3)
    assert len(set(_take(iter(DistributedTrainSampler(range(5), seed=0, rank=0, world_size=2)), 3)) | set(padded)) == 5


def test_inference_sampler_covers_each_index_once():
    shards = [list(InferenceSampler(range(11), rank=r, world_size=3)) for r in range(3)]
    assert [len(s) for s in shards] == [4, 3, 4]
    assert sum(shards, []) == list(range(11))


def test_aspect_ratio_grouping_and_resume():
    data = RandomFlipSet(num=20)
    sampler = AspectRatioGroupedSampler(data, batch_size=3, seed=1, rank=0, world_size=1)
    batches = _take(iter(sampler), 12)
    for batch in batches:
        assert len(batch) == 3
        assert len({data.aspect_ratios[i] >= 1 for i in batch}) == 1
    first_epoch = sampler.epoch_batches(0)
    assert set(sum(first_epoch, [])) == set(range(20))  # every image in the epoch
    resumed = _take(iter(AspectRatioGroupedSampler(data, batch_size=3, seed=1, rank=0, world_size=1, start_iter=5)), 7)
    assert resumed == batches[5:12]
    assert DATA_SAMPLERS.get("AspectRatioGroupedSampler") is AspectRatioGroupedSampler
    with pytest.raises(AttributeError, match="aspect_ratios"):
        AspectRatioGroupedSampler(range(4), batch_size=2, rank=0, world_size=1)


def test_skip_collate_counts_and_removes_markers():
    good = {"img": np.zeros((4, 5, 3), np.uint8), "label": 2, "img_id": 7}
    collate = SkipCollate(cls_collate)
    batch = collate([good, None])
    assert batch["inputs"].shape == (1, 3, 4, 5) and batch["inputs"].dtype == torch.uint8
    assert batch["targets"]["labels"].tolist() == [2] and batch["num_skipped"] == 1 and "skipped" not in batch
    stand_in = dict(good, label=5)
    marked = collate(
        [
            Skipped(3, "a/3.png", "unreadable image: empty"),
            Skipped(4, "b.png", "unreadable image: cut", img_id=4, replacement=stand_in),
            good,
        ]
    )
    assert marked["targets"]["labels"].tolist() == [5, 2]  # the stand-in in the marker's place
    assert marked["num_skipped"] == 2 and marked["skipped"] == ["a/3.png", "b.png (image id 4)"]
    assert collate([good])["num_skipped"] == 0
    with pytest.raises(ValueError, match="one size"):
        cls_collate(
            [{"img": np.zeros((4, 5, 3), np.uint8), "label": 0}, {"img": np.zeros((5, 4, 3), np.uint8), "label": 0}]
        )
    img = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    det = SkipCollate(det_collate)(
        [
            None,
            {
                "img": img,
                "boxes": np.array([[0, 0, 2, 1]], np.float32),
                "labels": np.array([4]),
                "img_id": 9,
                "orig_size": (4, 6),
                "scale_factor": (0.5, 0.5),
                "masks": np.ones((1, 2, 3), np.uint8),
            },
        ]
    )
    assert det["num_skipped"] == 1 and len(det["inputs"]) == 1
    assert torch.equal(det["inputs"][0], torch.from_numpy(img).permute(2, 0, 1))
    target = det["targets"][0]
    assert target["boxes"].dtype == torch.float32 and target["labels"].dtype == torch.int64
    assert target["ignore"].tolist() == [False] and target["masks"].shape == (1, 2, 3)
    assert target["img_shape"] == (2, 3) and target["orig_size"] == (4, 6) and target["flip"] is False


def test_collate_functions_and_samplers_build_through_their_registries():
    assert COLLATE_FUNCTIONS.build("det_collate") is det_collate
    assert COLLATE_FUNCTIONS.build(dict(type="cls_collate")) is cls_collate
    assert COLLATE_FUNCTIONS.build(det_collate) is det_collate  # a callable stays as it is
    with pytest.raises(ConfigError, match=r"'det_colate' is not registered .*did you mean 'det_collate'"):
        COLLATE_FUNCTIONS.build("det_colate")
    with pytest.raises(ConfigError, match=r"has no argument 'pad'; it takes: samples"):
        COLLATE_FUNCTIONS.build(dict(type="det_collate", pad=32))
    sampler = DATA_SAMPLERS.build(dict(type="InferenceSampler", dataset=range(5), rank=1, world_size=2))
    assert isinstance(sampler, InferenceSampler) and list(sampler) == [2, 3, 4]
    cfg = dict(batch_size=2, num_workers=0, dataset=RandomFlipSet(num=4), collate="cls_colate")
    with pytest.raises(ConfigError, match="did you mean 'cls_collate'"):
        build_dataloader(cfg, training=False, rank=0, world_size=1)
    with pytest.raises(ConfigError, match=r"did you mean 'InferenceSampler'"):
        build_dataloader(
            dict(cfg, collate="cls_collate", sampler=dict(type="InferenceSamplr")), training=False, rank=0, world_size=1
        )
    with pytest.raises(
        ConfigError,
        match=r"DistributedTrainSampler \(the 'data sampler' registry\) has no "
        r"argument 'shufle' \(did you mean 'shuffle'\?\)",
    ):
        build_dataloader(
            dict(cfg, collate="cls_collate", sampler=dict(type="DistributedTrainSampler", shufle=False)),
            training=True,
            rank=0,
            world_size=1,
        )
    with pytest.raises(ConfigError, match=r"val_dataloader.sampler 'AspectRatioGroupedSampler' is a training"):
        build_dataloader(
            dict(cfg, collate="cls_collate", sampler=dict(type="AspectRatioGroupedSampler")),
            training=False,
            rank=0,
            world_size=1,
            name="val_dataloader",
        )


def _batches(loader, count):
    out = []
    for batch in _take(iter(loader), count):
        out.append((batch["targets"]["labels"].tolist(), batch["inputs"][:, 0, 0, 0].tolist(), batch["num_skipped"]))
    return out


def test_train_loader_is_reproducible_across_workers_and_resume():
    cfg = dict(batch_size=4, num_workers=0, dataset=RandomFlipSet(num=10, bad=(3,)), collate="cls_collate")
    ref = _batches(build_dataloader(cfg, training=True, seed=5, rank=0, world_size=1), 6)
    assert sum(b[2] for b in ref[:5]) == 2  # 5 batches x 4 = 2 epochs, index 3 once per epoch
    cfg_workers = dict(cfg, num_workers=2)
    assert _batches(build_dataloader(cfg_workers, training=True, seed=5, rank=0, world_size=1), 6) == ref
    resumed = build_dataloader(cfg_workers, training=True, seed=5, start_iter=4, rank=0, world_size=1)
    assert _batches(resumed, 2) == ref[4:6]  # same indices and the same random draws
    other_seed = _batches(build_dataloader(cfg, training=True, seed=6, rank=0, world_size=1), 6)
    assert other_seed != ref
    # sharded over 2 ranks: the two halves of each global batch, with the same random draws
    halves = [_batches(build_dataloader(cfg, training=True, seed=5, rank=r, world_size=2), 2) for r in (0, 1)]
    ranked = sorted(zip(halves[0][0][0] + halves[1][0][0], halves[0][0][1] + halves[1][0][1]))
    assert ranked == sorted(zip(ref[0][0], ref[0][1]))
    with pytest.raises(ValueError, match="divisible"):
        build_dataloader(dict(cfg, batch_size=5), training=True, rank=0, world_size=2)


def test_eval_loader_shards_without_padding():
    cfg = dict(batch_size=4, num_workers=0, dataset=RandomFlipSet(num=7), collate="cls_collate")
    seen = []
    for rank in (0, 1):
        loader = build_dataloader(cfg, training=False, rank=rank, world_size=2)
        seen += [i for b in loader for i in b["targets"]["labels"].tolist()]
    assert seen == list(range(7))
    with pytest.raises(ConfigError, match=r"unknown dataloader keys \['batchsize'\] \(did you mean 'batch_size'\?\)"):
        build_dataloader(dict(cfg, batchsize=2), training=False)
    with pytest.raises(ConfigError, match="val_dataloader needs a 'dataset' entry"):
        build_dataloader(dict(batch_size=2), training=False, name="val_dataloader")
