"""``build_dataloader``: a config dict -> a ``torch.utils.data.DataLoader`` for one rank.

Config keys (CONTRACTS.md): ``batch_size`` (TOTAL over all ranks; divided here),
``num_workers``, ``dataset`` (config dict or dataset object), optional ``sampler`` (config
dict for ``DATA_SAMPLERS``), ``collate`` (a name registered in ``COLLATE_FUNCTIONS`` such as
``'cls_collate'`` / ``'det_collate'``, a config dict for it, or a callable), optional
``pin_memory``, ``prefetch_factor``, ``max_skipped_fraction`` (training only, default 0.5;
see below).

Training loaders are infinite and reproducible independently of ``num_workers``: every
sample gets its own seed from ``(seed, its position in the global stream)``, and
``random``, ``numpy`` and ``torch`` are seeded with it right before the dataset (and its
random transforms) run. Resuming at ``start_iter`` therefore replays exactly the batches,
augmentations included, an uninterrupted run would have seen.

A sample a dataset cannot read comes back as a ``Skipped`` marker (``problems.Skipped``;
``None`` counts as one too); ``collate.SkipCollate``, wrapped around every collate function,
removes and counts them: the batch's ``num_skipped`` and, naming them, ``skipped``. In training
``SeededDataset`` attaches to each marker a *replacement*, another sample of the dataset drawn
from the skipped sample's own seed, and the collate wrapper puts it in the marker's place, so
a batch keeps its size whatever is skipped: a batch of one sample would break BatchNorm, and a
skip must not depend on the batch size. The replacement is a function of the stream position
alone, so resuming replays it exactly, and a stream with nothing skipped is unchanged.
Evaluation drops unreadable samples and never replaces them. ``SkipGuard`` reads the counts:
a training loader stops with ``DataError`` naming some of them when more than
``max_skipped_fraction`` of an epoch's samples (this rank's share) have been skipped, or a
whole epoch was, rather than train an untrained model on nothing. An empty dataset is a
``DataError`` before anything starts.

Samplers and collate functions are built through their registries (``DATA_SAMPLERS``,
``COLLATE_FUNCTIONS``); ``check_loader_config`` is the one check of a loader config's keys
and values.
"""

from __future__ import annotations

import dataclasses
import math
import random
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import BatchSampler, DataLoader, Dataset, get_worker_info

from ..registry import COLLATE_FUNCTIONS, DATA_SAMPLERS, DATASETS, lookup
from ..utils.config_values import bool_value, check_section, fraction_value, int_value
from ..utils.dist import get_rank, get_world_size
from ..utils.errors import ConfigError, DataError
from .collate import SkipCollate
from .problems import Skipped, is_skipped

LOADER_KEYS = (
    "batch_size",
    "num_workers",
    "dataset",
    "sampler",
    "collate",
    "pin_memory",
    "prefetch_factor",
    "persistent_workers",
    "max_skipped_fraction",
)
LOADER_CHECKS = {
    "batch_size": int_value(1),
    "num_workers": int_value(0),
    "prefetch_factor": int_value(1),
    "pin_memory": bool_value,
    "persistent_workers": bool_value,
    "max_skipped_fraction": fraction_value,
}
DEFAULT_MAX_SKIPPED_FRACTION = 0.5


def check_loader_config(section: str, loader: Any) -> None:
    """Check a dataloader config (``train_dataloader``, ``test_dataloader``, ...): an unknown
    key and a value of the wrong type or range (``num_workers=-1``, ``batch_size=0``,
    ``pin_memory='yes'``) is a ``ConfigError`` naming ``SECTION.KEY``, not torch's words from
    inside ``DataLoader``. ``None`` passes."""
    check_section(section, loader, LOADER_CHECKS, allowed_keys=LOADER_KEYS)


_MASK64 = (1 << 64) - 1


def sample_seed(seed: int, global_position: int) -> int:
    """A well-mixed 32-bit seed for the sample at ``global_position`` of the data stream
    (the splitmix64 finaliser of ``(seed, position)``: ~1 us, no numpy call)."""
    x = ((int(seed) & 0xFFFFFFFF) * 0x9E3779B97F4A7C15 + int(global_position) + 1) & _MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
    return (x ^ (x >> 31)) >> 32


MAX_REPLACEMENT_TRIES = 8  # other samples tried in place of an unreadable one before it is dropped


