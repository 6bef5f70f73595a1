"""The metric interface shared by every evaluator, and rank gathering with de-duplication.

A metric sees the validation set one batch at a time (``process``), then ``compute``
gathers what every rank saw, drops images that a distributed sampler padded in twice
(same ``img_id`` / sample index), evaluates on rank 0 and broadcasts the numbers, so
all ranks return the same ``dict[str, float]``.
"""

from __future__ import annotations

import abc
from collections.abc import Hashable, Iterable
from typing import Any

import numpy as np
import torch

from resdet.utils import dist
from resdet.utils.containers import as_list


def to_numpy(value: Any, dtype: Any = None) -> np.ndarray:
    """Tensor / list / array -> numpy (on the CPU), optionally cast."""
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu()
        if value.dtype == torch.bfloat16 or value.dtype == torch.float16:
            value = value.float()
        value = value.numpy()
    array = np.asarray(value)
    return array.astype(dtype, copy=False) if dtype is not None else array


def gather_unique(records: list[tuple[Hashable, Any]]) -> list[tuple[Hashable, Any]]:
    """Gather ``(key, payload)`` records from every rank; keep the first record per key.

    A distributed sampler that pads its shards repeats some samples on a second rank;
    keying by ``img_id`` (or sample index) counts each of them once. Order: rank 0's
    records first, then rank 1's, ... (each in processing order).
    """
    seen: set = set()
    unique: list[tuple[Hashable, Any]] = []
    for rank_records in dist.all_gather_object(records):
        for key, payload in rank_records:
            if key in seen:
                continue
            seen.add(key)
            unique.append((key, payload))
    return unique


class BaseMetric(abc.ABC):
    """``bind(dataset)`` / ``reset()`` / ``process(predictions, targets)`` / ``compute()``.

    Subclasses collect per-image ``(key, payload)`` records in ``self._records`` and
    implement ``evaluate(records) -> dict`` (run on rank 0 only) and ``format_table``.
    """

    #: the key of the headline number (e.g. for best-checkpoint selection)
    primary_key: str = ""
    #: whether a larger value of ``primary_key`` is better
    higher_is_better: bool = True

    def __init__(self) -> None:
        self.dataset = None
        self._records: list[tuple[Hashable, Any]] = []
        self._next_index = 0

    def bind(self, dataset: Any) -> BaseMetric:
        """Take ground truth / class names from the evaluation dataset."""
        self.dataset = dataset
        return self

    def reset(self) -> None:
        self._records = []
        self._next_index = 0

    @abc.abstractmethod
    def process(self, predictions: Any, targets: Any) -> None:
        """Record one batch (model outputs and ``batch['targets']``)."""

    @abc.abstractmethod
    def evaluate(self, records: list[tuple[Hashable, Any]]) -> dict[str, float]:
        """Numbers from the de-duplicated records of all ranks (called on rank 0)."""

    @abc.abstractmethod
    def format_table(self, results: dict[str, float]) -> str:
        """A readable multi-line summary of ``results`` (as returned by ``compute``)."""

    def compute(self) -> dict[str, float]:
        """Gather over ranks, evaluate on rank 0, broadcast; every rank must call it."""
        records = gather_unique(self._records)
        payload = None
        if dist.is_main_process():
            try:
                payload = ("ok", self.evaluate(records))
            except Exception as err:  # tell the other ranks instead of leaving them waiting
                if not dist.is_distributed():
                    raise
                payload = ("error", f"{type(err).__name__}: {err}")
        status, value = dist.broadcast_object(payload)
        if status == "error":
            raise RuntimeError(f"{type(self).__name__}.compute failed on rank 0: {value}")
        return value

    def _sample_keys(self, targets: Any, count: int) -> list[Hashable]:
        """One key per sample: ``img_id`` (or ``index``) from the targets, else a running
        counter (then nothing can be de-duplicated: use a sampler that does not pad)."""
        keys: list[Hashable] | None = None
        if isinstance(targets, (list, tuple)) and targets and isinstance(targets[0], dict):
            for name in ("img_id", "index"):
                if all(name in t for t in targets):
                    keys = [_hashable(t[name]) for t in targets]
                    break
        elif isinstance(targets, dict):
            for name in ("img_ids", "img_id", "indices", "index"):
                if name in targets:
                    keys = [_hashable(k) for k in as_list(targets[name])]
                    break
        if keys is None:
            keys = [("sample", dist.get_rank(), self._next_index + i) for i in range(count)]
        if len(keys) != count:
            raise ValueError(
                f"{type(self).__name__}: {count} predictions but {len(keys)} image ids in the batch targets"
            )
        self._next_index += count
        return keys


def _hashable(value: Any) -> Hashable:
    if isinstance(value, torch.Tensor):
        value = value.item()
    if isinstance(value, np.generic):
        value = value.item()
    return value


def mean_of_finite(values: Iterable[float]) -> float:
    """Mean of the finite values (nan entries mark classes without ground truth)."""
    array = np.asarray(list(values), dtype=np.float64)
    array = array[np.isfinite(array)]
    return float(array.mean()) if array.size else 0.0


def format_class_table(
    title: str, names: list[str], values: list[float], extra: dict[str, list] | None = None, columns: int = 3
) -> str:
    """A compact per-class table: ``name  value`` cells, ``columns`` per row (values x100)."""
    cells = []
    for i, (name, value) in enumerate(zip(names, values)):
        text = "  n/a" if not np.isfinite(value) else f"{100 * value:5.1f}"
        if extra:
            text += "".join(f" {v[i]:>6}" for v in extra.values())
        cells.append(f"{str(name)[:18]:<18} {text}")
    head = f"{'class':<18} {'AP':>5}" + ("".join(f" {k:>6}" for k in extra) if extra else "")
    lines = [title, " | ".join([head] * min(columns, max(len(cells), 1)))]
    for start in range(0, len(cells), columns):
        lines.append(" | ".join(cells[start : start + columns]))
    return "\n".join(lines)
