"""The one timer of the benchmarks: untimed warm-up calls, then timed repeats (the device
synchronised around each, so a GPU call is timed to its end), summarised as median / mean /
best / total seconds."""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import Callable

import torch


def sync(device: torch.device | None) -> None:
    """Wait for ``device``'s queued work (a no-op for the CPU or ``None``)."""
    if device is not None and device.type == "cuda":
        torch.cuda.synchronize(device)


@dataclass(frozen=True)
class Timing:
    """Seconds of each timed call (at least one)."""

    seconds: tuple[float, ...]

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    @property
    def mean(self) -> float:
        return statistics.fmean(self.seconds)

    @property
    def best(self) -> float:
        return min(self.seconds)

    @property
    def total(self) -> float:
        return sum(self.seconds)


def time_calls(fn: Callable[[], object], repeats: int, warmup: int = 1, device: torch.device | None = None) -> Timing:
    """Call ``fn`` ``warmup`` times untimed, then ``max(repeats, 1)`` times, each timed from a
    synchronised ``device`` to the end of its queued work."""
    for _ in range(warmup):
        fn()
    seconds = []
    for _ in range(max(repeats, 1)):
        sync(device)
        start = time.perf_counter()
        fn()
        sync(device)
        seconds.append(time.perf_counter() - start)
    return Timing(tuple(seconds))