class SkipGuard:
    """Stops training that reads (almost) nothing: counts, over each epoch's worth of this
    rank's samples, the batches' ``num_skipped``, and raises ``DataError`` naming a few of
    them once more than ``max_fraction`` of the epoch (or a whole epoch) was skipped.

    Args:
        epoch_size: samples per epoch on this rank (``ceil(len(dataset) / world_size)``).
        batch_size: stream positions each batch reads (readable, skipped or replaced).
        max_fraction: in [0, 1]; ``None`` keeps only the whole-epoch rule.
    """

    def __init__(
        self, epoch_size: int, batch_size: int, max_fraction: float | None = DEFAULT_MAX_SKIPPED_FRACTION
    ) -> None:
        self.epoch_size, self.batch_size = max(1, int(epoch_size)), int(batch_size)
        self.max_fraction = None if max_fraction is None else float(max_fraction)
        self.seen = self.skipped = 0
        self.examples: list[str] = []

    def update(self, batch: dict) -> None:
        """Account for one collated batch; raise ``DataError`` when the rule is broken."""
        self.seen += self.batch_size
        self.skipped += int(batch.get("num_skipped", 0) or 0)
        for name in batch.get("skipped", []):
            if len(self.examples) < 3 and name not in self.examples:
                self.examples.append(name)
        whole_epoch = self.skipped >= self.epoch_size
        too_many = self.max_fraction is not None and self.skipped > self.max_fraction * self.epoch_size
        if whole_epoch or too_many:
            limit = f"more than max_skipped_fraction={self.max_fraction} of an epoch" if too_many else "a whole epoch"
            every = " (every sample so far)" if self.skipped == self.seen else ""
            raise DataError(
                f"training stopped: {self.skipped} of the last {self.seen} training samples could not be read"
                f"{every}, {limit} ({self.epoch_size} samples per epoch on this rank); unreadable: "
                f"{'; '.join(self.examples) or 'see the warnings above'}. Fix or remove these files, or raise "
                "train_dataloader.max_skipped_fraction"
            )
        if self.seen >= self.epoch_size:
            self.seen = self.skipped = 0
            self.examples = []


class SeededDataset(Dataset):
    """``dataset[(index, seed)]`` is ``dataset[index]`` read with ``random``, ``numpy`` and
    ``torch`` seeded from ``seed``. An unreadable sample comes back as a ``Skipped`` marker
    (``None`` becomes one) carrying its ``replacement``, so the collate wrapper keeps the
    batch's size. In the main process (``num_workers=0``) the global RNG states are restored
    after each batch, so the training loop's own randomness (dropout, ...) is not disturbed.
    """

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def _seeded(self, index: int, seed: int) -> Any:
        random.seed(seed)
        np.random.seed(seed)
        torch.default_generator.manual_seed(seed)
        return self.dataset[index]

    def _read(self, index: int, seed: int) -> Any:
        sample = self._seeded(index, seed)
        if not is_skipped(sample):
            return sample
        if sample is None:  # a dataset without markers: name the sample as it can
            describe = getattr(self.dataset, "describe", None)
            where = describe(index) if callable(describe) else f"sample {index} of {type(self.dataset).__name__}"
            sample = Skipped(index, where, "the dataset returned None")
        return dataclasses.replace(sample, replacement=self.replacement(index, seed))

    def replacement(self, index: int, seed: int) -> Any:
        """A readable stand-in for the unreadable sample ``index`` (seeded ``seed``): up to
        ``MAX_REPLACEMENT_TRIES`` other indices, each drawn with its own seed from ``seed``
        alone, so the choice is the same in every run, worker count and resume; ``None`` when
        all of them are unreadable too."""
        size = len(self.dataset)
        for attempt in range(1, MAX_REPLACEMENT_TRIES + 1):
            other_seed = sample_seed(seed, attempt)
            other = other_seed % size
            if other != index:
                sample = self._seeded(other, other_seed)
                if not is_skipped(sample):
                    return sample
        return None

    def __getitem__(self, key: tuple[int, int]) -> Any:
        return self.__getitems__([key])[0]

    def __getitems__(self, keys: list[tuple[int, int]]) -> list:
        """A whole batch (the DataLoader's fetcher calls this): the global RNG states are
        saved and restored once per batch, not per sample."""
        in_worker = get_worker_info() is not None
        if not in_worker:
            saved = (random.getstate(), np.random.get_state(), torch.get_rng_state())
        try:
            return [self._read(index, seed) for index, seed in keys]
        finally:
            if not in_worker:
                random.setstate(saved[0])
                np.random.set_state(saved[1])
                torch.set_rng_state(saved[2])


