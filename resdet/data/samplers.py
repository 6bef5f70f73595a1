"""Samplers of the iteration-based engine (registered in ``DATA_SAMPLERS``).

- ``DistributedTrainSampler``: an infinite stream of indices for one rank. Epoch ``e`` is a
  permutation drawn from ``seed + e`` (the same on every rank), padded by wrapping to a
  multiple of the world size and dealt round-robin (rank ``r`` takes positions ``r, r+W, ...``),
  so the union of the ranks' first batches equals the first global batch of a 1-process run.
  ``start_index`` (samples already consumed by this rank) jumps straight to the right epoch
  and position: this is how ``--resume`` replays exactly the remaining data order.
- ``InferenceSampler``: contiguous shards, no padding, so no sample is counted twice.
- ``AspectRatioGroupedSampler``: a *batch* sampler. Per epoch it takes the rank's index
  stream, splits it into landscape (w/h >= 1) and portrait images (order kept), cuts each
  group into batches (the incomplete tail padded with the group's first images of that
  epoch) and emits the batches in the order in which their last image arrived. Each epoch is
  computed in closed form, so resuming at any batch is exact and cheap.

The samplers refuse an empty dataset (``DataError`` naming it): an epoch without a sample
would make the infinite ones loop forever without yielding, and an evaluation of nothing
would report numbers about nothing.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sized

import numpy as np
import torch
from torch.utils.data import Sampler

from ..registry import DATA_SAMPLERS
from ..utils.dist import get_rank, get_world_size
from ..utils.errors import DataError


def _rank_and_world(rank: int | None, world_size: int | None) -> tuple[int, int]:
    rank = get_rank() if rank is None else int(rank)
    world_size = get_world_size() if world_size is None else int(world_size)
    if not 0 <= rank < world_size:
        raise ValueError(f"rank must be in [0, {world_size}), got {rank}")
    return rank, world_size


def require_samples(dataset: Sized, sampler: str) -> int:
    """``len(dataset)``, or ``DataError`` when it is 0."""
    count = len(dataset)
    if count == 0:
        described = getattr(dataset, "dataset", dataset)  # look through a seeding wrapper
        raise DataError(
            f"{sampler} got an empty dataset ({described!r} has 0 samples); check the dataset's files and filters"
        )
    return count


def epoch_indices(num_samples: int, epoch: int, seed: int, shuffle: bool, rank: int, world_size: int) -> np.ndarray:
    """Indices (int64, length ``ceil(num_samples / world_size)``) that ``rank`` sees in ``epoch``."""
    if shuffle:
        generator = torch.Generator()
        generator.manual_seed(int(seed) + int(epoch))
        order = torch.randperm(num_samples, generator=generator).numpy()
    else:
        order = np.arange(num_samples, dtype=np.int64)
    per_rank = math.ceil(num_samples / world_size)
    total = per_rank * world_size
    if total > num_samples:  # pad by wrapping around so every rank gets the same count
        order = np.concatenate([order, np.resize(order, total - num_samples)])
    return order[rank:total:world_size].astype(np.int64)


@DATA_SAMPLERS.register_module()
class DistributedTrainSampler(Sampler):
    """Infinite, shuffled, per-epoch seeded index stream sharded by rank.

    Args:
        dataset: anything with ``len``.
        shuffle: draw a new permutation each epoch (else the natural order).
        seed: base seed (epoch ``e`` uses ``seed + e``); must be equal on all ranks.
        rank, world_size: default to the current process group.
        start_index: number of indices this rank already consumed (resume).
    """

    def __init__(
        self,
        dataset: Sized,
        shuffle: bool = True,
        seed: int = 0,
        rank: int | None = None,
        world_size: int | None = None,
        start_index: int = 0,
    ) -> None:
        self.num_samples = require_samples(dataset, "DistributedTrainSampler")
        self.shuffle, self.seed = bool(shuffle), int(seed)
        self.rank, self.world_size = _rank_and_world(rank, world_size)
        self.per_rank = math.ceil(self.num_samples / self.world_size)
        if start_index < 0:
            raise ValueError(f"start_index must be >= 0, got {start_index}")
        self.start_index = int(start_index)

    def __iter__(self) -> Iterator[int]:
        epoch, offset = divmod(self.start_index, self.per_rank)
        while True:
            indices = epoch_indices(self.num_samples, epoch, self.seed, self.shuffle, self.rank, self.world_size)
            yield from indices[offset:].tolist()
            epoch, offset = epoch + 1, 0


@DATA_SAMPLERS.register_module()
class InferenceSampler(Sampler):
    """Contiguous shard of ``range(len(dataset))`` for this rank (sizes differ by at most 1;
    a rank's shard may be empty, the whole dataset may not: nothing would be evaluated)."""

    def __init__(self, dataset: Sized, rank: int | None = None, world_size: int | None = None, **unused) -> None:
        self.rank, self.world_size = _rank_and_world(rank, world_size)
        total = require_samples(dataset, "InferenceSampler")
        bounds = np.linspace(0, total, self.world_size + 1).round().astype(np.int64)
        self.begin, self.end = int(bounds[self.rank]), int(bounds[self.rank + 1])

    def __iter__(self) -> Iterator[int]:
        return iter(range(self.begin, self.end))

    def __len__(self) -> int:
        return self.end - self.begin


def group_batches(indices: np.ndarray, landscape: np.ndarray, batch_size: int) -> list[list[int]]:
    """Cut ``indices`` (one epoch of one rank) into same-orientation batches.

    ``landscape`` is a bool array aligned with ``indices``. Each group's last batch is
    completed with that group's first indices. Batches come out in the order in which their
    last element appears in ``indices`` (as a streaming grouper would emit them).
    """
    batches: list[tuple[int, list[int]]] = []
    for flag in (True, False):
        positions = np.nonzero(landscape == flag)[0]
        if positions.size == 0:
            continue
        count = math.ceil(positions.size / batch_size) * batch_size
        padded = np.resize(positions, count)
        for chunk in padded.reshape(-1, batch_size):
            batches.append((int(chunk.max()), indices[chunk].tolist()))
    batches.sort(key=lambda item: item[0])
    return [batch for _, batch in batches]


@DATA_SAMPLERS.register_module()
class AspectRatioGroupedSampler(Sampler):
    """Infinite batch sampler whose batches hold images on one side of aspect ratio 1.

    Args:
        dataset: must expose ``aspect_ratios`` (w / h per index, from annotations).
        batch_size: images per batch on this rank.
        shuffle, seed, rank, world_size: as ``DistributedTrainSampler``.
        start_iter: batches this rank already consumed (resume).
    """

    is_batch_sampler = True

    def __init__(
        self,
        dataset: Sized,
        batch_size: int,
        shuffle: bool = True,
        seed: int = 0,
        rank: int | None = None,
        world_size: int | None = None,
        start_iter: int = 0,
    ) -> None:
        require_samples(dataset, "AspectRatioGroupedSampler")
        ratios = getattr(dataset, "aspect_ratios", None)
        if ratios is None:
            raise AttributeError(
                f"AspectRatioGroupedSampler needs dataset.aspect_ratios (w/h per "
                f"image); {type(dataset).__name__} has none"
            )
        self.landscape = np.asarray(ratios, dtype=np.float64) >= 1.0
        if self.landscape.size != len(dataset):
            raise ValueError(f"dataset.aspect_ratios has {self.landscape.size} entries for {len(dataset)} images")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.batch_size, self.shuffle, self.seed = int(batch_size), bool(shuffle), int(seed)
        self.rank, self.world_size = _rank_and_world(rank, world_size)
        self.start_iter = int(start_iter)

    def epoch_batches(self, epoch: int) -> list[list[int]]:
        indices = epoch_indices(self.landscape.size, epoch, self.seed, self.shuffle, self.rank, self.world_size)
        return group_batches(indices, self.landscape[indices], self.batch_size)

    def __iter__(self) -> Iterator[list[int]]:
        epoch, skip = 0, self.start_iter
        while True:
            batches = self.epoch_batches(epoch)
            if not batches:  # unreachable with samples (checked at construction): never spin
                raise DataError(f"AspectRatioGroupedSampler: epoch {epoch} has no batch for rank {self.rank}")
            if skip >= len(batches):
                skip -= len(batches)
            else:
                yield from batches[skip:]
                skip = 0
            epoch += 1