class SeededBatchSampler:
    """Turns an infinite batch sampler into batches of ``(index, seed)`` pairs.

    The ``p``-th sample of rank ``r`` (of ``W``) is seeded from global position ``p * W + r``:
    with ``DistributedTrainSampler`` (round-robin shards) that is its position in the
    1-process stream, so augmentations do not depend on the number of ranks.
    """

    def __init__(self, batch_sampler, seed: int, rank: int, world_size: int, start_position: int) -> None:
        self.batch_sampler, self.seed = batch_sampler, int(seed)
        self.rank, self.world_size = int(rank), int(world_size)
        self.start_position = int(start_position)

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        position = self.start_position
        for batch in self.batch_sampler:
            seeded = []
            for index in batch:
                global_position = position * self.world_size + self.rank
                seeded.append((int(index), sample_seed(self.seed, global_position)))
                position += 1
            yield seeded


def per_rank_batch_size(total: int, world_size: int, training: bool) -> int:
    """Split the TOTAL batch size over ranks (training requires an exact split)."""
    if training and int(total) % world_size:
        raise ConfigError(
            f"train_dataloader.batch_size={total} is the total over all ranks and must "
            f"be divisible by the world size {world_size}"
        )
    return max(1, int(total) // world_size)


def build_dataset(cfg: Any) -> Dataset:
    return DATASETS.build(cfg) if isinstance(cfg, dict) else cfg


def training_only_transforms(dataset: Dataset) -> list[str]:
    """Class names of the transforms marked ``training_only`` (e.g. ``DetRandomCrop``, whose
    crop is not undone when predictions are mapped back) in ``dataset``'s pipeline, looking
    through concatenations."""
    found = []
    for inner in getattr(dataset, "datasets", None) or []:
        found += training_only_transforms(inner)
    for t in getattr(getattr(dataset, "pipeline", None), "transforms", None) or []:
        if getattr(t, "training_only", False):
            found.append(type(t).__name__)
    return found


class Loader(DataLoader):
    """A ``DataLoader`` that also states what it reads: ``raw_dataset`` (the dataset itself,
    where ``dataset`` may be a seeding wrapper around it) and ``batch_size_per_rank``. With
    ``skip_guard`` (training), iterating raises ``DataError`` instead of yielding the batch
    that breaks the guard's rule (see ``SkipGuard``)."""

    def __init__(
        self,
        dataset: Dataset,
        *,
        raw_dataset: Dataset,
        batch_size_per_rank: int,
        skip_guard: SkipGuard | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(dataset, **kwargs)
        self._raw_dataset = raw_dataset
        self._batch_size_per_rank = int(batch_size_per_rank)
        self._skip_guard = skip_guard

    def __iter__(self):
        batches = super().__iter__()
        if self._skip_guard is None:
            return batches
        return self._guarded(batches, self._skip_guard)

    @staticmethod
    def _guarded(batches, guard: SkipGuard):
        for batch in batches:
            if isinstance(batch, dict) and "inputs" in batch:
                guard.update(batch)
            yield batch

    @property
    def raw_dataset(self) -> Dataset:
        return self._raw_dataset

    @property
    def batch_size_per_rank(self) -> int:
        return self._batch_size_per_rank


def build_dataloader(
    cfg: dict,
    training: bool = True,
    seed: int = 0,
    start_iter: int = 0,
    rank: int | None = None,
    world_size: int | None = None,
    dataset: Dataset | None = None,
    name: str = "dataloader",
) -> Loader:
    """Build this rank's loader.

    Args:
        cfg: the ``train_dataloader`` / ``val_dataloader`` config dict.
        training: infinite shuffled stream (``DistributedTrainSampler`` by default) when True,
            one pass of contiguous shards (``InferenceSampler``) when False.
        seed: base seed of the data order and of the per-sample augmentation seeds.
        start_iter: training batches already consumed on this rank (resume).
        rank, world_size: default to the current process group.
        dataset: an already built dataset (else built from ``cfg['dataset']``).
        name: the config section, for messages (``train_dataloader``, ...).
    Returns:
        a ``Loader`` (a ``DataLoader`` with the properties ``raw_dataset`` and
        ``batch_size_per_rank``).
    """
    check_loader_config(name, cfg)
    if dataset is None and "dataset" not in cfg:
        raise ConfigError(f"{name} needs a 'dataset' entry, e.g. dataset=dict(type='CocoDataset', ...)")
    rank = get_rank() if rank is None else rank
    world_size = get_world_size() if world_size is None else world_size
    dataset = dataset if dataset is not None else build_dataset(cfg["dataset"])
    _check_dataset(dataset, training)
    batch_size = per_rank_batch_size(cfg.get("batch_size", 1), world_size, training)
    loader_args = _loader_args(cfg, training, seed, rank, dataset, batch_size)
    sampler_cfg = {"type": "DistributedTrainSampler" if training else "InferenceSampler", **(cfg.get("sampler") or {})}
    placement = dict(dataset=dataset, rank=rank, world_size=world_size)
    if not training:
        if _is_batch_sampler(sampler_cfg):
            raise ConfigError(
                f"{name}.sampler {sampler_cfg['type']!r} is a training batch sampler; use "
                "'InferenceSampler' for evaluation"
            )
        return Loader(
            dataset,
            sampler=DATA_SAMPLERS.build(sampler_cfg, default_args=placement),
            batch_size=batch_size,
            drop_last=False,
            **loader_args,
        )
    batches = _train_batches(sampler_cfg, dict(placement, seed=seed), batch_size, start_iter)
    guard = SkipGuard(
        math.ceil(len(dataset) / world_size), batch_size, cfg.get("max_skipped_fraction", DEFAULT_MAX_SKIPPED_FRACTION)
    )
    return Loader(
        SeededDataset(dataset),
        skip_guard=guard,
        **loader_args,
        batch_sampler=SeededBatchSampler(batches, seed, rank, world_size, start_iter * batch_size),
    )


def _loader_args(cfg: Any, training: bool, seed: int, rank: int, dataset: Dataset, batch_size: int) -> dict:
    """``Loader`` keyword arguments from the config: workers, the collate function (built
    through ``COLLATE_FUNCTIONS``, wrapped in ``SkipCollate``), pinning and prefetching."""
    collate = COLLATE_FUNCTIONS.build(cfg.get("collate") or "cls_collate")
    generator = torch.Generator()
    generator.manual_seed(int(seed) + 7919 * int(rank))  # workers' base seed; never the global RNG
    num_workers = int(cfg.get("num_workers", 0))
    args: dict[str, Any] = dict(
        num_workers=num_workers,
        collate_fn=collate if isinstance(collate, SkipCollate) else SkipCollate(collate),
        pin_memory=bool(cfg.get("pin_memory", torch.cuda.is_available())),
        generator=generator,
        raw_dataset=dataset,
        batch_size_per_rank=batch_size,
    )
    if num_workers > 0:
        args["prefetch_factor"] = int(cfg.get("prefetch_factor", 2))
        args["persistent_workers"] = bool(cfg.get("persistent_workers", not training))
    return args


def _is_batch_sampler(sampler_cfg: dict) -> bool:
    return bool(getattr(lookup(sampler_cfg["type"], DATA_SAMPLERS), "is_batch_sampler", False))


def _train_batches(sampler_cfg: dict, defaults: dict, batch_size: int, start_iter: int) -> Any:
    """This rank's infinite stream of index batches, ``start_iter`` batches in: a registered
    batch sampler's (``is_batch_sampler``), or an index sampler's cut into batches."""
    if _is_batch_sampler(sampler_cfg):
        return DATA_SAMPLERS.build(
            sampler_cfg, default_args=dict(defaults, batch_size=batch_size, start_iter=start_iter)
        )
    indices = DATA_SAMPLERS.build(sampler_cfg, default_args=dict(defaults, start_index=start_iter * batch_size))
    return BatchSampler(indices, batch_size, drop_last=True)


def _check_dataset(dataset: Dataset, training: bool) -> None:
    """An empty dataset, or an evaluation pipeline holding training-only transforms, cannot work."""
    if len(dataset) == 0:
        raise DataError(
            f"the {'training' if training else 'evaluation'} dataset {dataset!r} has 0 samples; "
            "check its files and filters"
        )
    bad = [] if training else training_only_transforms(dataset)
    if bad:
        raise ValueError(
            f"the evaluation dataset's pipeline holds training-only transforms {bad}: "
            "predictions could not be mapped back to the original image; remove them "
            "from the val / test pipeline"
        )


def move_to_device(data: Any, device: torch.device, non_blocking: bool = True) -> Any:
    """Recursively move tensors in dicts / lists / tuples to ``device``."""
    if isinstance(data, torch.Tensor):
        return data.to(device, non_blocking=non_blocking)
    if isinstance(data, dict):
        return {k: move_to_device(v, device, non_blocking) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        moved = [move_to_device(v, device, non_blocking) for v in data]
        return (
            moved
            if isinstance(data, list)
            else type(data)(moved)
            if not hasattr(data, "_fields")
            else type(data)(*moved)
        )
    return data


def batch_len(inputs: Any) -> int:
    """Number of images in a batch's ``inputs`` (tensor or list)."""
    if isinstance(inputs, torch.Tensor):
        return int(inputs.shape[0])
    if isinstance(inputs, Sequence):
        return len(inputs)
    raise TypeError(f"batch 'inputs' must be a tensor or a list of tensors, got {type(inputs).__name__}")
